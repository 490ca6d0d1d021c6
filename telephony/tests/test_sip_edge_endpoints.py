"""The SIP edge's internal endpoints, as Kamailio calls them, without Kamailio (any database).

test_sip_edge.py runs the same paths through real Kamailio and sipp on PostgreSQL.
"""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client
from django.urls import reverse

from telephony.edge.config import edge_secret, render
from telephony.models import Call, SipConnection
from telephony.services import sip as sip_services
from telephony.tests.engine_support import make_app, next_number
from telephony.tests.isolation_sip import make_number
from telephony.tests.receivers import receiver_fixture  # noqa: F401 - the receiver fixture

pytestmark = pytest.mark.django_db

TRUNK = "203.0.113.7"


@pytest.fixture
def edge():
    client = Client(HTTP_X_SIP_EDGE_SECRET=edge_secret())
    return client


@pytest.fixture
def acme(alice):
    domain = sip_services.sip_domain_create(account=alice.account, actor=None, name="edge-unit")
    ann = sip_services.sip_user_create(account=alice.account, actor=None, domain=domain, login="ann",
                                       password="Winter-lake-2031")  # fmt: skip
    ben = sip_services.sip_user_create(account=alice.account, actor=None, domain=domain, login="ben",
                                       password="Winter-lake-2031")  # fmt: skip
    trunk = sip_services.sip_connection_create(account=alice.account, actor=None, name="Carrier", auth_type="ip",
                                               allowed_ips=[TRUNK])  # fmt: skip
    return domain, ann, ben, trunk


def invite(client, **fields) -> dict:
    data = {"call_id": f"unit-{time.monotonic_ns()}", "from_tag": "ft1", "from_user": "+12125550100",
            "from_domain": TRUNK, "to_user": "", "to_domain": "127.0.0.1", "source_ip": TRUNK, **fields}  # fmt: skip
    response = client.post("/internal/sip/route", data)
    assert response.status_code == 200, response.content
    return {**response.json(), "call_id": data["call_id"]}


def test_it_refuses_requests_without_the_shared_secret():
    assert Client().post("/internal/sip/route", {"call_id": "x"}).status_code == 403
    wrong = Client(HTTP_X_SIP_EDGE_SECRET="not-it")
    assert wrong.post("/internal/sip/events", "event=ended", content_type="text/plain").status_code == 403


def test_it_answers_only_post(edge):
    assert edge.get("/internal/sip/route").status_code == 405


def test_the_internal_endpoints_are_not_in_the_api_schema(alice_api):
    schema = alice_api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    assert not [path for path in schema["paths"] if "internal" in path]


def test_it_challenges_an_invite_from_a_sip_domain_without_credentials(edge, acme):
    domain = acme[0]
    answer = invite(edge, from_user="ann", from_domain=domain.domain, to_user="ben", to_domain=domain.domain,
                    source_ip="198.51.100.9")  # fmt: skip
    assert answer == {**answer, "action": "challenge", "realm": domain.domain}


def test_it_refuses_an_unknown_source(edge, acme):
    answer = invite(edge, to_user="+12015550100", source_ip="198.51.100.9", from_domain="carrier.example")
    assert (answer["action"], answer["code"]) == ("reply", 403)


def test_it_refuses_an_unknown_number_from_a_trunk_404_without_a_record(edge, acme):
    answer = invite(edge, to_user="+12015559999")
    assert (answer["action"], answer["code"]) == ("reply", 404)
    assert not Call.objects.filter(switch_call_id=answer["call_id"]).exists()


def test_a_did_of_an_offline_user_is_480_and_recorded(edge, alice, acme):
    number = make_number(alice.account, next_number(), sip_user=acme[1])
    answer = invite(edge, to_user=number.number)
    assert (answer["action"], answer["code"]) == ("reply", 480)
    root = Call.objects.get(switch_call_id=answer["call_id"], parent__isnull=True)
    assert (root.source, root.status, root.sip_code) == ("kamailio", "no-answer", 480)
    assert Call.objects.get(parent=root).end_reason.endswith("is not registered (offline).")


def test_a_sip_user_limited_to_its_domain_cannot_call_another_domain(edge, alice, acme):
    domain, ann, _, _ = acme
    other = sip_services.sip_domain_create(account=alice.account, actor=None, name="edge-other")
    sip_services.sip_user_create(account=alice.account, actor=None, domain=other, login="cy",
                                 password="Winter-lake-2031")  # fmt: skip
    sip_services.sip_user_update(account=alice.account, actor=None, sip_user=ann, same_domain_calls_only=True)
    answer = invite(edge, from_user="ann", from_domain=domain.domain, auth_user="ann", auth_realm=domain.domain,
                    to_user="cy", to_domain=other.domain)  # fmt: skip
    assert (answer["action"], answer["code"]) == ("reply", 403)
    assert (
        Call.objects.get(switch_call_id=answer["call_id"]).end_reason == f"{ann.sip_uri} may call only its own domain."
    )


def test_a_did_routed_to_a_connection_is_relayed_and_its_events_recorded(edge, alice, acme):
    trunk = acme[3]
    pbx = sip_services.sip_connection_create(account=alice.account, actor=None, name="PBX", auth_type="ip",
                                             allowed_ips=["198.51.100.20"], inbound_host="pbx.example.com")  # fmt: skip
    number = make_number(alice.account, next_number(), sip_connection=pbx)
    answer = invite(edge, to_user=number.number)
    assert answer["action"] == "relay"
    assert json.loads(answer["rtjson"])["routes"] == [
        {"uri": f"sip:{number.number}@pbx.example.com:5060;transport=udp"}
    ]
    assert trunk.pk != pbx.pk
    now = time.time()
    lines = [f"event=ringing&call_id={answer['call_id']}&at={now}",
             f"event=answered&call_id={answer['call_id']}&at={now + 1}&contact=sip%3Ax%40pbx.example.com",
             f"event=ended&call_id={answer['call_id']}&at={now + 4.5}&from_tag=ft1"]  # fmt: skip
    response = edge.post("/internal/sip/events", "\n".join(lines), content_type="text/plain")
    assert response.json() == {"received": 3, "applied": 3}
    root = Call.objects.get(switch_call_id=answer["call_id"], parent__isnull=True)
    b_leg = Call.objects.get(parent=root)
    assert (root.status, b_leg.status) == ("completed", "completed")
    assert root.duration == 3 and b_leg.sip_connection_id == pbx.pk
    assert root.end_reason == "The caller hung up."


def test_an_app_dial_whose_targets_fail_calls_the_action_with_the_outcome(edge, alice, acme):
    ann = acme[1]
    app = make_app(alice.account, f"<Response><Dial><To>{ann.sip_uri}</To></Dial><Hangup/></Response>")
    number = make_number(alice.account, next_number(), call_control_app=app)
    answer = invite(edge, to_user=number.number)
    # ann is not registered: her leg fails at once, and the flow goes on to <Hangup/>.
    assert (answer["action"], answer["code"]) == ("reply", 603)
    root = Call.objects.get(switch_call_id=answer["call_id"], parent__isnull=True)
    assert root.status == "failed" and Call.objects.get(parent=root).status == "no-answer"


def test_a_media_flow_is_refused_488_with_its_reason(edge, alice, acme):
    app = make_app(alice.account, "<Response><Gather><Say>Press 1</Say></Gather></Response>")
    number = make_number(alice.account, next_number(), call_control_app=app)
    answer = invite(edge, to_user=number.number)
    assert (answer["action"], answer["code"]) == ("reply", 488)
    assert "<Gather> needs media" in Call.objects.get(switch_call_id=answer["call_id"]).end_reason


def test_the_rendered_configuration_names_the_database_the_portal_and_the_secret():
    text = render(db_url="postgres://kam:pw@db:5432/portal", portal_url="http://web:8000", port=5070)
    assert '#!define DBURL "postgres://kam:pw@db:5432/portal"' in text
    assert '#!define PORTAL "http://web:8000"' in text
    assert f'X-Sip-Edge-Secret: {edge_secret()}"' in text
    assert "listen=udp:127.0.0.1:5070" in text and "@@" not in text


def test_the_configuration_refuses_values_that_would_break_it():
    with pytest.raises(ValueError):
        render(db_url='postgres://x"; evil', portal_url="http://web:8000")


def test_the_sip_user_page_says_where_registrations_come_from(client, alice, acme):
    from django.db import connection

    client.force_login(alice.user)
    page = client.get(reverse("sipuser-detail", kwargs={"account": alice.account.slug, "id": acme[1].public_id}))
    text = page.content.decode()
    if connection.vendor == "postgresql":
        assert "Not registered" in text
    else:
        assert "Registrations are available with the SIP edge on PostgreSQL." in text


def test_ip_trunks_are_matched_by_network(edge, alice, acme):
    SipConnection.objects.filter(pk=acme[3].pk).update(allowed_ips=["192.0.2.0/24"])
    assert invite(edge, to_user="+12015559999", source_ip="192.0.2.77")["code"] == 404
    assert invite(edge, to_user="+12015559999", source_ip="192.0.3.77")["code"] == 403


def test_a_sip_user_reaches_the_pstn_through_its_sip_connection(edge, alice, acme):
    domain, ann, _, _ = acme
    carrier = sip_services.sip_connection_create(account=alice.account, actor=None, name="Out", auth_type="ip",
                                                 allowed_ips=["198.51.100.30"], inbound_host="sbc.example.com",
                                                 inbound_port=5080)  # fmt: skip
    sip_services.sip_user_update(account=alice.account, actor=None, sip_user=ann, sip_connection=carrier)
    answer = invite(edge, from_user="ann", from_domain=domain.domain, auth_user="ann", auth_realm=domain.domain,
                    to_user="+442079460000", to_domain=domain.domain)  # fmt: skip
    assert answer["action"] == "relay"
    assert answer["routes"] == [{"uri": "sip:+442079460000@sbc.example.com:5080;transport=udp"}]
    assert "from_user" not in answer  # no caller ID number: the phone's From goes as it came
    root = Call.objects.get(switch_call_id=answer["call_id"], parent__isnull=True)
    assert (root.from_number, root.to_number, root.sip_user_id) == (ann.sip_uri, "+442079460000", ann.pk)
    assert Call.objects.get(parent=root).sip_connection_id == carrier.pk


def test_a_sip_user_without_any_connection_of_its_account_cannot_reach_the_pstn(edge, acme):
    domain = acme[0]
    answer = invite(edge, from_user="ann", from_domain=domain.domain, auth_user="ann", auth_realm=domain.domain,
                    to_user="+442079460000", to_domain=domain.domain)  # fmt: skip
    assert (answer["action"], answer["code"]) == ("reply", 403)


def test_a_disabled_user_cannot_place_calls_even_with_a_valid_digest(edge, alice, acme):
    domain, ann, _, _ = acme
    sip_services.sip_user_update(account=alice.account, actor=None, sip_user=ann, is_active=False)
    answer = invite(edge, from_user="ann", from_domain=domain.domain, auth_user="ann", auth_realm=domain.domain,
                    to_user="ben", to_domain=domain.domain)  # fmt: skip
    assert (answer["action"], answer["code"]) == ("reply", 403)


def test_the_switch_setting_chooses_the_edge_which_refuses_what_needs_media(settings, alice):
    from telephony.models import CallWakeup
    from telephony.switch import get_switch
    from telephony.switch.kamailio import KamailioSwitch

    settings.SWITCH_ADAPTER = "telephony.switch.kamailio.KamailioSwitch"
    switch = get_switch()
    assert isinstance(switch, KamailioSwitch) and switch.name == "kamailio"
    leg = Call.objects.create(account=alice.account, direction="outbound-api", from_number="+12015550100",
                              to_number="+12015550101", source="kamailio")  # fmt: skip
    switch.originate(leg, caller_id="+12015550100", timeout_ms=30000)
    wakeup = CallWakeup.objects.get(leg=leg)
    assert (wakeup.event, wakeup.data["sip_code"]) == ("failed", 488)
    assert "no media server" in wakeup.data["reason"]


def test_a_connections_channel_limit_refuses_the_call_over_it(edge, alice, acme):
    pbx = sip_services.sip_connection_create(account=alice.account, actor=None, name="Small PBX", auth_type="ip",
                                             allowed_ips=["198.51.100.21"], inbound_host="pbx2.example.com",
                                             channel_limit=1)  # fmt: skip
    number = make_number(alice.account, next_number(), sip_connection=pbx)
    assert invite(edge, to_user=number.number)["action"] == "relay"
    second = invite(edge, to_user=number.number)
    assert (second["action"], second["code"]) == ("reply", 486)
    assert "channel limit" in Call.objects.get(switch_call_id=second["call_id"]).end_reason


def test_a_caller_who_cancels_ends_every_leg_canceled(edge, alice, acme):
    pbx = sip_services.sip_connection_create(
        account=alice.account, actor=None, name="PBX 3", auth_type="ip", allowed_ips=["198.51.100.22"],
        inbound_host="pbx3.example.com",
    )  # fmt: skip
    number = make_number(alice.account, next_number(), sip_connection=pbx)
    answer = invite(edge, to_user=number.number)
    outcome = edge.post("/internal/sip/dial-outcome", {"call_id": answer["call_id"], "code": "487", "canceled": "1"})
    assert outcome.json()["code"] == 487
    legs = Call.objects.filter(switch_call_id=answer["call_id"])
    assert sorted(leg.status for leg in legs) == ["canceled", "canceled"]


def test_signalling_commands_of_a_flow_run_on_the_edge(edge, alice, acme):
    xml = ("<Response><Meta name='who' value='{{from}}'/><Call field='from' value='+1212*'><Hangup tag='vip'/>"
           "</Call><Say>Hello</Say></Response>")  # fmt: skip
    number = make_number(alice.account, next_number(), call_control_app=make_app(alice.account, xml))
    matched = invite(edge, to_user=number.number, from_user="+12125550100")
    assert (matched["action"], matched["code"]) == ("reply", 603)
    assert Call.objects.get(switch_call_id=matched["call_id"]).end_reason == "Hangup (vip)"
    other = invite(edge, to_user=number.number, from_user="+13125550100")
    assert (other["action"], other["code"]) == ("reply", 488)


def test_an_app_in_url_mode_fetches_its_flow_from_the_customers_server(edge, alice, acme, receiver):
    from telephony.models import CallHttpRequest
    from telephony.tests.receivers import Answer

    receiver.respond(Answer(body=b"<Response><Hangup tag='closed'/></Response>",
                            headers={"Content-Type": "application/xml"}))  # fmt: skip
    app = make_app(alice.account, call_flow_url=receiver.url)
    number = make_number(alice.account, next_number(), call_control_app=app)
    answer = invite(edge, to_user=number.number)
    assert (answer["action"], answer["code"]) == ("reply", 603)
    root = Call.objects.get(switch_call_id=answer["call_id"])
    assert root.end_reason == "Hangup (closed)"
    request = CallHttpRequest.objects.get(call=root)
    assert (request.purpose, request.outcome) == ("call_flow_url", "ok")
    assert "To=%2B" in receiver.requests[0].text


def test_a_dial_that_cannot_ring_calls_its_action_url_at_once(edge, alice, acme, receiver):
    from urllib.parse import parse_qs

    from telephony.models import CallHttpRequest
    from telephony.tests.receivers import Answer

    receiver.respond(Answer(body=b"<Response><Hangup tag='after-dial'/></Response>",
                            headers={"Content-Type": "application/xml"}))  # fmt: skip
    ann = acme[1]
    xml = f"<Response><Dial action='{receiver.url}'><To>{ann.sip_uri}</To></Dial></Response>"
    number = make_number(alice.account, next_number(), call_control_app=make_app(alice.account, xml))
    answer = invite(edge, to_user=number.number)
    assert (answer["action"], answer["code"]) == ("reply", 603)
    assert parse_qs(receiver.requests[0].text)["DialCallStatus"] == ["no-answer"]
    root = Call.objects.get(switch_call_id=answer["call_id"], parent__isnull=True)
    assert root.end_reason == "Hangup (after-dial)"
    assert CallHttpRequest.objects.get(call=root).purpose == "dial_action"


def test_a_dial_outcome_with_an_out_of_range_time_is_answered_not_a_server_error(edge):
    outcome = edge.post("/internal/sip/dial-outcome", {"call_id": "no-such-call", "code": "486", "at": "1e18"})
    assert outcome.status_code == 200
    assert outcome.json()["action"] == "reply"


def test_a_dial_outcome_with_a_code_outside_sip_is_recorded_as_500(edge, alice, acme):
    pbx = sip_services.sip_connection_create(
        account=alice.account, actor=None, name="PBX 4", auth_type="ip", allowed_ips=["198.51.100.23"],
        inbound_host="pbx4.example.com",
    )  # fmt: skip
    number = make_number(alice.account, next_number(), sip_connection=pbx)
    answer = invite(edge, to_user=number.number)
    outcome = edge.post("/internal/sip/dial-outcome", {"call_id": answer["call_id"], "code": "-1"})
    assert outcome.status_code == 200
    assert outcome.json()["code"] == 500
    root = Call.objects.get(switch_call_id=answer["call_id"], parent__isnull=True)
    assert (root.status, root.sip_code) == ("failed", 500)


def test_an_app_dial_to_a_disabled_user_fails_without_ringing_her_phones(edge, alice, acme):
    from telephony.models import SipUser

    ann = acme[1]
    SipUser.objects.filter(pk=ann.pk).update(is_active=False)  # her phones may still be registered
    app = make_app(alice.account, f"<Response><Dial><To>{ann.sip_uri}</To></Dial><Hangup/></Response>")
    number = make_number(alice.account, next_number(), call_control_app=app)

    answer = invite(edge, to_user=number.number)

    root = Call.objects.get(switch_call_id=answer["call_id"], parent__isnull=True)
    leg = Call.objects.get(parent=root)
    assert (leg.status, leg.sip_code) == ("failed", 480)

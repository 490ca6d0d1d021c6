"""The SIP edge end to end: real Kamailio against the test database and a live portal, phones and trunks played
by sipp (telephony/tests/sip_edge_support.py). PostgreSQL only: skipped elsewhere, failed under REQUIRE_SERVICES=1.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from django.urls import reverse

from telephony.models import Call, Event, SipConnection, SipUser
from telephony.services.profiles import caller_list_change, tn_profile_create
from telephony.tests.engine_support import make_app, next_number
from telephony.tests.isolation_sip import make_number
from telephony.tests.receivers import Answer, receiver_fixture  # noqa: F401 - the receiver fixture
from telephony.tests.sip_edge_support import (
    TRUNK_IP,
    answer_calls,
    call_user,
    finish,
    free_port,
    register,
    sip_edge_fixture,  # noqa: F401 - the sip_edge fixture
    trunk_call,
)
from tenants.tests.fixtures import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PASSWORD = "Winter-lake-2031"
NEW_PASSWORD = "Autumn-river-2032"


@pytest.fixture
def domain(alice_api):
    response = alice_api.post("/api/v1/sip-domains", {"name": "edge-acme"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def create_user(api, domain: dict, login: str, password: str = PASSWORD) -> dict:
    response = api.post(f"/api/v1/sip-domains/{domain['id']}/users", {"login": login, "password": password},
                        format="json")  # fmt: skip
    assert response.status_code == 201, response.content
    return response.json()


def trunk(account) -> SipConnection:
    connection = SipConnection.objects.create(
        account=account, name="Carrier", auth_type=SipConnection.AuthType.IP, allowed_ips=["203.0.113.7"]
    )
    # The service refuses loopback addresses for customers' trunks; the test's trunk is sipp on loopback.
    SipConnection.objects.filter(pk=connection.pk).update(allowed_ips=[TRUNK_IP])
    return connection


def legs(call_id: str) -> tuple[Call, list[Call]]:
    root = Call.objects.get(switch_call_id=call_id, parent__isnull=True)
    return root, list(Call.objects.filter(parent=root).order_by("id"))


def wait_settled(call_id: str, timeout: float = 20, edge=None) -> None:
    """Until the call's A-leg and every B-leg have ended (Kamailio reports in batches every 50 ms)."""

    def check():
        root = Call.objects.filter(switch_call_id=call_id, parent__isnull=True).first()
        return root is not None and root.is_final and all(leg.is_final for leg in root.children.all())

    try:
        wait_for(check, timeout=timeout, message="the call's legs to end")
    except AssertionError:
        rows = Call.objects.filter(switch_call_id=call_id)
        states = [(c.direction, c.to_number, c.status, c.end_reason) for c in rows]
        log = f"\nKamailio's log:\n{edge.log()}" if edge is not None else ""
        raise AssertionError(f"the call's legs did not all end: {states}{log}") from None


# --- Registration ---------------------------------------------------------------------------------------------


def test_it_registers_a_sip_user_created_through_the_api_and_shows_the_registration(
    sip_edge, alice, alice_api, domain, client
):
    create_user(alice_api, domain, "reg-anna")
    port = free_port()
    run = register(sip_edge, "reg-anna", domain["domain"], PASSWORD, expected=200, port=port)
    assert run.ok, run.errors + sip_edge.log()

    user = SipUser.objects.get(login="reg-anna")
    client.force_login(alice.user)
    page = client.get(reverse("sipuser-detail", kwargs={"account": alice.account.slug, "id": user.public_id}))
    assert page.status_code == 200
    text = page.content.decode()
    assert f"sip:reg-anna@127.0.0.1:{port}" in text
    assert "sipp-register" in text


@pytest.mark.browser
def test_the_sip_user_page_lists_its_live_registrations_in_a_browser(
    sip_edge, live_server, alice, alice_api, domain, page
):
    from playwright.sync_api import expect

    from tenants.tests.browser import log_in, screenshot

    user = create_user(alice_api, domain, "reg-gus")
    port = free_port()
    assert register(sip_edge, "reg-gus", domain["domain"], PASSWORD, port=port).ok
    log_in(page, live_server.url, alice)
    page.goto(live_server.url + reverse("sipuser-detail", kwargs={"account": alice.account.slug, "id": user["id"]}))
    row = page.get_by_test_id("sipuser-registration")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"sip:reg-gus@127.0.0.1:{port}")
    expect(row).to_contain_text("sipp-register")
    expect(row).to_contain_text("127.0.0.1")
    expect(page.get_by_test_id("sipuser-state")).to_have_text("Online")
    screenshot(page, "sipuser_registrations")


def test_it_refuses_a_wrong_password_with_a_new_challenge(sip_edge, alice_api, domain):
    create_user(alice_api, domain, "reg-bert")
    run = register(sip_edge, "reg-bert", domain["domain"], "Not-the-password-1", expected=401)
    assert run.ok, run.errors


def test_it_refuses_a_disabled_user_at_once(sip_edge, alice_api, domain):
    user = create_user(alice_api, domain, "reg-cleo")
    assert alice_api.patch(f"/api/v1/sip-users/{user['id']}", {"is_active": False}, format="json").status_code == 200
    run = register(sip_edge, "reg-cleo", domain["domain"], PASSWORD, expected=403)
    assert run.ok, run.errors


def test_a_changed_password_takes_effect_on_the_next_register(sip_edge, alice_api, domain):
    user = create_user(alice_api, domain, "reg-dana")
    assert register(sip_edge, "reg-dana", domain["domain"], PASSWORD, expected=200).ok
    response = alice_api.patch(f"/api/v1/sip-users/{user['id']}", {"password": NEW_PASSWORD}, format="json")
    assert response.status_code == 200, response.content

    old = register(sip_edge, "reg-dana", domain["domain"], PASSWORD, expected=401)
    assert old.ok, old.errors
    new = register(sip_edge, "reg-dana", domain["domain"], NEW_PASSWORD, expected=200)
    assert new.ok, new.errors


def test_a_credential_trunk_registers_in_the_platform_domain(sip_edge, alice_api):
    from django.conf import settings

    response = alice_api.post("/api/v1/sip-connections", {"name": "PBX", "auth_type": "credentials",
                              "username": "pbx-edge-1", "password": PASSWORD}, format="json")  # fmt: skip
    assert response.status_code == 201, response.content
    run = register(sip_edge, "pbx-edge-1", settings.PLATFORM_SIP_DOMAIN, PASSWORD, expected=200)
    assert run.ok, run.errors + sip_edge.log()


# --- Calls between SIP users ----------------------------------------------------------------------------------


def test_two_registered_users_call_each_other_through_kamailio(
    sip_edge, alice, alice_api, domain, receiver, celery_worker
):
    create_user(alice_api, domain, "call-ann")
    callee = create_user(alice_api, domain, "call-ben")
    caller_user = SipUser.objects.get(login="call-ann")
    hooks = 0
    try:
        from telephony.services.extension_hooks import extension_hook_create
    except ImportError:  # pragma: no cover - the hooks area is another engineer's
        extension_hook_create = None
    if extension_hook_create is not None:
        for user in (caller_user, SipUser.objects.get(login="call-ben")):
            for event in ("dial-in", "dial-out", "answer", "hangup"):
                extension_hook_create(account=alice.account, actor=None, sip_user=user, event=event,
                                      url=receiver.url)  # fmt: skip
                hooks += 1

    phone_port = free_port()
    assert register(sip_edge, "call-ben", domain["domain"], PASSWORD, port=phone_port).ok
    phone = answer_calls(sip_edge, phone_port)
    run = call_user(sip_edge, caller="call-ann", password=PASSWORD, domain=domain["domain"], callee="call-ben",
                    hold_ms=1500)  # fmt: skip
    answered = finish(phone)
    assert run.ok, run.errors + sip_edge.log()
    assert answered.ok, answered.errors

    wait_settled(run.call_id)
    root, children = legs(run.call_id)
    assert root.source == "kamailio" and root.switch_call_id == run.call_id
    assert root.direction == "inbound" and root.from_number == f"sip:call-ann@{domain['domain']}"
    assert root.status == "completed" and root.answered_at is not None
    assert [leg.to_number for leg in children] == [f"sip:call-ben@{domain['domain']}"]
    b_leg = children[0]
    assert b_leg.status == "completed" and b_leg.switch_call_id == run.call_id
    assert str(b_leg.sip_user.public_id) == callee["id"]
    # sipp holds the call 1.5 s between its ACK and its BYE.
    assert 1.0 <= (root.ended_at - root.answered_at).total_seconds() < 10
    assert root.duration >= 1 and b_leg.duration >= 1
    types = set(Event.objects.filter(object_id=str(root.public_id)).values_list("type", flat=True))
    assert {"call.initiated", "call.answered", "call.bridged", "call.hangup", "call.completed"} <= types

    if hooks:
        wait_for(lambda: receiver.count() >= 6, timeout=30, message="the extension hooks")
        seen = {(parse_qs(r.text).get("CallFlow", [""])[0], parse_qs(r.text).get("CallStatus", [""])[0])
                for r in receiver.requests}  # fmt: skip
        assert ("OUT", "CALLING") in seen  # call-ann's dial-out
        assert ("IN", "CALLING") in seen  # call-ben's dial-in
        assert ("OUT", "ANSWER") in seen and ("IN", "ANSWER") in seen


def test_a_sip_user_calls_out_through_its_sip_connection_with_its_caller_id(sip_edge, alice, alice_api, domain):
    create_user(alice_api, domain, "out-eve")
    caller_id = make_number(alice.account, next_number())
    carrier_port = free_port()
    carrier = SipConnection.objects.create(account=alice.account, name="Carrier out", auth_type="ip",
                                           allowed_ips=["203.0.113.8"], inbound_host="127.0.0.1",
                                           inbound_port=carrier_port)  # fmt: skip
    SipUser.objects.filter(login="out-eve").update(sip_connection=carrier, caller_id_number=caller_id)

    # The carrier (sipp) answers only an INVITE whose From is the caller ID, not the phone's login.
    carrier_side = answer_calls(sip_edge, carrier_port, from_user=caller_id.number)
    run = call_user(sip_edge, caller="out-eve", password=PASSWORD, domain=domain["domain"], callee="+442079460000",
                    hold_ms=1500)  # fmt: skip
    answered = finish(carrier_side)
    # The phone's BYE reached the carrier and was answered: the rewritten dialog holds together both ways.
    assert run.ok, run.errors + sip_edge.log()
    assert answered.ok, answered.errors + sip_edge.log()

    wait_settled(run.call_id)
    root, children = legs(run.call_id)
    assert root.status == "completed" and root.from_number == f"sip:out-eve@{domain['domain']}"
    assert [(leg.from_number, leg.to_number, leg.sip_connection_id) for leg in children] == [
        (caller_id.number, "+442079460000", carrier.pk)
    ]
    assert children[0].status == "completed"


# --- Calls from a trunk to the platform's numbers ---------------------------------------------------------------


def test_a_trunk_call_to_a_did_reaches_the_user_and_sends_status_callbacks(
    sip_edge, alice, alice_api, domain, receiver, celery_worker
):
    trunk(alice.account)
    create_user(alice_api, domain, "did-cara")
    number = make_number(alice.account, next_number(), sip_user=SipUser.objects.get(login="did-cara"),
                         status_callback_url=receiver.url)  # fmt: skip
    phone_port = free_port()
    assert register(sip_edge, "did-cara", domain["domain"], PASSWORD, port=phone_port).ok
    phone = answer_calls(sip_edge, phone_port)
    # Durations are whole seconds: a 1 s hold can be reported as 0 once the events are batched.
    run = trunk_call(sip_edge, did=number.number, caller="+12125550199", hold_ms=2000)
    answered = finish(phone)
    assert run.ok, run.errors + sip_edge.log()
    assert answered.ok, answered.errors

    wait_settled(run.call_id)
    root, children = legs(run.call_id)
    assert root.to_number == number.number and root.from_number == "+12125550199"
    assert root.status == "completed" and root.phone_number_id == number.pk
    assert children[0].status == "completed" and children[0].sip_user.login == "did-cara"
    wait_for(lambda: receiver.count() >= 1, timeout=30, message="the number's status callback")
    callback = parse_qs(receiver.requests[0].text)
    assert callback["CallSid"] == [str(root.public_id)]
    assert callback["CallStatus"] == ["completed"]
    assert int(callback["CallDuration"][0]) >= 1


def test_a_blacklisted_caller_is_rejected_with_the_profiles_code_and_never_rings(sip_edge, alice, alice_api, domain):
    trunk(alice.account)
    create_user(alice_api, domain, "did-dora")
    profile = tn_profile_create(account=alice.account, actor=None, name="Block", block_action="busy")
    caller_list_change(account=alice.account, actor=None, profile=profile, list_type="blacklist", add=["+1900*"])
    number = make_number(alice.account, next_number(), sip_user=SipUser.objects.get(login="did-dora"),
                         tn_profile=profile)  # fmt: skip
    phone_port = free_port()
    assert register(sip_edge, "did-dora", domain["domain"], PASSWORD, port=phone_port).ok
    phone = answer_calls(sip_edge, phone_port, timeout=6)

    run = trunk_call(sip_edge, did=number.number, caller="+19005550100", expected=486)
    assert run.ok, run.errors + sip_edge.log()
    assert not finish(phone).ok  # the phone never got an INVITE and timed out waiting
    root = Call.objects.get(switch_call_id=run.call_id)
    assert root.status == "busy" and root.sip_code == 486
    assert "Blocked by TN profile screening" in root.end_reason
    assert not Call.objects.filter(parent=root).exists()


def test_a_call_to_an_unknown_number_is_refused_404(sip_edge, alice):
    trunk(alice.account)
    run = trunk_call(sip_edge, did="+12015559999", caller="+12125550199", expected=404)
    assert run.ok, run.errors + sip_edge.log()
    assert not Call.objects.filter(switch_call_id=run.call_id).exists()


def test_a_source_that_is_no_trunk_is_refused(sip_edge, alice):
    trunk(alice.account)
    run = trunk_call(sip_edge, did="+12015559999", caller="+12125550199", expected=403, ip="127.0.0.3")
    assert run.ok, run.errors


# --- Apps on the edge ---------------------------------------------------------------------------------------------


def test_a_dial_to_a_busy_user_calls_the_action_url_which_dials_again(sip_edge, alice, alice_api, domain, receiver):
    create_user(alice_api, domain, "app-eve")
    create_user(alice_api, domain, "app-finn")
    trunk(alice.account)
    eve, finn = (f"sip:app-eve@{domain['domain']}", f"sip:app-finn@{domain['domain']}")
    receiver.respond(Answer(body=f"<Response><Dial timeout='10000'><To>{finn}</To></Dial></Response>".encode(),
                            headers={"Content-Type": "application/xml"}))  # fmt: skip
    app = make_app(alice.account, f"<Response><Dial action='{receiver.url}' timeout='10000'><To>{eve}</To></Dial>"
                                  "</Response>")  # fmt: skip
    number = make_number(alice.account, next_number(), call_control_app=app)
    busy_port, answer_port = free_port(), free_port()
    assert register(sip_edge, "app-eve", domain["domain"], PASSWORD, port=busy_port).ok
    assert register(sip_edge, "app-finn", domain["domain"], PASSWORD, port=answer_port).ok
    busy_phone = answer_calls(sip_edge, busy_port, busy=True)
    answering_phone = answer_calls(sip_edge, answer_port)

    run = trunk_call(sip_edge, did=number.number, caller="+12125550142", hold_ms=1000)
    assert run.ok, run.errors + sip_edge.log()
    assert finish(busy_phone).ok
    assert finish(answering_phone).ok

    assert receiver.count() == 1
    action = parse_qs(receiver.requests[0].text)
    assert action["DialCallStatus"] == ["busy"]
    wait_settled(run.call_id)
    root, children = legs(run.call_id)
    assert [(leg.to_number, leg.status) for leg in children] == [(eve, "busy"), (finn, "completed")]
    assert root.status == "completed" and root.app_id == app.pk


def test_a_flow_that_needs_media_is_refused_with_the_reason_recorded(sip_edge, alice):
    trunk(alice.account)
    app = make_app(alice.account, "<Response><Say>Hello</Say></Response>")
    number = make_number(alice.account, next_number(), call_control_app=app)
    run = trunk_call(sip_edge, did=number.number, caller="+12125550143", expected=488)
    assert run.ok, run.errors + sip_edge.log()
    root = Call.objects.get(switch_call_id=run.call_id)
    assert root.status == "failed" and root.sip_code == 488
    assert "needs media" in root.end_reason

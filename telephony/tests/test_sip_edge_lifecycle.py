"""How SIP edge calls end: an answered Dial's action URL, calls whose end Kamailio never reported, registrations
that expired, and the edge's flood limit. Real Kamailio and sipp where the behaviour crosses them (PostgreSQL).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from telephony.edge.config import edge_secret
from telephony.edge_tasks import reconcile
from telephony.models import Call, Delivery, Event, SipConnection, SipUser
from telephony.selectors import call_timeline
from telephony.services import sip as sip_services
from telephony.services.sip_edge_lifecycle import edge_reconcile
from telephony.tests.engine_support import make_app, next_number
from telephony.tests.isolation_sip import make_number
from telephony.tests.receivers import Answer, receiver_fixture  # noqa: F401 - the receiver fixture
from telephony.tests.sip_edge_support import (
    answer_calls,
    finish,
    free_port,
    register,
    sip_edge_fixture,  # noqa: F401 - the sip_edge fixture
    start_kamailio,
    stop_kamailio,
    trunk_call,
)
from telephony.tests.test_sip_edge import PASSWORD, create_user, legs, trunk, wait_settled
from tenants.tests.fixtures import wait_for

TRUNK = "203.0.113.7"


@pytest.fixture
def domain(alice_api):
    response = alice_api.post("/api/v1/sip-domains", {"name": "edge-life"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def edge_client():
    return Client(HTTP_X_SIP_EDGE_SECRET=edge_secret())


def invite(client, **fields) -> dict:
    data = {"call_id": f"lost-{uuid.uuid4().hex[:12]}", "from_tag": "ft1", "from_user": "+12125550100",
            "from_domain": TRUNK, "to_user": "", "to_domain": "127.0.0.1", "source_ip": TRUNK, **fields}  # fmt: skip
    response = client.post("/internal/sip/route", data)
    assert response.status_code == 200, response.content
    return {**response.json(), "call_id": data["call_id"]}


def age(call_id: str, seconds: int) -> None:
    """Move a call's history `seconds` into the past, as if that long had gone by with no news from Kamailio."""
    shift = timedelta(seconds=seconds)
    for leg in Call.objects.filter(switch_call_id=call_id):
        for name in ("created_at", "initiated_at", "ringing_at", "answered_at"):
            if getattr(leg, name):
                setattr(leg, name, getattr(leg, name) - shift)
        leg.save(update_fields=["created_at", "initiated_at", "ringing_at", "answered_at"])


# --- An answered Dial's action URL ---------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_answered_dial_calls_its_action_url_with_completed_when_the_call_ends(
    sip_edge, alice, alice_api, domain, receiver, celery_worker
):
    create_user(alice_api, domain, "act-gina")
    trunk(alice.account)
    gina = f"sip:act-gina@{domain['domain']}"
    # What the action answers cannot run: the call is over when the Dial's call ends.
    receiver.respond(Answer(body=b"<Response><Dial><To>+12015550111</To></Dial></Response>",
                            headers={"Content-Type": "application/xml"}))  # fmt: skip
    app = make_app(alice.account, f"<Response><Dial action='{receiver.url}' timeout='10000' tag='front'>"
                                  f"<To>{gina}</To></Dial></Response>")  # fmt: skip
    number = make_number(alice.account, next_number(), call_control_app=app)
    phone_port = free_port()
    assert register(sip_edge, "act-gina", domain["domain"], PASSWORD, port=phone_port).ok
    phone = answer_calls(sip_edge, phone_port)

    run = trunk_call(sip_edge, did=number.number, caller="+12125550177", hold_ms=1500)
    assert run.ok, run.errors + sip_edge.log()
    assert finish(phone).ok
    wait_settled(run.call_id)
    wait_for(lambda: receiver.count() >= 1, timeout=30, message="the Dial's action URL")

    root, children = legs(run.call_id)
    action = parse_qs(receiver.requests[0].text)
    assert action["DialCallStatus"] == ["completed"]
    assert action["DialCallSid"] == [str(children[0].public_id)]
    assert 1 <= int(action["DialCallDuration"][0]) < 10
    assert action["CallSid"] == [str(root.public_id)] and action["CallStatus"] == ["completed"]
    assert action["tag"] == ["front"]
    assert receiver.requests[0].headers["webhook-signature"].startswith("v1,")  # signed like status callbacks
    verdict = Event.objects.get(object_id=str(root.public_id), type="call.flow").payload
    assert verdict["command"] == "Dial" and "not run" in verdict["reason"]
    wait_for(lambda: Delivery.objects.filter(call=root, kind="dial_action", status="delivered").exists(), timeout=10,
             message="the action's delivery recorded")  # fmt: skip
    # Nothing was dialled from the action's XML, and it is asked once only.
    time.sleep(1)
    assert receiver.count() == 1
    assert [leg.to_number for leg in Call.objects.filter(parent=root)] == [gina]


def answered_then_ended(client, number: str) -> Call:
    """An edge call to `number` answered, then hung up by the caller: Kamailio's reports, through its endpoint."""
    call = invite(client, to_user=number)
    assert call["action"] == "relay", call
    reports = (f"event=answered&call_id={call['call_id']}&at={time.time() - 3}&contact=sip%3Adesk%40pbx.example.com\n"
               f"event=ended&call_id={call['call_id']}&at={time.time()}&by=caller")  # fmt: skip
    assert client.post("/internal/sip/events", reports, content_type="text/plain").json()["applied"] == 2
    return Call.objects.get(switch_call_id=call["call_id"], parent__isnull=True)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_answered_dials_action_is_requested_once_even_when_no_worker_heard_the_call_end(
    alice, edge_client, receiver
):
    from portal.celery import app as celery_app
    from tenants.tests.fixtures import start_celery_worker, stop_celery_worker

    sip_services.sip_connection_create(account=alice.account, actor=None, name="Carrier", auth_type="ip",
                                       allowed_ips=[TRUNK])  # fmt: skip
    app = make_app(alice.account, f"<Response><Dial action='{receiver.url}/after' method='GET' tag='desk'>"
                                  "<To>sip:desk@pbx.example.com</To></Dial></Response>")  # fmt: skip
    number = make_number(alice.account, next_number(), call_control_app=app)
    root = answered_then_ended(edge_client, number.number)
    assert root.status == "completed"
    # Recorded with the call's end, in its transaction: nothing depends on the kick that follows the commit.
    delivery = Delivery.objects.get(call=root, kind="dial_action")
    assert delivery.status == "pending"
    assert (delivery.method, delivery.params["DialCallStatus"], delivery.params["tag"]) == ("GET", "completed", "desk")
    celery_app.control.purge()  # the broker lost every queued task, the kick after the commit among them

    receiver.respond(Answer(status=503), Answer(status=200))  # a failed attempt is retried
    worker = start_celery_worker(
        beat=True, env={"WEBHOOK_RETRY_SCHEDULE": "0,1,1,1"}, log_name="test-worker-dial-action.log"
    )
    try:
        wait_for(lambda: receiver.count() >= 2, timeout=60, message="the action URL, asked again after a 503")
        wait_for(lambda: Delivery.objects.get(pk=delivery.pk).status == "delivered", timeout=10,
                 message="the delivery recorded")  # fmt: skip
        time.sleep(2)  # sweeps go on: none asks it again
    finally:
        stop_celery_worker(worker)
    assert receiver.count() == 2
    action = parse_qs(receiver.requests[1].path.split("?", 1)[1])
    assert action["DialCallStatus"] == ["completed"] and action["CallSid"] == [str(root.public_id)]
    assert action["DialCallSid"] == [str(Call.objects.get(parent=root).public_id)]
    assert 2 <= int(action["DialCallDuration"][0]) <= 4
    # On the call's timeline with both attempts, beside the Dial's verdict.
    entries = call_timeline(root)["entries"]
    callbacks = [e["callback"] for e in entries if e["kind"] == "callback" and e["callback"]["kind"] == "dial_action"]
    assert [(c["status"], c["attempt_count"]) for c in callbacks] == [("delivered", 2)]
    assert any(e["kind"] == "command" and "requested by callback" in e["command"]["reason"] for e in entries)


# --- Calls whose end Kamailio never reported ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_call_whose_end_is_never_reported_is_ended_by_the_sweep_and_frees_its_channel(alice, edge_client):
    sip_services.sip_connection_create(account=alice.account, actor=None, name="Carrier", auth_type="ip",
                                       allowed_ips=[TRUNK])  # fmt: skip
    app = make_app(alice.account, "<Response><Dial><To>sip:desk@pbx.example.com</To></Dial></Response>",
                   channel_limit=2)  # fmt: skip
    number = make_number(
        alice.account, next_number(), call_control_app=app, status_callback_url="https://cb.example.com/s"
    )
    talking = invite(edge_client, to_user=number.number)
    ringing = invite(edge_client, to_user=number.number)
    assert talking["action"] == ringing["action"] == "relay"
    answered = f"event=answered&call_id={talking['call_id']}&at={time.time()}&contact=sip%3Adesk%40pbx.example.com"
    assert edge_client.post("/internal/sip/events", answered, content_type="text/plain").json()["applied"] == 1
    # Both channels are taken, and neither call's end will ever be reported.
    assert invite(edge_client, to_user=number.number)["code"] == 486

    assert reconcile() == 0  # news too recent to judge
    age(talking["call_id"], 4 * 3600 + 120)  # past the maximum call length and the grace
    age(ringing["call_id"], 300)  # past the longest an INVITE may ring and the grace
    assert reconcile() == 2  # Kamailio cannot be asked here: the time bounds decide

    talk, talk_b = legs(talking["call_id"])[0], legs(talking["call_id"])[1][0]
    ring, ring_b = legs(ringing["call_id"])[0], legs(ringing["call_id"])[1][0]
    assert (talk.status, talk_b.status) == ("completed", "completed")
    assert talk.duration >= 4 * 3600
    assert (ring.status, ring_b.status) == ("failed", "failed")
    assert all(leg.end_reason.startswith("edge-lost") for leg in (talk, talk_b, ring, ring_b))
    for root in (talk, ring):
        types = set(Event.objects.filter(object_id=str(root.public_id)).values_list("type", flat=True))
        assert "call.completed" in types
    callback = Delivery.objects.get(call=talk, kind="status_callback")
    assert callback.params["CallStatus"] == "completed" and int(callback.params["CallDuration"]) >= 4 * 3600
    # The channels are free again.
    assert invite(edge_client, to_user=number.number)["action"] == "relay"
    assert reconcile() == 0


def test_the_reconcile_sweep_is_scheduled():
    from portal.celery import app

    entry = next(e for e in app.conf.beat_schedule.values() if e["task"] == "telephony.edge_tasks.reconcile")
    assert entry["schedule"] <= 60


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_reconcile_sweep(alice, edge_client, celery_worker):
    sip_services.sip_connection_create(account=alice.account, actor=None, name="Carrier", auth_type="ip",
                                       allowed_ips=[TRUNK])  # fmt: skip
    pbx = sip_services.sip_connection_create(account=alice.account, actor=None, name="PBX", auth_type="ip",
                                             allowed_ips=["198.51.100.32"], inbound_host="pbx.example.com")  # fmt: skip
    call = invite(edge_client, to_user=make_number(alice.account, next_number(), sip_connection=pbx).number)
    age(call["call_id"], 600)
    reconcile.delay()
    wait_for(lambda: Call.objects.get(switch_call_id=call["call_id"], parent__isnull=True).is_final, timeout=30,
             message="the worker's sweep to end the lost call")  # fmt: skip
    assert Call.objects.get(switch_call_id=call["call_id"], parent__isnull=True).end_reason.startswith("edge-lost")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_sweep_ends_the_calls_kamailio_no_longer_holds_and_keeps_the_live_ones(
    sip_edge, settings, alice, alice_api, domain, edge_client
):
    settings.SIP_EDGE = {**settings.SIP_EDGE, "rpc_url": f"http://{sip_edge.target}/RPC"}
    trunk(alice.account)
    sip_services.sip_connection_create(account=alice.account, actor=None, name="Carrier 2", auth_type="ip",
                                       allowed_ips=[TRUNK])  # fmt: skip
    create_user(alice_api, domain, "live-hal")
    number = make_number(alice.account, next_number(), sip_user=SipUser.objects.get(login="live-hal"))
    phone_port = free_port()
    assert register(sip_edge, "live-hal", domain["domain"], PASSWORD, port=phone_port).ok
    phone = answer_calls(sip_edge, phone_port)
    from telephony.tests.sip_edge_support import ANSWERED, SCENARIOS, _run, _scenario

    text = (SCENARIOS / "trunk_invite.xml").read_text().replace("BRANCH", ANSWERED)
    text = text.replace("CALLER", "+12125550166").replace("HOLD_MS", "8000")
    call = _run(sip_edge, _scenario(sip_edge, "trunk", text), "-s", number.number, ip="127.0.0.2", background=True)
    wait_for(lambda: Call.objects.filter(switch_call_id=call.call_id, status="in-progress", parent__isnull=True)
             .exists(), timeout=15, message="the live call to be answered")  # fmt: skip
    age(call.call_id, 600)
    # A call the portal recorded but Kamailio never carried (e.g. its route answer came after Kamailio gave up).
    lost_id = f"lost-{uuid.uuid4().hex[:12]}"
    pbx = sip_services.sip_connection_create(account=alice.account, actor=None, name="PBX", auth_type="ip",
                                             allowed_ips=["198.51.100.30"], inbound_host="pbx.example.com")  # fmt: skip
    pbx_number = make_number(alice.account, next_number(), sip_connection=pbx)
    assert invite(edge_client, to_user=pbx_number.number, call_id=lost_id)["action"] == "relay"
    # Old enough to judge, yet set up while this Kamailio ran (one that started later never saw it: time bounds).
    settings.SIP_EDGE = {**settings.SIP_EDGE, "lost_grace_s": 1}
    time.sleep(1.5)

    assert reconcile() == 1
    lost = Call.objects.get(switch_call_id=lost_id, parent__isnull=True)
    assert lost.status == "failed" and "no longer carries" in lost.end_reason
    assert Call.objects.get(switch_call_id=call.call_id, parent__isnull=True).status == "in-progress"
    run = finish(call, 30)
    assert run.ok, run.errors + sip_edge.log()
    assert finish(phone).ok
    wait_settled(call.call_id)
    assert Call.objects.get(switch_call_id=call.call_id, parent__isnull=True).end_reason == "The caller hung up."


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_kamailio_ends_a_dialog_at_the_maximum_call_length_and_reports_it(
    settings, tmp_path, live_server, alice, alice_api, domain
):
    from telephony.tests.sip_edge_support import require_edge_services

    require_edge_services()
    settings.CALL_MAX_LENGTH_S = 2
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sip_edge_location")
    edge = start_kamailio(tmp_path / "kamailio", live_server.url)
    try:
        trunk(alice.account)
        create_user(alice_api, domain, "max-ida")
        number = make_number(alice.account, next_number(), sip_user=SipUser.objects.get(login="max-ida"))
        phone_port = free_port()
        assert register(edge, "max-ida", domain["domain"], PASSWORD, port=phone_port).ok
        phone = answer_calls(edge, phone_port, timeout=15)
        run = trunk_call(edge, did=number.number, caller="+12125550155", hold_ms=6000)
        finish(phone, 20)
        wait_settled(run.call_id, edge=edge)
        root = Call.objects.get(switch_call_id=run.call_id, parent__isnull=True)
        assert root.status == "completed" and root.end_reason.startswith("Kamailio ended the dialog")
        assert 1 <= root.duration <= 4, edge.log()
    finally:
        stop_kamailio(edge)


class FlakyPortal:
    """A proxy in front of the live portal that refuses Kamailio's first `refuse` event posts with a 503, as a
    portal restarting or overloaded would, and forwards everything else."""

    def __init__(self, portal_url: str, refuse: int):
        self.refused = 0
        self.taken = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/internal/sip/events"):
                    if proxy.refused < refuse:
                        proxy.refused += 1
                        self.send_response(503)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    proxy.taken += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = httpx.post(portal_url + self.path, content=body, headers=headers, timeout=10)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "text/plain"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_events_the_portal_refused_are_posted_again_until_it_takes_them(tmp_path, live_server, alice, alice_api,
                                                                         domain):  # fmt: skip
    from telephony.tests.sip_edge_support import require_edge_services

    require_edge_services()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sip_edge_location")
    portal = FlakyPortal(live_server.url, refuse=5)
    edge = start_kamailio(tmp_path / "kamailio", portal.url)
    try:
        trunk(alice.account)
        create_user(alice_api, domain, "retry-ida")
        number = make_number(alice.account, next_number(), sip_user=SipUser.objects.get(login="retry-ida"))
        phone_port = free_port()
        assert register(edge, "retry-ida", domain["domain"], PASSWORD, port=phone_port).ok
        phone = answer_calls(edge, phone_port, timeout=15)
        run = trunk_call(edge, did=number.number, caller="+12125550166", hold_ms=1500)
        assert run.ok, run.errors
        assert finish(phone, 20).ok
        wait_settled(run.call_id, edge=edge)
        root, (leg,) = legs(run.call_id)
        assert (root.status, root.end_reason, leg.status) == ("completed", "The caller hung up.", "completed")
        assert root.answered_at is not None and root.duration >= 1
        assert portal.refused == 5 and portal.taken >= 1
        assert "will be posted again" in edge.log()
    finally:
        stop_kamailio(edge)
        portal.close()


# --- Registrations that expired -------------------------------------------------------------------------------


def add_location(login: str, sip_domain: str, *, expires_in: int, port: int = 5070) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO sip_edge_location (ruid, username, domain, contact, expires, user_agent, last_modified) "
            "VALUES (%s, %s, %s, %s, (now() AT TIME ZONE 'UTC') + make_interval(secs => %s), 'test-phone', "
            "now() AT TIME ZONE 'UTC')",
            [uuid.uuid4().hex, login, sip_domain, f"sip:{login}@127.0.0.1:{port}", expires_in],
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_registration_whose_expiry_passed_no_longer_makes_a_user_online(client, alice, edge_client):
    from telephony.tests.sip_edge_support import require_edge_services

    require_edge_services()
    expiry = sip_services.sip_domain_create(account=alice.account, actor=None, name="expiry")
    jo = sip_services.sip_user_create(account=alice.account, actor=None, domain=expiry, login="jo",
                                      password=PASSWORD)  # fmt: skip
    kim = sip_services.sip_user_create(account=alice.account, actor=None, domain=expiry, login="kim",
                                       password=PASSWORD)  # fmt: skip
    sip_services.sip_connection_create(account=alice.account, actor=None, name="Carrier", auth_type="ip",
                                       allowed_ips=[TRUNK])  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sip_edge_location")
    add_location("jo", expiry.domain, expires_in=-5)  # Kamailio's timer has not purged it yet
    add_location("kim", expiry.domain, expires_in=300)

    jo_number = make_number(alice.account, next_number(), sip_user=jo)
    kim_number = make_number(alice.account, next_number(), sip_user=kim)
    answer = invite(edge_client, to_user=jo_number.number)
    assert (answer["action"], answer["code"]) == ("reply", 480)
    assert invite(edge_client, to_user=kim_number.number)["action"] == "relay"

    client.force_login(alice.user)
    slug = alice.account.slug
    page = client.get(reverse("sipuser-detail", kwargs={"account": slug, "id": jo.public_id})).content.decode()
    assert "sip:jo@127.0.0.1:5070" not in page and ">Offline<" in page
    page = client.get(reverse("sipuser-detail", kwargs={"account": slug, "id": kim.public_id})).content.decode()
    assert "sip:kim@127.0.0.1:5070" in page and ">Online<" in page
    listing = client.get(reverse("sipdomain-detail", kwargs={"account": slug, "id": expiry.public_id})).content
    rows = listing.decode().split('data-testid="sipuser-row"')[1:]
    states = {row.split("<code>", 1)[1].split("</code>", 1)[0]: row.split('sipuser-row-state">', 1)[1].split("<", 1)[0]
              for row in rows}  # fmt: skip
    assert states == {jo.sip_uri: "Offline", kim.sip_uri: "Online"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_sip_users_api_shows_and_filters_users_online_as_the_registrar_has_them(alice, alice_api, bob):
    registrar = sip_services.sip_domain_create(account=alice.account, actor=None, name="registrar")
    users = {login: sip_services.sip_user_create(account=alice.account, actor=None, domain=registrar, login=login,
                                                 password=PASSWORD)
             for login in ("lee", "max", "ned")}  # fmt: skip
    bobs = sip_services.sip_domain_create(account=bob.account, actor=None, name="bobs-registrar")
    sip_services.sip_user_create(account=bob.account, actor=None, domain=bobs, login="lee", password=PASSWORD)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sip_edge_location")
    add_location("lee", registrar.domain, expires_in=300)
    add_location("max", registrar.domain, expires_in=-5)  # expired, not purged yet by Kamailio's timer
    add_location("ned", "other.sip.example.com", expires_in=300)  # the same login in another domain
    add_location("lee", bobs.domain, expires_in=300)

    def states(url: str) -> dict[str, str]:
        response = alice_api.get(url)
        assert response.status_code == 200, response.content
        return {user["login"]: user["state"] for user in response.json()["results"]}

    assert states("/api/v1/sip-users") == {"lee": "online", "max": "offline", "ned": "offline"}
    assert states(f"/api/v1/sip-domains/{registrar.public_id}/users") == {
        "lee": "online", "max": "offline", "ned": "offline"
    }  # fmt: skip
    assert alice_api.get(f"/api/v1/sip-users/{users['lee'].public_id}").json()["state"] == "online"
    assert states("/api/v1/sip-users?state=online") == {"lee": "online"}
    assert states("/api/v1/sip-users?state=offline") == {"max": "offline", "ned": "offline"}
    # A change answers the state too.
    patched = alice_api.patch(f"/api/v1/sip-users/{users['lee'].public_id}", {"first_name": "Lee"}, format="json")
    assert patched.json()["state"] == "online"

    with connection.cursor() as cursor:
        cursor.execute("UPDATE sip_edge_location SET expires = (now() AT TIME ZONE 'UTC') - interval '1 second'")
    assert states("/api/v1/sip-users?state=online") == {}
    assert alice_api.get(f"/api/v1/sip-users/{users['lee'].public_id}").json()["state"] == "offline"


# --- Phones behind NAT ---------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_phone_behind_nat_is_reached_at_its_source_address_and_its_binding_kept_open(
    tmp_path, live_server, alice, alice_api, domain, edge_client
):
    from telephony.tests.sip_edge_support import SCENARIOS, _run, _scenario, require_edge_services

    require_edge_services()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sip_edge_location")
    edge = start_kamailio(tmp_path / "kamailio", live_server.url, nat_ping_s=1)
    try:
        create_user(alice_api, domain, "nat-lou")
        sip_services.sip_connection_create(account=alice.account, actor=None, name="Carrier", auth_type="ip",
                                           allowed_ips=[TRUNK])  # fmt: skip
        number = make_number(alice.account, next_number(), sip_user=SipUser.objects.get(login="nat-lou"))
        # The phone writes its private address in Via and Contact; its packets come from the NAT's (loopback).
        text = (SCENARIOS / "register.xml").read_text().replace("EXPECTED", "200")
        text = text.replace("[local_ip]:[local_port]", "192.168.1.50:5062")
        users = edge.workdir / "nat-users.csv"
        users.write_text(f"SEQUENTIAL\nnat-lou;{domain['domain']};{PASSWORD};600;"
                         f"[authentication username=nat-lou password={PASSWORD}]\n")  # fmt: skip
        port = free_port()
        run = _run(edge, _scenario(edge, "nat-register", text), "-inf", str(users), port=port)
        assert run.ok, run.errors + edge.log()

        with connection.cursor() as cursor:
            cursor.execute("SELECT contact, received FROM sip_edge_location WHERE username = 'nat-lou'")
            assert cursor.fetchall() == [("sip:nat-lou@192.168.1.50:5062;transport=UDP", f"sip:127.0.0.1:{port}")]
        answer = invite(edge_client, to_user=number.number)
        assert answer["routes"] == [{"uri": "sip:nat-lou@192.168.1.50:5062;transport=UDP",
                                     "dst_uri": f"sip:127.0.0.1:{port}"}]  # fmt: skip

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as phone:
            phone.bind(("127.0.0.1", port))
            phone.settimeout(5)
            ping = phone.recv(4000).decode(errors="replace")
        assert ping.startswith("OPTIONS sip:nat-lou@192.168.1.50:5062"), ping
    finally:
        stop_kamailio(edge)


# --- Flood limit ----------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_source_flooding_the_edge_gets_no_answers_while_others_and_trunks_still_do(tmp_path, live_server, alice):
    from telephony.tests.sip_edge_support import require_edge_services

    require_edge_services()
    # A carrier's trunk, known by its address or network, sends more than the limit: it is not a flood. (The
    # service refuses loopback allow-lists; the test's trunks are on loopback.)
    carrier = sip_services.sip_connection_create(account=alice.account, actor=None, name="Carrier", auth_type="ip",
                                                 allowed_ips=[TRUNK])  # fmt: skip
    old = sip_services.sip_connection_create(account=alice.account, actor=None, name="Old carrier", auth_type="ip",
                                             allowed_ips=["203.0.113.8"], is_active=False)  # fmt: skip
    SipConnection.objects.filter(pk=carrier.pk).update(allowed_ips=["127.0.0.5/32", "127.0.1.0/24"])
    SipConnection.objects.filter(pk=old.pk).update(allowed_ips=["127.0.0.6/32"])
    edge = start_kamailio(tmp_path / "kamailio", live_server.url, flood_per_s=20)
    try:
        flooder = options_burst(edge, "127.0.0.3", 120)
        quiet = options_burst(edge, "127.0.0.4", 5)
        trunk_host = options_burst(edge, "127.0.0.5", 120)
        trunk_network = options_burst(edge, "127.0.1.9", 120)
        disabled_trunk = options_burst(edge, "127.0.0.6", 120)
        flooder_again = options_burst(edge, "127.0.0.3", 120)  # its verdict is remembered, not asked again
    finally:
        stop_kamailio(edge)
    assert flooder < 80, f"{flooder} of 120 answered: the flood was not limited"
    assert flooder_again < 80 and disabled_trunk < 80, (flooder_again, disabled_trunk)
    assert quiet == 5
    assert trunk_host == trunk_network == 120, (trunk_host, trunk_network, edge.log())


def options_burst(edge, source: str, count: int) -> int:
    """Send `count` OPTIONS at once from `source`; how many got an answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((source, 0))
        port = probe.getsockname()[1]
        for _ in range(count):
            message = (
                f"OPTIONS sip:{edge.target} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                f"From: <sip:probe@{source}>;tag=1\r\nTo: <sip:{edge.target}>\r\nCall-ID: {uuid.uuid4().hex}\r\n"
                "CSeq: 1 OPTIONS\r\nMax-Forwards: 5\r\nContent-Length: 0\r\n\r\n"
            )
            probe.sendto(message.encode(), (edge.host, edge.port))
        answered = 0
        probe.settimeout(1.0)
        try:
            while answered < count:
                probe.recv(4000)
                answered += 1
                probe.settimeout(0.3)
        except OSError:
            pass
    return answered


@pytest.mark.django_db(transaction=True)
def test_kamailio_is_not_asked_while_no_live_call_is_old_enough_to_judge(alice, edge_client):
    sip_services.sip_connection_create(account=alice.account, actor=None, name="Carrier", auth_type="ip",
                                       allowed_ips=[TRUNK])  # fmt: skip
    pbx = sip_services.sip_connection_create(account=alice.account, actor=None, name="PBX", auth_type="ip",
                                             allowed_ips=["198.51.100.31"], inbound_host="pbx.example.com")  # fmt: skip
    fresh = invite(edge_client, to_user=make_number(alice.account, next_number(), sip_connection=pbx).number)
    asked = []
    assert edge_reconcile(live_dialogs=lambda: asked.append(1) or set()) == 0
    assert asked == []
    age(fresh["call_id"], 120)
    assert edge_reconcile(live_dialogs=lambda: asked.append(1) or set()) == 1
    assert asked == [1]


# --- Kamailio's RPC, which the sweep asks -----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_opens_only_dlg_list_on_kamailios_rpc_and_only_with_the_secret(sip_edge):
    import httpx

    url = f"http://{sip_edge.target}/RPC"

    def rpc(body: str, secret: str | None = edge_secret()) -> httpx.Response:
        headers = {"Content-Type": "application/json", **({"X-Sip-Edge-Secret": secret} if secret else {})}
        return httpx.post(url, content=body, headers=headers, timeout=5)

    dialogs = '{"jsonrpc": "2.0", "method": "dlg.list", "id": 1}'
    assert rpc(dialogs, secret=None).status_code == 403
    assert rpc(dialogs, secret=edge_secret()[:-1] + "x").status_code == 403
    for method in ("core.version", "dlg.end_dlg", "ul.dump"):
        assert rpc(f'{{"jsonrpc": "2.0", "method": "{method}", "id": 1}}').status_code == 403, method
    assert rpc(dialogs).json()["result"] == []
    assert rpc('{"jsonrpc": "2.0", "method": "core.uptime", "id": 1}').json()["result"]["uptime"] >= 0
    # Bodies the secret's holder might craft to read as dlg.list to the check but not to jsonrpcs (which reads
    # the first of two keys), right after a dlg.list from the same process: refused too.
    for body in (
        '{"jsonrpc": "2.0", "method": "core.version", "method": "dlg.list", "id": 1}',
        '[{"jsonrpc": "2.0", "method": "core.version", "id": 1}]',
        '{"jsonrpc": "2.0", "method": "core.version", "id": 1}{"method": "dlg.list"}',
    ):
        for _ in range(3):  # each TCP worker process once at least
            assert rpc(dialogs).status_code == 200
            answer = rpc(body)
            assert answer.status_code == 403 and "kamailio" not in answer.text, (body, answer.text)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_leaves_a_call_whose_hang_up_report_is_still_on_its_way_to_its_real_end(
    settings, tmp_path, live_server, alice, alice_api, domain
):
    from telephony.switch.kamailio import live_dialog_call_ids
    from telephony.tests.sip_edge_support import require_edge_services

    require_edge_services()
    # Kamailio posts its events every 3 s: the portal hears of a hang-up up to 3 s after Kamailio ended the dialog.
    settings.SIP_EDGE = {**settings.SIP_EDGE, "events_interval_ms": 3000}
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sip_edge_location")
    edge = start_kamailio(tmp_path / "kamailio", live_server.url, events_interval_ms=3000)
    try:
        settings.SIP_EDGE = {**settings.SIP_EDGE, "rpc_url": f"http://{edge.target}/RPC"}
        trunk(alice.account)
        create_user(alice_api, domain, "race-ove")
        number = make_number(alice.account, next_number(), sip_user=SipUser.objects.get(login="race-ove"))
        phone_port = free_port()
        assert register(edge, "race-ove", domain["domain"], PASSWORD, port=phone_port).ok
        phone = answer_calls(edge, phone_port)
        from telephony.tests.sip_edge_support import ANSWERED, SCENARIOS, _run, _scenario

        text = (SCENARIOS / "trunk_invite.xml").read_text().replace("BRANCH", ANSWERED)
        text = text.replace("CALLER", "+12125550144").replace("HOLD_MS", "5000")
        call = _run(edge, _scenario(edge, "trunk", text), "-s", number.number, ip="127.0.0.2", background=True)
        wait_for(lambda: Call.objects.filter(switch_call_id=call.call_id, status="in-progress", parent__isnull=True)
                 .exists(), timeout=15, message="the call to be answered")  # fmt: skip
        age(call.call_id, 600)  # a long call, so old enough to be judged
        assert finish(call, 30).ok, edge.log()
        root = Call.objects.get(switch_call_id=call.call_id, parent__isnull=True)
        assert root.status == "in-progress", "the end was reported before the sweep: the race was not set up"
        # Kamailio keeps an ended dialog listed (state 5) while its report may still be on its way.
        assert call.call_id in live_dialog_call_ids()

        assert reconcile() == 0
        wait_for(lambda: Call.objects.get(pk=root.pk).is_final, timeout=10, message="the hang-up's report")
        root.refresh_from_db()
        assert (root.status, root.end_reason) == ("completed", "The caller hung up.")
        finish(phone)
    finally:
        stop_kamailio(edge)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_leaves_a_call_set_up_before_kamailio_restarted_to_its_reported_hang_up(
    settings, tmp_path, live_server, alice, alice_api, domain
):
    from telephony.tests.sip_edge_support import ANSWERED, SCENARIOS, _run, _scenario, require_edge_services

    require_edge_services()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sip_edge_location")
    edge = start_kamailio(tmp_path / "before", live_server.url)
    restarted = None
    try:
        trunk(alice.account)
        create_user(alice_api, domain, "boot-pia")
        number = make_number(alice.account, next_number(), sip_user=SipUser.objects.get(login="boot-pia"))
        phone_port = free_port()
        assert register(edge, "boot-pia", domain["domain"], PASSWORD, port=phone_port).ok
        phone = answer_calls(edge, phone_port, timeout=60)
        text = (SCENARIOS / "trunk_invite.xml").read_text().replace("BRANCH", ANSWERED)
        # The caller hangs up after 15 s: time enough for the restart below even on a loaded machine.
        text = text.replace("CALLER", "+12125550133").replace("HOLD_MS", "15000")
        call = _run(edge, _scenario(edge, "trunk", text), "-s", number.number, ip="127.0.0.2", background=True)
        wait_for(lambda: Call.objects.filter(switch_call_id=call.call_id, status="in-progress", parent__isnull=True)
                 .exists(), timeout=15, message="the call to be answered")  # fmt: skip
        # Kamailio dies mid-call and is restarted: its dialogs were in memory only, the call itself goes on.
        stop_kamailio(edge, crash=True)
        restarted = start_kamailio(tmp_path / "after", live_server.url, port=edge.port)
        settings.SIP_EDGE = {**settings.SIP_EDGE, "rpc_url": f"http://{restarted.target}/RPC"}
        age(call.call_id, 600)

        assert reconcile() == 0
        root = Call.objects.get(switch_call_id=call.call_id, parent__isnull=True)
        assert root.status == "in-progress", (root.end_reason, restarted.log())
        # The BYE, relayed by the new Kamailio along the Record-Route, is reported and ends the call.
        assert finish(call, 30).ok, restarted.log()
        assert finish(phone).ok
        wait_settled(call.call_id)
        root = Call.objects.get(switch_call_id=call.call_id, parent__isnull=True)
        assert (root.status, root.end_reason) == ("completed", "The caller hung up.")
        assert root.duration >= 600
    finally:
        stop_kamailio(edge)
        if restarted is not None:
            stop_kamailio(restarted)


@pytest.mark.parametrize(
    "overrides",
    [
        # In the events' header the secret is read for pseudo-variables ($ci would be the Call-ID); in the route
        # connection's URL it is the password of user:password@host.
        {"secret": "abc$ci-0123456789"},
        {"secret": "abc/def:0123456789"},
        {"secret": "abc%40def0123456789"},
        {"secret": "abc#def?0123456789"},
        {"secret": "abc def 0123456789"},
        {"advertise_host": '203.0.113.9\nloadmodule "evil.so"'},
        {"advertise_host": "203.0.113.9 evil"},
        {"listen_host": '0.0.0.0\nloadmodule "evil.so"'},
    ],
)
def test_it_refuses_settings_that_would_change_kamailios_configuration(overrides):
    from telephony.edge.config import render

    with pytest.raises(ValueError):
        render(db_url="postgres://kam:pw@db:5432/portal", portal_url="http://web:8000", **overrides)


def test_it_renders_a_secret_of_url_safe_characters_and_an_advertised_address():
    from telephony.edge.config import render

    text = render(db_url="postgres://kam:pw@db:5432/portal", portal_url="http://web:8000", port=5070,
                  secret="Abc.def_ghi~jkl-0123456789", advertise_host="sip.example.com")  # fmt: skip
    assert 'X-Sip-Edge-Secret: Abc.def_ghi~jkl-0123456789"' in text
    assert "listen=udp:127.0.0.1:5070 advertise sip.example.com:5070" in text


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_malformed_allow_list_entry_does_not_stop_kamailio_recognising_the_other_trunks(alice):
    from telephony.tests.sip_edge_support import require_edge_services

    require_edge_services()
    carrier = sip_services.sip_connection_create(account=alice.account, actor=None, name="Carrier", auth_type="ip",
                                                 allowed_ips=[TRUNK])  # fmt: skip
    # Written around the services (a shell, a fixture, an old row): shapes an IP check by pattern lets through.
    SipConnection.objects.filter(pk=carrier.pk).update(
        allowed_ips=["127.0.0.999", "127.0.0.5/33", "1:::2", "bogus", "127.0.0.5/32"]
    )

    def trusted(source: str) -> int:
        # Kamailio's query in route[FLOOD] (docker/kamailio/kamailio.cfg.tmpl).
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM sip_edge_trusted WHERE %s::inet <<= address", [source])
            return cursor.fetchone()[0]

    assert trusted("127.0.0.5") == 1
    assert trusted("127.0.0.3") == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_connection_page_shows_its_users_online_as_the_registrar_has_them(client, alice):
    from telephony.tests.sip_edge_support import require_edge_services

    require_edge_services()
    pbx = sip_services.sip_connection_create(account=alice.account, actor=None, name="Office", auth_type="ip",
                                             allowed_ips=["198.51.100.40"])  # fmt: skip
    office = sip_services.sip_domain_create(account=alice.account, actor=None, name="office")
    for login in ("olu", "pat"):
        sip_services.sip_user_create(account=alice.account, actor=None, domain=office, login=login,
                                     password=PASSWORD, sip_connection=pbx)  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sip_edge_location")
    add_location("olu", office.domain, expires_in=300)
    add_location("pat", office.domain, expires_in=-5)

    client.force_login(alice.user)
    page = client.get(reverse("sipconnection-detail", kwargs={"account": alice.account.slug, "id": pbx.public_id}))
    text = page.content.decode()
    assert f'<code>sip:olu@{office.domain}</code></a> <span class="muted small">Online' in text, text
    assert f'<code>sip:pat@{office.domain}</code></a> <span class="muted small">Offline' in text


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_sweep_racing_the_reported_hang_up_ends_the_call_once(alice, edge_client):
    import threading

    from django.db import connections

    from telephony.tests.sip_edge_support import require_edge_services

    require_edge_services()
    sip_services.sip_connection_create(account=alice.account, actor=None, name="Carrier", auth_type="ip",
                                       allowed_ips=[TRUNK])  # fmt: skip
    app = make_app(alice.account, "<Response><Dial action='https://cb.example.com/after'>"
                                  "<To>sip:desk@pbx.example.com</To></Dial></Response>", channel_limit=1)  # fmt: skip
    number = make_number(
        alice.account, next_number(), call_control_app=app, status_callback_url="https://cb.example.com/s"
    )
    for _ in range(5):  # one channel: each call is let in only if the one before freed it
        call = invite(edge_client, to_user=number.number)
        answered = f"event=answered&call_id={call['call_id']}&at={time.time()}&contact=sip%3Adesk%40pbx.example.com"
        assert edge_client.post("/internal/sip/events", answered, content_type="text/plain").json()["applied"] == 1
        age(call["call_id"], 600)
        start = threading.Barrier(2)

        def hang_up(call_id=call["call_id"], start=start):
            start.wait()
            ended = f"event=ended&call_id={call_id}&at={time.time()}&by=caller"
            Client(HTTP_X_SIP_EDGE_SECRET=edge_secret()).post("/internal/sip/events", ended, content_type="text/plain")
            connections.close_all()

        def sweep(start=start):
            start.wait()
            edge_reconcile(live_dialogs=set)
            connections.close_all()

        threads = [threading.Thread(target=hang_up), threading.Thread(target=sweep)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        root = Call.objects.get(switch_call_id=call["call_id"], parent__isnull=True)
        assert root.is_final
        events = list(Event.objects.filter(object_id=str(root.public_id)).values_list("type", flat=True))
        assert events.count("call.completed") == 1, events
        kinds = list(Delivery.objects.filter(call=root).values_list("kind", flat=True))
        assert kinds.count("status_callback") == 1 and kinds.count("dial_action") == 1, kinds

"""POST /api/v1/calls and live control: placing a call, its states and callbacks, redirect, bridge, hangup, 409.

The engine is the real one, run in the test's process by `drive` (engine_support.py) at the simulated speed of
the test settings; the cases that cross the broker run in a real worker (`celery_worker`).
"""

from __future__ import annotations

import pytest

from telephony.models import Call, CallWakeup, Delivery, Event, OutboundPolicy, SimulatorRule
from telephony.services.outbound import call_place
from telephony.tests.engine_support import CustomerServer, commands, drive, event_types, make_app, next_number
from telephony.tests.isolation_sip import make_number
from tenants.tests.fixtures import wait_for

pytestmark = pytest.mark.django_db

LONG = '<Response><Answer/><Pause length="3600000"/></Response>'  # an hour (ms) of call time
SAY = "<Response><Say>Hello there</Say><Hangup/></Response>"


@pytest.fixture
def server():
    customer = CustomerServer()
    yield customer
    customer.stop()


@pytest.fixture
def slow(settings):
    """Calls at 100x real time: an hour's Pause lasts 36 s, long enough to act on the live call."""
    settings.SIMULATED_SWITCH = {**settings.SIMULATED_SWITCH, "speed": 100.0}


@pytest.fixture
def caller(alice):
    return make_number(alice.account, next_number())


def post_call(client, **body):
    return client.post("/api/v1/calls", body, format="json")


def the_call(response) -> Call:
    return Call.objects.get(public_id=response.json()["id"])


def test_it_places_a_call_that_runs_its_xml_when_answered(alice_api, caller):
    response = post_call(alice_api, **{"from": caller.number, "to": "+13105550001", "xml": SAY, "tag": "t1"})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["direction"] == "outbound-api" and body["tag"] == "t1"
    assert body["from"] == caller.number and body["to"] == "+13105550001"
    call = drive(the_call(response))
    assert call.status == "completed" and call.answered_at and call.initiated_at
    assert commands(call) == ["Say:ok", "Hangup:ok"]
    assert event_types(call)[:4] == ["call.queued", "call.initiated", "call.ringing", "call.answered"]
    assert event_types(call)[-1] == "call.completed"


def test_a_call_to_a_busy_destination_ends_busy_and_reports_each_asked_event(alice_api, caller, server):
    url = server.route("/status", "ok")
    SimulatorRule.objects.create(match="+13105550002", action="busy")

    response = post_call(
        alice_api,
        **{
            "from": caller.number,
            "to": "+13105550002",
            "xml": SAY,
            "status_callback": url,
            "status_callback_events": "initiated,ringing,answered,completed",
        },
    )

    call = drive(the_call(response))
    assert call.status == "busy" and call.sip_code == 486 and call.q850_cause == 17 and not call.answered_at
    assert commands(call) == []  # nothing ran: nobody answered
    deliveries = Delivery.objects.filter(call=call)
    assert deliveries.count() == 3  # initiated, ringing, completed (busy)
    assert call.status_callback_sequence == 3


@pytest.mark.worker
def test_a_busy_calls_status_callbacks_reach_the_customers_server(celery_worker, alice_api, caller, server):
    url = server.route("/status", "ok")
    SimulatorRule.objects.create(match="+13105550003", action="busy")

    response = post_call(
        alice_api,
        **{
            "from": caller.number,
            "to": "+13105550003",
            "xml": SAY,
            "status_callback": url,
            "status_callback_method": "POST",
            "status_callback_events": ["initiated", "ringing", "completed"],
        },
    )

    assert response.status_code == 201
    wait_for(lambda: len(server.to("/status")) == 3, message="three status callbacks")
    params = sorted((hit.params for hit in server.to("/status")), key=lambda p: int(p["SequenceNumber"]))
    assert [p["CallStatus"] for p in params] == ["initiated", "ringing", "busy"]
    assert params[0]["Direction"] == "outbound-api" and params[0]["CallSid"] == response.json()["id"]
    assert params[-1]["CallDuration"] == "0"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"from": "+19995550000"}, "from", "unknown_number"),
        ({"from": "12"}, "from", "invalid"),
        ({"to": "nowhere"}, "to", "invalid"),
        ({"to": "+19005550100"}, "to", "premium_rate_blocked"),
        ({"xml": "<Response>\n<Bogus/>\n</Response>"}, "xml", None),
        ({"xml": "", "url": "http://10.1.2.3/flow"}, "url", None),
        ({"xml": ""}, "xml", None),
        ({"status_callback_events": ["later"]}, "status_callback_events", None),
        ({"timeout": 0}, "timeout", None),
        ({"app": "5a0c9e1d-3b7f-4c2a-9e8d-1f2a3b4c5d6e"}, "app", None),
    ],
)
def test_validation_errors_name_the_field(alice_api, caller, settings, body, field, code):
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = False
    request = {"from": caller.number, "to": "+13105550004", "xml": SAY, **body}
    if body.get("app"):
        request.pop("xml")

    response = post_call(alice_api, **request)

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert any(name.split(".")[0] == field for name in error["fields"]), error
    if code:
        assert error["code"] == ("validation_error" if code == "invalid" else code)
    if field == "xml" and body.get("xml"):
        assert "Line 2" in error["fields"]["xml"][0]
    assert not Call.objects.filter(account=caller.account).exists()


def test_a_number_that_is_not_voice_enabled_cannot_call(alice_api, alice):
    number = make_number(alice.account, next_number(), voice_enabled=False)

    response = post_call(alice_api, **{"from": number.number, "to": "+13105550005", "xml": SAY})

    assert response.status_code == 400 and response.json()["error"]["code"] == "number_not_voice_enabled"


def test_another_accounts_number_is_as_unknown_as_none(charlie_api, caller):
    response = post_call(charlie_api, **{"from": caller.number, "to": "+13105550006", "xml": SAY})

    assert response.status_code == 400 and response.json()["error"]["fields"]["from"]


def test_staff_set_countries_limit_the_destinations(alice_api, alice, caller):
    OutboundPolicy.objects.create(account=alice.account, allowed_countries=["US"])

    refused = post_call(alice_api, **{"from": caller.number, "to": "+442079460000", "xml": SAY})
    allowed = post_call(alice_api, **{"from": caller.number, "to": "+13105550007", "xml": SAY})

    assert refused.status_code == 400 and refused.json()["error"]["code"] == "destination_not_allowed"
    assert "GB" in refused.json()["error"]["message"]
    assert allowed.status_code == 201


def test_premium_rate_numbers_are_allowed_once_staff_allow_them(alice_api, alice, caller):
    OutboundPolicy.objects.create(account=alice.account, allow_premium_rate=True)

    response = post_call(alice_api, **{"from": caller.number, "to": "+19005550100", "xml": SAY})

    assert response.status_code == 201


def test_a_call_can_run_an_app_or_a_url_fetched_on_answer(alice_api, alice, caller, server):
    app = make_app(alice.account, SAY)
    url = server.route("/flow", "<Response><Say>From the URL</Say></Response>")

    by_app = drive(
        the_call(post_call(alice_api, **{"from": caller.number, "to": "+13105550008", "app": str(app.public_id)}))
    )
    by_url = drive(the_call(post_call(alice_api, **{"from": caller.number, "to": "+13105550009", "url": url})))

    assert by_app.app == app and commands(by_app) == ["Say:ok", "Hangup:ok"]
    assert commands(by_url) == ["Say:ok"] and by_url.status == "completed"
    assert server.to("/flow")[0].params["CallStatus"] == "in-progress"


def test_an_unanswered_call_ends_no_answer_after_its_ring_time(alice_api, caller):
    SimulatorRule.objects.create(match="+13105550010", action="no-answer", answer_after_ms=0)

    call = drive(
        the_call(post_call(alice_api, **{"from": caller.number, "to": "+13105550010", "xml": SAY, "timeout": 5}))
    )

    assert call.status == "no-answer" and call.end_reason == "No answer within 5 s."


def test_a_time_limit_ends_the_call(alice_api, caller):
    call = drive(
        the_call(post_call(alice_api, **{"from": caller.number, "to": "+13105550011", "xml": LONG, "time_limit": 20}))
    )

    assert call.status == "completed" and "time limit (20 s)" in call.end_reason
    assert 19 <= (call.ended_at - call.answered_at).total_seconds() * 1000 <= 60  # 20 s of call time at 1000x


def run_until(call: Call, predicate, timeout: float = 10.0) -> Call:
    """Advance the engine until `predicate(call)`, for calls that stay up."""
    import time

    from telephony.engine import runner

    deadline = time.monotonic() + timeout
    while True:
        runner.process_call(call.pk)
        call = Call.objects.get(pk=call.pk)
        if predicate(call):
            return call
        assert time.monotonic() < deadline, f"call {call.status}/{call.flow_state}"
        time.sleep(0.005)


@pytest.fixture
def live(slow, alice_api, caller):
    return lambda to, xml=LONG: live_call(alice_api, caller, to, xml)


def live_call(client, caller, to: str, xml: str = LONG) -> Call:
    call = the_call(post_call(client, **{"from": caller.number, "to": to, "xml": xml}))
    return run_until(call, lambda c: c.status == "in-progress" and c.flow_state == "waiting")


def test_hangup_ends_a_live_call_and_a_finished_call_gives_409(alice_api, caller, live):
    call = live("+13105550012")

    response = alice_api.post(f"/api/v1/calls/{call.public_id}/hangup")
    assert response.status_code == 202
    call = drive(call)
    assert call.status == "completed" and call.end_reason == "Hung up through the API."

    again = alice_api.post(f"/api/v1/calls/{call.public_id}/hangup")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "call_finished" and "ended" in again.json()["error"]["message"]
    assert alice_api.post(f"/api/v1/calls/{call.public_id}/play", {"url": "http://127.0.0.1/a.wav"}).status_code == 409


def test_hangup_cancels_a_queued_call_before_it_is_dispatched(alice_api, alice, caller):
    OutboundPolicy.objects.create(account=alice.account, calls_per_second=0.5)
    first = the_call(post_call(alice_api, **{"from": caller.number, "to": "+13105550013", "xml": SAY}))
    second = the_call(post_call(alice_api, **{"from": caller.number, "to": "+13105550014", "xml": SAY}))

    assert alice_api.post(f"/api/v1/calls/{second.public_id}/hangup").status_code == 202
    second = run_until(second, lambda c: c.is_final)

    assert second.status == "canceled" and second.initiated_at is None
    assert drive(first).status == "completed"


def test_redirecting_a_live_call_replaces_the_rest_of_its_flow(alice_api, caller, server, live):
    url = server.route("/next", "<Response><Say>Redirected</Say><Hangup/></Response>")
    call = live("+13105550015")

    response = alice_api.post(f"/api/v1/calls/{call.public_id}/redirect", {"url": url}, format="json")

    assert response.status_code == 202
    call = drive(call)
    assert commands(call) == ["Answer:ok", "Say:ok", "Hangup:ok"]  # the Pause never finished
    assert call.status == "completed" and server.to("/next")[0].params["CallSid"] == str(call.public_id)
    assert call.http_requests.get().purpose == "redirect_url"


def test_redirect_validates_its_xml(alice_api, caller, live):
    call = live("+13105550016")

    response = alice_api.post(f"/api/v1/calls/{call.public_id}/redirect", {"xml": "<Response><Nope/>"}, format="json")

    assert response.status_code == 400 and "xml" in response.json()["error"]["fields"]
    assert not CallWakeup.objects.filter(root_id=call.pk, kind="control").exists()  # nor the moot ring timeout


def test_bridging_two_live_calls_raises_call_bridged_and_one_hangup_ends_both(alice_api, caller, live):
    a = live("+13105550017")
    b = live("+13105550018")

    response = alice_api.post(
        "/api/v1/calls/bridge", {"call_a": str(a.public_id), "call_b": str(b.public_id)}, format="json"
    )

    assert response.status_code == 202, response.json()
    assert response.json()["call_a"]["id"] == str(a.public_id)
    a = run_until(a, lambda c: c.flow_state == "none")
    b = run_until(b, lambda c: c.flow_state == "none")
    bridged = Event.objects.get(type="call.bridged", object_id=str(a.public_id))
    assert bridged.payload["bridged_call_id"] == str(b.public_id)
    assert a.status == b.status == "in-progress"

    alice_api.post(f"/api/v1/calls/{b.public_id}/hangup")
    b = drive(b)
    a = drive(a)
    assert b.status == a.status == "completed"
    assert a.end_reason == "The call it was bridged to ended."


def test_bridging_refuses_a_finished_call_and_anothers_call(alice_api, charlie, caller, live):
    from telephony.tests.isolation_apps import make_call

    up = live("+13105550019")
    ended = make_call(caller.account)
    foreign = make_call(charlie.account, status="in-progress", parent=None)

    finished = alice_api.post(
        "/api/v1/calls/bridge", {"call_a": str(up.public_id), "call_b": str(ended.public_id)}, format="json"
    )
    other = alice_api.post(
        "/api/v1/calls/bridge", {"call_a": str(up.public_id), "call_b": str(foreign.public_id)}, format="json"
    )

    assert finished.status_code == 409 and finished.json()["error"]["code"] == "call_finished"
    assert other.status_code == 400 and other.json()["error"]["fields"]["call_b"] == ["No such call."]


def test_play_and_send_digits_reach_a_live_call(alice_api, caller, live):
    call = live("+13105550020")

    played = alice_api.post(f"/api/v1/calls/{call.public_id}/play", {"url": "http://127.0.0.1:9/a.wav"}, format="json")
    sent = alice_api.post(f"/api/v1/calls/{call.public_id}/send-digits", {"digits": "12#w3"}, format="json")
    bad = alice_api.post(f"/api/v1/calls/{call.public_id}/send-digits", {"digits": "12x"}, format="json")

    assert played.status_code == sent.status_code == 202
    assert bad.status_code == 400 and "digits" in bad.json()["error"]["fields"]
    controls = Event.objects.filter(type="call.control", object_id=str(call.public_id)).order_by("sequence")
    assert [e.payload["action"] for e in controls] == ["play", "send_digits"]
    call = run_until(
        call, lambda c: not CallWakeup.objects.filter(root_id=c.pk, kind="control", data__action="play").exists()
    )
    assert call.status == "in-progress"  # the flow goes on


def test_a_viewer_key_cannot_place_calls(alice, caller):
    from tenants.tests.fixtures import _client_with_key

    client = _client_with_key(alice.account, read_only=True)

    assert post_call(client, **{"from": caller.number, "to": "+13105550021", "xml": SAY}).status_code == 403


def test_the_service_returns_the_queued_call_for_other_features(alice, caller):
    call = call_place(account=alice.account, actor="bulk call test", from_=caller.number, to="+13105550022", xml=SAY)

    assert call.status == "queued" and call.pk and call.variables["engine"]["outbound"]["actor"] == "bulk call test"


@pytest.mark.worker
def test_a_worker_applies_a_hangup_sent_to_a_live_call(transactional_db, alice_api, caller):
    from tenants.tests.fixtures import start_celery_worker, stop_celery_worker

    worker = start_celery_worker(env={"SIMULATED_SWITCH_SPEED": "100"}, log_name="test-worker-hangup.log")
    try:
        call = the_call(post_call(alice_api, **{"from": caller.number, "to": "+13105550030", "xml": LONG}))
        wait_for(lambda: Call.objects.get(pk=call.pk).status == "in-progress", message="the answer")

        assert alice_api.post(f"/api/v1/calls/{call.public_id}/hangup").status_code == 202

        wait_for(lambda: Call.objects.get(pk=call.pk).is_final, message="the hangup")
    finally:
        stop_celery_worker(worker)
    call = Call.objects.get(pk=call.pk)
    assert call.status == "completed" and call.end_reason == "Hung up through the API."
    assert not CallWakeup.objects.filter(root_id=call.pk).exists()


def test_a_sip_user_of_the_account_can_be_the_caller(alice_api, alice):
    from telephony.models import SipDomain, SipUser

    domain = SipDomain.objects.create(account=alice.account, name="alice", domain="alice.sip.example.net")
    user = SipUser.objects.create(account=alice.account, domain=domain, login="desk1")

    response = post_call(alice_api, **{"from": "sip:desk1@alice.sip.example.net", "to": "+13105550031", "xml": SAY})
    unknown = post_call(alice_api, **{"from": "sip:nobody@alice.sip.example.net", "to": "+13105550032", "xml": SAY})

    assert response.status_code == 201 and the_call(response).sip_user == user
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_sip_user"


def test_a_redirect_before_the_answer_changes_what_runs_on_answer(alice_api, alice, caller):
    OutboundPolicy.objects.create(account=alice.account, calls_per_second=0.5)
    post_call(alice_api, **{"from": caller.number, "to": "+13105550033", "xml": SAY})  # takes the first slot
    queued = the_call(post_call(alice_api, **{"from": caller.number, "to": "+13105550034", "xml": SAY}))

    response = alice_api.post(
        f"/api/v1/calls/{queued.public_id}/redirect", {"xml": "<Response><Hangup/></Response>"}, format="json"
    )

    assert response.status_code == 202
    call = drive(queued)
    assert commands(call) == ["Hangup:ok"]


@pytest.mark.worker
def test_a_worker_bridges_two_calls_and_ends_one_when_the_other_hangs_up(transactional_db, alice_api, caller):
    from tenants.tests.fixtures import start_celery_worker, stop_celery_worker

    worker = start_celery_worker(env={"SIMULATED_SWITCH_SPEED": "100"}, log_name="test-worker-bridge.log")
    try:
        a, b = (
            the_call(post_call(alice_api, **{"from": caller.number, "to": to, "xml": LONG}))
            for to in ("+13105550040", "+13105550041")
        )
        wait_for(lambda: Call.objects.filter(pk__in=[a.pk, b.pk], status="in-progress").count() == 2)

        response = alice_api.post(
            "/api/v1/calls/bridge", {"call_a": str(a.public_id), "call_b": str(b.public_id)}, format="json"
        )
        assert response.status_code == 202
        wait_for(lambda: Event.objects.filter(type="call.bridged", object_id=str(a.public_id)).exists())
        alice_api.post(f"/api/v1/calls/{b.public_id}/hangup")
        wait_for(lambda: Call.objects.filter(pk__in=[a.pk, b.pk], ended_at__isnull=False).count() == 2)
    finally:
        stop_celery_worker(worker)
    a = Call.objects.get(pk=a.pk)
    assert a.status == "completed" and a.end_reason == "The call it was bridged to ended."

"""Status callbacks (Restcomm semantics), delivered by a real worker to a real local server.

Set on a number (completed only), an app (its events) or a Dial's <To> (its events); one request per event the
URL asked for, with CallSid, AccountSid, From, To, CallStatus, Direction, ParentCallSid, Timestamp,
CallbackSource, SequenceNumber from 0 per leg, and CallDuration on completed.
"""

from __future__ import annotations

import pytest

from telephony.models import Call, Delivery, SimulatorRule
from telephony.tests.engine_support import CustomerServer, drive, next_number, number_for_app, place
from telephony.tests.isolation_sip import make_number
from tenants.tests.fixtures import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def server():
    customer = CustomerServer()
    yield customer
    customer.stop()


def by_sequence(hits) -> list[dict]:
    return sorted((hit.params for hit in hits), key=lambda p: int(p["SequenceNumber"]))


@pytest.mark.worker
def test_app_and_dial_status_callbacks_reach_the_server_with_their_parameters(celery_worker, alice, server):
    a_url, b_url = server.route("/a", "ok"), server.route("/b", "ok")
    SimulatorRule.objects.create(match="+13105552000", hangup_after_ms=2000)
    number, _ = number_for_app(
        alice.account,
        f'<Response><Dial><To statusCallback="{b_url}" statusCallbackEvent="initiated ringing answered completed">'
        "+13105552000</To></Dial></Response>",
        status_callback_url=a_url,
        status_callback_events=["initiated", "ringing", "answered", "completed"],
    )

    call = place(number)  # committed: the worker runs it and delivers the callbacks

    wait_for(
        lambda: len(server.to("/a")) == 4 and len(server.to("/b")) == 4, timeout=30, message="eight status callbacks"
    )
    call = Call.objects.get(pk=call.pk)
    b_leg = call.children.get()
    a_params, b_params = by_sequence(server.to("/a")), by_sequence(server.to("/b"))
    assert [p["CallStatus"] for p in a_params] == ["initiated", "ringing", "in-progress", "completed"]
    assert [p["SequenceNumber"] for p in a_params] == ["0", "1", "2", "3"]
    assert [p["CallStatus"] for p in b_params] == ["initiated", "ringing", "in-progress", "completed"]
    first, last = a_params[0], a_params[-1]
    assert first["CallSid"] == str(call.public_id) and first["AccountSid"] == str(alice.account.public_id)
    assert first["From"] == "+12125550100" and first["To"] == number.number and first["Direction"] == "inbound"
    assert first["ParentCallSid"] == "" and first["CallbackSource"] == "call-progress-events"
    assert "CallDuration" not in first and last["CallDuration"] == str(call.duration)
    assert b_params[0]["ParentCallSid"] == str(call.public_id) and b_params[0]["Direction"] == "outbound-dial"
    assert b_params[0]["CallSid"] == str(b_leg.public_id) and b_params[-1]["Timestamp"].endswith("Z")


def test_a_numbers_status_callback_gets_the_completed_event_only(alice, server):
    url = server.route("/number", "ok")
    number, _ = number_for_app(alice.account, "<Response><Say>Hi</Say></Response>")
    number.status_callback_url = url
    number.save(update_fields=["status_callback_url"])

    call = drive(place(number))

    assert call.status_callback_url == url and call.status_callback_sequence == 1  # completed only: one request
    assert Delivery.objects.filter(account=alice.account).count() == 1


def test_an_apps_events_and_a_dial_legs_events_are_counted_per_leg(alice, server):
    url = server.route("/events", "ok")
    SimulatorRule.objects.create(match="+13105552001", hangup_after_ms=1000)
    number, _ = number_for_app(
        alice.account,
        f'<Response><Dial><To statusCallback="{url}">+13105552001</To></Dial></Response>',
        status_callback_url=url,
        status_callback_events=["initiated", "answered", "completed"],
    )

    call = drive(place(number))

    b_leg = call.children.get()
    assert call.status_callback_sequence == 3  # initiated, answered, completed (ringing not asked for)
    assert b_leg.status_callback_sequence == 1 and b_leg.status_callback_events == ["completed"]  # URL alone


def test_a_refused_call_reports_its_final_state(alice, server):
    url = server.route("/refused", "ok")
    number = make_number(alice.account, next_number(), status_callback_url=url)  # no voice target: 480

    call = place(number)

    assert call.status == "failed" and call.status_callback_sequence == 1


def test_a_dial_status_callback_url_too_long_once_rendered_is_dropped_and_the_call_goes_on(alice):
    SimulatorRule.objects.create(match="+13105552003", hangup_after_ms=500)
    number, _ = number_for_app(
        alice.account,
        f'<Response><Meta name="x" value="{"a" * 2100}"/><Dial><To statusCallback="http://127.0.0.1:9/cb?v={{{{x}}}}">'
        "+13105552003</To></Dial></Response>",
    )

    call = drive(place(number))

    assert call.status == "completed" and "engine failed" not in call.end_reason
    b_leg = call.children.get()
    assert b_leg.status == "completed" and b_leg.status_callback_url == ""
    assert not Delivery.objects.filter(account=alice.account).exists()

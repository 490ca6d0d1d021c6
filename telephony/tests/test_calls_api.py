"""/api/v1/calls: the call log (filters, cursor pages) and one call with its legs and its merged timeline."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from telephony.models import CallHttpRequest, DeliveryAttempt
from telephony.services.events import event_emit
from telephony.tests.isolation_apps import make_app, make_call
from telephony.tests.isolation_events import make_endpoint
from telephony.tests.isolation_sip import make_number

pytestmark = pytest.mark.django_db

URL = "/api/v1/calls"
T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [call["id"] for call in response.json()["results"]]


# --- The list ------------------------------------------------------------------------------------------


def test_it_lists_the_accounts_calls_newest_first_with_their_fields(alice_api, alice, charlie):
    app = make_app(alice.account)
    number = make_number(alice.account, "+12015550199")
    older = make_call(alice.account, created_at=at(0))
    newer = make_call(
        alice.account,
        created_at=at(10),
        app=app,
        phone_number=number,
        q850_cause=17,
        status="busy",
        ringing_at=at(11),
        ended_at=at(14),
    )
    make_call(charlie.account, created_at=at(20))

    response = alice_api.get(URL)

    assert ids(response) == [str(newer.public_id), str(older.public_id)]
    first = response.json()["results"][0]
    assert first["from"] == "+12015550100"
    assert first["to"] == "+12015550199"
    assert (first["status"], first["q850_cause"], first["q850_cause_string"]) == ("busy", 17, "USER_BUSY")
    assert first["call_control_app"] == str(app.public_id)
    assert first["phone_number"] == {"id": str(number.public_id), "number": "+12015550199"}
    assert (first["ring_time"], first["talk_time"]) == (3, 0)
    assert first["parent"] is None
    assert "legs" not in first and "timeline" not in first


def test_it_filters_by_direction_status_from_to_app_and_time(alice_api, alice):
    app = make_app(alice.account)
    inbound = make_call(alice.account, created_at=at(0), from_number="+14155550100", app=app)
    busy = make_call(alice.account, created_at=at(10), status="busy", to_number="+12125550100")
    failed = make_call(
        alice.account, created_at=at(20), status="failed", direction="outbound-api", from_number="+12015550199"
    )

    assert ids(alice_api.get(URL, {"direction": "outbound-api"})) == [str(failed.public_id)]
    assert ids(alice_api.get(URL, {"status": "busy,failed"})) == [str(failed.public_id), str(busy.public_id)]
    assert ids(alice_api.get(URL + "?status=busy&status=completed")) == [str(busy.public_id), str(inbound.public_id)]
    assert ids(alice_api.get(URL, {"from": "415555"})) == [str(inbound.public_id)]
    assert ids(alice_api.get(URL, {"to": "+1212"})) == [str(busy.public_id)]
    assert ids(alice_api.get(URL, {"app": str(app.public_id)})) == [str(inbound.public_id)]
    window = {"created_after": at(5).isoformat(), "created_before": at(20).isoformat()}
    assert ids(alice_api.get(URL, window)) == [str(busy.public_id)]


def test_a_bad_filter_value_is_a_400_naming_it(alice_api):
    response = alice_api.get(URL, {"status": "exploded"})

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["status"]


def test_the_number_filter_finds_calls_from_to_or_using_a_number_by_e164_or_id(alice_api, alice, charlie):
    number = make_number(alice.account, "+12015550123")
    to_it = make_call(alice.account, created_at=at(0), to_number="+12015550123")
    from_it = make_call(alice.account, created_at=at(10), from_number="+12015550123", direction="outbound-api")
    using_it = make_call(alice.account, created_at=at(20), to_number="sip:mary@example.com", phone_number=number)
    make_call(alice.account, created_at=at(30))
    theirs = make_number(charlie.account, "+12015550100")

    expected = [str(using_it.public_id), str(from_it.public_id), str(to_it.public_id)]
    assert ids(alice_api.get(URL, {"number": "+12015550123"})) == expected
    assert ids(alice_api.get(URL, {"number": "+1 (201) 555-0123"})) == expected
    assert ids(alice_api.get(URL, {"number": str(number.public_id)})) == expected
    # Another account's number id is as unknown as none, even though calls here come from its E.164.
    assert ids(alice_api.get(URL, {"number": str(theirs.public_id)})) == []


def test_cursor_pages_walk_every_call_once_even_as_new_calls_arrive(alice_api, alice):
    calls = [make_call(alice.account, created_at=at(i)) for i in range(5)]
    # Two calls at the same moment must not be skipped or repeated across a page boundary.
    calls.append(make_call(alice.account, created_at=at(2)))

    seen: list[str] = []
    page = alice_api.get(URL, {"limit": 2}).json()
    seen += [c["id"] for c in page["results"]]
    make_call(alice.account, created_at=at(100))  # arrives while the client is paging
    while page["next"]:
        page = alice_api.get(page["next"]).json()
        seen += [c["id"] for c in page["results"]]

    assert sorted(seen) == sorted(str(c.public_id) for c in calls)
    assert len(seen) == len(set(seen))
    assert "count" not in page


def test_another_accounts_call_is_not_found_and_viewers_read(alice, bob, charlie_api, token_client):
    call = make_call(alice.account)

    assert charlie_api.get(f"{URL}/{call.public_id}").status_code == 404
    assert token_client(bob.user, bob.account).get(f"{URL}/{call.public_id}").status_code == 200
    assert token_client(bob.user, bob.account).post(URL, {}, format="json").status_code in (403, 405)


# --- One call ------------------------------------------------------------------------------------------


@pytest.fixture
def dialed_call(alice):
    """An inbound call that ran a flow, fetched a document, dialed a B-leg that was busy, and was reported."""
    account = alice.account
    make_endpoint(account, event_types=["call.*"])
    call = make_call(
        account,
        created_at=at(0),
        initiated_at=at(0),
        ringing_at=at(1),
        answered_at=at(3),
        ended_at=at(63),
        q850_cause=16,
        status="completed",
    )
    leg = make_call(
        account,
        parent=call,
        direction="outbound-dial",
        to_number="+12125550100",
        created_at=at(5),
        ringing_at=at(5),
        ended_at=at(9),
        status="busy",
        q850_cause=17,
    )

    def emit(type_, obj, seconds, **data):
        return event_emit(
            account=account,
            type=type_,
            obj=obj,
            occurred_at=at(seconds),
            payload={"call_id": str(obj.public_id), **data},
        )

    emit("call.initiated", call, 0, state="initiated")
    emit("call.flow", call, 3.5, command="Answer", path="Response/Answer[0]", success=True, reason="Call answered")
    emit(
        "call.flow",
        call,
        4.5,
        command="Dial",
        path="Response/Dial[0]",
        success=False,
        reason="busy",
        error="busy",
        line=3,
    )
    emit("call.ringing", leg, 5.5, state="ringing")
    emit("call.completed", leg, 9, state="busy", hangup_cause=17, hangup_cause_text="USER_BUSY")
    CallHttpRequest.objects.create(
        account=account,
        call=call,
        purpose="call_flow_url",
        method="POST",
        url="https://example.com/flow",
        request_body='{"from": "+12015550100"}',
        attempts=[
            {"at": at(2).isoformat(), "duration_ms": 5000, "status_code": None, "error": "timeout"},
            {"at": at(2.8).isoformat(), "duration_ms": 120, "status_code": 200, "error": ""},
        ],
        response_status=200,
        response_excerpt="<Response><Answer/></Response>",
        outcome="ok",
        created_at=at(2),
    )
    CallHttpRequest.objects.create(
        account=account,
        call=leg,
        purpose="status_callback",
        method="POST",
        url="https://example.com/status",
        attempts=[{"at": at(9.5).isoformat(), "duration_ms": 40, "status_code": 204, "error": ""}],
        response_status=204,
        outcome="ok",
        created_at=at(9.5),
    )
    return call, leg


def test_a_call_carries_its_legs_causes_and_durations(alice_api, dialed_call):
    call, leg = dialed_call

    body = alice_api.get(f"{URL}/{call.public_id}").json()

    assert (body["q850_cause"], body["q850_cause_string"], body["ring_time"], body["talk_time"]) == (
        16,
        "NORMAL_CLEARING",
        2,
        60,
    )
    assert len(body["legs"]) == 1
    b_leg = body["legs"][0]
    assert (b_leg["id"], b_leg["parent"], b_leg["status"]) == (str(leg.public_id), str(call.public_id), "busy")
    assert (b_leg["q850_cause_string"], b_leg["ring_time"], b_leg["talk_time"]) == ("USER_BUSY", 4, 0)


def test_the_timeline_merges_events_commands_requests_and_deliveries_in_time_order(alice_api, dialed_call):
    call, leg = dialed_call

    body = alice_api.get(f"{URL}/{call.public_id}").json()
    timeline = body["timeline"]

    def describe(entry):
        kind = entry["kind"]
        if kind == "event":
            return ("event", entry["event"]["type"])
        if kind == "command":
            return ("command", entry["command"]["name"])
        if kind == "http_request":
            return ("http_request", entry["http_request"]["purpose"])
        return ("webhook_delivery", entry["webhook_delivery"]["event_type"])

    described = [describe(entry) for entry in timeline if entry["kind"] != "webhook_delivery"]
    assert described == [
        ("event", "call.initiated"),
        ("http_request", "call_flow_url"),
        ("command", "Answer"),
        ("command", "Dial"),
        ("event", "call.ringing"),
        ("event", "call.completed"),
        ("http_request", "status_callback"),
    ]
    stamps = [datetime.fromisoformat(entry["at"]) for entry in timeline]
    assert stamps == sorted(stamps)
    assert body["timeline_truncated"] is False

    request = timeline[1]["http_request"]
    assert request["url"] == "https://example.com/flow"
    assert [a["error"] for a in request["attempts"]] == ["timeout", ""]
    assert (request["duration_ms"], request["response_status"]) == (5120, 200)
    dial = timeline[3]["command"]
    assert (dial["path"], dial["success"], dial["reason"], dial["error"], dial["line"]) == (
        "Response/Dial[0]",
        False,
        "busy",
        "busy",
        3,
    )
    assert timeline[2]["command"]["line"] is None
    assert timeline[4]["call_id"] == str(leg.public_id)
    assert timeline[5]["event"]["data"]["hangup_cause_text"] == "USER_BUSY"


def test_the_timeline_shows_the_webhook_deliveries_of_the_calls_events_with_their_attempts(alice_api, dialed_call):
    call, _ = dialed_call
    delivery_entries = [
        e for e in alice_api.get(f"{URL}/{call.public_id}").json()["timeline"] if e["kind"] == "webhook_delivery"
    ]
    assert [e["webhook_delivery"]["event_type"] for e in delivery_entries] == [
        "call.initiated",
        "call.flow",
        "call.flow",
        "call.ringing",
        "call.completed",
    ]
    from telephony.models import Delivery

    first = Delivery.objects.get(public_id=delivery_entries[0]["webhook_delivery"]["id"])
    DeliveryAttempt.objects.create(
        delivery=first, number=1, attempted_at=timezone.now(), duration_ms=80, status_code=503, error="HTTP 503"
    )

    again = alice_api.get(f"{URL}/{call.public_id}").json()["timeline"]
    attempts = next(e for e in again if e["kind"] == "webhook_delivery")["webhook_delivery"]["attempts"]
    assert [(a["number"], a["status_code"], a["error"]) for a in attempts] == [(1, 503, "HTTP 503")]


def test_a_b_legs_own_page_shows_its_own_timeline(alice_api, dialed_call):
    _, leg = dialed_call

    body = alice_api.get(f"{URL}/{leg.public_id}").json()

    assert body["legs"] == []
    assert {e["call_id"] for e in body["timeline"]} == {str(leg.public_id)}


def test_the_detail_costs_the_same_queries_whatever_the_calls_size(
    alice_api, alice, dialed_call, django_assert_max_num_queries
):
    call, _ = dialed_call
    small = make_call(alice.account)
    event_emit(account=alice.account, type="call.initiated", obj=small, payload={})

    with django_assert_max_num_queries(15) as big_queries:
        alice_api.get(f"{URL}/{call.public_id}")
    with django_assert_max_num_queries(15) as small_queries:
        alice_api.get(f"{URL}/{small.public_id}")

    def call_queries(captured):
        # Authentication's own queries (the key, its last use) vary from request to request; the call's do not.
        return [q["sql"] for q in captured.captured_queries if "telephony_" in q["sql"]]

    # The call, its legs, events, HTTP requests, deliveries, callbacks and their attempts: seven, however many rows.
    assert len(call_queries(big_queries)) == len(call_queries(small_queries)) == 7

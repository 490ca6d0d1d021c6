"""POST /api/v1/bulk-calls and friends: accepting a campaign, its validation, pause/resume/cancel, results CSV."""

from __future__ import annotations

import csv
import io

import pytest

from telephony.models import BulkCall, BulkCallItem, Event
from telephony.tests.isolation_sip import make_number

pytestmark = pytest.mark.django_db

FLOW = "<Response><Say>Hello</Say><Hangup/></Response>"


@pytest.fixture
def caller_id(alice):
    return make_number(alice.account, "+12015550150")


def create(client, caller_id, **fields):
    body = {"from": caller_id.number, "destinations": ["+12025550101"], "xml": FLOW, **fields}
    return client.post("/api/v1/bulk-calls", body, format="json")


def test_it_accepts_the_good_destinations_and_reports_the_bad_ones_with_their_position(alice_api, caller_id):
    destinations = ["+12025550101", "not a number", "+1 (202) 555-0102", "+12025550101", 42, "0012025550103",
                    "+19005550199"]  # fmt: skip

    response = create(alice_api, caller_id, destinations=destinations, do_not_call=["+12025550103"])

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["total"] == 3 and body["invalid_count"] == 4 and body["status"] == "running"
    assert [(entry["position"], entry["reason"]) for entry in body["invalid"]] == [
        (1, "Not an E.164 number."),
        (3, "Repeats position 0."),
        (4, "Not an E.164 number."),
        (6, "A premium-rate number; calls to premium-rate numbers are blocked."),
    ]
    assert body["counts"]["pending"] == 2 and body["counts"]["do-not-call"] == 1
    items = list(BulkCallItem.objects.filter(bulk_call__public_id=body["id"]).values_list("position", "destination"))
    assert items == [(0, "+12025550101"), (2, "+12025550102"), (5, "+12025550103")]
    assert Event.objects.filter(type="bulk_call.created", object_id=body["id"]).exists()


def test_a_destination_with_a_nul_character_is_reported_bad_not_a_server_error(alice_api, caller_id):
    response = create(alice_api, caller_id, destinations=["+12025550101", "+1202\x005550102"])

    assert response.status_code == 201, response.content
    assert [(entry["position"], entry["reason"]) for entry in response.json()["invalid"]] == [
        (1, "Not an E.164 number.")
    ]


@pytest.mark.parametrize(
    "fields,field,code",
    [
        ({"from": "+19995550000"}, "from", "unknown_number"),
        ({"xml": ""}, "app", "flow_required"),
        ({"url": "http://127.0.0.1:9/flow"}, "app", "flow_required"),  # two flows at once
        ({"xml": "<Response><Nope/></Response>"}, "xml", None),
        ({"destinations": ["nope", "also nope"]}, "destinations", "no_valid_destinations"),
        ({"destinations": []}, "destinations", "validation_error"),
        ({"window_days": ["someday"]}, "window_days", "invalid_days"),
        ({"window_start": "25:00", "window_end": "10:00"}, "window_start", "invalid_time"),
        ({"window_start": "09:00"}, "window_end", "invalid_window"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "invalid_time_zone"),
        ({"retry_rules": {"busy": {"attempts": 99}}}, "retry_rules.busy.attempts", "out_of_range"),
        ({"calls_per_second": 0}, "calls_per_second", "out_of_range"),
        ({"do_not_call": ["+1202555010x"]}, "do_not_call.0", "invalid_number"),
        ({"time_limit": 4 * 3600 + 1}, "time_limit", "out_of_range"),  # longer than any call may last
    ],
)
def test_it_refuses_a_bad_request_naming_the_field(alice_api, caller_id, fields, field, code):
    response = create(alice_api, caller_id, **fields)

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert field in error["fields"], error
    if code:
        assert error["code"] == code
    assert not BulkCall.objects.exists()


def test_it_accepts_100000_destinations_written_as_people_write_them(alice_api, caller_id):
    destinations = [f"+1 (202) {n // 10000:03d}-{n % 10000:04d}" for n in range(100_000)]

    response = create(alice_api, caller_id, destinations=destinations)

    assert response.status_code == 201, response.json()
    assert response.json()["total"] == 100_000 and response.json()["invalid_count"] == 0
    assert BulkCallItem.objects.filter(state="pending").count() == 100_000


def test_it_refuses_more_than_100000_destinations(alice_api, caller_id):
    response = create(alice_api, caller_id, destinations=[f"+1202{n:07d}" for n in range(100_001)])

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many"


def test_it_pauses_resumes_and_cancels_and_409s_out_of_order(alice_api, caller_id):
    bulk_id = create(alice_api, caller_id, destinations=["+12025550101", "+12025550102"]).json()["id"]
    url = f"/api/v1/bulk-calls/{bulk_id}"

    assert alice_api.post(f"{url}/resume").status_code == 409
    assert alice_api.post(f"{url}/pause").json()["status"] == "paused"
    assert alice_api.post(f"{url}/pause").status_code == 409
    assert alice_api.post(f"{url}/resume").json()["status"] == "running"
    canceled = alice_api.post(f"{url}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    again = alice_api.post(f"{url}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "bulk_call_state"

    detail = alice_api.get(url).json()
    assert detail["counts"]["canceled"] == 2 and detail["counts"]["pending"] == 0
    types = list(Event.objects.filter(object_id=bulk_id).order_by("id").values_list("type", flat=True))
    assert types == ["bulk_call.created", "bulk_call.paused", "bulk_call.resumed", "bulk_call.canceled"]


def test_the_results_csv_lists_every_destination_with_its_attempts_and_status(alice_api, caller_id):
    bulk_id = create(
        alice_api, caller_id, destinations=["+12025550101", "+12025550102"], do_not_call=["+12025550102"]
    ).json()["id"]
    BulkCallItem.objects.filter(position=0).update(state="done", outcome="busy", attempts=2, reason="Busy here")

    response = alice_api.get(f"/api/v1/bulk-calls/{bulk_id}/results", HTTP_ACCEPT="text/csv")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["position", "destination", "attempts", "status", "duration", "last_call_id", "reason"],
        ["0", "+12025550101", "2", "busy", "0", "", "Busy here"],
        ["1", "+12025550102", "0", "do-not-call", "0", "", ""],
    ]


def test_another_accounts_bulk_call_is_not_found(alice_api, charlie_api, caller_id):
    bulk_id = create(alice_api, caller_id).json()["id"]

    assert charlie_api.get(f"/api/v1/bulk-calls/{bulk_id}").status_code == 404
    assert charlie_api.post(f"/api/v1/bulk-calls/{bulk_id}/cancel").status_code == 404
    assert charlie_api.get(f"/api/v1/bulk-calls/{bulk_id}/results").status_code == 404
    assert BulkCall.objects.get().status == "running"

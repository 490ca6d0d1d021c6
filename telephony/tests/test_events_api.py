"""The events API: the account's event log (filters, resume with `after`) and the event-type catalogue."""

from __future__ import annotations

import pytest

from telephony import event_types
from telephony.services.events import event_emit

pytestmark = pytest.mark.django_db


def emit(account, type, object_id="c1", **data):
    return event_emit(account=account, type=type, object_id=object_id, payload=data)


def ids(response) -> list[str]:
    return [item["id"] for item in response.json()["results"]]


def test_it_lists_events_newest_first_in_the_documented_shape(alice, alice_api):
    first = emit(alice.account, "call.ringing", state="ringing")
    second = emit(alice.account, "call.answered", state="in-progress")

    response = alice_api.get("/api/v1/events")

    assert response.status_code == 200
    assert ids(response)[:2] == [str(second.public_id), str(first.public_id)]
    item = response.json()["results"][0]
    assert item == {
        "id": str(second.public_id),
        "type": "call.answered",
        "occurred_at": item["occurred_at"],
        "created_at": item["created_at"],
        "object": {"type": "call", "id": "c1"},
        "sequence": 2,
        "data": {"state": "in-progress"},
    }


def test_it_filters_by_type_family_and_object(alice, alice_api):
    ringing = emit(alice.account, "call.ringing", object_id="a")
    hangup = emit(alice.account, "call.hangup", object_id="b")
    message = emit(alice.account, "message.sent", object_id="m")

    assert ids(alice_api.get("/api/v1/events", {"type": "call.ringing"})) == [str(ringing.public_id)]
    assert ids(alice_api.get("/api/v1/events", {"type": "call.*"})) == [str(hangup.public_id), str(ringing.public_id)]
    assert ids(alice_api.get("/api/v1/events", {"type": "message.sent,call.hangup"})) == [
        str(message.public_id),
        str(hangup.public_id),
    ]
    assert ids(alice_api.get("/api/v1/events", {"object": "b"})) == [str(hangup.public_id)]


def test_after_resumes_a_feed_oldest_first_across_pages(alice, alice_api):
    events = [emit(alice.account, "call.flow", object_id="f") for _ in range(7)]

    page = alice_api.get("/api/v1/events", {"after": str(events[1].public_id), "limit": 3}).json()
    seen = [item["id"] for item in page["results"]]
    while page["next"]:
        page = alice_api.get(page["next"]).json()
        seen += [item["id"] for item in page["results"]]

    assert seen == [str(e.public_id) for e in events[2:]]


def test_after_with_an_unknown_or_foreign_id_is_a_400(alice, charlie, alice_api):
    foreign = emit(charlie.account, "call.flow")

    for value in ("00000000-0000-0000-0000-000000000000", "nonsense", str(foreign.public_id)):
        response = alice_api.get("/api/v1/events", {"after": value})
        assert response.status_code == 400 and "after" in response.json()["error"]["fields"]


def test_another_accounts_events_are_invisible(alice, charlie, charlie_api):
    event = emit(alice.account, "call.ringing")

    assert charlie_api.get(f"/api/v1/events/{event.public_id}").status_code == 404
    assert str(event.public_id) not in str(charlie_api.get("/api/v1/events").json())


def test_a_viewer_can_read_events(alice, bob, token_client):
    event = emit(alice.account, "call.ringing")

    response = token_client(bob.user, bob.account).get(f"/api/v1/events/{event.public_id}")

    assert response.status_code == 200 and response.json()["type"] == "call.ringing"


def test_provisioning_changes_show_up_as_events(alice_api):
    created = alice_api.post("/api/v1/webhooks", {"url": "https://93.184.216.34/h"}, format="json").json()

    events = alice_api.get("/api/v1/events", {"type": "endpoint.*"}).json()["results"]

    assert [(e["type"], e["object"]) for e in events] == [
        ("endpoint.created", {"type": "endpoint", "id": created["id"]})
    ]
    assert events[0]["data"]["after"]["url"] == "https://93.184.216.34/h"
    assert events[0]["data"]["actor"]["type"] == "api_key"


def test_the_catalogue_lists_every_type_with_its_schema(alice_api):
    response = alice_api.get("/api/v1/event-types")

    assert response.status_code == 200
    listed = {item["name"]: item for item in response.json()}
    assert set(listed) == {entry.name for entry in event_types.CATALOGUE}
    ringing = listed["call.ringing"]
    assert ringing["family"] is False and ringing["description"]
    assert ringing["schema"]["type"] == "object" and "call_id" in ringing["schema"]["properties"]
    assert listed["sip_user.*"]["family"] is True
    assert {item["name"] for item in alice_api.get("/api/v1/event-types", {"family": "message"}).json()} == {
        "message.queued",
        "message.sending",
        "message.sent",
        "message.delivered",
        "message.failed",
        "message.undelivered",
        "message.received",
    }


def test_one_event_type_can_be_fetched_by_name(alice_api):
    assert alice_api.get("/api/v1/event-types/number.ordered").json()["name"] == "number.ordered"
    assert alice_api.get("/api/v1/event-types/sip_user.*").json()["family"] is True
    assert alice_api.get("/api/v1/event-types/call.teleported").status_code == 404


def test_the_catalogue_needs_a_credential(api_client):
    assert api_client.get("/api/v1/event-types").status_code == 401

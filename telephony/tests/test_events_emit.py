"""The outbox: events and their deliveries are written in the transaction of the change, numbered per object."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from django.db import connection, transaction

from telephony import event_types
from telephony.models import Delivery, Event
from telephony.services import webhooks as webhook_services
from telephony.services.events import event_emit
from tenants import services as tenant_services
from tenants.models import AuditEntry
from tenants.tests.factories import make_api_key

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def add_endpoint(account, event_types_=("*",), enabled=True):
    return webhook_services.webhook_endpoint_create(
        account=account, actor=None, url="https://93.184.216.34/hooks", event_types=list(event_types_), enabled=enabled
    ).endpoint


def test_an_event_and_its_deliveries_commit_with_the_change(alice):
    endpoint = add_endpoint(alice.account, ["call.*"])

    event = event_emit(account=alice.account, type="call.ringing", object_type="call", object_id="c1", payload={})

    assert Event.objects.filter(pk=event.pk).exists()
    assert Delivery.objects.get(event=event).endpoint == endpoint


def test_a_rolled_back_change_leaves_no_event_and_no_delivery(alice):
    add_endpoint(alice.account, ["call.*"])

    with pytest.raises(RuntimeError), transaction.atomic():
        event_emit(account=alice.account, type="call.ringing", object_type="call", object_id="c1", payload={})
        raise RuntimeError("the change failed")

    assert not Event.objects.filter(type="call.ringing").exists()
    assert not Delivery.objects.filter(event__type="call.ringing").exists()


def test_events_are_numbered_per_object(alice):
    def emit(object_id):
        return event_emit(account=alice.account, type="call.flow", object_type="call", object_id=object_id, payload={})

    assert [emit("a").sequence, emit("a").sequence, emit("b").sequence, emit("a").sequence] == [1, 2, 1, 3]


@pytest.mark.django_db(transaction=True)
def test_concurrent_emitters_never_share_a_sequence_number(alice):
    errors: list[BaseException] = []

    def worker():
        try:
            for _ in range(10):
                with transaction.atomic():
                    event_emit(account=alice.account, type="call.flow", object_type="call", object_id="hot", payload={})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    sequences = sorted(Event.objects.filter(object_id="hot").values_list("sequence", flat=True))
    assert sequences == list(range(1, 41))


def test_an_uncatalogued_type_is_a_programming_error(alice):
    with pytest.raises(ValueError, match="not in the catalogue"):
        event_emit(account=alice.account, type="call.teleported", payload={})
    with pytest.raises(ValueError):
        event_emit(account=alice.account, type="spaceship.launched", payload={})


def test_a_family_admits_new_verbs(alice):
    event = event_emit(account=alice.account, type="sip_user.renamed", object_id="u1", payload={})

    assert event.object_type == "sip_user"


def test_without_an_object_the_event_is_about_the_account(alice):
    event = event_emit(account=alice.account, type="account.touched", payload={})

    assert (event.object_type, event.object_id) == ("account", str(alice.account.public_id))


def test_only_enabled_endpoints_whose_types_match_get_a_delivery(alice, charlie):
    calls = add_endpoint(alice.account, ["call.*"])
    everything = add_endpoint(alice.account, ["*"])
    numbers = add_endpoint(alice.account, ["number.ordered"])
    add_endpoint(alice.account, ["*"], enabled=False)
    add_endpoint(charlie.account, ["*"])

    event = event_emit(account=alice.account, type="call.hangup", object_type="call", object_id="c", payload={})

    assert set(Delivery.objects.filter(event=event).values_list("endpoint", flat=True)) == {calls.pk, everything.pk}
    assert numbers.pk not in set(Delivery.objects.values_list("endpoint", flat=True))


def test_every_audited_change_is_also_an_event_in_the_same_transaction(alice):
    key_secret, key = make_api_key(alice.account, actor=alice.user, name="ci")

    entry = AuditEntry.objects.get(account=alice.account, action="api_key.created")
    event = Event.objects.get(account=alice.account, type="api_key.created")
    assert event.object_type == "api_key" and event.object_id == str(key.public_id)
    assert event.occurred_at == entry.created_at
    assert event.payload["object"] == {"type": "api_key", "id": str(key.public_id), "repr": entry.object_repr}
    assert event.payload["after"]["name"] == "ci"
    assert event.payload["actor"] == {"type": "user", "id": str(alice.user.public_id), "label": "alice@example.com"}
    assert key_secret not in str(event.payload)


def test_a_failed_service_leaves_neither_audit_entry_nor_event(alice):
    tenant_services.membership_add(account=alice.account, actor=alice.user, email="x@example.com", role="viewer")
    events_before = Event.objects.count()

    with pytest.raises(Exception):  # noqa: B017 - the service's own validation error
        tenant_services.membership_add(account=alice.account, actor=alice.user, email="x@example.com", role="viewer")

    assert Event.objects.count() == events_before


def test_one_kick_per_transaction_however_many_events(alice, django_capture_on_commit_callbacks):
    add_endpoint(alice.account, ["*"])

    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for n in range(5):
            event_emit(account=alice.account, type="call.flow", object_type="call", object_id=f"k{n}", payload={})

    assert len([c for c in callbacks if getattr(c, "__name__", "") == "_kick_on_commit"]) == 1


def test_no_kick_when_no_endpoint_listens(alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        event_emit(account=alice.account, type="call.flow", object_type="call", object_id="q", payload={})

    assert [c for c in callbacks if getattr(c, "__name__", "") == "_kick_on_commit"] == []


def test_every_audit_action_in_the_code_is_in_the_catalogue():
    """Audit actions become events, and event_emit refuses unknown types: catch a new action here, not in prod."""
    literal = re.compile(r"""action=f?["']([a-z_]+\.[a-z_{}]+)["']""")
    found: dict[str, str] = {}
    for path in ROOT.glob("*/**/*.py"):
        if {".venv", "migrations", "bench"} & set(path.parts):
            continue
        for match in literal.finditer(path.read_text(encoding="utf-8")):
            name = re.sub(r"\{[^}]*\}", "anything", match.group(1))
            found[name] = str(path.relative_to(ROOT))
    assert "number.ordered" in found and "sip_user.created" in found  # the scan works
    unknown = {name: where for name, where in found.items() if event_types.lookup(name) is None}
    assert unknown == {}, "add these to telephony/event_types.py"


def test_catalogue_names_and_schemas_are_well_formed():
    names = [entry.name for entry in event_types.CATALOGUE]
    assert len(names) == len(set(names))
    for entry in event_types.CATALOGUE:
        assert re.match(event_types.NAME_PATTERN, entry.name), entry.name
        assert entry.schema["type"] == "object" and entry.description
        for required in entry.schema.get("required", []):
            assert required in entry.example, f"{entry.name} example lacks {required}"
    assert {"call.initiated", "call.ringing", "call.answered", "call.bridged", "call.hangup", "call.completed",
            "call.flow", "message.sent", "message.delivered", "message.failed", "message.received",
            "number.ordered", "number.released", "recording.available", "endpoint.disabled"} <= set(names)  # fmt: skip

"""Pausing, resuming and canceling a bulk call."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from telephony.models import BulkCall, BulkCallItem
from telephony.services.bulk_calls.dispatch import kick
from telephony.services.bulk_calls.progress import bulk_call_counts, bulk_call_payload
from telephony.services.events import event_emit
from tenants.models import Account
from tenants.services import Actor


def _locked(account: Account, bulk: BulkCall) -> BulkCall:
    return BulkCall.objects.select_for_update().for_account(account).get(pk=bulk.pk)


def _conflict(message: str) -> ValidationError:
    return ValidationError(message, code="conflict")


@transaction.atomic
def bulk_call_pause(*, account: Account, actor: Actor, bulk_call: BulkCall) -> BulkCall:
    """Stop placing new calls; calls in flight finish and their outcomes are recorded."""
    bulk = _locked(account, bulk_call)
    if bulk.status != BulkCall.Status.RUNNING:
        raise _conflict(f"Only a running bulk call can be paused; this one is {bulk.status}.")
    bulk.status = BulkCall.Status.PAUSED
    bulk.save(update_fields=["status", "updated_at"])
    event_emit(account=account, type="bulk_call.paused", payload=bulk_call_payload(bulk), obj=bulk)
    return bulk


@transaction.atomic
def bulk_call_resume(*, account: Account, actor: Actor, bulk_call: BulkCall) -> BulkCall:
    bulk = _locked(account, bulk_call)
    if bulk.status != BulkCall.Status.PAUSED:
        raise _conflict(f"Only a paused bulk call can be resumed; this one is {bulk.status}.")
    bulk.status = BulkCall.Status.RUNNING
    # The pause is not owed calls: the rate starts afresh.
    bulk.last_dispatch_at = None
    bulk.save(update_fields=["status", "last_dispatch_at", "updated_at"])
    event_emit(account=account, type="bulk_call.resumed", payload=bulk_call_payload(bulk), obj=bulk)
    transaction.on_commit(lambda: kick(bulk.pk))
    return bulk


@transaction.atomic
def bulk_call_cancel(*, account: Account, actor: Actor, bulk_call: BulkCall) -> BulkCall:
    """Destinations not called yet never will be; calls in flight finish and are recorded."""
    bulk = _locked(account, bulk_call)
    if bulk.is_over:
        raise _conflict(f"This bulk call is already {bulk.status}.")
    BulkCallItem.objects.filter(bulk_call=bulk, state=BulkCallItem.State.PENDING).update(
        state=BulkCallItem.State.CANCELED
    )
    bulk.status = BulkCall.Status.CANCELED
    bulk.completed_at = timezone.now()
    bulk.save(update_fields=["status", "completed_at", "updated_at"])
    counts = bulk_call_counts(bulk)
    event_emit(account=account, type="bulk_call.canceled", payload=bulk_call_payload(bulk, counts), obj=bulk)
    return bulk

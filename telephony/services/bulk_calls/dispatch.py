"""The dispatcher: outcomes of ended calls, retries, the calling window and the pace."""

from __future__ import annotations

import logging
import zoneinfo
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from telephony.models import FINAL_STATUSES, BulkCall, BulkCallItem
from telephony.models.bulk import WEEKDAYS
from telephony.services.bulk_calls.progress import bulk_call_counts, bulk_call_payload
from telephony.services.events import event_emit

logger = logging.getLogger(__name__)

# A dispatcher that died holding a campaign lets go after this long.
CLAIM_SECONDS = 30
# Destinations placed per dispatcher pass at most, whatever the rate: a pass stays short.
MAX_PLACED_PER_PASS = 500


def in_window(bulk: BulkCall, moment: datetime) -> bool:
    """Whether `moment` is inside the campaign's calling window, read in its time zone."""
    local = moment.astimezone(zoneinfo.ZoneInfo(bulk.time_zone))
    days = bulk.window_days or list(WEEKDAYS)
    if bulk.window_start is None or bulk.window_end is None:
        return WEEKDAYS[local.weekday()] in days
    clock = local.time().replace(tzinfo=None)
    start, end = bulk.window_start, bulk.window_end
    if start < end:
        return WEEKDAYS[local.weekday()] in days and start <= clock < end
    # A window across midnight (22:00-06:00) belongs to the day it starts on.
    if clock >= start:
        return WEEKDAYS[local.weekday()] in days
    if clock < end:
        return WEEKDAYS[(local.weekday() - 1) % 7] in days
    return False


# --- The dispatcher ---------------------------------------------------------------------------------------


LIVE = (BulkCall.Status.RUNNING, BulkCall.Status.PAUSED, BulkCall.Status.CANCELED)


def _claim(bulk_id: int, now: datetime) -> bool:
    return (
        BulkCall.objects.filter(pk=bulk_id, status__in=LIVE)
        .filter(Q(dispatch_claimed_until__isnull=True) | Q(dispatch_claimed_until__lt=now))
        .update(dispatch_claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        == 1
    )


def _release(bulk_id: int) -> None:
    BulkCall.objects.filter(pk=bulk_id).update(dispatch_claimed_until=None)


def bulk_call_dispatch(*, bulk_call_id: int, now: datetime | None = None) -> int:
    """One pass of the dispatcher over one campaign; the number of calls it placed. Safe to run anywhere, twice."""
    now = now or timezone.now()
    if not _claim(bulk_call_id, now):
        return 0
    try:
        recorded = _record_outcomes(bulk_call_id, now)
        placed, refused = _place_due(bulk_call_id, now)
        # The counts are only read again when something moved (a campaign waiting for its window costs two
        # indexed queries a second), or when the last ones said it is over but it is not marked so yet.
        last = BulkCall.objects.values_list("last_progress", flat=True).get(pk=bulk_call_id) or {}
        if recorded or placed or refused or (last.get("pending") == 0 and last.get("calling") == 0):
            _announce(bulk_call_id, now)
        return placed
    finally:
        _release(bulk_call_id)


@transaction.atomic
def _record_outcomes(bulk_id: int, now: datetime) -> int:
    """Give each destination whose call ended its outcome (and a retry if a rule says so); how many."""
    bulk = BulkCall.objects.get(pk=bulk_id)
    calling = list(
        BulkCallItem.objects.filter(bulk_call=bulk, state=BulkCallItem.State.CALLING).select_related("last_call")
    )
    changed = []
    for item in calling:
        call = item.last_call
        if call is not None and call.status not in FINAL_STATUSES:
            continue
        outcome = call.status if call is not None else "failed"
        item.outcome = outcome
        item.duration = call.duration if call is not None else 0
        item.reason = (call.end_reason if call is not None and outcome != "completed" else "")[:300]
        rule = bulk.retry_rules.get(outcome)
        if rule and item.attempts < rule["attempts"] and bulk.status != BulkCall.Status.CANCELED:
            ended = (call.ended_at if call is not None else None) or now
            item.state = BulkCallItem.State.PENDING
            item.next_attempt_at = ended + timedelta(seconds=rule["delay_s"])
        else:
            item.state = BulkCallItem.State.DONE
        changed.append(item)
    if changed:
        BulkCallItem.objects.bulk_update(changed, ["outcome", "duration", "reason", "state", "next_attempt_at"])
    return len(changed)


def _place_due(bulk_id: int, now: datetime) -> tuple[int, int]:
    """Place the due destinations the window and the pace allow: (calls placed, destinations refused)."""
    bulk = BulkCall.objects.select_related("account", "app").get(pk=bulk_id)
    if bulk.status != BulkCall.Status.RUNNING or not bulk.account.is_active or not in_window(bulk, now):
        if bulk.last_dispatch_at is not None:
            # No credit piles up while nothing may be called.
            BulkCall.objects.filter(pk=bulk.pk).update(last_dispatch_at=None, pace_tokens=0)
        return 0, 0
    # The campaign's own pace: a token bucket refilled since the last pass, holding at most a second's worth
    # (and at least one call, so that rates under one per second ever place one).
    capacity = max(1.0, bulk.calls_per_second)
    if bulk.last_dispatch_at is None:
        tokens = capacity
    else:
        elapsed = max(0.0, (now - bulk.last_dispatch_at).total_seconds())
        tokens = min(capacity, bulk.pace_tokens + elapsed * bulk.calls_per_second)
    in_flight = BulkCallItem.objects.filter(bulk_call=bulk, state=BulkCallItem.State.CALLING).count()
    room = min(int(tokens), bulk.max_concurrent - in_flight, MAX_PLACED_PER_PASS)
    if room > 0:
        # The account's own pace is shared with its single calls: place no more than its queue takes in time.
        from telephony.services.outbound import outbound_queue_room

        room = min(room, outbound_queue_room(bulk.account, now=now))
    placed = refused = 0
    if room > 0:
        due = list(
            BulkCallItem.objects.filter(
                bulk_call=bulk, state=BulkCallItem.State.PENDING, next_attempt_at__lte=now
            ).order_by("next_attempt_at", "position")[:room]
        )
        for item in due:
            outcome = _place_one(bulk, item)
            placed += outcome == "placed"
            refused += outcome == "refused"
    BulkCall.objects.filter(pk=bulk.pk).update(last_dispatch_at=now, pace_tokens=max(0.0, tokens - placed))
    return placed, refused


def _place_one(bulk: BulkCall, item: BulkCallItem) -> str:
    """Place one attempt: "placed", "refused" (the destination policy said no: recorded as failed) or "gone"."""
    from telephony.services import outbound

    with transaction.atomic():
        locked = BulkCallItem.objects.select_for_update().filter(pk=item.pk, state=BulkCallItem.State.PENDING).first()
        if locked is None:  # canceled meanwhile
            return "gone"
        try:
            with transaction.atomic():
                call = outbound.call_place(
                    account=bulk.account,
                    actor="bulk_call",
                    from_=bulk.from_number,
                    to=locked.destination,
                    app=bulk.app,
                    xml=bulk.xml,
                    url=bulk.url,
                    method=bulk.method,
                    timeout_s=bulk.timeout_s,
                    time_limit_s=bulk.time_limit_s,
                    tag=bulk.tag,
                    bulk_call_item=locked,
                )
        except ValidationError as exc:
            locked.attempts += 1
            locked.state = BulkCallItem.State.DONE
            locked.outcome = "failed"
            locked.reason = "; ".join(exc.messages)[:300]
            locked.save(update_fields=["attempts", "state", "outcome", "reason"])
            logger.info("bulk call %s: %s refused: %s", bulk.public_id, locked.destination, exc.messages)
            return "refused"
        locked.attempts += 1
        locked.state = BulkCallItem.State.CALLING
        locked.last_call = call
        locked.outcome = ""
        locked.save(update_fields=["attempts", "state", "last_call", "outcome"])
    return "placed"


@transaction.atomic
def _announce(bulk_id: int, now: datetime) -> None:
    bulk = BulkCall.objects.select_for_update().get(pk=bulk_id)
    counts = bulk_call_counts(bulk)
    finished = counts["pending"] == 0 and counts["calling"] == 0
    if finished and bulk.status in (BulkCall.Status.RUNNING, BulkCall.Status.PAUSED):
        bulk.status = BulkCall.Status.COMPLETED
        bulk.completed_at = now
    changed = counts != bulk.last_progress
    if changed:
        bulk.last_progress = counts
        event_emit(account=bulk.account, type="bulk_call.progress", payload=bulk_call_payload(bulk, counts), obj=bulk)
    if finished and bulk.completed_at == now:
        event_emit(account=bulk.account, type="bulk_call.completed", payload=bulk_call_payload(bulk, counts), obj=bulk)
    if changed or bulk.completed_at == now:
        bulk.save(update_fields=["status", "completed_at", "last_progress", "updated_at"])


def bulk_calls_tick(now: datetime | None = None) -> int:
    """Dispatch every live campaign (running, paused, or canceled with calls still in flight); calls placed."""
    moment = now or timezone.now()
    live = list(
        BulkCall.objects.filter(status__in=[BulkCall.Status.RUNNING, BulkCall.Status.PAUSED]).values_list(
            "pk", flat=True
        )
    )
    # Canceled ones only while their last calls can still be up (the longest call there is, and a margin).
    in_flight = Exists(BulkCallItem.objects.filter(bulk_call=OuterRef("pk"), state=BulkCallItem.State.CALLING))
    recent = moment - timedelta(seconds=settings.CALL_MAX_LENGTH_S + 3600)
    live += (
        BulkCall.objects.filter(status=BulkCall.Status.CANCELED, completed_at__gte=recent)
        .filter(in_flight)
        .values_list("pk", flat=True)
    )
    return sum(bulk_call_dispatch(bulk_call_id=bulk_id, now=now) for bulk_id in live)


def kick(bulk_id: int) -> None:
    """Ask a worker to dispatch the campaign now, not at the next tick; a lost kick only costs that second."""
    try:
        from telephony.bulk_tasks import dispatch_bulk_call

        dispatch_bulk_call.delay(bulk_id)
    except Exception:  # the broker being down must not fail the request that changed the campaign
        logger.warning("bulk call kick for %s not sent; the periodic tick will pick it up", bulk_id, exc_info=True)

"""A bulk call's counts per outcome, its event payload, and its results as CSV."""

from __future__ import annotations

import csv
import io

from django.db.models import Count

from telephony.models import BulkCall, BulkCallItem

OUTCOMES = ("completed", "busy", "no-answer", "failed", "canceled", "do-not-call")


def bulk_call_counts(bulk: BulkCall) -> dict[str, int]:
    """Destinations by where they stand: pending, calling, and each final outcome."""
    counts = dict.fromkeys(("pending", "calling", *OUTCOMES), 0)
    rows = (
        BulkCallItem.objects.filter(bulk_call=bulk).values_list("state", "outcome").annotate(n=Count("id")).order_by()
    )
    for state, outcome, n in rows:
        if state in (BulkCallItem.State.PENDING, BulkCallItem.State.CALLING):
            counts[state] += n
        elif state == BulkCallItem.State.CANCELED:
            counts["canceled"] += n
        else:
            counts[outcome if outcome in counts else "failed"] += n
    return counts


def bulk_call_payload(bulk: BulkCall, counts: dict[str, int] | None = None) -> dict:
    counts = counts if counts is not None else bulk_call_counts(bulk)
    return {
        "bulk_call_id": str(bulk.public_id),
        "status": bulk.status,
        "from": bulk.from_number,
        "total": bulk.total,
        "invalid": bulk.invalid_count,
        "counts": counts,
        "done": sum(counts[name] for name in OUTCOMES),
    }


def bulk_call_results_csv(bulk: BulkCall, chunk_size: int = 2000):
    """The results as CSV lines (destination, attempts, final status, duration), streamed in position order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["position", "destination", "attempts", "status", "duration", "last_call_id", "reason"])
    yield buffer.getvalue()
    last = -1
    while True:
        rows = list(
            BulkCallItem.objects.filter(bulk_call=bulk, position__gt=last)
            .order_by("position")
            .values_list(
                "position", "destination", "attempts", "state", "outcome", "duration", "last_call__public_id", "reason"
            )[:chunk_size]
        )
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for position, destination, attempts, state, outcome, duration, call_id, reason in rows:
            status = outcome if state in ("done", "skipped") else state
            writer.writerow([position, destination, attempts, status, duration, call_id or "", reason])
        last = rows[-1][0]
        yield buffer.getvalue()

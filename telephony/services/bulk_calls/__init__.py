"""Bulk calls (campaigns): accepting one, pausing/resuming/canceling it, and the dispatcher that runs it.

Accepting is built for 100,000 destinations in a request: every destination is checked in one pass (E.164,
duplicates, the do-not-call list) without touching the database, the refused ones are reported with their
position, and the accepted ones are written in one bulk insert (COPY on PostgreSQL). Nothing is called yet.

The dispatcher (`bulk_call_dispatch`, run for every live campaign by the `bulk_calls_tick` task each second
and kicked after a change) does everything else, under a short claim of the campaign:
1. destinations whose call has ended get its outcome; a retry rule for that outcome puts them back in line
   `delay_s` later (same caller ID), until the rule's attempts are used up;
2. inside the calling window, due destinations are placed through `telephony.services.outbound.call_place`
   (so the account's own pacing and destination policy apply on top of the campaign's), at most
   `calls_per_second` per second and `max_concurrent` in flight;
3. changed counts raise `bulk_call.progress`; when every destination has a final outcome, `bulk_call.completed`.

One module per part: accept (checking and accepting), control (pause, resume, cancel), dispatch, progress.
"""

from __future__ import annotations

from telephony.services.bulk_calls.accept import (
    MAX_CALLS_PER_SECOND,
    MAX_CONCURRENT,
    MAX_DESTINATIONS,
    MAX_INVALID_REPORTED,
    bulk_call_create,
    check_destinations,
    normalize_destination,
)
from telephony.services.bulk_calls.control import bulk_call_cancel, bulk_call_pause, bulk_call_resume
from telephony.services.bulk_calls.dispatch import bulk_call_dispatch, bulk_calls_tick, in_window, kick
from telephony.services.bulk_calls.progress import OUTCOMES, bulk_call_counts, bulk_call_payload, bulk_call_results_csv

__all__ = [
    "MAX_CALLS_PER_SECOND",
    "MAX_CONCURRENT",
    "MAX_DESTINATIONS",
    "MAX_INVALID_REPORTED",
    "OUTCOMES",
    "bulk_call_cancel",
    "bulk_call_counts",
    "bulk_call_create",
    "bulk_call_dispatch",
    "bulk_call_pause",
    "bulk_call_payload",
    "bulk_call_results_csv",
    "bulk_call_resume",
    "bulk_calls_tick",
    "check_destinations",
    "in_window",
    "kick",
    "normalize_destination",
]

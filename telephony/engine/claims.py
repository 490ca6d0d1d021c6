"""Claims on calls: which worker may advance a call now, and the kick that asks one to.

A claim is `engine_claimed_until` on the A-leg: a lease taken with one conditional UPDATE and given back by the
step's final save. See runner.py for the whole picture.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from telephony.models import Call, CallWakeup

logger = logging.getLogger("telephony.engine")

FlowState = Call.FlowState


class LostClaim(Exception):
    """Another worker took the call over (this step outlived its claim); its writes are rolled back."""


# --- Scheduling ----------------------------------------------------------------------------------------


def kick(root_id: int, due_at: datetime | None = None) -> None:
    """Ask a worker to advance the call at `due_at` (now if None). Never raises; the sweeper is the safety net.

    Wake-ups further away than ENGINE_KICK_HORIZON_SECONDS are left to the sweeper: a broker holds a delayed
    message in a worker's memory, and hours-long countdowns (a call's maximum length) do not belong there.
    """
    delay = 0.0
    if due_at is not None:
        delay = (due_at - timezone.now()).total_seconds()
        if delay > settings.ENGINE_KICK_HORIZON_SECONDS:
            return
    from telephony.call_tasks import advance

    try:
        advance.apply_async((root_id,), countdown=delay if delay > 0.001 else None, retry=False)
    except Exception:  # a broker outage must not fail the request or the step that kicked
        logger.warning("Could not queue call %s; the sweeper will pick it up", root_id, exc_info=True)


def claim_update(sql: str, params: list) -> int:
    """Run a claim UPDATE as its own transaction, without waiting for the disk on PostgreSQL.

    A claim is a lease, not a fact about the call: if the database crashed before the WAL reached the disk,
    the claim would be lost with every connection of the worker that held it, and another worker would
    claim again, which is what a lapsed claim means anyway. The call's own state is always saved by a
    normal (synchronous) commit. Sparing the fsync here takes one or two disk flushes off every step.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql" and not db.in_atomic_block:
        sql += " AND set_config('synchronous_commit', 'off', true) IS NOT NULL"
    with db.cursor() as cursor:
        cursor.execute(sql, [db.ops.adapt_datetimefield_value(p) if isinstance(p, datetime) else p for p in params])
        return cursor.rowcount


_TABLE = Call._meta.db_table
# A claim is only taken when there is work: the flow runs, or a wake-up is due (with a few ms of tolerance for a
# countdown that fires a hair early). A duplicate or stale task therefore costs one UPDATE that changes nothing.
CLAIM_SQL = (
    f"UPDATE {_TABLE} SET engine_claimed_until = %s "  # noqa: S608 - our table names
    "WHERE id = %s AND (engine_claimed_until IS NULL OR engine_claimed_until < %s) AND (flow_state = %s OR EXISTS "
    f"(SELECT 1 FROM {CallWakeup._meta.db_table} WHERE root_id = %s AND due_at <= %s))"
)
EXTEND_SQL = f"UPDATE {_TABLE} SET engine_claimed_until = %s WHERE id = %s AND engine_claimed_until = %s"  # noqa: S608
# Work due this soon counts as due now: a countdown task may fire a hair early, and a step waits that long in
# place rather than let go and be woken again. The same horizon decides whether to claim, what a step loads
# and what it waits for in place: were they to differ, a step could claim for a wake-up it then does not apply.
MIN_HORIZON = timedelta(milliseconds=5)


def due_horizon() -> timedelta:
    return max(MIN_HORIZON, timedelta(milliseconds=settings.ENGINE_INLINE_WAIT_MS))


def claim(call_id: int) -> datetime | None:
    """Claim the call if it has work now and no live claim; the lease's end, or None."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.ENGINE_CLAIM_LEASE_SECONDS)
    due = now + due_horizon()
    claimed = claim_update(CLAIM_SQL, [until, call_id, now, FlowState.RUNNING.value, call_id, due])
    return until if claimed == 1 else None

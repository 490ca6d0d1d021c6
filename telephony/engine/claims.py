"""Claims on calls: which worker may advance a call now, and the kick that asks one to.

A claim is `engine_claimed_until` on the A-leg: a lease taken with one conditional UPDATE and given back by the
step's final save. See runner.py for the whole picture.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from django.utils.dateparse import parse_datetime

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


_UNSYNCED = "AND set_config('synchronous_commit', 'off', true) IS NOT NULL"


def claim_update(sql: str, params: list) -> int:
    """Run a claim UPDATE as its own transaction, without waiting for the disk on PostgreSQL.

    A claim is a lease, not a fact about the call: if the database crashed before the WAL reached the disk,
    the claim would be lost with every connection of the worker that held it, and another worker would
    claim again, which is what a lapsed claim means anyway. The call's own state is always saved by a
    normal (synchronous) commit. Sparing the fsync here takes one or two disk flushes off every step.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql" and not db.in_atomic_block:
        sql += " " + _UNSYNCED
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


# --- Claiming and loading -------------------------------------------------------------------------------------
# A step needs the A-leg with its account, app, number and SIP user, and the wake-ups due. The ORM spends more
# CPU building those queries than the database spends answering them, and each statement is a round trip that,
# on a busy machine, waits for the database process to be scheduled. So the SQL is built once per process from
# the models' metadata, rows become model instances through the fields' own converters (as the ORM does), and the
# call, its relations and (on PostgreSQL) its due wake-ups come in one SELECT after the claim.

LOADED_RELATIONS = ("account", "app", "phone_number", "sip_user")
_DUE_WAKEUPS_JSON = (
    "(SELECT json_agg(json_build_array(w.id, w.leg_id, w.kind, w.event, w.data, w.due_at, w.created_at) "  # noqa: S608
    f"ORDER BY w.due_at, w.id) FROM {CallWakeup._meta.db_table} w WHERE w.root_id = t0.id AND w.due_at <= %s)"
)


@dataclass
class Claimed:
    """A claim just taken, with what the step needs to start (see Step)."""

    lease: datetime
    root: Call
    wakeups: list[CallWakeup]


class _Loader:
    """The A-leg and its related rows (LOADED_RELATIONS) from one SELECT, for one database connection."""

    def __init__(self, connection):
        self.alias = connection.alias
        quote = connection.ops.quote_name
        self.parts = []  # (model, field names, converters per column, relation field or None)
        columns, joins = [], []
        for index, relation in enumerate((None, *LOADED_RELATIONS)):
            field = Call._meta.get_field(relation) if relation else None
            model = field.related_model if field else Call
            alias = f"t{index}"
            fields = model._meta.concrete_fields
            converters = []
            for column in fields:
                col = column.get_col(alias)
                chain = connection.ops.get_db_converters(col) + column.get_db_converters(connection)
                converters.append((col, chain))
                columns.append(f"{alias}.{quote(column.column)}")
            self.parts.append((model, [f.attname for f in fields], converters, field))
            if field is not None:
                kind = "INNER" if not field.null else "LEFT OUTER"
                joins.append(
                    f"{kind} JOIN {quote(model._meta.db_table)} {alias} "
                    f"ON {alias}.{quote(field.target_field.column)} = t0.{quote(field.column)}"
                )
        self.columns = ", ".join(columns)
        self.joins = " ".join(joins)
        self.table = quote(Call._meta.db_table)
        self.width = len(columns)

    def select(self, where: str, extra: str = "") -> str:
        """The SELECT of the call and its relations; `extra`: one more column after them."""
        extra = f", {extra}" if extra else ""
        return f"SELECT {self.columns}{extra} FROM {self.table} t0 {self.joins} WHERE {where}"  # noqa: S608 - ours

    def build(self, row, connection) -> Call:
        instances, offset = [], 0
        for model, names, converters, field in self.parts:
            values = list(row[offset : offset + len(names)])
            offset += len(names)
            for position, (col, chain) in enumerate(converters):
                if chain:
                    value = values[position]
                    for convert in chain:
                        value = convert(value, col, connection)
                    values[position] = value
            if field is not None and values[0] is None:  # no related row (a null foreign key)
                instances.append((field, None))
                continue
            instance = model.from_db(self.alias, names, values)
            instances.append((field, instance))
        root = instances[0][1]
        for field, instance in instances[1:]:
            field.set_cached_value(root, instance)
        return root


_loaders: dict[str, _Loader] = {}


def _loader(connection) -> _Loader:
    loader = _loaders.get(connection.alias)
    if loader is None:
        loader = _loaders[connection.alias] = _Loader(connection)
    return loader


def _wakeup_from_json(root_id: int, item: list) -> CallWakeup:
    pk, leg_id, kind, event, data, due_at, created_at = item
    wakeup = CallWakeup(
        id=pk,
        root_id=root_id,
        leg_id=leg_id,
        kind=kind,
        event=event,
        data=data if data is not None else {},
        due_at=datetime.fromisoformat(due_at),
        created_at=datetime.fromisoformat(created_at),
    )
    wakeup._state.adding = False
    wakeup._state.db = DEFAULT_DB_ALIAS
    return wakeup


def claim_and_load(call_id: int) -> Claimed | None:
    """`claim` and, when it succeeds, the call (with LOADED_RELATIONS) and its due wake-ups in time order.

    Two statements: the claim, then one SELECT (on PostgreSQL the due wake-ups come in it, aggregated as JSON).
    Not one: a statement reads one snapshot, taken before its UPDATE may have waited for the previous holder's
    save to commit, so a SELECT in the claim's own statement could read the call and wake-ups as they were before
    that save, and repeat the step it saved.
    """
    db = connections[DEFAULT_DB_ALIAS]
    loader = _loader(db)
    now = timezone.now()
    until = now + timedelta(seconds=settings.ENGINE_CLAIM_LEASE_SECONDS)
    due = now + due_horizon()
    if claim_update(CLAIM_SQL, [until, call_id, now, FlowState.RUNNING.value, call_id, due]) != 1:
        return None
    postgresql = db.vendor == "postgresql"
    with db.cursor() as cursor:
        if postgresql:
            cursor.execute(
                loader.select("t0.id = %s", extra=_DUE_WAKEUPS_JSON), [db.ops.adapt_datetimefield_value(due), call_id]
            )
        else:
            cursor.execute(loader.select("t0.id = %s"), [call_id])
        row = cursor.fetchone()
    if row is None:
        return None
    root = loader.build(row[: loader.width], db)
    if postgresql:
        raw = row[loader.width]
        if isinstance(raw, str):
            raw = json.loads(raw)
        wakeups = [_wakeup_from_json(call_id, item) for item in raw or ()]
    else:
        wakeups = list(CallWakeup.objects.filter(root_id=call_id, due_at__lte=due).order_by("due_at", "id"))
    return Claimed(until, root, wakeups)


# --- Giving the claim back ------------------------------------------------------------------------------------


def _placeholders(values: list) -> str:
    return ", ".join(["%s"] * len(values))


def release(
    root: Call, lease: datetime, values: dict, *, consumed: list[int], due_by: datetime | None
) -> tuple[bool, datetime | None]:
    """Save the A-leg's `values` and give the claim back, if it is still ours (else LostClaim); call inside the
    step's transaction, before anything else it writes, so a lost claim rolls everything back.

    Returns (arrived, next_due), both about the wake-ups saved before this step other than `consumed` (with
    due_by None, (False, None): not looked at). `arrived`: one falls due by `due_by`, i.e. it arrived while the
    step held the claim and its task found the call claimed and left it to this worker; the same statement
    answers, so the usual step (nothing arrived) does not spend a round trip claiming again for nothing.
    `next_due`: the earliest of them. A step that consumed the wake-up a countdown task announced must announce
    the next one itself (a switch reports "ringing" and "answered" in one go, and only the earlier gets a task),
    or it would wait for the sweeper. A wake-up committed after this statement has a task whose claim waits on
    the row until the step commits.
    """
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    assignments, params = [f"{quote('engine_claimed_until')} = NULL"], []
    for name, value in values.items():
        field = Call._meta.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, db))
    params += [root.pk, db.ops.adapt_datetimefield_value(lease)]
    returning = "NULL"
    if due_by is not None:
        returning = f"(SELECT MIN(w.due_at) FROM {CallWakeup._meta.db_table} w WHERE w.root_id = %s"  # noqa: S608
        params.append(root.pk)
        if consumed:
            returning += f" AND w.id NOT IN ({_placeholders(consumed)})"
            params += consumed
        returning += ")"
    sql = (
        f"UPDATE {_TABLE} SET {', '.join(assignments)} WHERE id = %s AND engine_claimed_until = %s "  # noqa: S608
        f"RETURNING {returning}"
    )
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        raise LostClaim()
    next_due = _as_datetime(row[0])
    return (next_due is not None and due_by is not None and next_due <= due_by), next_due


def _as_datetime(value) -> datetime | None:
    """A timestamp read by raw SQL: PostgreSQL gives a datetime, SQLite the text Django stored (UTC)."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(value)
    return parsed if parsed is None or parsed.tzinfo else parsed.replace(tzinfo=UTC)


def delete_wakeups(root_id: int, *, ids: list[int] = (), all_but_recordings: bool = False) -> None:
    """Delete the wake-ups `ids` of a call tree, and with `all_but_recordings` every other one except the reports of
    recordings (a recording stopped as the call ended still brings its file)."""
    clauses, params = [], [root_id]
    if ids:
        clauses.append(f"id IN ({_placeholders(ids)})")
        params += list(ids)
    if all_but_recordings:
        clauses.append("event <> %s")
        params.append("record_done")
    if not clauses:
        return
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {CallWakeup._meta.db_table} WHERE root_id = %s AND ({' OR '.join(clauses)})",  # noqa: S608
            params,
        )

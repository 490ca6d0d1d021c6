"""What one engine step (or one call service) changes, collected in memory and written in one transaction.

A step runs commands that wait on HTTP and on the switch, so it cannot hold a database transaction open; it
collects its writes here instead: new legs, changed leg fields, events, status callbacks, wake-ups to
schedule, wake-ups it consumed, HTTP request records. `flush()` writes them all inside the caller's
transaction, and queues the wake-up kicks for after the commit, so a crash at any point before the commit
leaves the call exactly as it was (and the next worker repeats the step).

`current_step()` is how `switch_leg_event` knows that a report comes from inside a step of the same call (the
simulated switch reports as it is commanded) and belongs in that step's writes.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction

if TYPE_CHECKING:
    from telephony.models import Call, CallHttpRequest, CallWakeup
    from tenants.models import Account

logger = logging.getLogger("telephony.engine")

_current: contextvars.ContextVar[Any] = contextvars.ContextVar("call_engine_step", default=None)


def current_step():
    """The engine step running in this thread, if any (an object with `.root_id` and `.effects`)."""
    return _current.get()


def enter_step(step) -> contextvars.Token:
    return _current.set(step)


def leave_step(token: contextvars.Token) -> None:
    _current.reset(token)


@dataclass
class PendingEvent:
    account: Account
    type: str
    payload: dict
    object_id: str
    occurred_at: datetime


@dataclass
class PendingCallback:
    account: Account
    url: str
    method: str
    params: dict[str, str]
    call: Call


@dataclass
class Effects:
    """The writes of one step, applied by `flush()` inside one transaction."""

    root_id: int | None = None
    new_legs: list[Call] = field(default_factory=list)
    # id(leg) -> (leg, fields changed); a step saves its root itself (a conditional update).
    dirty: dict[int, tuple[Call, set[str]]] = field(default_factory=dict)
    events: list[PendingEvent] = field(default_factory=list)
    callbacks: list[PendingCallback] = field(default_factory=list)
    wakeups: list[CallWakeup] = field(default_factory=list)
    consumed: list[int] = field(default_factory=list)
    http: list[CallHttpRequest] = field(default_factory=list)
    writes: list = field(default_factory=list)

    def touch(self, leg: Call, *fields: str) -> None:
        entry = self.dirty.get(id(leg))
        if entry is None:
            self.dirty[id(leg)] = (leg, set(fields))
        else:
            entry[1].update(fields)

    def take_dirty(self, leg: Call) -> set[str]:
        entry = self.dirty.pop(id(leg), None)
        return entry[1] if entry else set()

    def flush(self) -> None:
        """Write everything; call inside a transaction."""
        from telephony.models import CallHttpRequest
        from telephony.services.events import event_emit_many

        new_ids = {id(leg) for leg in self.new_legs}
        for leg in self.new_legs:
            insert_leg(leg)
        for key, (leg, fields) in self.dirty.items():
            if key not in new_ids and fields:
                leg.save(update_fields=sorted(fields))
        if self.wakeups:
            insert_rows(self.wakeups)
        if self.consumed:
            from telephony.engine.claims import delete_wakeups

            delete_wakeups(self.root_id, ids=self.consumed)  # only a step (with its root) consumes wake-ups
        if self.http:
            CallHttpRequest.objects.bulk_create(self.http)
        if self.events:
            event_emit_many(
                [(e.account, e.type, e.payload, e.type.split(".", 1)[0], e.object_id, e.occurred_at)
                 for e in self.events]
            )  # fmt: skip
        if self.callbacks:
            _enqueue_callbacks(self.callbacks)
        for write in self.writes:
            write()
        if self.wakeups:
            earliest: dict[int, datetime] = {}
            for wakeup in self.wakeups:
                root = wakeup.root_id
                if root not in earliest or wakeup.due_at < earliest[root]:
                    earliest[root] = wakeup.due_at
            transaction.on_commit(lambda: _kick_all(earliest))


_INSERTS: dict[tuple[str, type, int], tuple[str, list]] = {}


def insert_leg(leg: Call) -> None:
    """`leg.save(force_insert=True)`, without building the INSERT each time on PostgreSQL."""
    insert_rows([leg])


def insert_rows(rows: list) -> None:
    """Save new rows of one model in one prepared INSERT on PostgreSQL (ids set on them, as bulk_create does).

    Every call writes one or two legs and a wake-up; the ORM compiled a 30-column INSERT and quoted its values in
    Python for each (about a third of an inbound call's writes). The statement text is built once per model and
    row count, the values are prepared by the fields as save() would, and bound by the server.
    """
    from django.db import DEFAULT_DB_ALIAS, connections

    if not rows:
        return
    model = type(rows[0])
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        if len(rows) == 1:
            rows[0].save(force_insert=True)
        else:
            model.objects.bulk_create(rows)
        return
    from telephony.screening import hot_cursor, hot_execute

    key = (db.alias, model, len(rows))
    statement = _INSERTS.get(key)
    if statement is None:
        meta = model._meta
        fields = [field for field in meta.concrete_fields if not field.primary_key]
        columns = ", ".join(db.ops.quote_name(field.column) for field in fields)
        values = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(rows))
        statement = _INSERTS[key] = (
            f"INSERT INTO {meta.db_table} ({columns}) VALUES {values} RETURNING id",  # noqa: S608 - our table
            fields,
        )
    sql, fields = statement
    params = []
    for row in rows:
        row._prepare_related_fields_for_save(operation_name="save")  # parent_id from a parent saved just before
        params.extend(field.get_db_prep_save(field.pre_save(row, True), db) for field in fields)
    with hot_cursor(db) as cursor:
        hot_execute(cursor, sql, params)
        ids = [pk for (pk,) in cursor.fetchall()]
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding = False
        row._state.db = db.alias


def _kick_all(earliest: dict[int, datetime]) -> None:
    from telephony.engine.runner import kick

    for root_id, due_at in earliest.items():
        kick(root_id, due_at)


def _enqueue_callbacks(callbacks: list[PendingCallback]) -> None:
    """The step's status callbacks, as Delivery rows of the webhook engine (one INSERT for the step)."""
    from telephony.services.callbacks import CallbackRequest, callback_enqueue_many

    callback_enqueue_many(
        [
            CallbackRequest(
                account=callback.account,
                url=callback.url,
                method=callback.method,
                params=callback.params,
                kind="status_callback",
                call=callback.call,
            )
            for callback in callbacks
        ],
        skip_invalid=True,
    )

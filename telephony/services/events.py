"""The outbox: `event_emit` writes an Event, and a Delivery for each subscribed endpoint, in the caller's transaction.

Nothing leaves the process from inside the transaction. After it commits, one kick per transaction wakes
a delivery worker; if the kick is lost (broker down, process killed between commit and publish) the
periodic sweeper finds the due deliveries anyway, because the database is the queue.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from telephony import event_types
from telephony.hot_sql import hot_cursor, hot_execute
from telephony.models import Delivery, DeliveryAttempt, Event, EventSequence, WebhookEndpoint
from telephony.stream import notify_stream_on_commit
from tenants.models import Account

logger = logging.getLogger(__name__)

# How long a published kick suppresses further kicks: a worker clears it when it starts, so this only
# bounds the damage of a kick message that got lost.
KICK_TTL_SECONDS = 2


def _next_sequence(object_type: str, object_id: str) -> int:
    # One statement that creates or bumps the counter and returns the new value: the row lock it takes
    # serialises concurrent emitters for the same object, so a sequence number is never handed out twice.
    # ON CONFLICT ... RETURNING works on PostgreSQL and on SQLite >= 3.35.
    table = EventSequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (object_type, object_id, last) VALUES (%s, %s, 1) "  # noqa: S608 - table name is ours
            f"ON CONFLICT (object_type, object_id) DO UPDATE SET last = {table}.last + 1 RETURNING last",
            [object_type, object_id],
        )
        return cursor.fetchone()[0]


def event_emit(
    *,
    account: Account,
    type: str,  # the event's field is called type everywhere
    payload: dict,
    obj=None,
    object_type: str | None = None,
    object_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """Record that something happened. Call inside the transaction that makes the change.

    The object defaults to `obj` (its public id), typed by the event's prefix (`number.ordered` -> number);
    without any object the event is about the account itself. Raises ValueError for a type that is not in
    the catalogue: that is a bug in the caller, not bad input.
    """
    event_types.require(type)
    if object_id is None:
        if obj is not None:
            object_id = str(getattr(obj, "public_id", None) or obj.pk)
        else:
            object_type, object_id = object_type or "account", str(account.public_id)
    object_type = object_type or type.split(".", 1)[0]
    if connection.in_atomic_block:
        return _emit(account, type, payload, object_type, object_id, occurred_at)
    # Outside a transaction the event and its deliveries still go in together.
    with transaction.atomic():
        return _emit(account, type, payload, object_type, object_id, occurred_at)


def _emit(account, type_, payload, object_type, object_id, occurred_at) -> Event:
    now = timezone.now()
    object_type, object_id = object_type[:64], object_id[:64]
    notify_stream_on_commit(account.pk)  # wakes the account's websocket connections after commit
    if connection.vendor == "postgresql":
        event, deliveries = _emit_postgresql(account, type_, payload, object_type, object_id, occurred_at or now, now)
    else:
        event, deliveries = _emit_portable(account, type_, payload, object_type, object_id, occurred_at or now, now)
    if deliveries:
        kick_after_commit()
    return event


def _emit_portable(account, type_, payload, object_type, object_id, occurred_at, now) -> tuple[Event, int]:
    # No full_clean(): every value here is produced by code, and its validation would cost two queries per
    # event (the unique checks) that the database's own constraints already enforce.
    event = Event(
        account=account,
        type=type_,
        occurred_at=occurred_at,
        created_at=now,
        object_type=object_type,
        object_id=object_id,
        sequence=_next_sequence(object_type, object_id),
        payload=payload,
    )
    event.save(force_insert=True)
    subscribed = WebhookEndpoint.objects.filter(account=account, enabled=True)
    if object_type == "endpoint":
        # An endpoint is not told about itself (its own creation, its own secret rotation): the others are.
        subscribed = subscribed.exclude(public_id=object_id)
    endpoints = [
        endpoint_id
        for endpoint_id, patterns in subscribed.values_list("id", "event_types")
        if event_types.matches_any(patterns or (), type_)
    ]
    Delivery.objects.bulk_create(
        [
            Delivery(account=account, event=event, endpoint_id=endpoint_id, next_attempt_at=now, created_at=now)
            for endpoint_id in endpoints
        ]
    )
    return event, len(endpoints)


def _emit_postgresql(account, type_, payload, object_type, object_id, occurred_at, now) -> tuple[Event, int]:
    """The same rows as `_emit_portable`, in one statement: one round trip per state change instead of four.

    An endpoint's filter matches a type exactly when its list holds "*", the type's family ("call.*") or the
    type itself, which is what jsonb's `?|` asks: the same rule as event_types.matches, in SQL.
    """
    public_id = uuid.uuid4()
    prefix = type_.split(".", 1)[0]
    with connection.cursor() as cursor:
        cursor.execute(
            _EMIT_SQL,
            {
                "account": account.pk,
                "public_id": public_id,
                "type": type_,
                "occurred_at": occurred_at,
                "now": now,
                "object_type": object_type,
                "object_id": object_id,
                "payload": json.dumps(payload, cls=DjangoJSONEncoder),
                "patterns": ["*", f"{prefix}.*", type_],
                "self": object_id if object_type == "endpoint" else "",
            },
        )
        event_pk, sequence, deliveries = cursor.fetchone()
    event = Event(
        pk=event_pk,
        account=account,
        public_id=public_id,
        type=type_,
        occurred_at=occurred_at,
        created_at=now,
        object_type=object_type,
        object_id=object_id,
        sequence=sequence,
        payload=payload,
    )
    event._state.adding = False
    event._state.db = connection.alias
    return event, deliveries


_EMIT_SQL = f"""
WITH seq AS (
    INSERT INTO {EventSequence._meta.db_table} (object_type, object_id, last)
    VALUES (%(object_type)s, %(object_id)s, 1)
    ON CONFLICT (object_type, object_id) DO UPDATE SET last = {EventSequence._meta.db_table}.last + 1
    RETURNING last
), event AS (
    INSERT INTO {Event._meta.db_table}
        (account_id, public_id, type, occurred_at, created_at, object_type, object_id, sequence, payload)
    SELECT %(account)s, %(public_id)s, %(type)s, %(occurred_at)s, %(now)s, %(object_type)s, %(object_id)s,
        seq.last, %(payload)s::jsonb
    FROM seq
    RETURNING id, sequence
), delivery AS (
    INSERT INTO {Delivery._meta.db_table}
        (account_id, public_id, event_id, endpoint_id, kind, status, attempt_count, retry_index, next_attempt_at,
         trigger, last_error, created_at)
    SELECT %(account)s, gen_random_uuid(), event.id, endpoint.id, 'event', 'pending', 0, 0, %(now)s,
        'scheduled', '', %(now)s
    FROM event, {WebhookEndpoint._meta.db_table} endpoint
    WHERE endpoint.account_id = %(account)s AND endpoint.enabled AND endpoint.event_types ?| %(patterns)s
        AND endpoint.public_id::text <> %(self)s
    RETURNING 1
)
SELECT event.id, event.sequence, (SELECT count(*) FROM delivery) FROM event
"""  # noqa: S608 - table names are ours; every value is a parameter


def event_emit_many(events: list[tuple[Account, str, dict, str, str, datetime | None]]) -> list[Event]:
    """`event_emit` for several events at once: (account, type, payload, object_type, object_id, occurred_at) each.

    Same rows and the same effects as emitting them one by one, in order, but one sequence statement per
    object (a block of numbers), one INSERT for the events and one endpoint lookup per account, instead of
    three statements per event: a call engine step raises about ten. Call inside the transaction that makes
    the change. Events about webhook endpoints go through `event_emit` (they exclude their own endpoint).
    """
    if not events:
        return []
    if not connection.in_atomic_block:
        with transaction.atomic():
            return event_emit_many(events)
    now = timezone.now()
    single = [event for event in events if event[3] == "endpoint"]
    events = [event for event in events if event[3] != "endpoint"]
    counts: dict[tuple[str, str], int] = {}
    for _, type_, _, object_type, object_id, _ in events:
        event_types.require(type_)
        key = (object_type[:64], object_id[:64])
        counts[key] = counts.get(key, 0) + 1
    next_number = _reserve_sequences(counts)
    rows: list[Event] = []
    for account, type_, payload, object_type, object_id, occurred_at in events:
        key = (object_type[:64], object_id[:64])
        sequence = next_number[key]
        next_number[key] = sequence + 1
        rows.append(
            Event(
                account=account,
                type=type_,
                occurred_at=occurred_at or now,
                created_at=now,
                object_type=key[0],
                object_id=key[1],
                sequence=sequence,
                payload=payload,
            )
        )
    _insert_events(rows)
    deliveries: list[Delivery] = []
    for account_id in {row.account_id for row in rows}:
        account = next(row.account for row in rows if row.account_id == account_id)
        notify_stream_on_commit(account_id)
        subscribed = _subscribed_endpoints(account_id)
        for row in rows:
            if row.account_id != account_id:
                continue
            for endpoint_id, patterns in subscribed:
                if event_types.matches_any(patterns or (), row.type):
                    deliveries.append(
                        Delivery(account=account, event=row, endpoint_id=endpoint_id, next_attempt_at=now,
                                 created_at=now)
                    )  # fmt: skip
    if deliveries:
        Delivery.objects.bulk_create(deliveries)
        kick_after_commit()
    emitted = list(rows)
    for account, type_, payload, object_type, object_id, occurred_at in single:
        emitted.append(event_emit(account=account, type=type_, payload=payload, object_type=object_type,
                                  object_id=object_id, occurred_at=occurred_at))  # fmt: skip
    return emitted


def _reserve_sequences(counts: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """The first of `count` new sequence numbers for each (object_type, object_id): one statement for all of them.

    A call's legs each raise events, so a decision touches two or three objects; a statement each was a round trip
    each. Objects are taken in a fixed order so that two transactions lock their counters in the same order."""

    table = EventSequence._meta.db_table
    keys = sorted(counts)
    if connection.vendor != "postgresql":
        sql = (
            f"INSERT INTO {table} (object_type, object_id, last) VALUES (%s, %s, %s) "  # noqa: S608 - our table
            f"ON CONFLICT (object_type, object_id) DO UPDATE SET last = {table}.last + %s RETURNING last"
        )
        found = {}
        with connection.cursor() as cursor:
            for key in keys:
                cursor.execute(sql, [*key, counts[key], counts[key]])
                found[key] = cursor.fetchone()[0] - counts[key] + 1
        return found
    values = ", ".join(["(%s, %s, %s)"] * len(keys))
    params = [value for key in keys for value in (*key, counts[key])]
    with hot_cursor(connection) as cursor:
        hot_execute(
            cursor,
            f"INSERT INTO {table} AS s (object_type, object_id, last) VALUES {values} "  # noqa: S608 - our table
            "ON CONFLICT (object_type, object_id) DO UPDATE SET last = s.last + excluded.last "
            "RETURNING object_type, object_id, last",
            params,
        )
        return {(kind, pk): last - counts[(kind, pk)] + 1 for kind, pk, last in cursor.fetchall()}


def _subscribed_endpoints(account_id: int) -> list[tuple[int, list]]:
    """(id, event_types) of the account's enabled webhook endpoints, read without the ORM's compiler (every call
    step and inbound decision asks)."""
    if connection.vendor != "postgresql":
        return list(
            WebhookEndpoint.objects.filter(account_id=account_id, enabled=True).values_list("id", "event_types")
        )

    with hot_cursor(connection) as cursor:
        hot_execute(
            cursor,
            f"SELECT id, event_types FROM {WebhookEndpoint._meta.db_table} "  # noqa: S608 - our table
            "WHERE account_id = %s AND enabled",
            [account_id],
        )
        # The portal's connections read jsonb as text (Django's JSONField decodes it).
        return [(pk, json.loads(types) if isinstance(types, str) else types) for pk, types in cursor.fetchall()]


def _insert_events(rows: list[Event]) -> None:
    """`Event.objects.bulk_create(rows)`, cheaper on PostgreSQL, where it would send the rows as arrays (UNNEST) that
    a client-side cursor quotes element by element in Python: about 1 ms for a call step's ten events, against
    about half that for one multi-row INSERT. The rows get their ids, in order, as bulk_create gives them."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        Event.objects.bulk_create(rows)
        return
    fields = [field for field in Event._meta.concrete_fields if not field.primary_key]
    params = []
    for row in rows:
        params.extend(field.get_db_prep_save(field.pre_save(row, True), connection) for field in fields)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    values = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(rows))

    # Prepared: one statement per number of rows, and a step or a call raises one to a dozen events.
    with hot_cursor(connection) as cursor:
        hot_execute(
            cursor,
            f"INSERT INTO {Event._meta.db_table} ({columns}) VALUES {values} RETURNING id",  # noqa: S608 - ours
            params,
        )
        ids = [pk for (pk,) in cursor.fetchall()]
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding = False
        row._state.db = connection.alias


# --- Waking the workers ----------------------------------------------------------------------------


def _kick_key() -> str:
    # Scoped to the database, so environments (or test runs) that share one Redis do not hush each other.
    name = str(settings.DATABASES["default"].get("NAME", ""))
    return f"webhooks:kick:{hashlib.sha1(name.encode()).hexdigest()[:12]}"  # noqa: S324 - a key, not security


def clear_kick() -> None:
    """Called by a worker as it starts looking for due deliveries: any commit after this kicks again."""
    try:
        cache.delete(_kick_key())
    except Exception:  # a cache outage must not stop delivery; the sweeper covers it
        logger.warning("Could not clear the webhook kick flag", exc_info=True)


def kick(*, force: bool = False) -> None:
    """Ask a worker to deliver what is due, unless a request is already waiting. Never raises."""
    try:
        first = cache.add(_kick_key(), 1, timeout=KICK_TTL_SECONDS)
    except Exception:
        logger.warning("Could not set the webhook kick flag", exc_info=True)
        first = True
    if not (first or force):
        return
    from telephony.webhook_tasks import deliver_due  # a task module importing services; import here, not above

    try:
        # No publish retries: a committed event must never turn its request into an error, and the sweeper
        # delivers it within seconds if this message never makes it.
        deliver_due.apply_async(retry=False)
    except Exception:
        logger.warning("Could not publish a webhook delivery task; the sweeper will pick the work up", exc_info=True)


def _kick_on_commit() -> None:
    kick()


def kick_after_commit() -> None:
    """One kick per transaction, however many events it emits."""
    if connection.in_atomic_block and any(callback is _kick_on_commit for _, callback, _ in connection.run_on_commit):
        return
    transaction.on_commit(_kick_on_commit)


# --- Retention -------------------------------------------------------------------------------------


def events_purge_expired(*, now: datetime | None = None, batch_size: int = 2000) -> int:
    """Delete events older than EVENT_RETENTION_DAYS with their deliveries and attempts. Returns events deleted.

    Works in small batches, each its own transaction, so it never holds long locks on a busy table.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.EVENT_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(
            Event.objects.filter(created_at__lt=cutoff).order_by("created_at").values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            break
        with transaction.atomic():
            DeliveryAttempt.objects.filter(delivery__event_id__in=ids).delete()
            Delivery.objects.filter(event_id__in=ids).delete()
            deleted += Event.objects.filter(id__in=ids).delete()[0]
    while True:
        ids = list(
            Delivery.objects.filter(kind=Delivery.Kind.TEST, created_at__lt=cutoff).values_list("id", flat=True)[
                :batch_size
            ]
        )
        if not ids:
            break
        with transaction.atomic():
            DeliveryAttempt.objects.filter(delivery_id__in=ids).delete()
            Delivery.objects.filter(id__in=ids).delete()
    return deleted

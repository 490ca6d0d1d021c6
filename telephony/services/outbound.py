"""Placing calls: validation, destination policy and the account's pace, then the queued A-leg for the engine.

    call = call_place(account=account, actor=key, from_="+12015550100", to="+12015550123", xml="<Response>...")

A placed call is an `outbound-api` A-leg in status `queued`. It takes the account's next dispatch slot (one
every 1/calls_per_second seconds, OutboundPolicy) under a lock of the account's policy row, so single calls and
bulk campaigns (telephony.services.bulk_calls places through here) share one pace; on PostgreSQL one statement
takes it, so the lock is held for that statement only (see call_place). The slot is a durable
wake-up of the call (CallWakeup kind `control`, action `dispatch`), applied by the engine under the call's
claim (telephony/engine/control.py): there the concurrent call limit is checked (a call over it waits, re-checked
until its queue deadline), the leg is initiated and originated through the switch, and when the far end
answers the flow (an app, inline XML or a URL fetched then) runs like an inbound call's. A call whose slot lies
further away than the account's maximum queue wait fails at once, with the reason, rather than waiting for a
deadline it cannot meet.

Live control (hangup, redirect, play, send-digits, bridge) writes a control wake-up too: a running call is only
ever changed by the worker holding its claim. Acting on a finished call raises CallFinished (the API's 409).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.utils import timezone

from telephony import callflow
from telephony.callflow.tags import E164, SIP_URI, normalize_number
from telephony.engine.context import Effects, PendingEvent
from telephony.models import Call, CallControlApp, CallStatus, CallWakeup, OutboundPolicy, PhoneNumber, SipUser
from telephony.services.calls import STATUS_CALLBACK_EVENTS, call_payload, leg_transition
from telephony.services.sip.rules import FieldErrors
from telephony.switch import get_switch
from telephony.urlpolicy import validate_customer_url
from tenants.models import Account
from tenants.services import actor_label, audit_record

logger = logging.getLogger("telephony.outbound")

METHODS = ("GET", "POST")
MAX_TIMEOUT_S = 600
CONTROL_ACTIONS = ("hangup", "redirect", "play", "send_digits")
DIGITS_ALLOWED = set("0123456789*#ABCDwW")


class CallFinished(Exception):
    """The call has ended: it cannot be controlled any more (the API's 409)."""

    def __init__(self, call: Call, message: str = ""):
        self.call = call
        super().__init__(message or f"The call has already ended ({call.status}); it cannot be changed.")


class CallNotControllable(Exception):
    """The call is live but cannot take this action now (not answered yet, a Dial's leg): the API's 409."""


def _label(actor) -> str:
    return actor if isinstance(actor, str) else actor_label(actor)


# --- Policy and pacing ----------------------------------------------------------------------------------------


def policy_for(account: Account, *, lock: bool = False) -> OutboundPolicy:
    """The account's policy row (created with every field empty, i.e. the settings, on first use)."""
    manager = OutboundPolicy.objects.select_for_update() if lock else OutboundPolicy.objects
    policy = manager.filter(account=account).first()
    if policy is not None:
        return policy
    try:
        with transaction.atomic():
            OutboundPolicy.objects.create(account=account)
    except IntegrityError:  # created by a concurrent call just now
        pass
    return manager.get(account=account)


def destination_refusal(policy: OutboundPolicy, to: str) -> tuple[str, str] | None:
    """(code, message) if the policy forbids calling `to` (an E.164 number), else None. SIP URIs are not checked."""
    if not to.startswith("+"):
        return None
    if not policy.allow_premium_rate:
        prefix = next((p for p in settings.OUTBOUND_PREMIUM_PREFIXES if to.startswith(p)), None)
        premium = prefix is not None
        try:
            parsed = phonenumbers.parse(to, None)
            premium = premium or phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.PREMIUM_RATE
        except phonenumbers.NumberParseException:
            parsed = None
        if premium:
            return "premium_rate_blocked", f"{to} is a premium-rate number; calls to premium-rate numbers are blocked."
    else:
        try:
            parsed = phonenumbers.parse(to, None)
        except phonenumbers.NumberParseException:
            parsed = None
    countries = policy.countries
    if countries:
        region = phonenumbers.region_code_for_number(parsed) if parsed is not None else None
        if region not in countries:
            where = region or "an unknown country"
            return (
                "destination_not_allowed",
                f"{to} is in {where}; this account may call {', '.join(sorted(countries))} only.",
            )
    return None


POLICY_FIELDS = (
    "calls_per_second", "max_concurrent_calls", "max_queue_wait_s", "allowed_countries", "allow_premium_rate",
)  # fmt: skip


def _policy_values(policy: OutboundPolicy) -> dict:
    return {name: getattr(policy, name) for name in POLICY_FIELDS}


@transaction.atomic
def outbound_policy_update(*, account: Account, actor, **changes) -> OutboundPolicy:
    """Staff set an account's outbound policy (None on a number field: the platform's setting). Audited."""
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"not policy fields: {sorted(unknown)}")
    policy = policy_for(account, lock=True)
    before = _policy_values(policy)
    errors = FieldErrors()
    if "allowed_countries" in changes:
        raw = changes["allowed_countries"] or []
        if isinstance(raw, str):
            raw = raw.replace(",", " ").split()
        codes = [str(code).strip().upper() for code in raw]
        known = phonenumbers.SUPPORTED_REGIONS
        bad = [code for code in codes if code not in known]
        if bad:
            errors.add("allowed_countries", f"Not ISO country codes: {', '.join(bad)}.", "invalid")
        changes["allowed_countries"] = sorted(set(codes))
    rate = changes.get("calls_per_second", policy.calls_per_second)
    if rate is not None and not 0 < float(rate) <= 10_000:
        errors.add("calls_per_second", "More than 0 and at most 10,000 calls per second.", "invalid")
    errors.raise_if_any()
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.full_clean()
    policy.save()
    after = _policy_values(policy)
    if after != before:
        audit_record(
            account=account, actor=actor, action="outbound_policy.updated", obj=policy, before=before, after=after
        )
    return policy


# A slot this much past the maximum queue wait still counts as within it. On PostgreSQL a slot is "now" plus the
# statement's own lock wait (clock_timestamp() - statement_timestamp()), which varies by microseconds from one
# statement to the next: without the tolerance, the last call that outbound_queue_room() promised a feeder (a bulk
# campaign) could be refused as queue-full by a few microseconds.
SLOT_TOLERANCE_S = 0.001


def _reserve_slot(policy: OutboundPolicy, now: datetime) -> tuple[datetime, bool]:
    """The call's dispatch slot, and whether it is within the maximum queue wait (then it is taken).

    `policy` holds the pacing columns as read under the row's lock (_lock_pace).
    """
    slot = max(now, policy.next_dispatch_at or now)
    if (slot - now).total_seconds() > policy.queue_wait_s + SLOT_TOLERANCE_S:
        return slot, False
    policy.next_dispatch_at = slot + timedelta(seconds=1 / policy.rate)
    policy.updated_at = now
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(
            _TAKE_SLOT_SQL,
            [db.ops.adapt_datetimefield_value(policy.next_dispatch_at), db.ops.adapt_datetimefield_value(now),
             policy.pk],
        )  # fmt: skip
    return slot, True


# The pacing columns, read under the policy row's lock, and the slot taken; raw statements because placing a
# call is the hottest write path of outbound calling, and the ORM's compilation of them cost more CPU than
# the database's work. Only these columns matter under the lock (the destination rules were checked before).
_POLICY_TABLE = OutboundPolicy._meta.db_table
_PACE_FIELDS = [OutboundPolicy._meta.get_field(name) for name in ("next_dispatch_at", "calls_per_second",
                                                                     "max_queue_wait_s")]  # fmt: skip
_LOCK_PACE_SQL = f"SELECT next_dispatch_at, calls_per_second, max_queue_wait_s FROM {_POLICY_TABLE} WHERE id = %s"  # noqa: S608
_TAKE_SLOT_SQL = f"UPDATE {_POLICY_TABLE} SET next_dispatch_at = %s, updated_at = %s WHERE id = %s"  # noqa: S608


def _take_slot(policy: OutboundPolicy) -> tuple[datetime, datetime, bool]:
    """Lock the account's pace and take the call's slot: (the time, the slot, whether it is within the queue wait).

    On PostgreSQL one UPDATE locks the row, takes the slot if it is within the wait and returns it (committed at
    once unless the caller has a transaction open); a call that does not fit (the queue is full) is then decided
    as on other databases, under the row's lock: read the pacing columns, then take the slot in Python. The time
    a slot is computed from must be read once the lock is held, or a slot computed before a wait for it would lie
    in the past: the UPDATE adds the time it waited (clock_timestamp() - statement_timestamp(), evaluated again
    when it gets the row). Elsewhere, call it inside the transaction that writes the call.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql":
        now = timezone.now()
        adapted = db.ops.adapt_datetimefield_value(now)
        # Its own transaction, its commit need not wait for the disk: the call's commit, which follows and does
        # wait, flushes the log that far, slot included (a crash before it loses the slot with the call).
        sql = _TAKE_SLOT_PG_SQL if db.in_atomic_block else _TAKE_SLOT_PG_UNSYNCED_SQL
        with db.cursor() as cursor:
            cursor.execute(
                sql,
                [adapted, settings.OUTBOUND_CALLS_PER_SECOND, adapted, policy.pk, adapted, adapted,
                 settings.OUTBOUND_MAX_QUEUE_WAIT_S, settings.OUTBOUND_CALLS_PER_SECOND],
            )  # fmt: skip
            row = cursor.fetchone()
        if row is not None:
            policy.next_dispatch_at, policy.calls_per_second, policy.max_queue_wait_s, slot = row
            policy.updated_at = now
            return now, slot, True
        with transaction.atomic():  # the lock, for the decision
            _lock_pace(policy)
            now = timezone.now()
            slot, in_time = _reserve_slot(policy, now)
        return now, slot, in_time
    _lock_pace(policy)
    now = timezone.now()
    slot, in_time = _reserve_slot(policy, now)
    return now, slot, in_time


# `_reserve_slot` in one statement. GREATEST() ignores a NULL next_dispatch_at (an idle queue); the slot
# returned is the old next_dispatch_at or now, whichever is later (x + i - i is exact for timestamps), and the
# pace interval is rounded to the microsecond as Python's timedelta rounds it.
_PG_NOW = "(%s::timestamptz + (clock_timestamp() - statement_timestamp()))"
_TAKE_SLOT_PG_SQL = (
    f"UPDATE {_POLICY_TABLE} SET next_dispatch_at = GREATEST(next_dispatch_at, {_PG_NOW}) "  # noqa: S608
    "+ make_interval(secs => 1.0 / COALESCE(calls_per_second, %s)), updated_at = %s "
    f"WHERE id = %s AND GREATEST(next_dispatch_at, {_PG_NOW}) "
    f"<= {_PG_NOW} + make_interval(secs => COALESCE(max_queue_wait_s, %s) + {SLOT_TOLERANCE_S}) "
    "RETURNING next_dispatch_at, calls_per_second, max_queue_wait_s, "
    "next_dispatch_at - make_interval(secs => 1.0 / COALESCE(calls_per_second, %s))"
)
_TAKE_SLOT_PG_UNSYNCED_SQL = _TAKE_SLOT_PG_SQL.replace(
    " RETURNING ", " AND set_config('synchronous_commit', 'off', true) IS NOT NULL RETURNING "
)


def _lock_pace(policy: OutboundPolicy) -> None:
    """Lock the policy row (the account's pace) and refresh its pacing columns on `policy`."""
    db = connections[DEFAULT_DB_ALIAS]
    sql = _LOCK_PACE_SQL + (" FOR UPDATE" if db.features.has_select_for_update else "")
    with db.cursor() as cursor:
        cursor.execute(sql, [policy.pk])
        row = cursor.fetchone()
    if row is None:  # deleted since it was read (only the account's deletion does that)
        raise OutboundPolicy.DoesNotExist
    for field, value in zip(_PACE_FIELDS, _converted(db, _PACE_FIELDS, row), strict=True):
        setattr(policy, field.attname, value)


def _converted(db, fields, values) -> list:
    """Column values of a raw query as the ORM would give them (SQLite keeps datetimes as text, JSON as text)."""
    result = []
    for field, value in zip(fields, values, strict=False):
        expression = field.get_col(field.model._meta.db_table)
        for converter in db.ops.get_db_converters(expression) + field.get_db_converters(db):
            value = converter(value, expression, db)
        result.append(value)
    return result


def outbound_queue_room(account: Account, *, now: datetime | None = None) -> int:
    """How many more calls the account could place now without any waiting longer than its maximum queue wait.

    For feeders such as bulk campaigns, which place calls as room frees up rather than all at once.
    """
    now = now or timezone.now()
    policy = policy_for(account)
    next_slot = max(now, policy.next_dispatch_at or now)
    room_s = policy.queue_wait_s - (next_slot - now).total_seconds()
    return int(room_s * policy.rate) + 1 if room_s >= 0 else 0


# --- Placing a call ---------------------------------------------------------------------------------------


# In the model's order, as Model.from_db() takes them.
_NUMBER_FIELDS = [
    field
    for field in PhoneNumber._meta.concrete_fields
    if field.name in ("id", "account", "public_id", "number", "voice_enabled")
]
_POLICY_FIELDS = list(OutboundPolicy._meta.concrete_fields)


def _placing_read_sql() -> str:
    def columns(alias, fields):
        return ", ".join(f"{alias}.{field.column}" for field in fields)

    return (
        f"SELECT {columns('p', _POLICY_FIELDS)}, {columns('n', _NUMBER_FIELDS)} "  # noqa: S608 - our tables
        f"FROM {Account._meta.db_table} a "
        f"LEFT JOIN {_POLICY_TABLE} p ON p.account_id = a.id "
        f"LEFT JOIN {PhoneNumber._meta.db_table} n ON n.account_id = a.id AND n.number = %s AND n.status = %s "
        "WHERE a.id = %s ORDER BY n.id LIMIT 1"
    )


_PLACING_READ_SQL = _placing_read_sql()


def _placing_read(account: Account, number: str) -> tuple[OutboundPolicy, PhoneNumber | None]:
    """The account's policy and its active number `number` (None if it has none such), in one query.

    What the policy_for() and the `from` number lookups would give, read together: a placed call's only reads.
    The number comes with the fields a call's payload and the API's answer use; the rest load on access.
    """
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(_PLACING_READ_SQL, [number, PhoneNumber.Status.ACTIVE, account.pk])
        row = cursor.fetchone()
    split = len(_POLICY_FIELDS)
    if row is None or row[0] is None:  # the account's first call: the row is created with the settings
        policy = policy_for(account)
    else:
        values = _converted(db, _POLICY_FIELDS, row[:split])
        policy = OutboundPolicy.from_db(db.alias, [field.attname for field in _POLICY_FIELDS], values)
    phone_number = None
    if row is not None and row[split] is not None:
        values = _converted(db, _NUMBER_FIELDS, row[split:])
        phone_number = PhoneNumber.from_db(db.alias, [field.attname for field in _NUMBER_FIELDS], values)
    return policy, phone_number


def _from_value(from_: str, caller_sip_user) -> str:
    """What `from` names: the value given, else the SIP user's caller-ID number or its URI."""
    value = (from_ or "").strip()
    if not value and caller_sip_user is not None:
        number = caller_sip_user.caller_id_number
        value = number.number if number is not None else caller_sip_user.sip_uri
    return value


def _resolve_from(account, value: str, number, caller_sip_user, errors: FieldErrors):
    """(caller id, the account's number, the SIP user) for `from` (`value`, as _from_value gives it).

    `number` is the account's active number `value`, read with the policy (None if there is none, or if `value`
    is not an E.164 number).
    """
    if not value:
        errors.add("from", "Give the caller: one of your voice-enabled numbers or a SIP user.", "required")
        return "", None, caller_sip_user
    if SIP_URI.match(value):
        address = value.split(":", 1)[1].split(";", 1)[0]
        login, _, host = address.partition("@")
        user = caller_sip_user or (
            SipUser.objects.select_related("domain")
            .filter(account=account, domain__domain__iexact=host.split(":", 1)[0], login__iexact=login)
            .first()
        )
        if user is None or user.account_id != account.pk:
            errors.add("from", f"{value} is not one of your SIP users.", "unknown_sip_user")
            return value, None, None
        if not user.is_active:
            errors.add("from", f"The SIP user {value} is inactive.", "sip_user_inactive")
        return value, None, user
    if not E164.match(value):
        errors.add("from", f"{value!r} is neither an E.164 number (+12015550123) nor a SIP URI.", "invalid")
        return value, None, caller_sip_user
    value = normalize_number(value)
    if number is None:
        errors.add("from", f"{value} is not one of your numbers.", "unknown_number")
    elif not number.voice_enabled:
        errors.add("from", f"{value} is not voice-enabled.", "number_not_voice_enabled")
    return value, number, caller_sip_user


def _number_to_read(value: str) -> str:
    """The number to look up for `from` (an empty string, which no number has, if it is not an E.164 number)."""
    if not value or SIP_URI.match(value) or not E164.match(value):
        return ""
    return normalize_number(value)


def _resolve_to(to: str, policy: OutboundPolicy, errors: FieldErrors) -> str:
    value = (to or "").strip()
    if not value:
        errors.add("to", "Give the number or SIP URI to call.", "required")
        return ""
    if SIP_URI.match(value):
        scheme, rest = value.split(":", 1)
        return f"{scheme.lower()}:{rest}"
    if not E164.match(value):
        errors.add("to", f"{value!r} is neither an E.164 number (+12015550123) nor a SIP URI.", "invalid")
        return value
    value = normalize_number(value)
    refusal = destination_refusal(policy, value)
    if refusal is not None:
        errors.add("to", refusal[1], refusal[0])
    return value


def _resolve_flow(account, *, app, xml: str, url: str, errors: FieldErrors) -> dict | None:
    """The document JSON to run on answer (None: an app in url mode fetches it then)."""
    given = [name for name, value in (("app", app), ("xml", xml), ("url", url)) if value]
    if not given:
        errors.add("xml", "Give what the call runs when answered: one of app, xml or url.", "required")
        return None
    if len(given) > 1:
        errors.add(given[1], f"Give only one of app, xml and url (got {', '.join(given)}).", "conflict")
        return None
    if app is not None:
        if not isinstance(app, CallControlApp) or app.account_id != account.pk:
            errors.add("app", "No such call-control app.", "not_found")
            return None
        if not app.is_active:
            errors.add("app", f"The app {app.name!r} is inactive.", "app_inactive")
            return None
        if app.mode == CallControlApp.Mode.XML:
            if not app.xml:
                errors.add("app", f"The app {app.name!r} has no flow document.", "app_without_flow")
                return None
            return _document(app.xml, "app", errors)
        return None
    return _document(xml, "xml", errors)


def _document(xml: str, field: str, errors: FieldErrors) -> dict | None:
    result = callflow.validate(xml)
    if not result.valid:
        callflow.CallFlowInvalid(result.errors, result.warnings).as_validation_error(field).update_error_dict(
            errors.errors
        )
        return None
    from telephony.engine.documents import document_json

    return document_json(xml)


def _status_callback(url: str, method: str, events, errors: FieldErrors) -> tuple[str, str, list[str]]:
    chosen: list[str] = []
    if events:
        raw = events.replace(",", " ").split() if isinstance(events, str) else list(events)
        unknown = [str(e) for e in raw if str(e).strip().lower() not in STATUS_CALLBACK_EVENTS]
        if unknown:
            errors.add(
                "status_callback_events",
                f"Unknown event(s) {', '.join(unknown)}; use {', '.join(STATUS_CALLBACK_EVENTS)}.",
                "invalid_choice",
            )
        wanted = {str(e).strip().lower() for e in raw}
        chosen = [name for name in STATUS_CALLBACK_EVENTS if name in wanted]
    method = (method or "POST").upper()
    if method not in METHODS:
        errors.add("status_callback_method", "Use GET or POST.", "invalid_choice")
    if url:
        try:
            url = validate_customer_url(url)
        except ValidationError as exc:
            for message in exc.messages:
                errors.add("status_callback", message, getattr(exc, "code", None) or "url_refused")
    return url, method, chosen


def _check_url(url: str, errors: FieldErrors) -> str:
    try:
        return validate_customer_url(url)
    except ValidationError as exc:
        for message in exc.messages:
            errors.add("url", message, getattr(exc, "code", None) or "url_refused")
        return url


def call_place(
    *,
    account: Account,
    actor,
    from_: str,
    to: str,
    app=None,
    xml: str = "",
    url: str = "",
    method: str = "POST",
    timeout_s: int = 30,
    time_limit_s: int | None = None,
    status_callback: str = "",
    status_callback_method: str = "POST",
    status_callback_events: list[str] | None = None,
    tag: str = "",
    caller_sip_user=None,
    bulk_call_item=None,
) -> Call:
    """Validate and queue an outbound call; returns the A-leg (status `queued`, or `failed` if the queue is full).

    Raises ValidationError naming the field (from, to, app, xml, url, method, timeout, time_limit,
    status_callback, status_callback_method, status_callback_events, tag). `actor` is a User, an ApiKey or a
    label. `caller_sip_user` places the call as that SIP user (web callback); `bulk_call_item` links the call
    to a campaign's destination (its `last_call`).
    """
    errors = FieldErrors()
    from_value = _from_value(from_, caller_sip_user)
    # Read for the destination rules and the caller; the policy row is locked below, only to take the slot.
    policy, number = _placing_read(account, _number_to_read(from_value))
    if not account.is_active:
        errors.add("from", "The account is suspended; it cannot place calls.", "account_suspended")
    from_number, number, sip_user = _resolve_from(account, from_value, number, caller_sip_user, errors)
    to_number = _resolve_to(to, policy, errors)
    method = (method or "POST").upper()
    document = None
    given = [name for name, value in (("app", app), ("xml", xml), ("url", url)) if value]
    if len(given) == 1 and given[0] == "url":
        if method not in METHODS:
            errors.add("method", "Use GET or POST.", "invalid_choice")
        url = _check_url(url, errors)
    else:
        document = _resolve_flow(account, app=app, xml=xml, url=url, errors=errors)
    try:
        timeout_s = int(timeout_s)
        if not 1 <= timeout_s <= MAX_TIMEOUT_S:
            raise ValueError
    except (TypeError, ValueError):
        errors.add("timeout", f"Ring time in seconds, from 1 to {MAX_TIMEOUT_S}.", "invalid")
        timeout_s = 30
    max_length_s = app.max_call_length_s if isinstance(app, CallControlApp) else settings.CALL_MAX_LENGTH_S
    if time_limit_s is not None:
        try:
            time_limit_s = int(time_limit_s)
            if not 1 <= time_limit_s <= max_length_s:
                raise ValueError
        except (TypeError, ValueError):
            errors.add("time_limit", f"Seconds from the answer, from 1 to {max_length_s}.", "invalid")
            time_limit_s = None
    callback_url, callback_method, callback_events = _status_callback(
        (status_callback or "").strip(), status_callback_method, status_callback_events, errors
    )
    if len(tag or "") > 255:
        errors.add("tag", "At most 255 characters.", "max_length")
    errors.raise_if_any()

    switch = get_switch()
    # The account's pace is one row, locked by every call placed: its lock must be held as briefly as possible.
    # On PostgreSQL the slot is taken by one statement that commits on its own (outside any caller's transaction),
    # before the call is written: the lock lasts that statement, not the call's inserts. A call whose writes
    # then fail leaves its slot unused, a gap of 1/rate in the pace. Elsewhere (SQLite) slot and call are
    # written in one transaction.
    slot_alone = connections[DEFAULT_DB_ALIAS].vendor == "postgresql"
    if slot_alone:
        now, slot, in_time = _take_slot(policy)
    with transaction.atomic():
        if not slot_alone:
            now, slot, in_time = _take_slot(policy)
        call = Call(
            account=account,
            direction=Call.Direction.OUTBOUND_API,
            from_number=from_number[:255],
            to_number=to_number[:255],
            status=CallStatus.QUEUED,
            source=switch.name[:16],
            tag=(tag or "")[:255],
            phone_number=number,
            app=app if isinstance(app, CallControlApp) else None,
            sip_user=sip_user,
            created_at=now,
            document=document,
            flow_state=Call.FlowState.NONE,  # until the far end answers: nothing runs, only the leg rings
        )
        if callback_url:
            call.status_callback_url, call.status_callback_method = callback_url, callback_method
            call.status_callback_events = callback_events
        elif call.app is not None and call.app.status_callback_url:
            call.status_callback_url = call.app.status_callback_url
            call.status_callback_method = call.app.status_callback_method or "POST"
            call.status_callback_events = [
                e for e in STATUS_CALLBACK_EVENTS if e in (call.app.status_callback_events or [])
            ]
        deadline = now + timedelta(seconds=policy.queue_wait_s)
        call.variables = {
            "engine": {
                "auto_answer": False,
                "outbound": {
                    "timeout_ms": timeout_s * 1000,
                    "time_limit_s": time_limit_s,
                    "max_length_s": max_length_s,
                    "url": url if "url" in given and len(given) == 1 else "",
                    "method": method,
                    "slot": slot.isoformat(),
                    "deadline": deadline.isoformat(),
                    "actor": _label(actor),
                    "bulk_call_item": bulk_call_item.pk if bulk_call_item is not None else None,
                },
            }
        }
        effects = Effects()
        effects.new_legs.append(call)
        payload = _queued_payload(call, slot)
        effects.events.append(PendingEvent(account, "call.queued", payload, str(call.public_id), now))
        if not in_time:
            wait_s = round((slot - now).total_seconds())
            leg_transition(
                leg=call,
                status=CallStatus.FAILED,
                effects=effects,
                at=now,
                cause=34,
                sip_code=503,
                reason=f"The outbound queue is full: the call would wait {wait_s} s for a dispatch slot "
                f"({policy.rate:g} calls/s), longer than the account's maximum queue wait of {policy.queue_wait_s} s.",
            )
            call.flow_state = Call.FlowState.DONE
        else:
            # The maximum call length is counted from the dispatch (engine/control.py), not from the queue.
            effects.wakeups.append(
                CallWakeup(root=call, leg=call, kind=CallWakeup.Kind.CONTROL, data={"action": "dispatch"}, due_at=slot)
            )
        effects.flush()  # the dispatch wake-up is announced to a worker after the commit
        if bulk_call_item is not None:
            bulk_call_item.last_call = call
            bulk_call_item.save(update_fields=["last_call"])
    return call


def _queued_payload(call: Call, slot: datetime) -> dict:
    from telephony.services.calls import iso

    return {**call_payload(call), "dispatch_at": iso(slot)}


# --- Live control ---------------------------------------------------------------------------------------


def _control_wakeup(*, call: Call, data: dict) -> None:
    now = timezone.now()
    root_id = call.parent_id or call.pk
    wakeup = CallWakeup(root_id=root_id, leg=call, kind=CallWakeup.Kind.CONTROL, data=data, due_at=now)
    wakeup.save(force_insert=True)
    transaction.on_commit(lambda: _kick(root_id, now))


def _kick(root_id: int, due_at: datetime) -> None:
    from telephony.engine.runner import kick

    kick(root_id, due_at)


def _control_event(call: Call, actor, action: str, detail: dict) -> None:
    from telephony.services.events import event_emit

    event_emit(
        account=call.account,
        type="call.control",
        payload={"call_id": str(call.public_id), "action": action, "actor": _label(actor), **detail},
        object_type="call",
        object_id=str(call.public_id),
    )


def _live(call: Call) -> Call:
    """The call as the engine last saved it; CallFinished if it has ended.

    Not locked: the engine applies the action later under the call's claim and ignores it if the call ended in
    between (a hangup from the far end winning the race), so a lock here would only hold up the engine's save.
    """
    fresh = Call.objects.select_related("account", "parent").get(pk=call.pk)
    if fresh.is_final:
        raise CallFinished(fresh)
    return fresh


@transaction.atomic
def call_control(*, account: Account, actor, call: Call, action: str, **params) -> Call:
    """Ask the engine to hang up, redirect, play to, or send digits on a live call. Returns the call.

    hangup: `reason` (optional, recorded as the end reason). redirect: `xml` or `url` (+ `method`), which
    replaces the rest of the flow (an A-leg only). play: `url`, `loop`. send_digits: `digits` (0-9, *, #, A-D;
    w/W pause). Raises CallFinished on an ended call, CallNotControllable when the action does not apply now,
    ValidationError naming the field.
    """
    if call.account_id != account.pk:
        raise Call.DoesNotExist
    if action not in CONTROL_ACTIONS:
        raise ValueError(f"unknown call control action {action!r}")
    call = _live(call)
    data: dict = {"action": action}
    detail: dict = {}
    errors = FieldErrors()
    if action == "redirect":
        if call.parent_id:
            raise CallNotControllable("This is a leg placed by a Dial: it runs no flow of its own. Redirect its A-leg.")
        xml, url = params.get("xml") or "", (params.get("url") or "").strip()
        method = (params.get("method") or "POST").upper()
        if bool(xml) == bool(url):
            errors.add("xml", "Give exactly one of xml and url.", "required")
        elif xml:
            data["document"] = _document(xml, "xml", errors)
            detail["flow"] = "xml"
        else:
            if method not in METHODS:
                errors.add("method", "Use GET or POST.", "invalid_choice")
            data.update(url=_check_url(url, errors), method=method)
            detail.update(flow="url", url=data["url"])
    elif action == "play":
        url = (params.get("url") or "").strip()
        if not url:
            errors.add("url", "Give the audio file's URL (mp3 or wav).", "required")
        else:
            url = _check_url(url, errors)
        loop = params.get("loop") or 1
        if not isinstance(loop, int) or not 1 <= loop <= 100:
            errors.add("loop", "From 1 to 100.", "invalid")
        data.update(url=url, loop=loop)
        detail.update(url=url, loop=loop)
    elif action == "hangup" and params.get("reason"):
        data["reason"] = str(params["reason"])[:300]
    elif action == "send_digits":
        digits = str(params.get("digits") or "")
        if not digits or len(digits) > 64 or set(digits) - DIGITS_ALLOWED:
            errors.add("digits", "1 to 64 of 0-9, *, #, A-D, and w/W for a pause.", "invalid")
        data["digits"] = digits
        detail["digits"] = digits
    errors.raise_if_any()
    if action in ("play", "send_digits") and call.status != CallStatus.IN_PROGRESS:
        raise CallNotControllable(f"The call is {call.status}: it can only {action.replace('_', ' ')} once answered.")
    data["actor"] = _label(actor)
    _control_wakeup(call=call, data=data)
    _control_event(call, actor, action, detail)
    return call


@transaction.atomic
def call_bridge(*, account: Account, actor, call_a: Call, call_b: Call) -> tuple[Call, Call]:
    """Join two answered A-legs of the account; each stops its flow, and when one ends the other is hung up.

    The engine raises `call.bridged` (on call_a, naming call_b) once both are joined.
    """
    if call_a.account_id != account.pk or call_b.account_id != account.pk:
        raise Call.DoesNotExist
    errors = FieldErrors()
    if call_a.pk == call_b.pk:
        errors.add("call_b", "A call cannot be bridged to itself.", "same_call")
    errors.raise_if_any()
    a, b = _live(call_a), _live(call_b)
    for name, leg in (("call_a", a), ("call_b", b)):
        if leg.parent_id:
            raise CallNotControllable(f"{name} is a leg placed by a Dial; bridge A-legs only.")
        if leg.status != CallStatus.IN_PROGRESS:
            raise CallNotControllable(f"{name} is {leg.status}: only answered calls can be bridged.")
    label = _label(actor)
    _control_wakeup(call=a, data={"action": "bridge", "other": b.pk, "role": "a", "actor": label})
    _control_wakeup(call=b, data={"action": "bridge", "other": a.pk, "role": "b", "actor": label})
    _control_event(a, actor, "bridge", {"bridged_call_id": str(b.public_id)})
    return a, b

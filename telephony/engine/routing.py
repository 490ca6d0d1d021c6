"""Inbound routing: what happens to a call arriving for a number. One decision, for every switch.

    decision = route_inbound(from_number, to_number, source="simulated")   # reads, and counts screening hits
    result = inbound_call(from_number, to_number, source="kamailio", switch_call_id=...)  # decide + record

The steps, each refusal with its reason and SIP response (and a Q.850 cause for the call log):
1. the number must be an active number of some account, else 404 (nothing is recorded: there is no account
   to record it in, only a log line);
2. voice must be enabled on it, else 403; the account must be active, else 403 (suspended accounts' numbers
   take no calls: a definite refusal, not 503, which would invite the carrier to retry elsewhere);
3. the caller is screened by the number's TN profile (telephony.screening): a blacklisted or not-whitelisted
   caller gets the profile's block action: 603 Decline, 486 Busy Here, or answer-then-hang-up;
4. the number's voice target: an app (its XML, or its call_flow_url with the fallback URL, run by the engine),
   a SIP connection (the call is forwarded to its inbound host), or a SIP user (forwarded to the user; an
   offline user does not answer, so the caller gets no-answer). An inactive or unusable target is 480;
5. channel limits (telephony.engine.limits) are applied when the leg is created, under locks, and refuse
   with 486 (app/connection full) or 503 (account full).
Refused calls (from step 2 on) are recorded as Call rows with their status, SIP code and reason, so they
show in the call log and raise the same call.* events and status callbacks as any other call.

A real SIP edge calls `inbound_call` from its HTTP hook and answers the INVITE with the decision; the
simulated switch calls it from `POST /api/v1/simulator/inbound-calls`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections

from telephony.hot_sql import hot_cursor, hot_execute
from telephony.models import Call, CallControlApp, PhoneNumber, SipConnection, SipDomain, SipUser, TnProfile
from telephony.models.profiles import CallerListEntry
from telephony.screening import (
    ScreeningDecision,
    candidate_values,
    decide_from_entries,
    normalize_caller_id,
    record_block,
    screen_caller_for_profile,
)
from tenants.models import Account

logger = logging.getLogger("telephony.engine")

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@dataclass(frozen=True)
class RoutingDecision:
    """What to do with one inbound call. `accepted` calls run; the others are refused as described."""

    accepted: bool
    from_number: str
    to_number: str
    source: str
    reason: str
    sip_code: int | None = None
    cause: int | None = None
    status: str = ""  # the final status of a refused leg
    answer_then_hangup: bool = False  # the screening block action "hangup"
    number: PhoneNumber | None = None
    account: Account | None = None
    target: str = ""  # app | sip_connection | sip_user
    app: CallControlApp | None = None
    sip_connection: SipConnection | None = None
    sip_user: SipUser | None = None
    screening: ScreeningDecision | None = None

    @property
    def recordable(self) -> bool:
        """Whether the call can be recorded (it reached an account)."""
        return self.account is not None


@dataclass(frozen=True)
class InboundResult:
    decision: RoutingDecision
    call: Call | None


def normalize_called(value: str) -> str:
    text = re.sub(r"[\s().-]", "", value or "")
    if text.lower().startswith(("sip:", "tel:")):
        text = text.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
    if text and text[0] != "+" and text.isdigit():
        text = f"+{text}"
    return text


def _refuse(base: dict, sip_code: int, cause: int, status: str, reason: str, **extra) -> RoutingDecision:
    return RoutingDecision(
        accepted=False, sip_code=sip_code, cause=cause, status=status, reason=reason, **base, **extra
    )


# --- One query for the whole decision -----------------------------------------------------------------------
#
# Every inbound call needs the number, its account, its TN profile with the caller's screening entries, and its
# voice target (app, SIP connection, or SIP user with its domain). Through the ORM that was four or five queries,
# each costing more to build than to run (about half of a decision's CPU). One hand-written LEFT JOIN reads them
# all, always live (no cache to invalidate: a changed list or target applies to the next call), and the rows
# become model instances without the ORM's compiler. The screening entries come as extra rows: one per matching
# entry (at most a few), each repeating the rest.

_JOINED: tuple[tuple[str, type, str], ...] = (
    # (alias, model, the column of the number row, or of an earlier alias, it hangs from)
    ("a", Account, "n.account_id"),
    ("app", CallControlApp, "n.call_control_app_id"),
    ("c", SipConnection, "n.sip_connection_id"),
    ("u", SipUser, "n.sip_user_id"),
    ("d", SipDomain, "u.domain_id"),
    ("p", TnProfile, "n.tn_profile_id"),
)
_ENTRY_COLUMNS = ("id", "list_type", "kind", "value", "note")


def _inbound_sql() -> tuple[str, list]:
    """The query, and the database converters of the columns that have any (JSON; booleans, dates and UUIDs
    on SQLite), as the ORM's compiler would apply them: (position, functions, column expression)."""
    from telephony.screening import _VALUE_SLOTS

    db = connections[DEFAULT_DB_ALIAS]
    select: list[str] = []
    converters: list = []
    for alias, model in (("n", PhoneNumber), *((alias, model) for alias, model, _ in _JOINED)):
        for field in model._meta.concrete_fields:
            col = field.get_col(alias)
            functions = db.ops.get_db_converters(col) + field.get_db_converters(db)
            if functions:
                converters.append((len(select), functions, col))
            select.append(f"{alias}.{field.column}")
    joins = []
    for alias, model, parent in _JOINED:
        kind = "JOIN" if model is Account else "LEFT JOIN"
        joins.append(f"{kind} {model._meta.db_table} {alias} ON {alias}.id = {parent}")
    select += [f"e.{column}" for column in _ENTRY_COLUMNS]
    values = ", ".join(["%s"] * _VALUE_SLOTS)
    joins.append(
        f"LEFT JOIN {CallerListEntry._meta.db_table} e ON e.profile_id = n.tn_profile_id AND e.value IN ({values})"
    )
    # Table and column names come from model metadata; every value is a bound parameter.
    sql = (
        f"SELECT {', '.join(select)} FROM {PhoneNumber._meta.db_table} n {' '.join(joins)} "  # noqa: S608
        "WHERE n.number = %s AND n.status = 'active' ORDER BY n.id"
    )
    return sql, converters


_INBOUND_SQL: tuple[str, list] | None = None


def _convert(row: tuple, converters: list, db) -> tuple:
    if not converters:
        return row
    values = list(row)
    for position, functions, col in converters:
        for function in functions:
            values[position] = function(values[position], col, db)
    return tuple(values)


def _instance(model, row: tuple, start: int):
    """The model instance in row[start:...], or None for a LEFT JOIN that found nothing; and where the next begins."""
    end = start + len(model._meta.concrete_fields)
    if row[start] is None:
        return None, end
    return model.from_db(DEFAULT_DB_ALIAS, None, row[start:end]), end


def _cache(instance, field: str, value) -> None:
    """Fill a foreign key's cache with an instance already loaded, so that using it costs no query."""
    if instance is not None and value is not None and getattr(instance, f"{field}_id") == value.pk:
        instance._meta.get_field(field).set_cached_value(instance, value)


def load_inbound(to: str, caller: str, *, record_hit: bool = True) -> tuple[PhoneNumber | None, ScreeningDecision]:
    """The active number `to` with its account, TN profile and voice target loaded, and the caller's screening.

    One query (see above). A block counts a hit on the entry that caused it, as `screen_caller` does.
    """
    global _INBOUND_SQL
    if _INBOUND_SQL is None:
        _INBOUND_SQL = _inbound_sql()
    sql, converters = _INBOUND_SQL
    normalized = normalize_caller_id(caller)
    db = connections[DEFAULT_DB_ALIAS]
    with hot_cursor(db) as cursor:
        hot_execute(cursor, sql, [*candidate_values(normalized), to])
        rows = cursor.fetchall()
    if not rows:
        return None, screen_caller_for_profile(None, caller)
    first = _convert(rows[0], converters, db)
    number, at = _instance(PhoneNumber, first, 0)
    loaded = {}
    for alias, model, _ in _JOINED:
        loaded[alias], at = _instance(model, first, at)
    account, profile, user = loaded["a"], loaded["p"], loaded["u"]
    _cache(number, "account", account)
    _cache(number, "tn_profile", profile)
    _cache(number, "call_control_app", loaded["app"])
    _cache(number, "sip_connection", loaded["c"])
    _cache(number, "sip_user", user)
    _cache(user, "domain", loaded["d"])
    for target in (loaded["app"], loaded["c"], user, loaded["d"], profile):
        _cache(target, "account", account)
    if profile is None:
        return number, screen_caller_for_profile(None, caller)
    entries = [row[at:] for row in rows if row[0] == number.pk and row[at] is not None]
    screening = decide_from_entries(
        normalized, profile.block_action, profile.whitelist_count > 0, entries, record_hit=record_hit, db=db
    )
    return number, screening


def route_inbound(from_number: str, to_number: str, source: str) -> RoutingDecision:
    """Decide an inbound call (see the module docstring). Writes nothing but screening hit counters."""
    to = normalize_called(to_number)
    caller = (from_number or "").strip() or "anonymous"
    base = {"from_number": caller, "to_number": to or to_number, "source": source}
    number = screening = None
    if _E164.match(to):
        # Read together, but the hit of a block is counted below, after the checks that come before screening.
        number, screening = load_inbound(to, caller, record_hit=False)
    if number is None:
        return _refuse(base, 404, 1, Call.Status.FAILED, f"{to or to_number} is not a number in service.")
    account = number.account
    found = {"number": number, "account": account}
    if not number.voice_enabled:
        return _refuse(base, 403, 21, Call.Status.FAILED, f"Voice is not enabled on {number.number}.", **found)
    if not account.is_active:
        return _refuse(base, 403, 21, Call.Status.FAILED, "The account is suspended.", **found)

    record_block(screening)
    found["screening"] = screening
    if not screening.allowed:
        reason = f"Blocked by TN profile screening: {screening.reason}"
        if screening.action == "hangup":
            return _refuse(base, None, 16, Call.Status.COMPLETED, reason, answer_then_hangup=True, **found)
        if screening.sip_code == 486:
            return _refuse(base, 486, 17, Call.Status.BUSY, reason, **found)
        return _refuse(base, screening.sip_code or 603, 21, Call.Status.FAILED, reason, **found)

    app = number.call_control_app
    connection = number.sip_connection
    user = number.sip_user
    if app is not None:
        found.update(target="app", app=app)
        if not app.is_active:
            return _refuse(base, 480, 18, Call.Status.FAILED, f"The app {app.name} is inactive.", **found)
        if app.mode == CallControlApp.Mode.XML and not app.xml.strip():
            return _refuse(base, 480, 18, Call.Status.FAILED, f"The app {app.name} has no flow document.", **found)
        if app.mode == CallControlApp.Mode.URL and not app.call_flow_url:
            return _refuse(base, 480, 18, Call.Status.FAILED, f"The app {app.name} has no call flow URL.", **found)
    elif connection is not None:
        found.update(target="sip_connection", sip_connection=connection)
        if not connection.is_active:
            return _refuse(
                base, 480, 18, Call.Status.FAILED, f"The SIP connection {connection.name} is inactive.", **found
            )
        if not connection.inbound_host:
            return _refuse(
                base,
                480,
                18,
                Call.Status.FAILED,
                f"The SIP connection {connection.name} has no inbound host to send calls to.",
                **found,
            )
    elif user is not None:
        found.update(target="sip_user", sip_user=user)
        if not user.is_active:
            return _refuse(base, 480, 18, Call.Status.FAILED, f"The SIP user {user.sip_uri} is inactive.", **found)
    else:
        return _refuse(base, 480, 18, Call.Status.FAILED, f"{number.number} has no voice target.", **found)
    return RoutingDecision(accepted=True, reason="Routed to its " + found["target"].replace("_", " "), **base, **found)


def inbound_call(from_number: str, to_number: str, source: str, switch_call_id: str = "") -> InboundResult:
    """Decide an inbound call and record it: a running call, a refused one, or (unknown number) nothing."""
    from telephony.services.calls import call_inbound_create

    decision = route_inbound(from_number, to_number, source)
    if not decision.recordable:
        logger.info("Inbound call %s -> %s refused: %s", from_number, to_number, decision.reason)
        return InboundResult(decision, None)
    call = call_inbound_create(decision=decision, switch_call_id=switch_call_id)
    return InboundResult(decision, call)

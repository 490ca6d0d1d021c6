"""Caller screening: may this caller ID ring this number? The call engine asks on every inbound call.

The rules (the API schema repeats them to customers):
- a number without a TN profile lets every caller through;
- a caller on the profile's blacklist is blocked;
- if the whitelist is not empty, only callers on it pass;
- when both lists match, the blacklist wins.
An entry is an exact E.164 number, a prefix (`+1900*`, stored as `+1900`) matching every number that starts
with it, or `anonymous` for a withheld caller ID. When several entries of one list match, the most specific
one is reported: the exact number, then the longest prefix.

A block is carried out as the profile's block action: `reject` (SIP 603 Decline), `busy` (SIP 486 Busy
Here) or `hangup` (answer, then hang up, so the caller hears no error tone; no SIP error code).

Hit counters count blocks only: a block by an entry adds one to that entry's `hit_count` and sets its
`last_hit_at`. Whitelist passes are not counted on purpose: on a number restricted to a whitelist every
legitimate call would write, and one broad entry (a company prefix) would become a row that every call
in every process updates. A "not on whitelist" block has no entry to count.

Speed: one indexed query per decision, whatever the size of the lists. The caller's exact number and each
of its leading-digit prefixes go into one `value IN (...)` probe of the (profile, value) index, joined to
the profile row for its block action and whitelist size unless that row came loaded with the number. A
block adds one single-row UPDATE. The SQL is written by hand because building the query with the ORM
would cost more than running it, at thousands of decisions a second; bench/bench_screening.py measures it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from telephony.hot_sql import hot_cursor, hot_execute
from telephony.models.numbers import PhoneNumber
from telephony.models.profiles import CallerListEntry, TnProfile

ANONYMOUS = "anonymous"
NOT_ON_WHITELIST = "not on whitelist"

# Caller IDs that networks send when the caller withheld their number, compared case-insensitively.
WITHHELD_CALLER_IDS = frozenset({"", "anonymous", "restricted", "unknown", "private", "unavailable"})
# Visual separators people and some carriers put in numbers: "+1 (201) 555-0123".
_SEPARATORS = str.maketrans("", "", " \t-.()")
# E.164 has at most 15 digits; a little slack keeps an over-long caller ID a number (still caught by a
# prefix) instead of turning it into "anonymous", while garbage of any length is anonymous.
_DIGITS = re.compile(r"\+?(\d{1,32})")
# A prefix entry has 1 to 14 digits, so these are the only prefix lengths worth looking up.
MAX_PREFIX_DIGITS = 14
# The lookup always binds this many values (padded with repeats) so that its SQL text never changes: one
# entry in SQLite's statement cache, and one prepared statement if PostgreSQL connections are set to prepare.
_VALUE_SLOTS = MAX_PREFIX_DIGITS + 1

BLOCK_SIP_CODES = {
    TnProfile.BlockAction.REJECT: 603,
    TnProfile.BlockAction.BUSY: 486,
    TnProfile.BlockAction.HANGUP: None,
}


class Outcome(StrEnum):
    NO_PROFILE = "no_profile"  # allowed: the number has no TN profile
    NO_MATCH = "no_match"  # allowed: on neither list, and the whitelist is empty
    WHITELISTED = "whitelisted"  # allowed: on the whitelist (and not on the blacklist)
    BLACKLISTED = "blacklisted"  # blocked: on the blacklist
    NOT_WHITELISTED = "not_whitelisted"  # blocked: the whitelist is not empty and the caller is not on it


@dataclass(frozen=True, slots=True)
class MatchedEntry:
    """The list entry a decision rests on, read without building a model instance."""

    id: int
    list_type: str
    kind: str
    value: str
    note: str

    @property
    def caller_id(self) -> str:
        """As customers write it: `+1900*` for a prefix."""
        return f"{self.value}*" if self.kind == CallerListEntry.Kind.PREFIX else self.value

    def __str__(self) -> str:
        return f"{self.list_type}: {self.caller_id}"


@dataclass(frozen=True, slots=True)
class ScreeningDecision:
    """What to do with one call: let it ring, or carry out the profile's block action."""

    allowed: bool
    outcome: Outcome
    reason: str
    caller_id: str  # normalised: "+<digits>" or "anonymous"
    action: str | None = None  # reject | busy | hangup when blocked
    sip_code: int | None = None  # 603 | 486 for reject | busy; None for hangup and when allowed
    entry: MatchedEntry | None = None

    @property
    def rule(self) -> MatchedEntry | str | None:
        """The rule that decided: the matched entry, "not on whitelist", or None when nothing matched."""
        if self.entry is not None:
            return self.entry
        return NOT_ON_WHITELIST if self.outcome == Outcome.NOT_WHITELISTED else None


def normalize_caller_id(raw: str | None) -> str:
    """A caller ID as screening sees it: "+<digits>", or "anonymous" for withheld, empty or unreadable ones.

    A number without "+" is read as the digits of an E.164 number ("12015550123" is "+12015550123").
    """
    text = (raw or "").strip()
    if text.lower() in WITHHELD_CALLER_IDS:
        return ANONYMOUS
    match = _DIGITS.fullmatch(text.translate(_SEPARATORS))
    return f"+{match.group(1)}" if match else ANONYMOUS


def _lookup_sql(with_profile: bool) -> str:
    entries = CallerListEntry._meta.db_table
    profiles = TnProfile._meta.db_table
    values = ", ".join(["%s"] * _VALUE_SLOTS)
    # Table names come from model metadata and every value is a bound parameter. The probe is on
    # (profile, value) alone, one index descent per candidate value, and returns candidates of either list
    # and kind for Python to sort out; naming list_type and kind too would multiply the descents by four.
    # Whether the whitelist is in use comes from the profile's whitelist_count, which the list services
    # recount in the same transaction as every change (a subquery for it would double the planning time).
    if with_profile:
        return (
            "SELECT p.block_action, p.whitelist_count, e.id, e.list_type, e.kind, e.value, e.note "  # noqa: S608
            f"FROM {profiles} p LEFT JOIN {entries} e ON e.profile_id = p.id AND e.value IN ({values}) "
            "WHERE p.id = %s"
        )
    return (
        f"SELECT e.id, e.list_type, e.kind, e.value, e.note FROM {entries} e "  # noqa: S608
        f"WHERE e.value IN ({values}) AND e.profile_id = %s"
    )


def _hit_sql(vendor: str, in_transaction: bool) -> str:
    table = CallerListEntry._meta.db_table
    sql = f"UPDATE {table} SET hit_count = hit_count + 1, last_hit_at = %s WHERE id = %s"  # noqa: S608
    if vendor == "postgresql" and not in_transaction:
        # A counter need not wait for the disk: the statement is its own transaction, and this makes its
        # commit asynchronous (synchronous_commit=off for this one transaction), so a block costs no fsync.
        # A database crash can lose the last fraction of a second of counts, never a decision. Inside a
        # caller's transaction it is left alone: that commit is not ours to weaken.
        sql += " AND set_config('synchronous_commit', 'off', true) IS NOT NULL"
    return sql


# With the profile row joined in, for when only the profile's id is at hand; and the entries alone, for when
# the profile row was loaded with the number (select_related), which spares a table per call.
_LOOKUP_SQL = _lookup_sql(with_profile=True)
_ENTRIES_SQL = _lookup_sql(with_profile=False)


def candidate_values(caller_id: str) -> list[str]:
    """The values an entry must have to match this caller: "anonymous", or its number and each of its prefixes."""
    if caller_id == ANONYMOUS:
        return [ANONYMOUS] * _VALUE_SLOTS
    digits = caller_id[1:]
    values = [f"+{digits[:length]}" for length in range(1, min(len(digits), MAX_PREFIX_DIGITS) + 1)]
    values.append(caller_id)
    values.extend([caller_id] * (_VALUE_SLOTS - len(values)))
    return values


def _specificity(entry: MatchedEntry) -> tuple[int, int]:
    # The exact number (or "anonymous") outranks any prefix, and a longer prefix a shorter one.
    return (0 if entry.kind == CallerListEntry.Kind.PREFIX else 1, len(entry.value))


def screen_caller(number: PhoneNumber, caller_id: str | None, *, record_hit: bool = True) -> ScreeningDecision:
    """Decide whether `caller_id` may ring `number`, and count a block on the entry that caused it.

    Pass the number as loaded for this call. Loaded with `select_related("tn_profile")`, its profile row is
    used as loaded (block action, whether the whitelist is in use) and only the entries are read; loaded
    alone, the profile row is read with the entries in the same query. The entries are always read live.
    """
    cached = PhoneNumber.tn_profile.is_cached(number)
    return screen_caller_for_profile(
        number.tn_profile if cached else number.tn_profile_id, caller_id, record_hit=record_hit
    )


def screen_caller_for_profile(
    profile: TnProfile | int | None, caller_id: str | None, *, record_hit: bool = False
) -> ScreeningDecision:
    """The decision a profile (an instance as just loaded, or an id) makes for a caller.

    With record_hit=False (a test) nothing is written.
    """
    normalized = normalize_caller_id(caller_id)
    if profile is None:
        return ScreeningDecision(True, Outcome.NO_PROFILE, "The number has no TN profile.", normalized)

    # The connection is looked up once: each `connection.x` goes through a thread-local proxy, and a
    # dozen of those cost as much as the query's planning.
    db = connections[DEFAULT_DB_ALIAS]
    with hot_cursor(db) as cursor:
        if isinstance(profile, TnProfile):
            hot_execute(cursor, _ENTRIES_SQL, [*candidate_values(normalized), profile.pk])
            rows = cursor.fetchall()
            block_action, has_whitelist = profile.block_action, profile.whitelist_count > 0
        else:
            hot_execute(cursor, _LOOKUP_SQL, [*candidate_values(normalized), profile])
            joined = cursor.fetchall()
            if not joined:  # the profile was deleted a moment ago: the number is unscreened now
                return ScreeningDecision(True, Outcome.NO_PROFILE, "The number has no TN profile.", normalized)
            block_action, has_whitelist = joined[0][0], joined[0][1] > 0
            rows = [row[2:] for row in joined if row[2] is not None]
    return decide_from_entries(normalized, block_action, has_whitelist, rows, record_hit=record_hit, db=db)


def decide_from_entries(
    normalized: str,
    block_action: str,
    has_whitelist: bool,
    rows: list[tuple],
    *,
    record_hit: bool,
    db: BaseDatabaseWrapper | None = None,
) -> ScreeningDecision:
    """The decision for a caller (as `normalize_caller_id` gives it) from the entries the probe found.

    `rows` are (id, list_type, kind, value, note) of the profile's entries whose value is among
    `candidate_values(normalized)`, however they were read: the inbound path reads them in the same query as
    the number (telephony.engine.routing), this module on its own otherwise.
    """
    best: dict[str, MatchedEntry] = {}
    for row in rows:
        entry = MatchedEntry(*row)
        # The probe is deliberately loose (one IN list for every kind): a number entry must be the caller exactly,
        # while a prefix entry among the candidates is a prefix of the caller by construction.
        if entry.kind == CallerListEntry.Kind.NUMBER and entry.value != normalized:
            continue
        current = best.get(entry.list_type)
        if current is None or _specificity(entry) > _specificity(current):
            best[entry.list_type] = entry

    blocked_by = best.get(CallerListEntry.List.BLACKLIST)
    if blocked_by is not None:
        if record_hit:
            _record_hit(db or connections[DEFAULT_DB_ALIAS], blocked_by.id)
        return _blocked(
            Outcome.BLACKLISTED,
            f"{normalized} is on the blacklist ({blocked_by.caller_id}).",
            normalized,
            block_action,
            blocked_by,
        )
    passed_by = best.get(CallerListEntry.List.WHITELIST)
    if passed_by is not None:
        reason = f"{normalized} is on the whitelist ({passed_by.caller_id})."
        return ScreeningDecision(True, Outcome.WHITELISTED, reason, normalized, entry=passed_by)
    if has_whitelist:
        return _blocked(
            Outcome.NOT_WHITELISTED,
            f"{normalized} is not on the whitelist, and the whitelist is in use.",
            normalized,
            block_action,
            None,
        )
    return ScreeningDecision(True, Outcome.NO_MATCH, f"{normalized} is on neither list.", normalized)


def _blocked(outcome: Outcome, reason: str, caller_id: str, action: str, entry: MatchedEntry | None):
    return ScreeningDecision(
        False, outcome, reason, caller_id, action=action, sip_code=BLOCK_SIP_CODES.get(action), entry=entry
    )


def record_block(decision: ScreeningDecision) -> None:
    """Count a block decided with record_hit=False on the entry that caused it (nothing for other decisions)."""
    if not decision.allowed and decision.entry is not None:
        _record_hit(connections[DEFAULT_DB_ALIAS], decision.entry.id)


def _record_hit(db: BaseDatabaseWrapper, entry_id: int) -> None:
    """hit_count + 1 in the database (never read-modify-write), so concurrent calls all count."""
    now = db.ops.adapt_datetimefield_value(timezone.now())
    with hot_cursor(db) as cursor:
        hot_execute(cursor, _hit_sql(db.vendor, db.in_atomic_block), [now, entry_id])

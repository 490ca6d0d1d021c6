"""Reads for telephony: the queries that are more than a filter on one account's rows.

Available-number search runs over the platform's whole stock (a million rows and more), so each filter
maps onto an index: exact columns onto the partial (…, number) btrees, `contains` and wildcard patterns
onto the pg_trgm GIN index of `digits` (PostgreSQL). Results come in number order with a hard limit and
no total count, because counting every match would cost more than finding the first page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db.models import F, QuerySet
from django.db.models.lookups import Lookup

from telephony.models import StockNumber
from telephony.models.numbers import NumberType

SEARCH_LIMIT_DEFAULT = 20
SEARCH_LIMIT_MAX = 100
FEATURES = ("voice", "sms")

_PATTERN_CHARS = re.compile(r"^[0-9*%]+$")
_DIGITS = re.compile(r"^[0-9]+$")
_LEADING_DIGITS = re.compile(r"^[0-9]*")
_TRIGRAM = re.compile(r"[0-9]{3}")


class Like(Lookup):
    """`lhs LIKE rhs` with the pattern as given; Django only offers LIKE with its own escaping."""

    lookup_name = "like"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} LIKE {rhs}", [*lhs_params, *rhs_params]


def _invalid(field: str, message: str, code: str = "invalid") -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code)})


def pattern_to_like(pattern: str) -> str:
    """An Opentact mask as a SQL LIKE pattern: `*` (any run of digits) -> `%`, `%` (one digit) -> `_`.

    Only digits, `*` and `%` are accepted, so nothing else can carry meaning into LIKE and nothing needs
    escaping. The pattern must match the whole of `digits` (E.164 without "+"), as LIKE does.
    """
    if not pattern or not _PATTERN_CHARS.match(pattern) or len(pattern) > 32:
        raise _invalid(
            "pattern", "Use digits, * (any run of digits) and % (exactly one digit), e.g. 1201555****.", "bad_pattern"
        )
    return re.sub(r"\*+", "%", pattern.replace("%", "_"))


def parse_features(value: str | Iterable[str] | None) -> list[str]:
    """'voice,sms' or ["voice", "sms"] -> ["voice", "sms"]; anything else is a 400 naming `features`."""
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    features = []
    for item in items:
        name = str(item).strip().lower()
        if name not in FEATURES:
            raise _invalid("features", f"Unknown feature {item!r}; use {', '.join(FEATURES)}.", "bad_feature")
        if name not in features:
            features.append(name)
    return features


def _filter_pattern(queryset: QuerySet[StockNumber], pattern: str) -> QuerySet[StockNumber]:
    like = pattern_to_like(pattern)
    prefix = _LEADING_DIGITS.match(pattern).group()
    if not prefix:
        return queryset.filter(Like(F("digits"), like))
    # Leading digits ("1303*567"): the full match runs on `number`, whose btree pattern index turns the prefix
    # into a range, and the trigram index gets only the rest ("%567"). Given the whole pattern, GIN would also
    # scan the prefix's trigrams ("  1", " 13", "130"...), which every number of the area code shares: slow.
    queryset = queryset.filter(Like(F("number"), f"+{like}"))
    rest = pattern[len(prefix) :]
    if _TRIGRAM.search(rest):
        queryset = queryset.filter(Like(F("digits"), pattern_to_like(rest if rest[0] == "*" else f"*{rest}")))
    return queryset


def stock_search(
    *,
    country: str = "",
    state: str = "",
    npa: str = "",
    nxx: str = "",
    city: str = "",
    rate_center: str = "",
    number_type: str = "",
    features: Iterable[str] = (),
    pattern: str = "",
    contains: str = "",
    limit: int = SEARCH_LIMIT_DEFAULT,
) -> list[StockNumber]:
    """Numbers free to sell that match every given filter, in number order, at most `limit` of them."""
    return list(
        stock_search_queryset(
            country=country,
            state=state,
            npa=npa,
            nxx=nxx,
            city=city,
            rate_center=rate_center,
            number_type=number_type,
            features=features,
            pattern=pattern,
            contains=contains,
            limit=limit,
        )
    )


def stock_search_queryset(
    *,
    country: str = "",
    state: str = "",
    npa: str = "",
    nxx: str = "",
    city: str = "",
    rate_center: str = "",
    number_type: str = "",
    features: Iterable[str] = (),
    pattern: str = "",
    contains: str = "",
    limit: int = SEARCH_LIMIT_DEFAULT,
) -> QuerySet[StockNumber]:
    """The query behind stock_search, sliced; the benchmark EXPLAINs it."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= SEARCH_LIMIT_MAX:
        raise _invalid("limit", f"Ask for between 1 and {SEARCH_LIMIT_MAX} numbers.")
    for field, value in (("npa", npa), ("nxx", nxx), ("contains", contains)):
        if value and (not _DIGITS.match(value) or len(value) > 15):
            raise _invalid(field, "Use digits only.")
    if number_type and number_type not in NumberType.values:
        raise _invalid("type", f"Use one of {', '.join(NumberType.values)}.")

    queryset = StockNumber.objects.filter(status=StockNumber.Status.AVAILABLE)
    if country:
        queryset = queryset.filter(country=country.upper())
    if state:
        queryset = queryset.filter(state=state.upper())
    if npa:
        queryset = queryset.filter(npa=npa)
    if nxx:
        queryset = queryset.filter(nxx=nxx)
    if city:
        queryset = queryset.filter(city__iexact=city)
    if rate_center:
        queryset = queryset.filter(rate_center__iexact=rate_center)
    if number_type:
        queryset = queryset.filter(number_type=number_type)
    for feature in parse_features(list(features)):
        queryset = queryset.filter(**{feature: True})
    if pattern:
        queryset = _filter_pattern(queryset, pattern)
    if contains:
        queryset = queryset.filter(digits__contains=contains)
    return queryset.order_by("number")[:limit]


# --- Calls: durations and the timeline of a call ----------------------------------------------------
# Appended for the call records (issue 5); imported here so the number-search code above stays untouched.

from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402

from django.utils import timezone  # noqa: E402

from telephony.models import Call, CallHttpRequest, Delivery, DeliveryAttempt, Event  # noqa: E402

# A flow's steps are bounded by the engine, but a timeline is also read by people: past this many rows
# of one source the oldest are shown and the page says the rest was left out.
TIMELINE_LIMIT = 2000


def call_durations(call: Call, now: datetime | None = None) -> dict[str, int | None]:
    """Whole seconds: `ring_time` from ringing to answer (or to the end if never answered; None if it never
    rang) and `talk_time` from answer to end (0 if never answered). A live call counts up to now."""
    now = now or timezone.now()
    ring_time = None
    if call.ringing_at:
        until = call.answered_at or call.ended_at or now
        ring_time = max(0, int((until - call.ringing_at).total_seconds()))
    talk_time = 0
    if call.answered_at:
        talk_time = max(0, int(((call.ended_at or now) - call.answered_at).total_seconds()))
    return {"ring_time": ring_time, "talk_time": talk_time}


def _flow_command(event: Event) -> dict[str, Any]:
    data = event.payload if isinstance(event.payload, dict) else {}
    command = data.get("command")
    # The catalogue's call.flow names the command as a string; Opentact's shape nests an object. Read both.
    nested = command if isinstance(command, dict) else {}
    return {
        "event_id": str(event.public_id),
        "name": nested.get("name", command if isinstance(command, str) else ""),
        "path": nested.get("path", data.get("path", "")),
        "tag": nested.get("tag", data.get("tag")),
        "success": bool(nested.get("success", data.get("success", False))),
        "reason": nested.get("reason", data.get("reason", "")) or "",
        "error": nested.get("error", data.get("error")),
        "line": data.get("line") if isinstance(data.get("line"), int) else None,
    }


def _attempts_ms(attempts: list) -> int:
    return sum(a.get("duration_ms") or 0 for a in attempts if isinstance(a, dict))


def call_timeline(call: Call, legs: list[Call] | None = None) -> dict[str, Any]:
    """Everything that happened on a call and its legs, in one list ordered by time.

    Merges (a) the events of the call and its legs (`call.flow` events are shown as the commands the flow
    ran), (b) every HTTP request made to the customer's servers for them, with each attempt, (c) the
    webhook deliveries of those events and (d) the legs' callbacks (status callbacks, extension hooks), with
    each attempt. Five queries whatever the call's size (six without `legs`).
    Answers {"entries": [...], "truncated": bool}.
    """
    legs = list(call.children.order_by("created_at", "id")) if legs is None else legs
    calls = [call, *legs]
    public_ids = [str(c.public_id) for c in calls]
    by_pk = {c.pk: str(c.public_id) for c in calls}

    events = list(
        Event.objects.filter(account_id=call.account_id, object_type="call", object_id__in=public_ids).order_by(
            "occurred_at", "id"
        )[: TIMELINE_LIMIT + 1]
    )
    requests = list(
        CallHttpRequest.objects.filter(account_id=call.account_id, call_id__in=by_pk).order_by("created_at", "id")[
            : TIMELINE_LIMIT + 1
        ]
    )
    truncated = len(events) > TIMELINE_LIMIT or len(requests) > TIMELINE_LIMIT
    events, requests = events[:TIMELINE_LIMIT], requests[:TIMELINE_LIMIT]

    deliveries: list[Delivery] = []
    attempts: dict[int, list[DeliveryAttempt]] = {}
    if events:
        deliveries = list(
            Delivery.objects.filter(
                account_id=call.account_id,
                event__account_id=call.account_id,
                event__object_type="call",
                event__object_id__in=public_ids,
            )
            .select_related("endpoint", "event")
            .order_by("created_at", "id")[:TIMELINE_LIMIT]
        )
    callbacks = list(
        Delivery.objects.filter(account_id=call.account_id, call_id__in=by_pk)
        .select_related("endpoint")
        .order_by("created_at", "id")[: TIMELINE_LIMIT + 1]
    )
    truncated = truncated or len(callbacks) > TIMELINE_LIMIT
    callbacks = callbacks[:TIMELINE_LIMIT]
    for attempt in DeliveryAttempt.objects.filter(delivery_id__in=[d.pk for d in (*deliveries, *callbacks)]).order_by(
        "delivery_id", "number", "id"
    ):
        attempts.setdefault(attempt.delivery_id, []).append(attempt)

    entries: list[tuple[tuple, dict[str, Any]]] = []
    for event in events:
        entry: dict[str, Any] = {"at": event.occurred_at, "call_id": event.object_id}
        if event.type == "call.flow":
            entry.update(kind="command", command=_flow_command(event))
        else:
            entry.update(
                kind="event",
                event={
                    "id": str(event.public_id),
                    "type": event.type,
                    "sequence": event.sequence,
                    "data": event.payload,
                },
            )
        entries.append(((event.occurred_at, 0, event.pk), entry))
    for request in requests:
        entry = {
            "at": request.created_at,
            "call_id": by_pk[request.call_id],
            "kind": "http_request",
            "http_request": {
                "purpose": request.purpose,
                "command_path": request.command_path,
                "method": request.method,
                "url": request.url,
                "request_body": request.request_body,
                "outcome": request.outcome,
                "response_status": request.response_status,
                "response_excerpt": request.response_excerpt,
                "duration_ms": _attempts_ms(request.attempts or []),
                "attempts": [a for a in (request.attempts or []) if isinstance(a, dict)],
            },
        }
        entries.append(((request.created_at, 1, request.pk), entry))
    for delivery in deliveries:
        entry = {
            "at": delivery.created_at,
            "call_id": delivery.event.object_id,
            "kind": "webhook_delivery",
            "webhook_delivery": {
                "id": str(delivery.public_id),
                "event_id": str(delivery.event.public_id),
                "event_type": delivery.event.type,
                "url": delivery.endpoint.url,
                "status": delivery.status,
                "attempt_count": delivery.attempt_count,
                "attempts": [
                    {
                        "number": attempt.number,
                        "trigger": attempt.trigger,
                        "at": attempt.attempted_at,
                        "duration_ms": attempt.duration_ms,
                        "status_code": attempt.status_code,
                        "error": attempt.error,
                        "response_excerpt": attempt.response_excerpt,
                    }
                    for attempt in attempts.get(delivery.pk, [])
                ],
            },
        }
        entries.append(((delivery.created_at, 2, delivery.pk), entry))
    for delivery in callbacks:
        entry = {
            "at": delivery.created_at,
            "call_id": by_pk[delivery.call_id],
            "kind": "callback",
            "callback": _callback_entry(delivery, attempts.get(delivery.pk, [])),
        }
        entries.append(((delivery.created_at, 3, delivery.pk), entry))
    entries.sort(key=lambda item: item[0])
    return {"entries": [entry for _, entry in entries], "truncated": truncated}


def _callback_entry(delivery: Delivery, attempts: list[DeliveryAttempt]) -> dict[str, Any]:
    """A callback delivery with its attempts, each with the URL it went to (a fallback, a GET's query string)."""
    rows = [
        {
            "number": attempt.number,
            "trigger": attempt.trigger,
            "at": attempt.attempted_at,
            "url": attempt.request_url or delivery.target_url,
            "duration_ms": attempt.duration_ms,
            "status_code": attempt.status_code,
            "error": attempt.error,
            "response_excerpt": attempt.response_excerpt,
        }
        for attempt in attempts
    ]
    return {
        "id": str(delivery.public_id),
        "kind": delivery.kind,
        "kind_label": delivery.get_kind_display(),
        "method": delivery.method,
        "url": delivery.target_url,
        "fallback_url": delivery.fallback_url,
        "params": delivery.params or {},
        "status": delivery.status,
        "attempt_count": delivery.attempt_count,
        "attempts": rows,
    }

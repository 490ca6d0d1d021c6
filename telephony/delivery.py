"""The webhook delivery engine: claim due deliveries, send them concurrently, record each attempt, schedule retries.

The database is the queue. A delivery is due when `next_attempt_at` has passed; a worker claims a batch by
moving it forward by a lease (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, SQLite's single writer
elsewhere), so a worker killed mid-send lets its deliveries fall due again and the sweeper hands them to
another: delivery is at least once, and the webhook-id (the event id) lets receivers drop duplicates.

Per endpoint, at claim time: a disabled endpoint's deliveries fail, an open circuit defers them to the end
of its cool-down (a half-open circuit lets one probe through), a rate limit spreads the excess over the
coming seconds, and one process holds at most CLAIM_AHEAD x WEBHOOK_ENDPOINT_CONCURRENCY of an endpoint's
deliveries, with at most WEBHOOK_ENDPOINT_CONCURRENCY requests in flight; so a slow or dead endpoint
cannot take the capacity the others need. On PostgreSQL the common case (ordinary endpoints) is claimed,
and a round of successes recorded, in one statement each; the full rules run in Python under row locks.
"""

from __future__ import annotations

import concurrent.futures
import email.utils
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlencode

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from standardwebhooks import Webhook

from telephony import http
from telephony.models import AttemptTrigger, Delivery, DeliveryAttempt, WebhookEndpoint
from telephony.services import events as event_services
from telephony.services import webhooks as webhook_services

logger = logging.getLogger(__name__)

EXCERPT_BYTES = 8 * 1024
# A drain task stops claiming after this long (then finishes what is in flight and asks for a successor),
# well inside Celery's soft time limit.
DRAIN_BUDGET_SECONDS = 30.0
POLL_SECONDS = 0.1
# After the first response of a round, how long to wait for the ones right behind it, so that one
# transaction records many attempts.
COLLECT_SECONDS = 0.01
# A process claims up to this many times WEBHOOK_ENDPOINT_CONCURRENCY deliveries per endpoint: the excess
# waits in the process for a free slot (one round of requests, at most 15 s, well inside the claim lease),
# so claims and records stay large while the number of requests in flight to the endpoint stays bounded.
CLAIM_AHEAD = 2
SUCCESS_WRITE_INTERVAL = timedelta(seconds=60)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _clean_text(value: str, limit: int) -> str:
    # PostgreSQL text cannot hold NUL; a receiver's body can.
    return value[:limit].replace("\x00", "\ufffd")


# --- Building the request ------------------------------------------------------------------------------


@lru_cache(maxsize=2048)
def _signer(secret_encrypted: str) -> Webhook:
    return Webhook(webhook_services.decrypt_secret(secret_encrypted))


def signers(endpoint: WebhookEndpoint, now: datetime) -> list[Webhook]:
    """The current secret, and for 24 hours after a rotation the previous one too (receivers accept either)."""
    keys = [_signer(endpoint.secret_encrypted)]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at
        and (endpoint.previous_secret_expires_at > now)
    ):
        keys.append(_signer(endpoint.previous_secret_encrypted))
    return keys


def envelope(delivery: Delivery) -> dict:
    if delivery.kind == Delivery.Kind.TEST:
        return delivery.test_payload
    if delivery.kind != Delivery.Kind.EVENT:
        return dict(delivery.params or {})  # a callback sends its own fields, no envelope
    event = delivery.event
    return {
        "id": str(event.public_id),
        "type": event.type,
        "occurred_at": _iso(event.occurred_at),
        "account": str(delivery.account.public_id),
        "object": {"type": event.object_type, "id": event.object_id},
        "sequence": event.sequence,
        "data": event.payload,
    }


def _flatten(value, prefix: str, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        for item in value:
            _flatten(item, prefix, out)  # repeated keys, as form posts carry lists
    elif value is None:
        out.append((prefix, ""))
    elif isinstance(value, bool):
        out.append((prefix, "true" if value else "false"))
    else:
        out.append((prefix, str(value)))


def form_fields(body: dict) -> list[tuple[str, str]]:
    """A status-callback style form: Restcomm's envelope names first, then the data's own fields, flattened."""
    fields = [
        ("EventId", body["id"]),
        ("EventType", body["type"]),
        ("Timestamp", body["occurred_at"]),
        ("AccountSid", body["account"]),
        ("ObjectType", body["object"]["type"]),
        ("ObjectId", body["object"]["id"]),
        ("SequenceNumber", str(body["sequence"])),
    ]
    reserved = {name for name, _ in fields}
    data: list[tuple[str, str]] = []
    _flatten(body.get("data") or {}, "", data)
    return fields + [(name, value) for name, value in data if name not in reserved]


@dataclass(frozen=True)
class OutgoingRequest:
    url: str
    headers: dict[str, str]
    body: str
    method: str = "POST"


def callback_url(delivery: Delivery) -> str:
    """Where a callback's next attempt goes: its URL, or after a failure its fallback URL, turn about.

    `retry_index` counts the failures since the last fresh start (a replay or recover starts again at the URL).
    """
    if delivery.fallback_url and delivery.retry_index % 2 == 1:
        return delivery.fallback_url
    return delivery.url or delivery.endpoint.url


def _callback_request(delivery: Delivery, now: datetime) -> OutgoingRequest:
    """A callback: its params as a form body, a query string (GET), or a JSON body; signed like an event.

    The signed content is what carries the params: the body, or for a form GET the whole query string as sent
    (a receiver verifies `request.META["QUERY_STRING"]` in place of the body).
    """
    url = callback_url(delivery)
    method = delivery.method or "POST"
    params = delivery.params or {}
    headers: dict[str, str] = {}
    if delivery.payload_format == "json":
        body = json.dumps(params, separators=(",", ":"), cls=DjangoJSONEncoder)
        signed = body
        headers["content-type"] = "application/json"
    else:
        fields: list[tuple[str, str]] = []
        _flatten(params, "", fields)
        encoded = urlencode(fields)
        if method == "GET":
            path, _, existing = url.split("#", 1)[0].partition("?")
            signed = f"{existing}&{encoded}" if existing else encoded
            url = f"{path}?{signed}"
            body = ""
        else:
            body = signed = encoded
            headers["content-type"] = "application/x-www-form-urlencoded"
    message_id = str(delivery.public_id)
    headers.update(
        {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(
                signer.sign(message_id, now, signed) for signer in signers(delivery.endpoint, now)
            ),
        }
    )
    return OutgoingRequest(url, headers, body, method)


def build_request(delivery: Delivery, now: datetime, bodies: dict | None = None) -> OutgoingRequest:
    if delivery.kind not in (Delivery.Kind.EVENT, Delivery.Kind.TEST):
        return _callback_request(delivery, now)
    endpoint = delivery.endpoint
    form = endpoint.payload_format == WebhookEndpoint.PayloadFormat.FORM
    cache_key = (delivery.event_id or f"test-{delivery.pk}", form)
    body = bodies.get(cache_key) if bodies is not None else None
    if body is None:
        data = envelope(delivery)
        body = urlencode(form_fields(data)) if form else json.dumps(data, separators=(",", ":"), cls=DjangoJSONEncoder)
        if bodies is not None:
            bodies[cache_key] = body
    message_id = delivery.message_id
    signature = " ".join(signer.sign(message_id, now, body) for signer in signers(endpoint, now))
    headers = {
        "content-type": "application/x-www-form-urlencoded" if form else "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return OutgoingRequest(endpoint.url, headers, body)


# --- Outcomes --------------------------------------------------------------------------------------


DELIVERED, RETRY, STOP, GONE = "delivered", "retry", "stop", "gone"


def classify(result: http.Result) -> str:
    code = result.status_code
    if code is None:
        return RETRY  # timeouts, connection errors, and addresses the policy refused today (DNS may change)
    if 200 <= code < 300:
        return DELIVERED
    if code == 410:
        return GONE
    if 300 <= code < 400 or code in (408, 429) or code >= 500:
        return RETRY
    if 400 <= code < 500:
        return STOP
    return RETRY


def retry_after_seconds(result: http.Result, now: datetime) -> float | None:
    value = (result.headers or {}).get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def next_delay(retry_index: int, result: http.Result, now: datetime) -> float | None:
    """Seconds until the next attempt after a failed one at `retry_index`, or None when retries are used up."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if retry_index + 1 >= len(schedule):
        return None
    delay = schedule[retry_index + 1] * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not security
    asked = retry_after_seconds(result, now)
    if asked is not None:
        # Honour the receiver's Retry-After, within reason: a day at most.
        delay = max(delay, min(asked, 86400.0))
    return delay


# --- Claiming ------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What one claim does with an endpoint's due deliveries: start `room` of them, and the rest..."""

    room: int
    fail: bool = False  # ...fail: the endpoint is disabled
    defer_until: datetime | None = None  # ...wait for the circuit breaker
    rate: int = 0  # ...wait for later rate-limit windows, `rate` per second from `defer_until`
    changed: bool = False  # the endpoint's breaker or rate window moved and must be saved


def _plan(endpoint: WebhookEndpoint | None, now: datetime, lease: timedelta, busy: int) -> _Plan:
    if endpoint is None or not endpoint.enabled:
        return _Plan(room=0, fail=True)
    if endpoint.circuit_open_until and endpoint.circuit_open_until > now:
        return _Plan(room=0, defer_until=endpoint.circuit_open_until)
    # Beyond this process's share for the endpoint, deliveries simply stay due for the next claim (here or
    # in another process): nothing is written for them.
    plan = _Plan(room=max(CLAIM_AHEAD * settings.WEBHOOK_ENDPOINT_CONCURRENCY - busy, 0))
    if endpoint.consecutive_failures >= settings.WEBHOOK_CIRCUIT_FAILURES:
        # Half-open: one probe; the others wait for its answer (or for its lease, if its worker dies).
        endpoint.circuit_open_until = now + lease
        plan.room, plan.defer_until, plan.changed = min(plan.room, 1), endpoint.circuit_open_until, True
        return plan
    if endpoint.rate_limit:
        window = endpoint.rate_window_start
        if window is None or window > now or now - window >= timedelta(seconds=1):
            endpoint.rate_window_start, endpoint.rate_window_count = now, 0
        left = max(endpoint.rate_limit - endpoint.rate_window_count, 0)
        if left <= plan.room:
            # The rest are spread over the coming windows, so they are not picked up and put back every claim.
            plan.room, plan.rate = left, endpoint.rate_limit
            plan.defer_until = endpoint.rate_window_start + timedelta(seconds=1)
        plan.changed = True
    return plan


def claim(*, limit: int, busy: Counter | None = None, now: datetime | None = None) -> list[Delivery]:
    """Take up to `limit` due deliveries for this process; returns them with their event and endpoint loaded."""
    now = now or timezone.now()
    busy = busy or Counter()
    if connection.vendor != "postgresql":
        return _claim(limit=limit, busy=busy, now=now)
    token, ids, special = _claim_plain_postgresql(limit=limit, busy=busy, now=now)
    claimed = _fetch_claimed(ids, token) if ids else []
    if special and len(claimed) < limit:
        # Disabled, breaker, or rate-limited endpoints among the due rows: the full rules, row by row.
        claimed += _claim(limit=limit - len(claimed), busy=busy + Counter(d.endpoint_id for d in claimed), now=now)
    return claimed


def _claim_plain_postgresql(*, limit: int, busy: Counter, now: datetime) -> tuple[uuid.UUID, list[int], int]:
    """The common case in one statement: due deliveries of ordinary endpoints (enabled, breaker closed, no rate
    limit), within this process's share per endpoint. Returns the claim token, the rows claimed, and how many
    due rows belong to endpoints that need the full rules of `_claim`."""
    token = uuid.uuid4()
    share = CLAIM_AHEAD * settings.WEBHOOK_ENDPOINT_CONCURRENCY
    held = [(pk, count) for pk, count in busy.items() if count > 0]
    lease = now + timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            {
                "now": now,
                "limit": limit,
                "saturated": [pk for pk, count in held if count >= share],
                "threshold": settings.WEBHOOK_CIRCUIT_FAILURES,
                "share": share,
                "busy_ids": [pk for pk, _ in held],
                "busy_counts": [count for _, count in held],
                "lease": lease,
                "token": token,
            },
        )
        special, ids, _ = cursor.fetchone()
    return token, ids, special


# The worker's own bookkeeping (claims, and rounds where everything was delivered) commits without waiting
# for the WAL flush: set_config(..., true) applies to this statement's transaction only. If PostgreSQL
# crashed in the following moment, a claim would simply not have happened and a delivery would be sent
# again: at least once, as promised, and no event is ever at stake (events commit synchronously).
_ASYNC_COMMIT = "async_commit AS (SELECT set_config('synchronous_commit', 'off', true) AS setting)"

_CLAIM_SQL = f"""
WITH {_ASYNC_COMMIT}, candidate AS (
    SELECT id, endpoint_id, next_attempt_at FROM {Delivery._meta.db_table}
    WHERE status = 'pending' AND next_attempt_at <= %(now)s AND NOT (endpoint_id = ANY(%(saturated)s::bigint[]))
    ORDER BY next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), ranked AS (
    SELECT candidate.id,
        (endpoint.enabled AND endpoint.rate_limit IS NULL AND endpoint.consecutive_failures < %(threshold)s
         AND (endpoint.circuit_open_until IS NULL OR endpoint.circuit_open_until <= %(now)s)) AS plain,
        row_number() OVER (PARTITION BY candidate.endpoint_id ORDER BY candidate.next_attempt_at, candidate.id)
            AS position,
        %(share)s - coalesce(busy.count, 0) AS room
    FROM candidate
    JOIN {WebhookEndpoint._meta.db_table} AS endpoint ON endpoint.id = candidate.endpoint_id
    LEFT JOIN unnest(%(busy_ids)s::bigint[], %(busy_counts)s::integer[]) AS busy (endpoint_id, count)
        ON busy.endpoint_id = candidate.endpoint_id
), taken AS (
    UPDATE {Delivery._meta.db_table} AS delivery
    SET next_attempt_at = %(lease)s, claimed_until = %(lease)s, claim_token = %(token)s
    FROM ranked
    WHERE delivery.id = ranked.id AND ranked.plain AND ranked.position <= ranked.room
    RETURNING delivery.id
)
SELECT (SELECT count(*) FROM ranked WHERE NOT plain), array(SELECT id FROM taken), (SELECT setting FROM async_commit)
"""  # noqa: S608 - table names are ours; every value is a parameter


def _fetch_claimed(ids: list[int], token: uuid.UUID) -> list[Delivery]:
    # By primary key: claim_token has no index of its own (it only ever narrows rows found by id).
    claimed = Delivery.objects.filter(pk__in=ids, claim_token=token)
    return list(claimed.select_related("event", "endpoint", "account").only(*CLAIMED_FIELDS))


def _claim(*, limit: int, busy: Counter, now: datetime) -> list[Delivery]:
    """Every rule, in Python, under row locks: the portable claim, and PostgreSQL's path for unusual endpoints."""
    lease = timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)
    token = uuid.uuid4()
    saturated = [pk for pk, count in busy.items() if count >= CLAIM_AHEAD * settings.WEBHOOK_ENDPOINT_CONCURRENCY]
    with transaction.atomic():
        due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        if saturated:
            due = due.exclude(endpoint_id__in=saturated)
        rows = list(
            due.order_by("next_attempt_at").select_for_update(skip_locked=True).values_list("id", "endpoint_id")[:limit]
        )
        if not rows:
            return []
        endpoint_ids = sorted({endpoint_id for _, endpoint_id in rows})
        endpoints = {e.pk: e for e in WebhookEndpoint.objects.filter(pk__in=endpoint_ids)}
        needs_lock = [
            e.pk
            for e in endpoints.values()
            if e.enabled and (e.rate_limit or e.consecutive_failures >= settings.WEBHOOK_CIRCUIT_FAILURES)
        ]
        if needs_lock:
            # Their breaker and rate window are shared by every worker; lock in id order so claimers never deadlock.
            for e in WebhookEndpoint.objects.filter(pk__in=needs_lock).order_by("pk").select_for_update(no_key=True):
                endpoints[e.pk] = e
        plans = {pk: _plan(endpoints.get(pk), now, lease, busy[pk]) for pk in endpoint_ids}
        claimed: list[int] = []
        failed: list[int] = []
        deferred: dict[datetime, list[int]] = defaultdict(list)
        taken: Counter = Counter()
        waiting: Counter = Counter()
        for delivery_id, endpoint_id in rows:
            plan = plans[endpoint_id]
            if plan.fail:
                failed.append(delivery_id)
            elif taken[endpoint_id] < plan.room:
                taken[endpoint_id] += 1
                claimed.append(delivery_id)
            elif plan.defer_until is not None:
                later = plan.defer_until
                if plan.rate:
                    later += timedelta(seconds=waiting[endpoint_id] // plan.rate)
                    waiting[endpoint_id] += 1
                deferred[later].append(delivery_id)
        if claimed:
            Delivery.objects.filter(pk__in=claimed).update(
                next_attempt_at=now + lease, claimed_until=now + lease, claim_token=token
            )
        for later, ids in deferred.items():
            Delivery.objects.filter(pk__in=ids).update(next_attempt_at=later)
        if failed:
            Delivery.objects.filter(pk__in=failed).update(
                status=Delivery.Status.FAILED, next_attempt_at=None, last_error="The endpoint is disabled."
            )
        for pk, plan in plans.items():
            if plan.changed:
                endpoint = endpoints[pk]
                WebhookEndpoint.objects.filter(pk=pk).update(
                    circuit_open_until=endpoint.circuit_open_until,
                    rate_window_start=endpoint.rate_window_start,
                    rate_window_count=endpoint.rate_window_count + (taken[pk] if endpoint.rate_limit else 0),
                )
    if not claimed:
        return []
    return _fetch_claimed(claimed, token)


# What sending and recording need; the rest of the rows (and their parsing) is left in the database.
CLAIMED_FIELDS = (
    "id", "public_id", "kind", "test_payload", "params", "url", "method", "payload_format", "fallback_url",
    "attempt_count", "retry_index", "trigger", "claim_token",
    "account_id", "endpoint_id", "event_id", "account__public_id", "account__name",
    "event__public_id", "event__type", "event__occurred_at", "event__object_type", "event__object_id",
    "event__sequence", "event__payload", "endpoint__public_id", "endpoint__account_id", "endpoint__url",
    "endpoint__enabled", "endpoint__purpose", "endpoint__payload_format", "endpoint__secret_encrypted",
    "endpoint__previous_secret_encrypted", "endpoint__previous_secret_expires_at", "endpoint__consecutive_failures",
    "endpoint__failing_since", "endpoint__circuit_open_until", "endpoint__last_success_at",
)  # fmt: skip


# --- Recording -----------------------------------------------------------------------------------------


@dataclass
class Sent:
    delivery: Delivery
    attempted_at: datetime
    result: http.Result
    request: OutgoingRequest | None = None  # as sent: its headers (and an unusual URL or method) are recorded


RESPONSE_HEADERS_KEPT = 50
RESPONSE_HEADER_CHARS = 500


def _request_details(request: OutgoingRequest | None, delivery: Delivery) -> dict:
    """The attempt's request headers; its URL and method only when they are not the endpoint's URL and POST
    (a callback's fallback URL, or a GET with its query string), so ordinary attempts store two empty strings."""
    if request is None:
        return {}
    return {
        "request_headers": request.headers,
        "request_url": request.url[:4000] if request.url != delivery.endpoint.url else "",
        "request_method": request.method if request.method != "POST" else "",
    }


def _response_headers(result: http.Result) -> dict[str, str]:
    headers = result.headers
    if not headers:
        return {}
    kept = {}
    for name, value in headers.items():
        if len(kept) >= RESPONSE_HEADERS_KEPT:
            break
        kept[_clean_text(str(name), 100)] = _clean_text(str(value), RESPONSE_HEADER_CHARS)
    return kept


def record(sent: list[Sent], *, now: datetime | None = None) -> Counter:
    """Write the attempts and move each delivery on (delivered, retry later, or failed). Returns outcome counts."""
    now = now or timezone.now()
    outcomes: Counter = Counter()
    attempts: list[DeliveryAttempt] = []
    delivered: dict[int | None, list[int]] = defaultdict(list)
    changes: list[tuple[int, object, dict]] = []
    per_endpoint: dict[int, list] = {}
    gone: dict[int, Delivery] = {}
    for item in sent:
        delivery, result = item.delivery, item.result
        attempts.append(
            DeliveryAttempt(
                delivery_id=delivery.pk,
                number=delivery.attempt_count + 1,
                trigger=delivery.trigger,
                attempted_at=item.attempted_at,
                duration_ms=int(result.duration * 1000),
                status_code=result.status_code,
                response_excerpt=_clean_text(result.body[:EXCERPT_BYTES].decode("utf-8", "replace"), EXCERPT_BYTES),
                error=_clean_text(result.error, 500),
                response_headers=_response_headers(result),
                **_request_details(item.request, delivery),
            )
        )
        outcome = classify(result)
        outcomes[outcome] += 1
        state = per_endpoint.setdefault(delivery.endpoint_id, [delivery.endpoint, 0, 0])
        if outcome == DELIVERED:
            state[1] += 1
            delivered[result.status_code].append(delivery.pk)
            continue
        state[2] += 1
        delay = None
        if outcome == RETRY and delivery.kind != Delivery.Kind.TEST:
            delay = next_delay(delivery.retry_index, result, now)
        fields = {
            "attempt_count": F("attempt_count") + 1,
            "last_attempt_at": item.attempted_at,
            "last_status_code": result.status_code,
            "last_error": _clean_text(result.error or f"HTTP {result.status_code}", 500),
            "claimed_until": None,
            "claim_token": None,
            "trigger": AttemptTrigger.SCHEDULED,
        }
        if delay is None:
            fields.update(status=Delivery.Status.FAILED, next_attempt_at=None)
        else:
            fields.update(next_attempt_at=now + timedelta(seconds=delay), retry_index=delivery.retry_index + 1)
        changes.append((delivery.pk, delivery.claim_token, fields))
        if outcome == GONE and delivery.endpoint.purpose == WebhookEndpoint.Purpose.WEBHOOK:
            # A callback URL's hidden endpoint is never disabled: this callback fails, the next one tries.
            gone[delivery.endpoint_id] = delivery
    tokens = {item.delivery.claim_token for item in sent}
    health = [state for state in per_endpoint.values() if _health_changes(*state, now)]
    postgresql = connection.vendor == "postgresql"

    def write() -> None:
        if postgresql:
            _record_postgresql(attempts, delivered, sent, now)
        else:
            DeliveryAttempt.objects.bulk_create(attempts)
            # Only rows still under this worker's claim move on: if the lease ran out and another worker took
            # the delivery over, its outcome decides (this attempt is recorded all the same).
            for status_code, ids in delivered.items():
                Delivery.objects.filter(pk__in=ids, claim_token__in=tokens).update(
                    status=Delivery.Status.DELIVERED,
                    delivered_at=now,
                    next_attempt_at=None,
                    claimed_until=None,
                    claim_token=None,
                    attempt_count=F("attempt_count") + 1,
                    last_attempt_at=now,
                    last_status_code=status_code,
                    last_error="",
                    trigger=AttemptTrigger.SCHEDULED,
                )
        for pk, token, fields in changes:
            Delivery.objects.filter(pk=pk, claim_token=token).update(**fields)
        for endpoint, successes, failures in health:
            _record_health(endpoint, successes, failures, now)
        for delivery in gone.values():
            webhook_services.webhook_endpoint_disable(
                account=delivery.account, actor=None, endpoint=delivery.endpoint, reason="gone"
            )

    if postgresql and not changes and not health and not gone:
        # The common round (everything delivered): one statement, atomic by itself, committed asynchronously.
        _record_postgresql(attempts, delivered, sent, now, asynchronous=True)
    else:
        with transaction.atomic():
            write()
    return outcomes


def _record_postgresql(
    attempts: list[DeliveryAttempt], delivered: dict, sent: list[Sent], now: datetime, *, asynchronous: bool = False
) -> None:
    """The attempts, and the deliveries that succeeded, in one statement (one round trip)."""
    tokens = {item.delivery.pk: item.delivery.claim_token for item in sent}
    ids, codes, claim_tokens = [], [], []
    for status_code, pks in delivered.items():
        for pk in pks:
            ids.append(pk)
            codes.append(status_code)
            claim_tokens.append(tokens[pk])
    with connection.cursor() as cursor:
        cursor.execute(
            _RECORD_ASYNC_SQL if asynchronous else _RECORD_SQL,
            {
                "a_delivery": [a.delivery_id for a in attempts],
                "a_number": [a.number for a in attempts],
                "a_trigger": [a.trigger for a in attempts],
                "a_at": [a.attempted_at for a in attempts],
                "a_duration": [a.duration_ms for a in attempts],
                "a_status": [a.status_code for a in attempts],
                "a_excerpt": [a.response_excerpt for a in attempts],
                "a_error": [a.error for a in attempts],
                "a_headers": json.dumps([(a.request_headers, a.response_headers) for a in attempts]),
                "a_request_url": [a.request_url for a in attempts],
                "a_request_method": [a.request_method for a in attempts],
                "d_id": ids,
                "d_status": codes,
                "d_token": claim_tokens,
                "now": now,
            },
        )


_RECORD_SQL = f"""
WITH attempt AS (
    INSERT INTO {DeliveryAttempt._meta.db_table}
        (delivery_id, number, trigger, attempted_at, duration_ms, status_code, response_excerpt, error,
         request_url, request_method, request_headers, response_headers)
    SELECT a.delivery_id, a.number, a.trigger, a.at, a.duration, a.status, a.excerpt, a.error, a.url, a.method,
        headers.value -> 0, headers.value -> 1
    FROM unnest(%(a_delivery)s::bigint[], %(a_number)s::integer[], %(a_trigger)s::varchar[],
        %(a_at)s::timestamptz[], %(a_duration)s::integer[], %(a_status)s::smallint[], %(a_excerpt)s::text[],
        %(a_error)s::varchar[], %(a_request_url)s::varchar[], %(a_request_method)s::varchar[])
        WITH ORDINALITY AS a (delivery_id, number, trigger, at, duration, status, excerpt, error, url, method, n)
    -- The headers travel as one JSON document of [request, response] pairs: an array of jsonb values costs
    -- the server several times more to parse, per row, than the rest of the attempt together.
    JOIN jsonb_array_elements(%(a_headers)s::jsonb) WITH ORDINALITY AS headers (value, n) USING (n)
)
UPDATE {Delivery._meta.db_table} AS delivery
SET status = 'delivered', delivered_at = %(now)s, next_attempt_at = NULL, claimed_until = NULL,
    claim_token = NULL, attempt_count = delivery.attempt_count + 1, last_attempt_at = %(now)s,
    last_status_code = done.status, last_error = '', trigger = 'scheduled'
FROM unnest(%(d_id)s::bigint[], %(d_status)s::smallint[], %(d_token)s::uuid[]) AS done (id, status, token)
WHERE delivery.id = done.id AND delivery.claim_token = done.token
"""  # noqa: S608 - table names are ours; every value is a parameter
_RECORD_ASYNC_SQL = _RECORD_SQL.replace("WITH attempt AS (", f"WITH {_ASYNC_COMMIT}, attempt AS (", 1).replace(
    "AND delivery.claim_token = done.token",
    "AND delivery.claim_token = done.token AND EXISTS (SELECT FROM async_commit)",
)


def _health_changes(endpoint: WebhookEndpoint, successes: int, failures: int, now: datetime) -> bool:
    if not successes:
        return True
    if endpoint.consecutive_failures or endpoint.failing_since or endpoint.circuit_open_until:
        return True
    return not endpoint.last_success_at or now - endpoint.last_success_at > SUCCESS_WRITE_INTERVAL


def _record_health(endpoint: WebhookEndpoint, successes: int, failures: int, now: datetime) -> None:
    """Keep the endpoint's failure streak and circuit breaker; write only when something changes."""
    if successes:
        # Alive: the streak ends and the breaker closes. Deliveries the breaker held back come due now.
        if endpoint.consecutive_failures or endpoint.failing_since or endpoint.circuit_open_until:
            held_until = endpoint.circuit_open_until
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                consecutive_failures=0, failing_since=None, circuit_open_until=None, last_success_at=now
            )
            if held_until and held_until > now:
                Delivery.objects.filter(
                    endpoint_id=endpoint.pk,
                    status=Delivery.Status.PENDING,
                    next_attempt_at__gt=now,
                    next_attempt_at__lte=held_until,
                    claim_token=None,
                ).update(next_attempt_at=now)
        elif not endpoint.last_success_at or now - endpoint.last_success_at > SUCCESS_WRITE_INTERVAL:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(last_success_at=now)
        return
    threshold = settings.WEBHOOK_CIRCUIT_FAILURES
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=F("consecutive_failures") + failures,
        last_failure_at=now,
        failing_since=Coalesce("failing_since", now),
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk, consecutive_failures__gte=threshold).update(
        circuit_open_until=now + timedelta(seconds=settings.WEBHOOK_CIRCUIT_COOLDOWN_SECONDS)
    )


# --- The loop a worker runs --------------------------------------------------------------------------


def drain(*, budget: float = DRAIN_BUDGET_SECONDS) -> Counter:
    """Deliver what is due until nothing is, or the time budget is spent. Returns outcome counts.

    A pipeline, not a batch: requests are in flight on the HTTP client's threads while this thread claims and
    records, so a slow endpoint holds its own requests and nobody else's.
    """
    event_services.clear_kick()
    started = time.monotonic()
    capacity = settings.WEBHOOK_CONCURRENCY
    batch = settings.WEBHOOK_BATCH_SIZE
    in_flight: dict[concurrent.futures.Future, tuple[Delivery, datetime, OutgoingRequest]] = {}
    busy: Counter = Counter()
    gates: dict[int, threading.BoundedSemaphore] = {}
    totals: Counter = Counter()
    bodies: dict = {}
    asked_for_help = False
    more_work = False
    last_claim, done_since_claim, claim_again_after = 0.0, 0, 0
    last_renewal = time.monotonic()
    while True:
        if in_flight and time.monotonic() - last_renewal > settings.WEBHOOK_CLAIM_LEASE_SECONDS / 3:
            # Deliveries still queued or in flight here keep their claim; only a dead process lets it lapse.
            _renew_leases([entry[0] for entry in in_flight.values()])
            last_renewal = time.monotonic()
        room = capacity - len(in_flight)
        within_budget = time.monotonic() - started < budget
        # Claim when idle, when a good share of the last claim came back, or every POLL_SECONDS: claiming after
        # every single response would cost a database round trip per delivery.
        ready = not in_flight or done_since_claim >= claim_again_after or time.monotonic() - last_claim >= POLL_SECONDS
        if room > 0 and within_budget and ready:
            claimed = claim(limit=min(room, batch), busy=busy)
            last_claim, done_since_claim = time.monotonic(), 0
            claim_again_after = max(1, len(claimed) // 2)
            more_work = len(claimed) == min(room, batch)
            if len(claimed) >= batch and not asked_for_help:
                # A full batch means a backlog: wake another worker process to share it.
                event_services.kick(force=True)
                asked_for_help = True
            now = timezone.now()
            for delivery in claimed:
                outgoing = build_request(delivery, now, bodies)
                gate = gates.get(delivery.endpoint_id)
                if gate is None:
                    gate = gates[delivery.endpoint_id] = threading.BoundedSemaphore(
                        settings.WEBHOOK_ENDPOINT_CONCURRENCY
                    )
                future = http.submit(
                    outgoing.method, outgoing.url, headers=outgoing.headers, content=outgoing.body, gate=gate
                )
                in_flight[future] = (delivery, now, outgoing)
                busy[delivery.endpoint_id] += 1
            if len(bodies) > 4 * batch:
                bodies.clear()
        if not in_flight:
            break
        done, _ = concurrent.futures.wait(
            list(in_flight),
            timeout=POLL_SECONDS if within_budget else None,
            return_when=concurrent.futures.FIRST_COMPLETED,
        )
        if not done:
            continue
        if len(done) < len(in_flight) // 2:
            # Give the responses arriving right behind the first a moment, to record them in one transaction.
            done, _ = concurrent.futures.wait(list(in_flight), timeout=COLLECT_SECONDS)
        sent = []
        for future in done:
            delivery, submitted_at, outgoing = in_flight.pop(future)
            busy[delivery.endpoint_id] -= 1
            result = future.result()
            # When the request really started (it may have waited for its endpoint's gate).
            attempted_at = datetime.fromtimestamp(result.started_at, tz=UTC) if result.started_at else submitted_at
            sent.append(Sent(delivery, attempted_at, result, outgoing))
        done_since_claim += len(sent)
        totals.update(record(sent))
    if more_work or time.monotonic() - started >= budget:
        event_services.kick(force=True)  # a successor carries on with the backlog
    return totals


def _renew_leases(deliveries: list[Delivery]) -> None:
    until = timezone.now() + timedelta(seconds=settings.WEBHOOK_CLAIM_LEASE_SECONDS)
    Delivery.objects.filter(
        pk__in=[d.pk for d in deliveries],
        claim_token__in={d.claim_token for d in deliveries},
        status=Delivery.Status.PENDING,
    ).update(next_attempt_at=until, claimed_until=until)


def sweep(*, now: datetime | None = None) -> bool:
    """The beat's safety net: if anything is due (new, retrying, or left behind by a dead worker), wake a worker."""
    now = now or timezone.now()
    due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now).exists()
    if due:
        event_services.kick(force=True)
    return due


def endpoints_disable_failing(*, now: datetime | None = None) -> int:
    """Disable endpoints that failed every attempt for WEBHOOK_DISABLE_AFTER_DAYS. Returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
    disabled = 0
    failing = WebhookEndpoint.objects.webhooks().filter(enabled=True, failing_since__lte=cutoff)
    for endpoint in failing.select_related("account"):
        if webhook_services.webhook_endpoint_disable(
            account=endpoint.account, actor=None, endpoint=endpoint, reason="failing"
        ):
            disabled += 1
    return disabled


def deliveries_stuck(now: datetime | None = None):
    """Pending deliveries whose claim ran out (a worker died) or that are overdue by more than a minute."""
    now = now or timezone.now()
    return Delivery.objects.filter(status=Delivery.Status.PENDING).filter(
        Q(claimed_until__lt=now) | Q(next_attempt_at__lt=now - timedelta(minutes=1))
    )

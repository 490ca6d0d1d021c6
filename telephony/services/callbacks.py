"""Callbacks: requests to a URL the customer gave for one object (a call's status callbacks, an extension's event
hooks, a message's status callback), delivered by the webhook delivery engine (telephony/delivery.py).

One engine for everything that leaves for a customer URL: a callback is a `Delivery` row written in the
caller's transaction, claimed by the webhook workers after the commit, signed per Standard Webhooks, retried on
the webhook schedule, and recorded attempt by attempt in the delivery log. What differs is carried by the row:
its `kind`, its `params` (sent as a form body, a query string for GET, or a JSON body), its `method`, and a
`fallback_url` that takes every other attempt after a failure.

Each callback server (the URL's origin: scheme, host, port) gets a hidden `WebhookEndpoint` (purpose `callback`)
per account, created on first use: it holds the circuit breaker, the concurrency limit and the health of that
server, so a dead status-callback server slows nothing else and never touches the account's real webhook
endpoints. By origin rather than by URL, so URLs that differ per call (`...?call=123`) do not grow the table
the event fan-out reads. Hidden endpoints subscribe to no
event (their `event_types` is empty), are not listed by the webhooks API, and are never disabled: a callback
that runs out of retries fails alone, and the next one tries again.

Callbacks are signed with the account's callback signing secret (`whsec_...`, one per account, encrypted at rest
like endpoint secrets; `GET /api/v1/callback-signing-secret`, `POST .../rotate`). It is copied onto the hidden
endpoints so the engine signs a callback exactly as it signs an event, without another query.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from telephony.models import CallbackSigningSecret, Delivery, DeliveryAttempt, WebhookEndpoint
from telephony.services import webhooks as webhook_services
from telephony.services.events import kick_after_commit
from telephony.urlpolicy import check_url_shape
from tenants.models import Account
from tenants.services import Actor, audit_record

logger = logging.getLogger(__name__)

KINDS = frozenset(
    {
        Delivery.Kind.STATUS_CALLBACK,
        Delivery.Kind.EXTENSION_HOOK,
        Delivery.Kind.MESSAGE_CALLBACK,
        Delivery.Kind.DIAL_ACTION,
    }
)
METHODS = frozenset({"GET", "POST"})
FORMATS = frozenset({"form", "json"})


@dataclass(frozen=True)
class CallbackRequest:
    """One callback to enqueue with `callback_enqueue_many`: the arguments of `callback_enqueue`."""

    account: Account
    url: str
    params: dict
    kind: str
    method: str = "POST"
    call: object = None
    object_type: str = ""
    object_id: str = ""
    fallback_url: str = ""
    payload_format: str = "form"


def callback_enqueue(
    *,
    account: Account,
    url: str,
    method: str = "POST",
    params: dict,
    kind: str,
    call=None,
    object_type: str = "",
    object_id: str = "",
    fallback_url: str = "",
    payload_format: str = "form",
) -> Delivery:
    """Queue one callback; call inside the transaction of the change it reports. Returns its Delivery.

    `payload_format` "form": `params` form-encoded, in the body for POST and in the query string for GET;
    "json": a JSON body. After a failed attempt (connection error, timeout, 5xx...) the next goes to
    `fallback_url` if given, the one after to `url` again, and so on. Link the delivery to a call with `call`,
    or to another object with `object_type` and `object_id` (its public id). Raises ValueError for arguments
    no caller should pass (an unknown kind, method or format; a URL that is not http(s)).
    """
    request = CallbackRequest(
        account=account, url=url, params=params, kind=kind, method=method, call=call, object_type=object_type,
        object_id=object_id, fallback_url=fallback_url, payload_format=payload_format,
    )  # fmt: skip
    return callback_enqueue_many([request])[0]


def callback_enqueue_many(requests: list[CallbackRequest], *, skip_invalid: bool = False) -> list[Delivery]:
    """`callback_enqueue` for several callbacks: one endpoint lookup and one INSERT for all (an engine step's).

    With `skip_invalid`, a request `callback_enqueue` would refuse is logged and left out instead (the engine:
    a URL rendered from a flow's variables must not stop the call).
    """
    if not transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            return callback_enqueue_many(requests, skip_invalid=skip_invalid)
    valid = []
    for request in requests:
        problem = _problem(request)
        if problem is None:
            valid.append(request)
        elif skip_invalid:
            logger.warning("Callback not sent (%s): %s", request.kind, problem)
        else:
            raise ValueError(problem)
    requests = valid
    if not requests:
        return []
    now = timezone.now()
    endpoints = _callback_endpoints({(r.account, origin(r.url)) for r in requests}, now)
    deliveries = [
        Delivery(
            account=request.account,
            endpoint=endpoints[(request.account.pk, origin(request.url))],
            kind=request.kind,
            url=request.url.strip(),
            params={str(key): value for key, value in request.params.items()},
            method=request.method.upper(),
            payload_format=request.payload_format,
            fallback_url=request.fallback_url.strip(),
            call=request.call,
            object_type=request.object_type[:64],
            object_id=str(request.object_id)[:64],
            next_attempt_at=now,
            created_at=now,
        )
        for request in requests
    ]
    Delivery.objects.bulk_create(deliveries)
    kick_after_commit()
    return deliveries


def _problem(request: CallbackRequest) -> str | None:
    if request.kind not in KINDS:
        return f"unknown callback kind {request.kind!r}; one of {sorted(KINDS)}"
    if str(request.method).upper() not in METHODS:
        return f"callback method must be GET or POST, not {request.method!r}"
    if request.payload_format not in FORMATS:
        return f"callback payload_format must be form or json, not {request.payload_format!r}"
    if not isinstance(request.params, dict):
        return "callback params must be a dict"
    if not request.url or not request.url.strip():
        return "a callback needs a URL"
    # The shape only (scheme, credentials, port): the address is checked when the request is made, by the one
    # HTTP client, and a refusal there is a failed attempt like any other.
    for url in (request.url, request.fallback_url):
        if url:
            try:
                check_url_shape(url.strip())
            except ValidationError as exc:
                return f"callback URL {url[:200]!r} refused: {exc.messages[0]}"
    return None


def origin(url: str) -> str:
    """scheme://host[:port] of a URL (lower case): what a callback's hidden endpoint stands for."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower()


def _callback_endpoints(wanted: set[tuple[Account, str]], now: datetime) -> dict[tuple[int, str], WebhookEndpoint]:
    """The hidden endpoint of each (account, origin), created (with the account's callback secret) if new."""
    found: dict[tuple[int, str], WebhookEndpoint] = {}
    by_account: dict[int, tuple[Account, set[str]]] = {}
    for account, url in wanted:
        by_account.setdefault(account.pk, (account, set()))[1].add(url)
    for account_pk, (account, urls) in by_account.items():
        rows = WebhookEndpoint.objects.filter(
            account_id=account_pk, purpose=WebhookEndpoint.Purpose.CALLBACK, url__in=urls
        ).only("id", "url", "account_id")
        for endpoint in rows:
            found[(account_pk, endpoint.url)] = endpoint
        missing = [url for url in urls if (account_pk, url) not in found]
        if missing:
            # Locked: a rotation committing meanwhile would not see the new rows, which would then sign with the
            # old secret for good. Rare (the first callback to a server), so the lock costs nothing.
            secret = _signing_secret(account, now, lock=True)
            for url in missing:
                found[(account_pk, url)] = _create_endpoint(account, url, secret)
    return found


def _create_endpoint(account: Account, url: str, secret: CallbackSigningSecret) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        account=account,
        purpose=WebhookEndpoint.Purpose.CALLBACK,
        url=url,
        description="Callback server (managed by the platform)",
        event_types=[],  # subscribes to nothing: event fan-out never reaches it
        payload_format=WebhookEndpoint.PayloadFormat.FORM,
        secret_encrypted=secret.secret_encrypted,
        previous_secret_encrypted=secret.previous_secret_encrypted,
        previous_secret_expires_at=secret.previous_secret_expires_at,
        secret_rotated_at=secret.secret_rotated_at,
    )
    try:
        # A savepoint: a concurrent transaction creating the same row makes this one wait, then fail here
        # alone, and the caller's transaction carries on with the row the other one made.
        with transaction.atomic():
            endpoint.save(force_insert=True)
    except IntegrityError:
        endpoint = WebhookEndpoint.objects.get(account=account, purpose=WebhookEndpoint.Purpose.CALLBACK, url=url)
    return endpoint


def _signing_secret(account: Account, now: datetime, *, lock: bool = False) -> CallbackSigningSecret:
    rows = CallbackSigningSecret.objects.filter(account=account)
    secret = (rows.select_for_update() if lock else rows).first()
    if secret is not None:
        return secret
    secret = CallbackSigningSecret(
        account=account, secret_encrypted=webhook_services.encrypt_secret(webhook_services.new_signing_secret())
    )
    try:
        with transaction.atomic():
            secret.save(force_insert=True)
    except IntegrityError:
        secret = CallbackSigningSecret.objects.get(account=account)
    return secret


# --- The account's callback signing secret -----------------------------------------------------------


@dataclass(frozen=True)
class SigningSecretInfo:
    masked: str
    created_at: datetime
    secret_rotated_at: datetime | None
    previous_secret_expires_at: datetime | None
    secret: str = ""  # in clear only right after a rotation


def _info(row: CallbackSigningSecret, *, now: datetime, secret: str = "") -> SigningSecretInfo:
    clear = secret or webhook_services.decrypt_secret(row.secret_encrypted)
    expires = row.previous_secret_expires_at if row.previous_secret_encrypted else None
    return SigningSecretInfo(
        masked=f"{webhook_services.SECRET_PREFIX}...{clear[-4:]}",
        created_at=row.created_at,
        secret_rotated_at=row.secret_rotated_at,
        previous_secret_expires_at=expires if expires and expires > now else None,
        secret=secret,
    )


def callback_signing_secret_get(*, account: Account) -> SigningSecretInfo | None:
    """The account's callback signing secret, masked; None before the first callback or rotation.

    It is never shown in clear again: rotate it to get one you can store.
    """
    row = CallbackSigningSecret.objects.filter(account=account).first()
    return _info(row, now=timezone.now()) if row is not None else None


@transaction.atomic
def callback_signing_secret_rotate(*, account: Account, actor: Actor) -> SigningSecretInfo:
    """A new secret signs every callback from now on; the old one signs beside it for 24 hours.

    The answer carries the new secret in clear, the only time it is shown. Every hidden callback endpoint of the
    account takes it in the same transaction.
    """
    now = timezone.now()
    row = _signing_secret(account, now)
    row = CallbackSigningSecret.objects.select_for_update().get(pk=row.pk)
    secret = webhook_services.new_signing_secret()
    row.previous_secret_encrypted = row.secret_encrypted
    row.previous_secret_expires_at = now + webhook_services.PREVIOUS_SECRET_GRACE
    row.secret_encrypted = webhook_services.encrypt_secret(secret)
    row.secret_rotated_at = now
    row.save()
    WebhookEndpoint.objects.filter(account=account, purpose=WebhookEndpoint.Purpose.CALLBACK).update(
        secret_encrypted=row.secret_encrypted,
        previous_secret_encrypted=row.previous_secret_encrypted,
        previous_secret_expires_at=row.previous_secret_expires_at,
        secret_rotated_at=now,
        updated_at=now,
    )
    audit_record(
        account=account,
        actor=actor,
        action="callback_secret.rotated",
        obj=row,
        after={"previous_secret_expires_at": row.previous_secret_expires_at.isoformat()},
    )
    return _info(row, now=now, secret=secret)


def callbacks_purge_expired(*, now: datetime | None = None, batch_size: int = 1000) -> int:
    """Delete callback deliveries (and their attempts) older than EVENT_RETENTION_DAYS, like events. Returns how many.

    Small batches, each its own transaction, so it never holds long locks on a busy table.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.EVENT_RETENTION_DAYS)
    old = Delivery.objects.filter(created_at__lt=cutoff).exclude(kind__in=[Delivery.Kind.EVENT, Delivery.Kind.TEST])
    deleted = 0
    while True:
        ids = list(old.order_by("created_at").values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted
        with transaction.atomic():
            DeliveryAttempt.objects.filter(delivery_id__in=ids).delete()
            deleted += Delivery.objects.filter(id__in=ids).delete()[0]

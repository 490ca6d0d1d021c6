"""Writes for webhook endpoints and deliveries: create, change, rotate the secret, disable, replay, recover, test.

Signing secrets (`whsec_` + base64 of 32 random bytes, the Standard Webhooks format) are needed in clear to
sign, so they are stored encrypted with Fernet under a key derived from WEBHOOK_SECRET_KEY (or SECRET_KEY);
they are returned once, when created or rotated, and never again.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from telephony import event_types
from telephony.models import AttemptTrigger, Delivery, WebhookEndpoint
from telephony.services.events import kick_after_commit
from telephony.urlpolicy import validate_customer_url
from tenants.models import Account, Membership, Role
from tenants.services import Actor, audit_record

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
PREVIOUS_SECRET_GRACE = timedelta(hours=24)
MAX_ENDPOINTS_PER_ACCOUNT = 50
MAX_EVENT_TYPES = 100
PATTERN = re.compile(event_types.NAME_PATTERN)

# --- Secrets -----------------------------------------------------------------------------------------


def new_signing_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _fernet_key(material: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(b"telephony.webhook-secrets:" + material.encode()).digest())


@cache
def _cipher(primary: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(key)) for key in (primary, *fallbacks) if key])


def _current_cipher() -> MultiFernet:
    # Old SECRET_KEYs still decrypt (SECRET_KEY_FALLBACKS), so rotating the site key does not orphan every
    # endpoint; a dedicated WEBHOOK_SECRET_KEY avoids the question altogether.
    primary = getattr(settings, "WEBHOOK_SECRET_KEY", "") or settings.SECRET_KEY
    return _cipher(primary, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def encrypt_secret(secret: str) -> str:
    return _current_cipher().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _current_cipher().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError(
            "A webhook signing secret cannot be decrypted: WEBHOOK_SECRET_KEY (or SECRET_KEY) changed."
        ) from exc


# --- Validation --------------------------------------------------------------------------------------


def clean_event_types(value) -> list[str]:
    """A list of event types and patterns, checked against the catalogue (webhooks and stream subscriptions)."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ValidationError(
            {"event_types": ValidationError('Name at least one event type, or "*" for all.', code="required")}
        )
    if len(value) > MAX_EVENT_TYPES:
        raise ValidationError({"event_types": ValidationError(f"At most {MAX_EVENT_TYPES} types.", code="too_many")})
    cleaned: list[str] = []
    for item in value:
        pattern = str(item).strip()
        if pattern != "*" and (not PATTERN.match(pattern) or not event_types.pattern_is_known(pattern)):
            raise ValidationError(
                {
                    "event_types": ValidationError(
                        f'Unknown event type "{pattern}"; see GET /api/v1/event-types (patterns like "call.*" '
                        'and "*" are allowed).',
                        code="unknown_event_type",
                    )
                }
            )
        if pattern not in cleaned:
            cleaned.append(pattern)
    return cleaned


def _clean_url(url: str) -> str:
    try:
        return validate_customer_url(url)
    except ValidationError as exc:
        raise ValidationError({"url": exc.error_list}) from exc


def _snapshot(endpoint: WebhookEndpoint) -> dict:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "rate_limit": endpoint.rate_limit,
        "payload_format": endpoint.payload_format,
    }


# --- Endpoints ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str  # shown once, stored only encrypted


@transaction.atomic
def webhook_endpoint_create(
    *,
    account: Account,
    actor: Actor,
    url: str,
    description: str = "",
    event_types: list[str] | None = None,
    enabled: bool = True,
    rate_limit: int | None = None,
    payload_format: str = WebhookEndpoint.PayloadFormat.JSON,
) -> EndpointWithSecret:
    # Locking the account row serialises creations, so two concurrent requests cannot pass the cap together.
    Account.objects.select_for_update().filter(pk=account.pk).first()
    if WebhookEndpoint.objects.for_account(account).webhooks().count() >= MAX_ENDPOINTS_PER_ACCOUNT:
        raise ValidationError(
            ValidationError(f"An account may have at most {MAX_ENDPOINTS_PER_ACCOUNT} webhook endpoints.",
                            code="endpoint_limit")
        )  # fmt: skip
    secret = new_signing_secret()
    endpoint = WebhookEndpoint(
        account=account,
        url=_clean_url(url),
        description=description,
        event_types=clean_event_types(["*"] if event_types is None else event_types),
        enabled=enabled,
        rate_limit=rate_limit,
        payload_format=payload_format,
        secret_encrypted=encrypt_secret(secret),
        disabled_at=None if enabled else timezone.now(),
        disabled_reason="" if enabled else "manual",
    )
    endpoint.full_clean()
    endpoint.save()
    audit_record(account=account, actor=actor, action="endpoint.created", obj=endpoint, after=_snapshot(endpoint))
    return EndpointWithSecret(endpoint, secret)


_UNSET = object()


@transaction.atomic
def webhook_endpoint_update(
    *,
    account: Account,
    actor: Actor,
    endpoint: WebhookEndpoint,
    url: str | object = _UNSET,
    description: str | object = _UNSET,
    event_types: list[str] | object = _UNSET,
    enabled: bool | object = _UNSET,
    rate_limit: int | object | None = _UNSET,
    payload_format: str | object = _UNSET,
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.for_account(account).webhooks().select_for_update().get(pk=endpoint.pk)
    before = _snapshot(endpoint)
    if url is not _UNSET:
        endpoint.url = _clean_url(url)
    if description is not _UNSET:
        endpoint.description = description
    if event_types is not _UNSET:
        endpoint.event_types = clean_event_types(event_types)
    if rate_limit is not _UNSET:
        endpoint.rate_limit = rate_limit
    if payload_format is not _UNSET:
        endpoint.payload_format = payload_format
    if enabled is not _UNSET and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        if enabled:
            # A fresh start: whatever made it fail is presumably fixed, so no breaker and no failure streak.
            endpoint.disabled_at, endpoint.disabled_reason = None, ""
            endpoint.failing_since, endpoint.consecutive_failures, endpoint.circuit_open_until = None, 0, None
        else:
            endpoint.disabled_at, endpoint.disabled_reason = timezone.now(), "manual"
    endpoint.full_clean()
    endpoint.save()
    after = _snapshot(endpoint)
    if after != before:
        changed = [key for key in after if after[key] != before[key]]
        audit_record(
            account=account,
            actor=actor,
            action="endpoint.updated",
            obj=endpoint,
            before={key: before[key] for key in changed},
            after={key: after[key] for key in changed},
        )
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, account: Account, actor: Actor, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint and its delivery history; pending deliveries to it are dropped."""
    audit_record(account=account, actor=actor, action="endpoint.deleted", obj=endpoint, before=_snapshot(endpoint))
    WebhookEndpoint.objects.for_account(account).webhooks().filter(pk=endpoint.pk).delete()


@transaction.atomic
def webhook_endpoint_rotate_secret(*, account: Account, actor: Actor, endpoint: WebhookEndpoint) -> EndpointWithSecret:
    """A new secret signs from now on; the old one keeps signing beside it for 24 hours so receivers can switch."""
    endpoint = WebhookEndpoint.objects.for_account(account).webhooks().select_for_update().get(pk=endpoint.pk)
    secret = new_signing_secret()
    now = timezone.now()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + PREVIOUS_SECRET_GRACE
    endpoint.secret_encrypted = encrypt_secret(secret)
    endpoint.secret_rotated_at = now
    endpoint.save(
        update_fields=[
            "previous_secret_encrypted", "previous_secret_expires_at", "secret_encrypted", "secret_rotated_at",
            "updated_at",
        ]
    )  # fmt: skip
    audit_record(
        account=account,
        actor=actor,
        action="endpoint.secret_rotated",
        obj=endpoint,
        after={"previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat()},
    )
    return EndpointWithSecret(endpoint, secret)


DISABLE_REASONS = {
    "gone": "The endpoint answered 410 Gone.",
    "failing": "Every delivery attempt failed for {days} days.",
}


@transaction.atomic
def webhook_endpoint_disable(*, account: Account, actor: Actor, endpoint: WebhookEndpoint, reason: str) -> bool:
    """Turn an endpoint off (the platform does this on 410 Gone or days of failures) and tell the owners.

    Raises the `endpoint.disabled` event in the same transaction. Returns False if it was already off.
    """
    # Callback URLs' hidden endpoints are never disabled (nor their owners emailed): see services/callbacks.py.
    endpoint = (
        WebhookEndpoint.objects.for_account(account).webhooks().select_for_update().filter(pk=endpoint.pk).first()
    )
    if endpoint is None or not endpoint.enabled:
        return False
    endpoint.enabled = False
    endpoint.disabled_at = timezone.now()
    endpoint.disabled_reason = reason
    endpoint.save(update_fields=["enabled", "disabled_at", "disabled_reason", "updated_at"])
    explanation = DISABLE_REASONS.get(reason, reason).format(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
    audit_record(
        account=account,
        actor=actor,
        action="endpoint.disabled",
        obj=endpoint,
        before={"enabled": True},
        after={"enabled": False, "reason": reason, "explanation": explanation},
    )
    owners = list(Membership.objects.for_account(account).filter(role=Role.OWNER).values_list("user__email", flat=True))
    url = endpoint.url
    transaction.on_commit(lambda: _email_owners_endpoint_disabled(account.name, url, explanation, owners))
    return True


def _email_owners_endpoint_disabled(account_name: str, url: str, explanation: str, owners: list[str]) -> None:
    if not owners:
        return
    send_mail(
        subject=f"[{settings.PLATFORM_NAME}] Webhook endpoint disabled: {url[:100]}",
        message=(
            f"The webhook endpoint {url} of {account_name} has been disabled.\n\n{explanation}\n\n"
            "Events are still recorded. Once the endpoint works again, enable it and re-send what it missed with "
            "POST /api/v1/webhooks/{id}/recover.\n"
        ),
        from_email=None,
        recipient_list=owners,
        fail_silently=True,
    )


# --- Deliveries --------------------------------------------------------------------------------------


def _in_flight(delivery: Delivery, now: datetime) -> bool:
    return delivery.status == Delivery.Status.PENDING and bool(delivery.claimed_until and delivery.claimed_until > now)


@transaction.atomic
def delivery_replay(*, account: Account, actor: Actor, delivery: Delivery) -> Delivery:
    """Send one delivery again now, whatever its state, with the same webhook-id; retries start over."""
    delivery = Delivery.objects.for_account(account).select_for_update().select_related("endpoint").get(pk=delivery.pk)
    now = timezone.now()
    if not delivery.endpoint.enabled:
        raise ValidationError(ValidationError("The endpoint is disabled; enable it first.", code="endpoint_disabled"))
    if _in_flight(delivery, now):
        raise ValidationError(ValidationError("This delivery is being sent right now.", code="delivery_in_flight"))
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=now,
        retry_index=0,
        trigger=AttemptTrigger.REPLAY,
        claimed_until=None,
        claim_token=None,
    )
    audit_record(
        account=account,
        actor=actor,
        action="delivery.replayed",
        obj=delivery,
        after={"event": delivery.message_id, "endpoint": str(delivery.endpoint.public_id)},
    )
    kick_after_commit()
    delivery.refresh_from_db()
    return delivery


@transaction.atomic
def webhook_endpoint_recover(*, account: Account, actor: Actor, endpoint: WebhookEndpoint, since: datetime) -> int:
    """Queue again every failed delivery to this endpoint created since a time. Returns how many."""
    endpoint = WebhookEndpoint.objects.for_account(account).webhooks().get(pk=endpoint.pk)
    now = timezone.now()
    if not endpoint.enabled:
        raise ValidationError(ValidationError("The endpoint is disabled; enable it first.", code="endpoint_disabled"))
    if since > now:
        raise ValidationError({"since": ValidationError("Must be in the past.", code="invalid")})
    requeued = Delivery.objects.filter(
        account=account, endpoint=endpoint, status=Delivery.Status.FAILED, created_at__gte=since
    ).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=now,
        retry_index=0,
        trigger=AttemptTrigger.RECOVER,
        claimed_until=None,
        claim_token=None,
    )
    audit_record(
        account=account,
        actor=actor,
        action="endpoint.recovered",
        obj=endpoint,
        after={"since": since.isoformat(), "requeued": requeued},
    )
    if requeued:
        kick_after_commit()
    return requeued


def sample_payload(event_type: str, *, account: Account, message_id: str, now: datetime) -> dict:
    entry = event_types.require(event_type)
    return {
        "id": message_id,
        "type": event_type,
        "occurred_at": now.isoformat().replace("+00:00", "Z"),
        "account": str(account.public_id),
        "object": {"type": "test", "id": message_id},
        "sequence": 1,
        "data": entry.example,
        "test": True,
    }


@transaction.atomic
def webhook_endpoint_send_test(
    *, account: Account, actor: Actor, endpoint: WebhookEndpoint, event_type: str = "webhook.test"
) -> Delivery:
    """Send a sample event to this endpoint only, once (no retries), with a fresh webhook-id."""
    entry = event_types.lookup(event_type)
    if entry is None or entry.is_family:
        raise ValidationError(
            {"event_type": ValidationError(f'Unknown event type "{event_type}".', code="unknown_event_type")}
        )
    now = timezone.now()
    delivery_id = uuid.uuid4()
    delivery = Delivery(
        account=account,
        public_id=delivery_id,
        endpoint=endpoint,
        kind=Delivery.Kind.TEST,
        test_payload=sample_payload(event_type, account=account, message_id=str(delivery_id), now=now),
        next_attempt_at=now,
        trigger=AttemptTrigger.TEST,
        created_at=now,
    )
    delivery.full_clean()
    delivery.save()
    kick_after_commit()
    return delivery


@transaction.atomic
def delivery_requeue(*, deliveries) -> int:
    """Staff: make pending or failed deliveries due now (stuck ones included); their endpoints must be enabled."""
    now = timezone.now()
    count = (
        deliveries.filter(endpoint__enabled=True)
        .exclude(status=Delivery.Status.DELIVERED)
        .update(
            status=Delivery.Status.PENDING,
            next_attempt_at=now,
            retry_index=0,
            trigger=AttemptTrigger.RECOVER,
            claimed_until=None,
            claim_token=None,
        )
    )
    if count:
        kick_after_commit()
    return count

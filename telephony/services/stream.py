"""Writes for event subscriptions (which events the account's websocket connections receive).

Each change is audited (and so becomes an `event_subscription.*` event) and, after commit, tells the account's
open connections to re-read their subscriptions, so a change applies to live sockets at once.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction
from django.utils import timezone

from telephony.models import CallControlApp, EventSubscription
from telephony.services.numbers import normalize_e164
from telephony.services.webhooks import clean_event_types
from telephony.stream import notify_stream_on_commit
from tenants.models import Account
from tenants.scoping import get_for_account, parse_public_id
from tenants.services import Actor, audit_record

MAX_SUBSCRIPTIONS_PER_ACCOUNT = 100
FILTER_KEYS = ("number", "app", "call")


def clean_rule(*, account: Account, event_types, filters) -> dict:
    """Validate a subscription's types and filters (API and socket alike); the model's field values."""
    errors: dict[str, ValidationError] = {}
    try:
        cleaned_types = clean_event_types(event_types)
    except ValidationError as exc:
        errors.update(exc.error_dict)
        cleaned_types = []
    filters = {} if filters is None else filters
    if not isinstance(filters, dict):
        raise ValidationError(
            {"filters": ValidationError('Send an object: {"number", "app", "call"}.', code="invalid")}
        )
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        errors["filters"] = ValidationError(
            f"Unknown filter {unknown[0]!r}; filters are number, app and call.", code="unknown_filter"
        )
    number = filters.get("number") or ""
    if number:
        normalized = normalize_e164(number) if isinstance(number, str) else None
        if normalized is None:
            errors["filters.number"] = ValidationError("Not a valid E.164 number, e.g. +12015550123.", code="invalid")
        number = normalized or ""
    app = filters.get("app") or None
    if app is not None:
        try:
            app = get_for_account(CallControlApp, account, app).public_id
        except ObjectDoesNotExist:
            errors["filters.app"] = ValidationError("No such call-control app in this account.", code="not_found")
            app = None
    call = filters.get("call") or None
    if call is not None:
        # Calls are not checked for existence: a subscription may be made for a call id about to be used.
        call = parse_public_id(call) if isinstance(call, str) else None
        if call is None:
            errors["filters.call"] = ValidationError("Not a call id.", code="invalid")
    if errors:
        raise ValidationError(errors)
    return {"event_types": cleaned_types, "filter_number": number, "filter_app": app, "filter_call": call}


def _snapshot(subscription: EventSubscription) -> dict:
    return {
        "event_types": list(subscription.event_types),
        "filters": subscription.filters,
        "expires_at": subscription.expires_at.isoformat() if subscription.expires_at else None,
        "is_active": subscription.is_active,
    }


def _clean_expiry(expires_at: datetime | None, *, was: datetime | None = None) -> datetime | None:
    if expires_at is not None and expires_at != was and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ValidationError("Must be in the future.", code="in_the_past")})
    return expires_at


@transaction.atomic
def event_subscription_create(
    *,
    account: Account,
    actor: Actor,
    event_types: list[str],
    filters: dict | None = None,
    expires_at: datetime | None = None,
    is_active: bool = True,
) -> EventSubscription:
    # Locks the account row: concurrent creates cannot both pass the limit.
    Account.objects.select_for_update().filter(pk=account.pk).first()
    live = EventSubscription.objects.filter(account=account).exclude(expires_at__lte=timezone.now()).count()
    if live >= MAX_SUBSCRIPTIONS_PER_ACCOUNT:
        raise ValidationError(
            f"An account may have at most {MAX_SUBSCRIPTIONS_PER_ACCOUNT} event subscriptions; delete some first.",
            code="too_many_subscriptions",
        )
    subscription = EventSubscription(
        account=account,
        expires_at=_clean_expiry(expires_at),
        is_active=is_active,
        **clean_rule(account=account, event_types=event_types, filters=filters),
    )
    subscription.full_clean()
    subscription.save()
    audit_record(
        account=account,
        actor=actor,
        action="event_subscription.created",
        obj=subscription,
        after=_snapshot(subscription),
    )
    notify_stream_on_commit(account.pk, "subscriptions.changed")
    return subscription


UNSET = object()


@transaction.atomic
def event_subscription_update(
    *,
    account: Account,
    actor: Actor,
    subscription: EventSubscription,
    event_types=UNSET,
    filters=UNSET,
    expires_at=UNSET,
    is_active=UNSET,
) -> EventSubscription:
    """Change what was given; `filters` replaces all three filters at once."""
    before = _snapshot(subscription)
    if event_types is not UNSET or filters is not UNSET:
        rule = clean_rule(
            account=account,
            event_types=subscription.event_types if event_types is UNSET else event_types,
            filters=subscription.filters if filters is UNSET else filters,
        )
        for name, value in rule.items():
            setattr(subscription, name, value)
    if expires_at is not UNSET:
        subscription.expires_at = _clean_expiry(expires_at, was=subscription.expires_at)
    if is_active is not UNSET:
        subscription.is_active = bool(is_active)
    subscription.full_clean()
    subscription.save()
    after = _snapshot(subscription)
    changed = [key for key in after if after[key] != before[key]]
    if changed:
        audit_record(
            account=account,
            actor=actor,
            action="event_subscription.updated",
            obj=subscription,
            before={key: before[key] for key in changed},
            after={key: after[key] for key in changed},
        )
        notify_stream_on_commit(account.pk, "subscriptions.changed")
    return subscription


@transaction.atomic
def event_subscription_delete(*, account: Account, actor: Actor, subscription: EventSubscription) -> None:
    audit_record(
        account=account,
        actor=actor,
        action="event_subscription.deleted",
        obj=subscription,
        before=_snapshot(subscription),
    )
    subscription.delete()
    notify_stream_on_commit(account.pk, "subscriptions.changed")

"""Writes for accounts, members and API keys. The account comes first, the actor is a keyword.

Each change records an audit entry in the same transaction, so the log never disagrees with the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from tenants.credentials import api_key_digest, api_key_prefix, new_api_key_secret
from tenants.models import Account, ApiKey, AuditEntry, Membership, Role, User
from tenants.throttling import parse_rate

Actor = User | ApiKey | None


def actor_label(actor: Actor) -> str:
    """How an actor is named in logs and records that must outlive the user or key."""
    return _actor_fields(actor)["actor_label"][:200]


def _actor_fields(actor: Actor) -> dict:
    if isinstance(actor, ApiKey):
        return {"actor_api_key": actor, "actor_label": f"API key {actor.name} ({actor.masked})"}
    if isinstance(actor, User):
        return {"actor_user": actor, "actor_label": actor.email}
    return {"actor_label": "system"}


def audit_record(
    *,
    account: Account,
    actor: Actor,
    action: str,
    obj,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEntry:
    """Record one configuration change. Call inside the transaction that makes the change.

    It also emits the event of the same name (the outbox), so every audited change reaches webhooks in
    the same transaction; `action` must therefore be in the event catalogue (telephony/event_types.py).
    """
    # Imported here: telephony's models import tenants, so a module-level import would be a cycle at load.
    from telephony.services.events import event_emit

    entry = AuditEntry.objects.create(
        account=account,
        action=action,
        object_type=obj._meta.model_name,
        object_id=str(getattr(obj, "public_id", obj.pk)),
        object_repr=str(obj)[:200],
        before=before,
        after=after,
        **_actor_fields(actor),
    )
    event_emit(
        account=account,
        type=action,
        object_id=entry.object_id,
        payload={
            "object": {"type": action.split(".", 1)[0], "id": entry.object_id, "repr": entry.object_repr},
            "before": before,
            "after": after,
            "actor": _actor_summary(actor),
        },
        occurred_at=entry.created_at,
    )
    return entry


def _actor_summary(actor: Actor) -> dict:
    if isinstance(actor, ApiKey):
        return {"type": "api_key", "id": str(actor.public_id), "label": f"API key {actor.name} ({actor.masked})"}
    if isinstance(actor, User):
        return {"type": "user", "id": str(actor.public_id), "label": actor.email}
    return {"type": "system", "id": None, "label": "system"}


# --- Accounts ----------------------------------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "account"
    slug, n = base, 2
    while Account.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def account_create(*, name: str, owner: User, slug: str | None = None, actor: Actor = None) -> Account:
    account = Account(name=name, slug=slug or _unique_slug(name))
    account.full_clean()
    account.save()
    Membership.objects.create(account=account, user=owner, role=Role.OWNER)
    audit_record(
        account=account,
        actor=actor or owner,
        action="account.created",
        obj=account,
        after={"name": name, "slug": account.slug},
    )
    return account


@transaction.atomic
def account_set_status(*, account: Account, actor: Actor, status: str, reason: str = "") -> Account:
    before = {"status": account.status}
    account.status = status
    account.suspended_reason = reason if status == Account.Status.SUSPENDED else ""
    account.full_clean()
    account.save(update_fields=["status", "suspended_reason", "updated_at"])
    verb = "suspended" if status == Account.Status.SUSPENDED else "reactivated"
    audit_record(
        account=account,
        actor=actor,
        action=f"account.{verb}",
        obj=account,
        before=before,
        after={"status": status, "reason": reason},
    )
    return account


# --- Members -----------------------------------------------------------------------------------------


def _member_snapshot(membership: Membership) -> dict:
    return {"email": membership.user.email, "role": membership.role}


def _require_owner_left(account: Account, excluding: Membership) -> None:
    others = Membership.objects.for_account(account).filter(role=Role.OWNER).exclude(pk=excluding.pk)
    if not others.exists():
        raise ValidationError({"role": ValidationError("An account needs at least one owner.", code="last_owner")})


def _check_can_grant(acting_role: str | None, role: str) -> None:
    # Only an owner hands out (or takes away) ownership; admins manage everyone else.
    if role == Role.OWNER and acting_role != Role.OWNER:
        raise ValidationError(
            {"role": ValidationError("Only an owner can make or change owners.", code="owner_required")}
        )


@transaction.atomic
def membership_add(
    *, account: Account, actor: Actor, email: str, role: str, name: str = "", acting_role: str | None = None
) -> tuple[Membership, bool]:
    """Give a person a seat. A new user gets an email with a link to choose a password. Returns (seat, new_user)."""
    _check_can_grant(acting_role, role)
    if role not in Role.values:
        raise ValidationError({"role": f"Choose one of {', '.join(Role.values)}."})
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email__iexact=email).first()
    new_user = user is None
    if new_user:
        user = User.objects.create_user(email=email, name=name)
    elif Membership.objects.for_account(account).filter(user=user).exists():
        raise ValidationError(
            {"email": ValidationError("This person is already a member of the account.", code="already_member")}
        )
    membership = Membership(account=account, user=user, role=role)
    membership.full_clean()
    membership.save()
    audit_record(
        account=account, actor=actor, action="member.added", obj=membership, after=_member_snapshot(membership)
    )
    if new_user:
        transaction.on_commit(lambda: _send_set_password_email(email))
    return membership, new_user


class _InviteForm(PasswordResetForm):
    # Django's reset form skips users without a usable password, which is exactly what an invitee has.
    def get_users(self, email):
        return User.objects.filter(email__iexact=email, is_active=True)


def _send_set_password_email(email: str) -> None:
    # Sent after commit with no request at hand, so the link's host comes from settings, not the request.
    base = urlsplit(settings.PORTAL_BASE_URL)
    form = _InviteForm({"email": email})
    if form.is_valid():
        form.save(
            subject_template_name="tenants/emails/invite_subject.txt",
            email_template_name="tenants/emails/invite_body.txt",
            domain_override=base.netloc,
            use_https=base.scheme == "https",
            extra_email_context={"site_name": settings.PLATFORM_NAME},
        )


@transaction.atomic
def membership_change_role(
    *, account: Account, actor: Actor, membership: Membership, role: str, acting_role: str | None = None
) -> Membership:
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    if role not in Role.values:
        raise ValidationError({"role": f"Choose one of {', '.join(Role.values)}."})
    _check_can_grant(acting_role, role)
    _check_can_grant(acting_role, membership.role)
    if membership.role == Role.OWNER and role != Role.OWNER:
        _require_owner_left(account, membership)
    before = _member_snapshot(membership)
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role"])
    audit_record(
        account=account,
        actor=actor,
        action="member.role_changed",
        obj=membership,
        before=before,
        after=_member_snapshot(membership),
    )
    return membership


@transaction.atomic
def membership_remove(*, account: Account, actor: Actor, membership: Membership, acting_role: str | None = None):
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    _check_can_grant(acting_role, membership.role)
    if membership.role == Role.OWNER:
        _require_owner_left(account, membership)
    audit_record(
        account=account, actor=actor, action="member.removed", obj=membership, before=_member_snapshot(membership)
    )
    membership.delete()


# --- API keys ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewApiKey:
    api_key: ApiKey
    secret: str  # shown once, never stored


def _api_key_snapshot(key: ApiKey) -> dict:
    return {
        "name": key.name,
        "prefix": key.prefix,
        "read_only": key.read_only,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "state": key.state,
    }


@transaction.atomic
def api_key_create(
    *,
    account: Account,
    actor: Actor,
    name: str,
    read_only: bool = False,
    expires_at: datetime | None = None,
    rate_limit: str = "",
) -> NewApiKey:
    errors: dict[str, str] = {}
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = "Must be in the future."
    if rate_limit:
        try:
            parse_rate(rate_limit)
        except ValueError as exc:
            errors["rate_limit"] = str(exc)
    if errors:
        raise ValidationError(errors)
    secret = new_api_key_secret()
    key = ApiKey(
        account=account,
        name=name,
        prefix=api_key_prefix(secret),
        digest=api_key_digest(secret),
        read_only=read_only,
        expires_at=expires_at,
        rate_limit=rate_limit,
        created_by=actor if isinstance(actor, User) else None,
    )
    key.full_clean()
    key.save()
    audit_record(account=account, actor=actor, action="api_key.created", obj=key, after=_api_key_snapshot(key))
    return NewApiKey(api_key=key, secret=secret)


@transaction.atomic
def api_key_revoke(*, account: Account, actor: Actor, api_key: ApiKey) -> ApiKey:
    """Revoke at once; the row stays so the audit log and last use remain readable. Revoking twice is a no-op."""
    updated = (
        ApiKey.objects.for_account(account).filter(pk=api_key.pk, revoked_at=None).update(revoked_at=timezone.now())
    )
    api_key.refresh_from_db()
    if updated:
        audit_record(
            account=account, actor=actor, action="api_key.revoked", obj=api_key, after=_api_key_snapshot(api_key)
        )
    return api_key

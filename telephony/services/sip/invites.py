"""SIP invites: a one-time link with which a person creates their own SIP user on a connection."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from telephony.models import SipConnection, SipDomain, SipInvite, SipUser
from telephony.services.sip.rules import FieldErrors, check_name, check_owned, field_error, save_unique
from telephony.services.sip.users import LOGIN_TAKEN, apply_user_changes, login_taken, user_snapshot
from tenants.models import Account, AuditEntry
from tenants.services import Actor, audit_record

_TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"  # noqa: S105 - an alphabet
INVITE_TOKEN_LENGTH = 43  # ~256 bits
# Kept in clear to find the row by index, like API keys; the other 31 characters (~185 bits) are only
# known as a SHA-256 digest, so a database leak does not hand out usable invite links.
INVITE_LOOKUP_CHARS = 12
INVITE_DEFAULT_TTL = timedelta(days=7)
INVITE_MAX_TTL = timedelta(days=30)


def _invite_digest(token: str) -> str:
    # A random 256-bit token needs no slow hash.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewSipInvite:
    invite: SipInvite
    token: str  # shown once, never stored


def invite_link(token: str, request=None) -> str:
    """The URL to send to the invited person: on PORTAL_BASE_URL, else on the host the request came to."""
    path = reverse("invite", kwargs={"token": token})
    base = getattr(settings, "PORTAL_BASE_URL", "")
    if base or request is None:
        return f"{base.rstrip('/')}{path}"
    return request.build_absolute_uri(path)


def _invite_snapshot(invite: SipInvite) -> dict:
    return {
        "name": invite.name,
        "connection": invite.connection.name,
        "domain": invite.domain.domain,
        "expires_at": invite.expires_at.isoformat(),
        "state": invite.state,
    }


def _default_domain(account: Account) -> SipDomain:
    domains = list(SipDomain.objects.for_account(account)[:2])
    if len(domains) == 1:
        return domains[0]
    if not domains:
        raise field_error(
            "domain", "Create a SIP domain first: the invited person's login is made in one.", "domain_required"
        )
    raise field_error("domain", "This account has several SIP domains; say which one.", "domain_required")


@transaction.atomic
def sip_invite_create(
    *,
    account: Account,
    actor: Actor,
    connection: SipConnection,
    name: str,
    expires_at: datetime | None = None,
    domain: SipDomain | None = None,
) -> NewSipInvite:
    errors = FieldErrors()
    name = errors.check(check_name, name)
    now = timezone.now()
    if expires_at is None:
        expires_at = now + INVITE_DEFAULT_TTL
    elif expires_at <= now:
        errors.add("expires_at", "Must be in the future.", "invalid")
    elif expires_at > now + INVITE_MAX_TTL:
        errors.add("expires_at", f"At most {INVITE_MAX_TTL.days} days from now.", "invalid")
    errors.passes(check_owned, account, connection, "connection")
    domain_owned = errors.passes(check_owned, account, domain, "domain")
    if domain is None and domain_owned:
        domain = errors.check(_default_domain, account)
    errors.raise_if_any()
    token = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(INVITE_TOKEN_LENGTH))
    invite = SipInvite(
        account=account,
        connection=connection,
        domain=domain,
        name=name,
        token_prefix=token[:INVITE_LOOKUP_CHARS],
        token_digest=_invite_digest(token),
        expires_at=expires_at,
    )
    invite.full_clean()
    invite.save()
    audit_record(account=account, actor=actor, action="sip_invite.created", obj=invite, after=_invite_snapshot(invite))
    return NewSipInvite(invite=invite, token=token)


@transaction.atomic
def sip_invite_revoke(*, account: Account, actor: Actor, invite: SipInvite) -> None:
    """Delete the invite: its link stops working at once. A SIP user it already created stays."""
    invite = SipInvite.objects.for_account(account).select_related("connection", "domain").get(pk=invite.pk)
    audit_record(account=account, actor=actor, action="sip_invite.revoked", obj=invite, before=_invite_snapshot(invite))
    invite.delete()


class InviteUnavailable(Exception):
    """An invite link that cannot be used; `reason` is not_found, used, expired or suspended."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def sip_invite_find(token: str) -> SipInvite:
    """The usable invite behind a link, or InviteUnavailable saying why not."""
    if not isinstance(token, str) or len(token) != INVITE_TOKEN_LENGTH or not token.isalnum():
        raise InviteUnavailable("not_found")
    invite = (
        SipInvite.objects.select_related("account", "connection", "domain")
        .filter(token_prefix=token[:INVITE_LOOKUP_CHARS])
        .first()
    )
    if invite is None or not hmac.compare_digest(invite.token_digest, _invite_digest(token)):
        raise InviteUnavailable("not_found")
    if invite.used_at is not None:
        raise InviteUnavailable("used")
    if invite.expires_at <= timezone.now():
        raise InviteUnavailable("expired")
    if not invite.account.is_active:
        raise InviteUnavailable("suspended")
    return invite


@transaction.atomic
def sip_invite_accept(*, token: str, login: str, password: str) -> SipUser:
    """The invited person creates their SIP user. An invite works once, even for two racing requests."""
    invite = sip_invite_find(token)
    user = SipUser(account=invite.account, domain=invite.domain, sip_connection=invite.connection)
    apply_user_changes(invite.account, user, {"login": login, "password": password})
    now = timezone.now()
    # The claim is one conditional UPDATE: of two concurrent acceptances only one sees used_at still empty.
    claimed = SipInvite.objects.filter(pk=invite.pk, used_at=None, expires_at__gt=now).update(used_at=now)
    if claimed != 1:
        raise InviteUnavailable("used")
    save_unique(user, LOGIN_TAKEN, lambda: login_taken(user))
    SipInvite.objects.filter(pk=invite.pk).update(sip_user=user)
    invite.refresh_from_db()
    actor_label = f"invitee of {invite}"[:200]
    for action, obj, after in (
        ("sip_user.created", user, {**user_snapshot(user), "invite": str(invite.public_id)}),
        ("sip_invite.used", invite, {**_invite_snapshot(invite), "sip_user": user.sip_uri}),
    ):
        entry = audit_record(account=invite.account, actor=None, action=action, obj=obj, after=after)
        # Not "system": the person who followed the link acted, and the invite says who they were meant to be.
        AuditEntry.objects.filter(pk=entry.pk).update(actor_label=actor_label)
    return user

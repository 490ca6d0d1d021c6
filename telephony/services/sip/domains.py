"""SIP domains, `<name>.sip.<platform domain>`: the realm every SIP user's password hashes are bound to."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.db import transaction

from telephony.models import CallControlApp, SipConnection, SipDomain
from telephony.services.sip.rules import FieldErrors, check_bool, check_owned, field_error, save_unique
from tenants.models import Account
from tenants.services import Actor, audit_record

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def sip_domain_full_name(name: str) -> str:
    return f"{name}.sip.{settings.PLATFORM_SIP_DOMAIN}"


def _check_domain_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise field_error("name", "This field is required.", "required")
    name = value.strip().lower()
    if not _DNS_LABEL.match(name):
        raise field_error(
            "name",
            "Use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen.",
            "domain_name_invalid",
        )
    if len(sip_domain_full_name(name)) > 253:
        raise field_error("name", "The full domain name would be too long.", "domain_name_invalid")
    return name


_NAME_TAKEN = field_error("name", "This SIP domain name is taken; choose another.", "name_taken")


def _domain_snapshot(domain: SipDomain) -> dict:
    return {
        "name": domain.name,
        "domain": domain.domain,
        "same_domain_calls_only": domain.same_domain_calls_only,
        "default_call_control_app": str(domain.default_call_control_app.public_id)
        if domain.default_call_control_app
        else None,
        "default_sip_connection": str(domain.default_sip_connection.public_id)
        if domain.default_sip_connection
        else None,
    }


def _apply_domain_targets(account: Account, domain: SipDomain, changes: dict, errors: FieldErrors) -> None:
    """At most one default inbound target: setting one clears the other; sending both is refused."""
    app = changes.get("default_call_control_app")
    connection = changes.get("default_sip_connection")
    if app is not None and connection is not None:
        message = "Choose a call-control app or a SIP connection as the default target, not both."
        errors.add("default_call_control_app", message, "one_default_target")
        errors.add("default_sip_connection", message, "one_default_target")
        return
    if "default_call_control_app" in changes and errors.passes(check_owned, account, app, "default_call_control_app"):
        domain.default_call_control_app = app
        if app is not None:
            domain.default_sip_connection = None
    if "default_sip_connection" in changes and errors.passes(
        check_owned, account, connection, "default_sip_connection"
    ):
        domain.default_sip_connection = connection
        if connection is not None:
            domain.default_call_control_app = None


@transaction.atomic
def sip_domain_create(
    *,
    account: Account,
    actor: Actor,
    name: str,
    same_domain_calls_only: bool = False,
    default_call_control_app: CallControlApp | None = None,
    default_sip_connection: SipConnection | None = None,
) -> SipDomain:
    errors = FieldErrors()
    name = errors.check(_check_domain_name, name)
    # Platform-wide: the error says the name is taken, not by whom.
    if name and SipDomain.objects.filter(name=name).exists():
        name = None
        errors.errors.setdefault("name", []).append(_NAME_TAKEN.error_dict["name"][0])
    domain = SipDomain(account=account, name=name or "", domain=sip_domain_full_name(name or ""))
    if errors.passes(check_bool, "same_domain_calls_only", same_domain_calls_only):
        domain.same_domain_calls_only = same_domain_calls_only
    _apply_domain_targets(
        account,
        domain,
        {"default_call_control_app": default_call_control_app, "default_sip_connection": default_sip_connection},
        errors,
    )
    errors.raise_if_any()
    domain.full_clean(validate_unique=False, validate_constraints=False)
    save_unique(domain, _NAME_TAKEN, lambda: SipDomain.objects.filter(name=domain.name).exists())
    audit_record(account=account, actor=actor, action="sip_domain.created", obj=domain, after=_domain_snapshot(domain))
    return domain


DOMAIN_FIELDS = frozenset({"name", "same_domain_calls_only", "default_call_control_app", "default_sip_connection"})


@transaction.atomic
def sip_domain_update(*, account: Account, actor: Actor, domain: SipDomain, **changes: Any) -> SipDomain:
    """Change the options. The name cannot change: it is the digest realm of every user's stored hashes."""
    unknown = set(changes) - DOMAIN_FIELDS
    if unknown:
        raise TypeError(f"unknown SIP domain fields: {sorted(unknown)}")
    domain = SipDomain.objects.for_account(account).select_for_update().get(pk=domain.pk)
    before = _domain_snapshot(domain)
    errors = FieldErrors()
    if "name" in changes:
        name = errors.check(_check_domain_name, changes["name"])
        if name is not None and name != domain.name:
            errors.add(
                "name",
                "A SIP domain cannot be renamed: every SIP user's password hash is bound to the domain name. "
                "Create a new domain and move the users instead.",
                "rename_not_allowed",
            )
    if "same_domain_calls_only" in changes and errors.passes(
        check_bool, "same_domain_calls_only", changes["same_domain_calls_only"]
    ):
        domain.same_domain_calls_only = changes["same_domain_calls_only"]
    _apply_domain_targets(account, domain, changes, errors)
    errors.raise_if_any()
    domain.full_clean(validate_unique=False, validate_constraints=False)
    domain.save()
    after = _domain_snapshot(domain)
    if after != before:
        audit_record(account=account, actor=actor, action="sip_domain.updated", obj=domain, before=before, after=after)
    return domain


@transaction.atomic
def sip_domain_delete(*, account: Account, actor: Actor, domain: SipDomain) -> None:
    """Delete the domain with its SIP users and its invites; their numbers lose them as voice target."""
    domain = SipDomain.objects.for_account(account).select_for_update().get(pk=domain.pk)
    users = list(domain.users.order_by("login").values_list("login", flat=True))
    audit_record(
        account=account,
        actor=actor,
        action="sip_domain.deleted",
        obj=domain,
        before={**_domain_snapshot(domain), "users_deleted": len(users), "logins": users[:100]},
    )
    domain.delete()

"""SIP users: logins under a SIP domain, stored as the digest hashes the registrar checks."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from telephony import sipauth
from telephony.models import PhoneNumber, SipConnection, SipDomain, SipUser
from telephony.services.sip.rules import (
    FieldErrors,
    check_account_number,
    check_bool,
    check_owned,
    field_error,
    save_unique,
)
from tenants.models import Account
from tenants.services import Actor, audit_record

USER_FIELDS = frozenset(
    {
        "login", "password", "first_name", "last_name", "email", "caller_id_number", "sip_connection", "is_active",
        "same_domain_calls_only",
    }
)  # fmt: skip

LOGIN_TAKEN = field_error("login", "This login is taken in this domain; choose another.", "login_taken")


def login_taken(user: SipUser, login: str | None = None) -> bool:
    login = login if login is not None else user.login
    return SipUser.objects.filter(domain=user.domain, login__iexact=login).exclude(pk=user.pk).exists()


def user_snapshot(user: SipUser) -> dict:
    return {
        "login": user.login,
        "domain": user.domain.domain,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "caller_id_number": user.caller_id_number.number if user.caller_id_number else None,
        "sip_connection": str(user.sip_connection.public_id) if user.sip_connection else None,
        "is_active": user.is_active,
        "same_domain_calls_only": user.same_domain_calls_only,
    }


def _check_text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise field_error(field, "Must be text.", "invalid")
    return value.strip()


def apply_user_changes(account: Account, user: SipUser, changes: dict) -> bool:
    """Validate `changes` onto `user` (not saved). Returns whether the password was set."""
    unknown = set(changes) - USER_FIELDS
    if unknown:
        raise TypeError(f"unknown SIP user fields: {sorted(unknown)}")
    errors = FieldErrors()
    is_new = user.pk is None
    login = user.login
    if "login" in changes or is_new:
        login = errors.check(
            sipauth.validate_login, changes.get("login"), field="login", min_length=sipauth.USER_LOGIN_MIN_LENGTH
        )
    password = changes.get("password")
    if password in (None, "") and (is_new or (login and login != user.login)):
        # The hashes are made from login, domain and password together.
        message = "This field is required." if is_new else "Set a password with a new login."
        errors.add("password", message, "required")
    if login and not errors.has("login") and login_taken(user, login):
        errors.errors.setdefault("login", []).append(LOGIN_TAKEN.error_dict["login"][0])
    password_set = False
    if password not in (None, "") and login and errors.passes(sipauth.validate_password, password, login=login):
        user.ha1, user.ha1b = sipauth.digest_hashes(login, user.domain.domain, password)
        password_set = True
    if login:
        user.login = login
    for field in ("first_name", "last_name", "email"):
        if field in changes:
            value = errors.check(_check_text, field, changes[field])
            if value is not None:
                setattr(user, field, value.lower() if field == "email" else value)
    for field in ("is_active", "same_domain_calls_only"):
        if field in changes and errors.passes(check_bool, field, changes[field]):
            setattr(user, field, changes[field])
    if "caller_id_number" in changes and errors.passes(
        check_account_number, account, changes["caller_id_number"], "caller_id_number"
    ):
        user.caller_id_number = changes["caller_id_number"]
    if "sip_connection" in changes and errors.passes(check_owned, account, changes["sip_connection"], "sip_connection"):
        user.sip_connection = changes["sip_connection"]
    errors.raise_if_any()
    try:
        user.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        # Only the model's own field checks (lengths, email shape) can fail here.
        raise ValidationError(
            {field: errs for field, errs in exc.error_dict.items() if field != NON_FIELD_ERRORS} or exc.error_dict
        ) from exc
    return password_set


@transaction.atomic
def sip_user_create(
    *,
    account: Account,
    actor: Actor,
    domain: SipDomain,
    login: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    caller_id_number: PhoneNumber | None = None,
    sip_connection: SipConnection | None = None,
    is_active: bool = True,
    same_domain_calls_only: bool = False,
) -> SipUser:
    check_owned(account, domain, "domain")
    user = SipUser(account=account, domain=domain)
    apply_user_changes(
        account,
        user,
        {
            "login": login,
            "password": password,
            "first_name": first_name,
            "last_name": last_name,
            "email": email,
            "caller_id_number": caller_id_number,
            "sip_connection": sip_connection,
            "is_active": is_active,
            "same_domain_calls_only": same_domain_calls_only,
        },
    )
    save_unique(user, LOGIN_TAKEN, lambda: login_taken(user))
    audit_record(account=account, actor=actor, action="sip_user.created", obj=user, after=user_snapshot(user))
    return user


@transaction.atomic
def sip_user_update(*, account: Account, actor: Actor, sip_user: SipUser, **changes: Any) -> SipUser:
    """Change some fields (a PATCH). A new password replaces both digest hashes; a new login needs one."""
    user = SipUser.objects.for_account(account).select_for_update().get(pk=sip_user.pk)
    before = user_snapshot(user)
    password_set = apply_user_changes(account, user, changes)
    save_unique(user, LOGIN_TAKEN, lambda: login_taken(user))
    after = user_snapshot(user)
    if after != before:
        audit_record(account=account, actor=actor, action="sip_user.updated", obj=user, before=before, after=after)
    if password_set:
        audit_record(
            account=account, actor=actor, action="sip_user.password_changed", obj=user, after={"login": user.login}
        )
    return user


@transaction.atomic
def sip_user_delete(*, account: Account, actor: Actor, sip_user: SipUser) -> None:
    user = SipUser.objects.for_account(account).select_for_update().get(pk=sip_user.pk)
    audit_record(account=account, actor=actor, action="sip_user.deleted", obj=user, before=user_snapshot(user))
    user.delete()

"""SIP connections (trunks): credentials or IP authentication, inbound routing, codecs, and their numbers."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from telephony import sipauth
from telephony.models import PhoneNumber, SipConnection
from telephony.models.sip import Transport
from telephony.services import voice_targets
from telephony.services.sip.rules import (
    DEFAULT_CODECS,
    FieldErrors,
    check_account_number,
    check_bool,
    check_channel_limit,
    check_choice,
    check_name,
    check_port,
    field_error,
    normalize_allowed_ips,
    normalize_codecs,
    normalize_inbound_host,
    save_unique,
)
from tenants.models import Account
from tenants.services import Actor, audit_record

CONNECTION_FIELDS = frozenset(
    {
        "name", "is_active", "auth_type", "username", "password", "allowed_ips", "inbound_host", "inbound_port",
        "inbound_transport", "codecs", "caller_id_policy", "default_caller_id", "channel_limit",
    }
)  # fmt: skip


def _connection_snapshot(connection: SipConnection) -> dict:
    return {
        "name": connection.name,
        "is_active": connection.is_active,
        "auth_type": connection.auth_type,
        "username": connection.username,
        "allowed_ips": list(connection.allowed_ips),
        "inbound_host": connection.inbound_host,
        "inbound_port": connection.inbound_port,
        "inbound_transport": connection.inbound_transport,
        "codecs": list(connection.codecs),
        "caller_id_policy": connection.caller_id_policy,
        "default_caller_id": connection.default_caller_id.number if connection.default_caller_id else None,
        "channel_limit": connection.channel_limit,
    }


def _username_taken(username: str, connection: SipConnection) -> bool:
    return SipConnection.objects.filter(username__iexact=username).exclude(pk=connection.pk).exists()


_USERNAME_TAKEN = field_error("username", "This username is taken; choose another.", "username_taken")


def _apply_connection(account: Account, connection: SipConnection, changes: dict) -> bool:
    """Validate `changes` onto `connection` (not saved). Returns whether the password was set."""
    unknown = set(changes) - CONNECTION_FIELDS
    if unknown:
        raise TypeError(f"unknown SIP connection fields: {sorted(unknown)}")
    errors = FieldErrors()
    is_new = connection.pk is None
    previous_auth = None if is_new else connection.auth_type

    if "name" in changes or is_new:
        connection.name = errors.check(check_name, changes.get("name")) or connection.name
    if "is_active" in changes and errors.passes(check_bool, "is_active", changes["is_active"]):
        connection.is_active = changes["is_active"]
    if "auth_type" in changes:
        connection.auth_type = (
            errors.check(check_choice, "auth_type", changes["auth_type"], SipConnection.AuthType)
            or connection.auth_type
        )

    password_set = False
    if connection.auth_type == SipConnection.AuthType.CREDENTIALS:
        if changes.get("allowed_ips"):
            errors.add("allowed_ips", "Only IP-authenticated connections have an allow-list.", "not_applicable")
        switching = previous_auth != SipConnection.AuthType.CREDENTIALS
        username = connection.username
        if "username" in changes or switching:
            username = errors.check(
                sipauth.validate_login,
                changes.get("username"),
                field="username",
                min_length=sipauth.CONNECTION_USERNAME_MIN_LENGTH,
            )
        password = changes.get("password")
        username_changed = username is not None and username != connection.username
        if password in (None, "") and (switching or username_changed):
            # The stored hashes are made from the username and the password together; a new username
            # without the password would leave the registrar with hashes nobody can match.
            message = "This field is required." if switching else "Set a password with a new username."
            errors.add("password", message, "required")
        if username and not errors.has("username") and _username_taken(username, connection):
            errors.errors.setdefault("username", []).append(_USERNAME_TAKEN.error_dict["username"][0])
        if (
            password not in (None, "")
            and username
            and errors.passes(sipauth.validate_password, password, login=username)
        ):
            connection.ha1, connection.ha1b = sipauth.digest_hashes(username, sipauth.connection_realm(), password)
            password_set = True
        if username:
            connection.username = username
        connection.allowed_ips = []
    else:
        if changes.get("username") or changes.get("password"):
            field = "username" if changes.get("username") else "password"
            errors.add(
                field, "Only credential-authenticated connections have a username and password.", "not_applicable"
            )
        if "allowed_ips" in changes:
            connection.allowed_ips = errors.check(normalize_allowed_ips, changes["allowed_ips"]) or []
        if (
            not connection.allowed_ips
            and not errors.has("allowed_ips")
            and not any(key.startswith("allowed_ips.") for key in errors.errors)
        ):
            errors.add("allowed_ips", "List at least one IP address or network.", "required")
        # Switching to IP authentication retires the credentials: the registrar must stop accepting them.
        connection.username, connection.ha1, connection.ha1b = None, "", ""

    if "inbound_host" in changes:
        host = errors.check(normalize_inbound_host, changes["inbound_host"])
        connection.inbound_host = host if host is not None else connection.inbound_host
    if "inbound_port" in changes:
        connection.inbound_port = errors.check(check_port, changes["inbound_port"]) or connection.inbound_port
    if "inbound_transport" in changes:
        connection.inbound_transport = (
            errors.check(check_choice, "inbound_transport", changes["inbound_transport"], Transport)
            or connection.inbound_transport
        )
    if "codecs" in changes or is_new:
        codecs = changes.get("codecs", DEFAULT_CODECS if is_new else None)
        connection.codecs = errors.check(normalize_codecs, codecs) or connection.codecs
    if "caller_id_policy" in changes:
        connection.caller_id_policy = (
            errors.check(check_choice, "caller_id_policy", changes["caller_id_policy"], SipConnection.CallerIdPolicy)
            or connection.caller_id_policy
        )
    if "default_caller_id" in changes and errors.passes(
        check_account_number, account, changes["default_caller_id"], "default_caller_id"
    ):
        connection.default_caller_id = changes["default_caller_id"]
    if (
        connection.caller_id_policy == SipConnection.CallerIdPolicy.DEFAULT_NUMBER
        and connection.default_caller_id is None
        and not errors.has("default_caller_id")
    ):
        errors.add("default_caller_id", "Choose the number to present on outbound calls.", "required")
    if "channel_limit" in changes:
        limit = errors.check(check_channel_limit, changes["channel_limit"])
        if not errors.has("channel_limit"):
            connection.channel_limit = limit

    errors.raise_if_any()
    # Uniqueness was checked above, with the field's own error code; the database has the final word.
    connection.full_clean(validate_unique=False, validate_constraints=False)
    return password_set


@transaction.atomic
def sip_connection_create(
    *,
    account: Account,
    actor: Actor,
    name: str,
    auth_type: str = SipConnection.AuthType.CREDENTIALS,
    username: str | None = None,
    password: str | None = None,
    allowed_ips: list[str] | None = None,
    inbound_host: str = "",
    inbound_port: int = 5060,
    inbound_transport: str = Transport.UDP,
    codecs: list[str] | None = None,
    caller_id_policy: str = SipConnection.CallerIdPolicy.PASSTHROUGH,
    default_caller_id: PhoneNumber | None = None,
    channel_limit: int | None = None,
    is_active: bool = True,
) -> SipConnection:
    changes: dict[str, Any] = {
        "name": name,
        "auth_type": auth_type,
        "inbound_host": inbound_host,
        "inbound_port": inbound_port,
        "inbound_transport": inbound_transport,
        "caller_id_policy": caller_id_policy,
        "default_caller_id": default_caller_id,
        "channel_limit": channel_limit,
        "is_active": is_active,
    }
    optional = {"username": username, "password": password, "allowed_ips": allowed_ips, "codecs": codecs}
    changes.update({key: value for key, value in optional.items() if value is not None})
    connection = SipConnection(account=account)
    password_set = _apply_connection(account, connection, changes)
    save_unique(connection, _USERNAME_TAKEN, lambda: _username_taken(connection.username or "", connection))
    audit_record(
        account=account,
        actor=actor,
        action="sip_connection.created",
        obj=connection,
        after={**_connection_snapshot(connection), "password_set": password_set},
    )
    return connection


@transaction.atomic
def sip_connection_update(
    *, account: Account, actor: Actor, connection: SipConnection, **changes: Any
) -> SipConnection:
    """Change some fields (a PATCH). Sending a password replaces both digest hashes."""
    connection = SipConnection.objects.for_account(account).select_for_update().get(pk=connection.pk)
    before = _connection_snapshot(connection)
    password_set = _apply_connection(account, connection, changes)
    save_unique(connection, _USERNAME_TAKEN, lambda: _username_taken(connection.username or "", connection))
    after = _connection_snapshot(connection)
    if after != before:
        audit_record(
            account=account, actor=actor, action="sip_connection.updated", obj=connection, before=before, after=after
        )
    if password_set:
        # Who and when only: neither the password nor its hashes belong in a log.
        audit_record(
            account=account,
            actor=actor,
            action="sip_connection.password_changed",
            obj=connection,
            after={"username": connection.username},
        )
    return connection


@transaction.atomic
def sip_connection_delete(*, account: Account, actor: Actor, connection: SipConnection) -> None:
    """Delete the trunk. Its numbers lose their voice target, its SIP users their trunk, its invites go."""
    connection = SipConnection.objects.for_account(account).select_for_update().get(pk=connection.pk)
    numbers = list(connection.numbers.order_by("number").values_list("number", flat=True))
    audit_record(
        account=account,
        actor=actor,
        action="sip_connection.deleted",
        obj=connection,
        before={**_connection_snapshot(connection), "numbers": numbers},
    )
    connection.delete()


# --- Connection numbers --------------------------------------------------------------------------


@transaction.atomic
def sip_connection_change_numbers(
    *, account: Account, actor: Actor, connection: SipConnection, add: list | None = None, remove: list | None = None
) -> None:
    """Route numbers' voice calls to this connection, or stop doing so.

    A number has one voice target at most, so adding it here takes it off its call-control app, SIP user
    or other connection. Adding a number already here, or removing one that is not, changes nothing.
    """
    connection = SipConnection.objects.for_account(account).select_for_update().get(pk=connection.pk)
    voice_targets.numbers_route(
        account=account,
        actor=actor,
        target=connection,
        field="sip_connection",
        add=add,
        remove=remove,
        action="sip_connection.numbers_changed",
    )

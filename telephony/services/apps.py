"""Writes for call-control apps: the app's settings, its flow document and that document's versions, its numbers.

An app in `xml` mode holds its flow document; every save that changes the text adds an AppVersion (1, 2, ...),
and restoring an old version saves its text again as the newest one, so history is never rewritten. A stored
document always validates (telephony.callflow); its warnings are answered to the caller but do not block.
Every customer URL goes through the outbound URL policy. Every change records an audit entry (and with it the
`call_control_app.*` event) in its transaction.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from telephony import callflow
from telephony.models import AppVersion, CallControlApp
from telephony.models.apps import HttpMethod
from telephony.services import voice_targets
from telephony.services.sip.rules import (
    FieldErrors,
    check_bool,
    check_channel_limit,
    check_choice,
    check_name,
)
from telephony.urlpolicy import validate_customer_url
from tenants.models import Account
from tenants.services import Actor, actor_label, audit_record

APP_FIELDS = frozenset(
    {
        "name", "is_active", "mode", "xml", "call_flow_url", "call_flow_method", "call_flow_timeout_ms",
        "fallback_url", "webhook_url", "webhook_method", "webhook_timeout_ms", "status_callback_url",
        "status_callback_method", "status_callback_events", "auto_answer", "max_call_length_s", "channel_limit",
        "time_zone",
    }
)  # fmt: skip
URL_FIELDS = ("call_flow_url", "fallback_url", "webhook_url", "status_callback_url")
METHOD_FIELDS = ("call_flow_method", "webhook_method", "status_callback_method")
TIMEOUT_FIELDS = ("call_flow_timeout_ms", "webhook_timeout_ms")
BOOL_FIELDS = ("is_active", "auto_answer")
STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
TIMEOUT_MIN_MS, TIMEOUT_MAX_MS = 100, 30_000
MAX_CALL_LENGTH_MAX_S = 24 * 3600

# The audit log and the event payloads name the document by its version: the text can be 256 KB.
_SNAPSHOT_FIELDS = (*sorted(APP_FIELDS - {"xml"}), "xml_version")


@dataclass
class SavedApp:
    """An app as saved, with the warnings its flow document raised (they do not block a save)."""

    app: CallControlApp
    xml_warnings: list[callflow.Issue] = field(default_factory=list)


@cache
def time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _snapshot(app: CallControlApp, names=_SNAPSHOT_FIELDS) -> dict[str, Any]:
    return {name: (list(value) if isinstance(value := getattr(app, name), list) else value) for name in names}


# --- Field rules -----------------------------------------------------------------------------------


def _check_url(field_name: str, value: Any) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise _error(field_name, "Enter a URL.", "invalid")
    try:
        return validate_customer_url(value)
    except ValidationError as exc:  # UrlRefused: the policy's own code (url_scheme, url_forbidden_address...)
        raise ValidationError({field_name: exc}) from exc


def _check_int(field_name: str, value: Any, low: int, high: int, message: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _error(field_name, message, "out_of_range")
    return value


def _check_time_zone(value: Any) -> str:
    if not isinstance(value, str) or value not in time_zones():
        raise _error("time_zone", "Choose a time zone from the IANA database, e.g. America/New_York or UTC.", "invalid")
    return value


def parse_status_events(value: Any) -> list[str]:
    """A list (or a string separated by commas or spaces, as Restcomm's docs write both) of callback events.

    Answered in the canonical order, without repeats; each unknown item is a positional error.
    """
    if isinstance(value, str):
        value = [item for item in value.replace(",", " ").split() if item]
    if not isinstance(value, (list, tuple)):
        raise _error("status_callback_events", f"Send a list of {', '.join(STATUS_CALLBACK_EVENTS)}.", "invalid")
    errors = FieldErrors()
    chosen = set()
    for index, item in enumerate(value):
        if item not in STATUS_CALLBACK_EVENTS:
            errors.add(
                f"status_callback_events.{index}",
                f"“{item}” is not a status callback event; choose from {', '.join(STATUS_CALLBACK_EVENTS)}.",
                "invalid_choice",
            )
        else:
            chosen.add(item)
    errors.raise_if_any()
    return [event for event in STATUS_CALLBACK_EVENTS if event in chosen]


def _error(field_name: str, message: str, code: str) -> ValidationError:
    return ValidationError({field_name: ValidationError(message, code=code)})


def _apply(app: CallControlApp, changes: dict[str, Any], errors: FieldErrors) -> list[callflow.Issue] | None:
    """Validate `changes` onto `app` (not saved); every field's mistakes go to `errors` at once.

    Returns the flow document's warnings, or None when the document did not change.
    """
    unknown = set(changes) - APP_FIELDS
    if unknown:
        raise TypeError(f"unknown call-control app fields: {sorted(unknown)}")
    is_new = app.pk is None

    if "name" in changes or is_new:
        app.name = errors.check(check_name, changes.get("name")) or app.name
    if "mode" in changes:
        app.mode = errors.check(check_choice, "mode", changes["mode"], CallControlApp.Mode) or app.mode
    for name in BOOL_FIELDS:
        if name in changes and errors.passes(check_bool, name, changes[name]):
            setattr(app, name, changes[name])
    for name in METHOD_FIELDS:
        if name in changes:
            setattr(app, name, errors.check(check_choice, name, changes[name], HttpMethod) or getattr(app, name))
    for name in URL_FIELDS:
        if name in changes:
            checked = errors.check(_check_url, name, changes[name])
            if checked is not None:
                setattr(app, name, checked)
    for name in TIMEOUT_FIELDS:
        if name in changes:
            message = f"Enter {TIMEOUT_MIN_MS} to {TIMEOUT_MAX_MS} milliseconds."
            checked = errors.check(_check_int, name, changes[name], TIMEOUT_MIN_MS, TIMEOUT_MAX_MS, message)
            if checked is not None:
                setattr(app, name, checked)
    if "max_call_length_s" in changes:
        message = f"Enter 1 to {MAX_CALL_LENGTH_MAX_S} seconds (24 hours)."
        checked = errors.check(
            _check_int, "max_call_length_s", changes["max_call_length_s"], 1, MAX_CALL_LENGTH_MAX_S, message
        )
        if checked is not None:
            app.max_call_length_s = checked
    if "channel_limit" in changes and errors.passes(check_channel_limit, changes["channel_limit"]):
        app.channel_limit = changes["channel_limit"]
    if "time_zone" in changes:
        app.time_zone = errors.check(_check_time_zone, changes["time_zone"]) or app.time_zone
    if "status_callback_events" in changes:
        events = errors.check(parse_status_events, changes["status_callback_events"])
        if events is not None:
            app.status_callback_events = events

    warnings = None
    if "xml" in changes:
        xml = changes["xml"]
        if xml is None:
            xml = ""
        if not isinstance(xml, str):
            errors.add("xml", "Send the flow document as a string.", "invalid")
        elif xml.strip() and xml != app.xml:
            result = callflow.validate(xml)
            if result.errors:
                exc = callflow.CallFlowInvalid(result.errors, result.warnings).as_validation_error("xml")
                exc.update_error_dict(errors.errors)
            else:
                warnings = result.warnings
                app.xml = xml
        elif not xml.strip():
            app.xml = ""

    # What each mode needs, checked against the app as it will stand (a PATCH may set the field earlier).
    if app.mode == CallControlApp.Mode.XML and not app.xml.strip() and not errors.has("xml"):
        errors.add("xml", "An app in xml mode needs a flow document, <Response>...</Response>.", "required")
    if app.mode == CallControlApp.Mode.URL and not app.call_flow_url and not errors.has("call_flow_url"):
        errors.add("call_flow_url", "An app in url mode needs the URL that returns each call's flow.", "required")
    return warnings


def _save_version(app: CallControlApp, actor: Actor) -> AppVersion:
    """Record `app.xml` as the app's next version. The caller holds the app's row lock."""
    app.xml_version += 1
    version = AppVersion(app=app, number=app.xml_version, xml=app.xml, actor_label=actor_label(actor))
    version.full_clean(exclude=["app"])
    version.save()
    return version


# --- The app -------------------------------------------------------------------------------------


@transaction.atomic
def app_create(
    *,
    account: Account,
    actor: Actor,
    name: str,
    mode: str = CallControlApp.Mode.XML,
    xml: str = "",
    is_active: bool = True,
    call_flow_url: str = "",
    call_flow_method: str = HttpMethod.POST,
    call_flow_timeout_ms: int = 5000,
    fallback_url: str = "",
    webhook_url: str = "",
    webhook_method: str = HttpMethod.POST,
    webhook_timeout_ms: int = 5000,
    status_callback_url: str = "",
    status_callback_method: str = HttpMethod.POST,
    status_callback_events: list[str] | str | None = None,
    auto_answer: bool = True,
    max_call_length_s: int = 4 * 3600,
    channel_limit: int | None = None,
    time_zone: str = "UTC",
) -> SavedApp:
    """Create an app. In xml mode its document (required) becomes version 1."""
    changes = {
        "name": name, "mode": mode, "xml": xml, "is_active": is_active, "call_flow_url": call_flow_url,
        "call_flow_method": call_flow_method, "call_flow_timeout_ms": call_flow_timeout_ms,
        "fallback_url": fallback_url, "webhook_url": webhook_url, "webhook_method": webhook_method,
        "webhook_timeout_ms": webhook_timeout_ms, "status_callback_url": status_callback_url,
        "status_callback_method": status_callback_method, "status_callback_events": status_callback_events or [],
        "auto_answer": auto_answer, "max_call_length_s": max_call_length_s, "channel_limit": channel_limit,
        "time_zone": time_zone,
    }  # fmt: skip
    app = CallControlApp(account=account)
    errors = FieldErrors()
    warnings = _apply(app, changes, errors)
    errors.raise_if_any()
    app.full_clean(exclude=["account"])
    app.save()
    if app.xml:
        _save_version(app, actor)
        app.save(update_fields=["xml_version"])
    audit_record(account=account, actor=actor, action="call_control_app.created", obj=app, after=_snapshot(app))
    return SavedApp(app, warnings or [])


@transaction.atomic
def app_update(*, account: Account, actor: Actor, app: CallControlApp, **changes: Any) -> SavedApp:
    """Change an app (PATCH semantics: only the fields given). A changed document is saved as a new version."""
    app = CallControlApp.objects.for_account(account).select_for_update().get(pk=app.pk)
    before = _snapshot(app)
    previous_xml = app.xml
    errors = FieldErrors()
    warnings = _apply(app, changes, errors)
    errors.raise_if_any()
    if app.xml != previous_xml:
        if app.xml:
            _save_version(app, actor)
        else:
            app.xml_version = 0  # url mode without a document; the old versions stay restorable
    after = _snapshot(app)
    changed = [name for name in _SNAPSHOT_FIELDS if before[name] != after[name]]
    if not changed:
        return SavedApp(app, warnings or [])
    app.full_clean(exclude=["account"])
    app.save()
    audit_record(
        account=account,
        actor=actor,
        action="call_control_app.updated",
        obj=app,
        before={name: before[name] for name in changed},
        after={name: after[name] for name in changed},
    )
    return SavedApp(app, warnings or [])


@transaction.atomic
def app_version_restore(*, account: Account, actor: Actor, app: CallControlApp, number: int) -> SavedApp:
    """Make an old version's text the app's document again, saved as the newest version.

    The text is validated again, since the language may have grown stricter since it was saved. Restoring
    the text the app already holds changes nothing.
    """
    app = CallControlApp.objects.for_account(account).select_for_update().get(pk=app.pk)
    version = app.versions.filter(number=number).first()
    if version is None:
        raise _error("version", f"This app has no version {number}.", "not_found")
    if version.xml == app.xml:
        return SavedApp(app, [])
    result = callflow.validate(version.xml)
    if result.errors:
        raise callflow.CallFlowInvalid(result.errors, result.warnings).as_validation_error("xml")
    before = {"xml_version": app.xml_version}
    app.xml = version.xml
    _save_version(app, actor)
    app.full_clean(exclude=["account"])
    app.save(update_fields=["xml", "xml_version", "updated_at"])
    audit_record(
        account=account,
        actor=actor,
        action="call_control_app.version_restored",
        obj=app,
        before=before,
        after={"xml_version": app.xml_version, "restored_from": number},
    )
    return SavedApp(app, result.warnings)


@transaction.atomic
def app_delete(*, account: Account, actor: Actor, app: CallControlApp) -> None:
    """Delete the app with its versions. Its numbers lose their voice target; its calls keep their records."""
    app = CallControlApp.objects.for_account(account).select_for_update().get(pk=app.pk)
    numbers = list(app.numbers.order_by("number").values_list("number", flat=True))
    audit_record(
        account=account,
        actor=actor,
        action="call_control_app.deleted",
        obj=app,
        before={**_snapshot(app), "numbers": numbers},
    )
    app.delete()


# --- Numbers ---------------------------------------------------------------------------------------


@transaction.atomic
def app_numbers_change(
    *, account: Account, actor: Actor, app: CallControlApp, add: list | None = None, remove: list | None = None
) -> None:
    """Send numbers' voice calls to this app, or stop doing so. All or nothing; errors are positional (`add.2`).

    A number has one voice target, so adding it here takes it off its SIP connection or SIP user (or another
    app). Adding a number already here, or removing one that is not, changes nothing. The numbers are
    resolved as the SIP connections' are (by id or E.164, active, within the account, locked for the change):
    through the one shared implementation in services/voice_targets.py.
    """
    app = CallControlApp.objects.for_account(account).select_for_update().get(pk=app.pk)
    voice_targets.numbers_route(
        account=account,
        actor=actor,
        target=app,
        field="call_control_app",
        add=add,
        remove=remove,
        action="call_control_app.numbers_changed",
    )

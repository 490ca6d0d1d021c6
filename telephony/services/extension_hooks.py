"""Extension event hooks (VoipNow CallAPI Events): a SIP user's HTTP requests on dial-in, dial-out, answer, hangup.

Managing them (`extension_hook_create/update/delete`, audited) and firing them (`extension_hooks_fire`, called
inside the transaction of a leg's change). A fired hook is one delivery through the webhook machinery
(`telephony.services.callbacks.callback_enqueue`, kind "extension_hook"): signed, retried, in the delivery log;
its parameters go in the query string for GET and form-encoded in the body for POST.

The parameters, as VoipNow sends them: CallID, CallerIDNum, CallerIDName (and the older spelling CallerIDNam,
same value), CalledDID, CalledExtension, CallStatus (CALLING for dial-in/out; ANSWER, or UNKNOWN for a call
never answered, on hangup; ANSWER on answer), CallFlow (IN for a call the user receives, OUT for one they
place), CallerExtension, CalledNumber. An extension here is the SIP user's login.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from telephony.models import Call, ExtensionHook, SipUser
from telephony.urlpolicy import validate_customer_url
from tenants.models import Account
from tenants.services import Actor, audit_record

logger = logging.getLogger(__name__)

EVENTS = tuple(ExtensionHook.Event.values)
HOOK_FIELDS = ("event", "method", "url", "enabled", "notes")
MAX_HOOKS_PER_USER = 50


def _error(field_name: str, message: str, code: str) -> ValidationError:
    return ValidationError({field_name: ValidationError(message, code=code)})


def _snapshot(hook: ExtensionHook) -> dict:
    return {name: getattr(hook, name) for name in HOOK_FIELDS}


def _apply(hook: ExtensionHook, changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(HOOK_FIELDS)
    if unknown:
        raise TypeError(f"unknown extension hook fields: {sorted(unknown)}")
    if "event" in changes:
        if changes["event"] not in EVENTS:
            raise _error("event", f"One of {', '.join(EVENTS)}.", "invalid_choice")
        hook.event = changes["event"]
    if "method" in changes:
        method = str(changes["method"] or "").upper()
        if method not in ("GET", "POST"):
            raise _error("method", "GET or POST.", "invalid_choice")
        hook.method = method
    if "url" in changes:
        url = str(changes["url"] or "").strip()
        if not url:
            raise _error("url", "Enter a URL.", "required")
        try:
            hook.url = validate_customer_url(url)
        except ValidationError as exc:  # the outbound URL policy's own code (url_scheme, url_forbidden_address...)
            raise ValidationError({"url": exc}) from exc
    if "enabled" in changes:
        hook.enabled = bool(changes["enabled"])
    if "notes" in changes:
        hook.notes = str(changes["notes"] or "")[:500]


@transaction.atomic
def extension_hook_create(
    *,
    account: Account,
    actor: Actor,
    sip_user: SipUser,
    event: str,
    url: str,
    method: str = "POST",
    enabled: bool = True,
    notes: str = "",
) -> ExtensionHook:
    user = SipUser.objects.for_account(account).select_for_update().get(pk=sip_user.pk)
    if ExtensionHook.objects.filter(sip_user=user).count() >= MAX_HOOKS_PER_USER:
        raise _error("event", f"A SIP user has at most {MAX_HOOKS_PER_USER} event hooks.", "limit_reached")
    hook = ExtensionHook(account=account, sip_user=user)
    _apply(hook, {"event": event, "url": url, "method": method, "enabled": enabled, "notes": notes})
    hook.full_clean(exclude=["account", "sip_user"])
    hook.save()
    audit_record(account=account, actor=actor, action="extension_hook.created", obj=hook, after=_snapshot(hook))
    return hook


@transaction.atomic
def extension_hook_update(*, account: Account, actor: Actor, hook: ExtensionHook, **changes: Any) -> ExtensionHook:
    hook = ExtensionHook.objects.for_account(account).select_for_update().get(pk=hook.pk)
    before = _snapshot(hook)
    _apply(hook, changes)
    hook.full_clean(exclude=["account", "sip_user"])
    hook.save()
    after = _snapshot(hook)
    if after != before:
        changed = [name for name in HOOK_FIELDS if before[name] != after[name]]
        audit_record(
            account=account,
            actor=actor,
            action="extension_hook.updated",
            obj=hook,
            before={name: before[name] for name in changed},
            after={name: after[name] for name in changed},
        )
    return hook


@transaction.atomic
def extension_hook_delete(*, account: Account, actor: Actor, hook: ExtensionHook) -> None:
    hook = ExtensionHook.objects.for_account(account).select_for_update().get(pk=hook.pk)
    audit_record(account=account, actor=actor, action="extension_hook.deleted", obj=hook, before=_snapshot(hook))
    hook.delete()


# --- Firing ---------------------------------------------------------------------------------------------


def _login_of(address: str, sip_user: SipUser) -> str:
    """The login in a SIP URI of the user's domain, else ''."""
    if not address.lower().startswith(("sip:", "sips:")):
        return ""
    login, _, host = address.split(":", 1)[1].split(";", 1)[0].partition("@")
    return login if host.split(":", 1)[0].lower() == sip_user.domain.domain.lower() else ""


def _flow(sip_user: SipUser, event: str, call: Call) -> str:
    if event == "dial-in":
        return "IN"
    if event == "dial-out":
        return "OUT"
    # Answer and hangup: the user placed the call if it comes from them (their URI, or the platform calling on
    # their behalf), and received it otherwise.
    if call.direction == Call.Direction.OUTBOUND_API:
        return "OUT"
    if (call.variables or {}).get("edge", {}).get("caller_user"):  # the SIP edge: a call the user's phone placed
        return "OUT"
    if call.direction == Call.Direction.INBOUND and _login_of(call.from_number, sip_user).lower() == (
        sip_user.login.lower()
    ):
        return "OUT"
    return "IN"


def hook_params(*, sip_user: SipUser, event: str, call: Call) -> dict[str, str]:
    """VoipNow's parameters for one event of one call leg, as seen from `sip_user`'s extension."""
    flow = _flow(sip_user, event, call)
    root = call.parent if call.parent_id else call
    user_name = f"{sip_user.first_name} {sip_user.last_name}".strip()
    if event in ("dial-in", "dial-out"):
        status = "CALLING"
    elif event == "answer":
        status = "ANSWER"
    else:
        status = "ANSWER" if call.answered_at else "UNKNOWN"
    if flow == "IN":
        caller_num = root.from_number if call.direction == Call.Direction.OUTBOUND_DIAL else call.from_number
        caller_ext = _login_of(caller_num, sip_user)
        caller_name = ""
        called_ext = sip_user.login
        # What the caller dialed: the number the call came in on, when it came in on one.
        called_number = root.to_number if root.direction == Call.Direction.INBOUND else call.to_number
        did = root.to_number if root.direction == Call.Direction.INBOUND and root.to_number.startswith("+") else ""
    else:
        caller_num = call.from_number
        caller_ext = sip_user.login
        caller_name = user_name
        called_number = call.to_number
        called_ext = _login_of(call.to_number, sip_user)
        did = call.to_number if call.to_number.startswith("+") else ""
    return {
        "CallID": str(call.public_id),
        "CallerIDNum": caller_num,
        "CallerIDName": caller_name,
        "CallerIDNam": caller_name,
        "CalledDID": did,
        "CalledExtension": called_ext,
        "CallStatus": status,
        "CallFlow": flow,
        "CallerExtension": caller_ext,
        "CalledNumber": called_number,
    }


def extension_hooks_fire(*, sip_user: SipUser, event: str, call: Call) -> int:
    """Queue one request per enabled hook of `sip_user` for `event`; how many. Call inside the leg's transaction."""
    if event not in EVENTS:
        raise ValueError(f"unknown extension hook event {event!r}")
    hooks = list(ExtensionHook.objects.filter(sip_user=sip_user, event=event, enabled=True))
    if not hooks:
        return 0
    from telephony.services.callbacks import callback_enqueue

    params = hook_params(sip_user=sip_user, event=event, call=call)
    for hook in hooks:
        callback_enqueue(
            account=call.account,
            url=hook.url,
            method=hook.method,
            params=dict(params),
            kind="extension_hook",
            call=call,
            object_type="extension_hook",
            object_id=str(hook.public_id),
            payload_format="form",
        )
    return len(hooks)


def leg_hook_event(call: Call, status: str) -> str | None:
    """Which hook event a leg's move to `status` is, for the SIP user on the leg (None: none).

    A leg the platform places to a SIP user (a Dial) is the user receiving a call; a leg the platform places for
    a SIP user (an API or web callback call from them) is the user placing one. An inbound leg's SIP user is
    where the routing sends it, and the forwarding Dial's leg raises that user's events, so inbound legs raise
    none here (the SIP edge raises dial-out itself for a call a registered phone places).
    """
    from telephony.models import FINAL_STATUSES, CallStatus

    if call.direction == Call.Direction.INBOUND:
        return None
    if status == CallStatus.INITIATED:
        return "dial-in" if call.direction == Call.Direction.OUTBOUND_DIAL else "dial-out"
    if status == CallStatus.IN_PROGRESS:
        return "answer"
    if status in FINAL_STATUSES:
        return "hangup"
    return None


def fire_for_leg(call: Call, event: str) -> None:
    """The leg's SIP user's hooks for `event` (the engine's write, run at flush inside its transaction)."""
    sip_user = SipUser.objects.select_related("domain", "caller_id_number").filter(pk=call.sip_user_id).first()
    if sip_user is None:
        return
    try:
        extension_hooks_fire(sip_user=sip_user, event=event, call=call)
    except ImportError:  # pragma: no cover - until the callbacks module lands, hooks are logged, not sent
        logger.warning("Extension hooks not delivered: telephony.services.callbacks is missing")

"""Web callback (Acrobits Cloud Softphone): a SIP user asks the platform to call them back and connect a number.

The softphone sends the user's SIP credentials, the number to reach (`targetNumber`/`to`) and the number to
ring back (`callbackNumber`/`callback`). The platform places the first call through the outbound call service
(the account's pacing, limits and destination policy apply), with the SIP user's caller ID; when that leg
answers, its flow dials the second number and the engine bridges the two. Which number rings first is the
account's setting: Acrobits' document says destination first, while ringing the user's own phone first
means nobody is called on their behalf until they pick up, so that is the default.

Passwords are checked against the SIP user's stored digest hash (HA1 = md5(login:domain:password)); the
portal never keeps a SIP password.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from telephony.models import Call, SipUser, WebCallbackSettings
from telephony.services.bulk_calls import normalize_destination
from telephony.sipauth import digest_ha1
from tenants.models import Account
from tenants.services import Actor, audit_record

# Bad credentials: after this many failures within the window, from one address or for one username, every
# request is refused for the rest of the window (softphones retry; scanners try passwords).
FAILURE_LIMIT = 5
FAILURE_WINDOW_S = 600
DIAL_TIMEOUT_S = 30


class WebCallbackRefused(Exception):
    """A request the platform will not act on, with the HTTP status and the message the softphone shows."""

    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass(frozen=True)
class Placed:
    call: Call
    first: str
    second: str


def settings_for(account: Account) -> WebCallbackSettings:
    found = WebCallbackSettings.objects.filter(account=account).first()
    return found or WebCallbackSettings(account=account)


@transaction.atomic
def web_callback_settings_update(*, account: Account, actor: Actor, enabled: bool, order: str) -> WebCallbackSettings:
    current, _ = WebCallbackSettings.objects.select_for_update().get_or_create(account=account)
    if order not in WebCallbackSettings.Order.values:
        raise ValidationError({"order": ValidationError("Not a known order.", code="invalid_choice")})
    before = {"enabled": current.enabled, "order": current.order}
    current.enabled, current.order = bool(enabled), order
    current.full_clean(exclude=["account"])
    current.save()
    after = {"enabled": current.enabled, "order": current.order}
    if before != after:
        # Recorded against the account: the settings row is part of it and has no public id of its own.
        audit_record(
            account=account,
            actor=actor,
            action="web_callback_settings.updated",
            obj=account,
            before=before,
            after=after,
        )
    return current


# --- Credentials -------------------------------------------------------------------------------------------


def _failure_keys(username: str, address: str) -> list[str]:
    digest = hashlib.sha256(username.lower().encode()).hexdigest()[:32]
    return [f"wcb-fail:user:{digest}", f"wcb-fail:ip:{address}"]


def throttled(username: str, address: str) -> bool:
    return any((cache.get(key) or 0) >= FAILURE_LIMIT for key in _failure_keys(username, address))


def _record_failure(username: str, address: str) -> None:
    for key in _failure_keys(username, address):
        if cache.add(key, 1, FAILURE_WINDOW_S):
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, FAILURE_WINDOW_S)


def split_username(username: str, domain: str = "") -> tuple[str, str]:
    """'mary@acme.sip.example.net' or ('mary', 'acme.sip.example.net') -> (login, domain)."""
    username = (username or "").strip()
    if username.lower().startswith("sip:"):
        username = username[4:]
    login, at, host = username.partition("@")
    return login, (host if at else (domain or "")).strip().lower()


def authenticate(*, username: str, domain: str, password: str, address: str) -> SipUser:
    """The active SIP user these credentials belong to, or WebCallbackRefused (401, or 429 when throttled)."""
    login, realm = split_username(username, domain)
    # Counted per user as the lookup sees it (case, spaces and sip: do not make another user to throttle).
    throttle_key = f"{login}@{realm}"
    if throttled(throttle_key, address):
        raise WebCallbackRefused(429, "Too many failed sign-ins. Try again in a few minutes.", "throttled")
    user = None
    if login and realm and password and "\x00" not in login + realm:  # PostgreSQL refuses NUL in a query
        user = (
            SipUser.objects.select_related("account", "domain", "caller_id_number")
            .filter(domain__domain__iexact=realm, login__iexact=login, is_active=True)
            .first()
        )
    # The hash is computed whether or not the user exists, so the answer takes as long either way.
    expected = user.ha1 if user is not None else "0" * 32
    given = digest_ha1(user.login if user is not None else login, realm, password or "")
    if user is None or not hmac.compare_digest(expected, given):
        _record_failure(throttle_key, address)
        raise WebCallbackRefused(401, "Wrong username or password.", "bad_credentials")
    return user


# --- Placing the calls -------------------------------------------------------------------------------------


def _dial_xml(number: str, caller_id: str) -> str:
    return (
        f"<Response><Dial callerId={quoteattr(caller_id)} timeout={quoteattr(str(DIAL_TIMEOUT_S * 1000))}>"
        f"<To>{escape(number)}</To></Dial></Response>"
    )


def web_callback_place(*, sip_user: SipUser, target: str, callback: str) -> Placed:
    """Ring the first number; its flow dials the second and bridges them. WebCallbackRefused when not possible."""
    from telephony.services.outbound import call_place, destination_refusal, policy_for

    account = sip_user.account
    if not account.is_active:
        raise WebCallbackRefused(403, "This account is suspended.", "account_suspended")
    policy = settings_for(account)
    if not policy.enabled:
        raise WebCallbackRefused(403, "Web callback is turned off for this account.", "web_callback_disabled")
    target_number, callback_number = normalize_destination(target), normalize_destination(callback)
    if not target:
        raise WebCallbackRefused(400, "Give the number to call (targetNumber or to).", "target_required")
    if target_number is None:
        raise WebCallbackRefused(400, f"Unknown number: {target}.", "unknown_number")
    if not callback:
        raise WebCallbackRefused(400, "Give your callback number (callbackNumber or callback).", "callback_required")
    if callback_number is None:
        raise WebCallbackRefused(400, f"Unknown callback number: {callback}.", "unknown_number")
    if sip_user.caller_id_number is None:
        raise WebCallbackRefused(403, "This SIP user has no caller ID number to call with.", "no_caller_id")
    caller_id = sip_user.caller_id_number.number
    # The second number is dialed by the first call's flow, not placed through call_place: check both here.
    outbound_policy = policy_for(account)
    for number in (target_number, callback_number):
        refusal = destination_refusal(outbound_policy, number)
        if refusal is not None:
            raise WebCallbackRefused(403, refusal[1], refusal[0])
    if policy.order == WebCallbackSettings.Order.TARGET_FIRST:
        first, second = target_number, callback_number
    else:
        first, second = callback_number, target_number
    try:
        call = call_place(
            account=account,
            actor="web_callback",
            from_=caller_id,
            to=first,
            xml=_dial_xml(second, caller_id),
            timeout_s=DIAL_TIMEOUT_S,
            tag="web-callback",
            caller_sip_user=sip_user,
        )
    except ValidationError as exc:
        # Destination policy, limits, credit: the service's own words, which the softphone shows as they are.
        raise WebCallbackRefused(403, "; ".join(exc.messages) or "The call cannot be placed.", "refused") from exc
    if call.status == Call.Status.FAILED:  # refused by the account's limits (its outbound queue is full)
        raise WebCallbackRefused(403, call.end_reason or "The call cannot be placed now.", "limit_reached")
    return Placed(call=call, first=first, second=second)


# --- What a softphone is given ----------------------------------------------------------------------------


def endpoint_url(request=None) -> str:
    path = reverse("web-callback")
    base = getattr(settings, "PORTAL_BASE_URL", "")
    if base or request is None:
        return f"{base.rstrip('/')}{path}"
    return request.build_absolute_uri(path)


def softphone_settings(sip_user: SipUser, request=None) -> dict[str, str]:
    """Acrobits account XML values to paste: wcb_url (GET form), and wcb_postData/wcb_contentType (POST JSON)."""
    url = endpoint_url(request)
    username = f"{sip_user.login}@{sip_user.domain.domain}"
    query = (
        f"username={quote(username)}&password=%account[password]%&targetNumber=%targetNumber%"
        "&callbackNumber=%account[callbackNumber]%"
    )
    post = json.dumps(
        {
            "username": username,
            "password": "%account[password]%",
            "to": "%targetNumber%",
            "callback": "%account[callbackNumber]%",
        }
    )
    return {
        "wcb_url": url,
        "wcb_url_get": f"{url}?{query}",
        "wcb_postData": post,
        "wcb_contentType": "application/json",
    }

"""Inbound routing: what happens to a call arriving for a number. One decision, for every switch.

    decision = route_inbound(from_number, to_number, source="simulated")   # reads, and counts screening hits
    result = inbound_call(from_number, to_number, source="kamailio", switch_call_id=...)  # decide + record

The steps, each refusal with its reason and SIP response (and a Q.850 cause for the call log):
1. the number must be an active number of some account, else 404 (nothing is recorded: there is no account
   to record it in, only a log line);
2. voice must be enabled on it, else 403; the account must be active, else 403 (suspended accounts' numbers
   take no calls: a definite refusal, not 503, which would invite the carrier to retry elsewhere);
3. the caller is screened by the number's TN profile (telephony.screening): a blacklisted or not-whitelisted
   caller gets the profile's block action: 603 Decline, 486 Busy Here, or answer-then-hang-up;
4. the number's voice target: an app (its XML, or its call_flow_url with the fallback URL, run by the engine),
   a SIP connection (the call is forwarded to its inbound host), or a SIP user (forwarded to the user; an
   offline user does not answer, so the caller gets no-answer). An inactive or unusable target is 480;
5. channel limits (telephony.engine.limits) are applied when the leg is created, under locks, and refuse
   with 486 (app/connection full) or 503 (account full).
Refused calls (from step 2 on) are recorded as Call rows with their status, SIP code and reason, so they
show in the call log and raise the same call.* events and status callbacks as any other call.

A real SIP edge calls `inbound_call` from its HTTP hook and answers the INVITE with the decision; the
simulated switch calls it from `POST /api/v1/simulator/inbound-calls`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from telephony.models import Call, CallControlApp, PhoneNumber, SipConnection, SipUser
from telephony.screening import ScreeningDecision, screen_caller
from tenants.models import Account

logger = logging.getLogger("telephony.engine")

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@dataclass(frozen=True)
class RoutingDecision:
    """What to do with one inbound call. `accepted` calls run; the others are refused as described."""

    accepted: bool
    from_number: str
    to_number: str
    source: str
    reason: str
    sip_code: int | None = None
    cause: int | None = None
    status: str = ""  # the final status of a refused leg
    answer_then_hangup: bool = False  # the screening block action "hangup"
    number: PhoneNumber | None = None
    account: Account | None = None
    target: str = ""  # app | sip_connection | sip_user
    app: CallControlApp | None = None
    sip_connection: SipConnection | None = None
    sip_user: SipUser | None = None
    screening: ScreeningDecision | None = None

    @property
    def recordable(self) -> bool:
        """Whether the call can be recorded (it reached an account)."""
        return self.account is not None


@dataclass(frozen=True)
class InboundResult:
    decision: RoutingDecision
    call: Call | None


def normalize_called(value: str) -> str:
    text = re.sub(r"[\s().-]", "", value or "")
    if text.lower().startswith(("sip:", "tel:")):
        text = text.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
    if text and text[0] != "+" and text.isdigit():
        text = f"+{text}"
    return text


def _refuse(base: dict, sip_code: int, cause: int, status: str, reason: str, **extra) -> RoutingDecision:
    return RoutingDecision(
        accepted=False, sip_code=sip_code, cause=cause, status=status, reason=reason, **base, **extra
    )


def route_inbound(from_number: str, to_number: str, source: str) -> RoutingDecision:
    """Decide an inbound call (see the module docstring). Writes nothing but screening hit counters."""
    to = normalize_called(to_number)
    caller = (from_number or "").strip() or "anonymous"
    base = {"from_number": caller, "to_number": to or to_number, "source": source}
    number = None
    if _E164.match(to):
        # The account and an app come with the number (most calls go to apps); a TN profile is read by the
        # screening query itself, and SIP targets (rarer) on their own when set.
        number = (
            PhoneNumber.objects.select_related("account", "call_control_app")
            .filter(number=to, status=PhoneNumber.Status.ACTIVE)
            .order_by()
            .first()
        )
    if number is None:
        return _refuse(base, 404, 1, Call.Status.FAILED, f"{to or to_number} is not a number in service.")
    account = number.account
    found = {"number": number, "account": account}
    if not number.voice_enabled:
        return _refuse(base, 403, 21, Call.Status.FAILED, f"Voice is not enabled on {number.number}.", **found)
    if not account.is_active:
        return _refuse(base, 403, 21, Call.Status.FAILED, "The account is suspended.", **found)

    screening = screen_caller(number, caller)
    found["screening"] = screening
    if not screening.allowed:
        reason = f"Blocked by TN profile screening: {screening.reason}"
        if screening.action == "hangup":
            return _refuse(base, None, 16, Call.Status.COMPLETED, reason, answer_then_hangup=True, **found)
        if screening.sip_code == 486:
            return _refuse(base, 486, 17, Call.Status.BUSY, reason, **found)
        return _refuse(base, screening.sip_code or 603, 21, Call.Status.FAILED, reason, **found)

    app = number.call_control_app
    connection = number.sip_connection if number.sip_connection_id else None
    user = SipUser.objects.select_related("domain").get(pk=number.sip_user_id) if number.sip_user_id else None
    if app is not None:
        found.update(target="app", app=app)
        if not app.is_active:
            return _refuse(base, 480, 18, Call.Status.FAILED, f"The app {app.name} is inactive.", **found)
        if app.mode == CallControlApp.Mode.XML and not app.xml.strip():
            return _refuse(base, 480, 18, Call.Status.FAILED, f"The app {app.name} has no flow document.", **found)
        if app.mode == CallControlApp.Mode.URL and not app.call_flow_url:
            return _refuse(base, 480, 18, Call.Status.FAILED, f"The app {app.name} has no call flow URL.", **found)
    elif connection is not None:
        found.update(target="sip_connection", sip_connection=connection)
        if not connection.is_active:
            return _refuse(
                base, 480, 18, Call.Status.FAILED, f"The SIP connection {connection.name} is inactive.", **found
            )
        if not connection.inbound_host:
            return _refuse(
                base,
                480,
                18,
                Call.Status.FAILED,
                f"The SIP connection {connection.name} has no inbound host to send calls to.",
                **found,
            )
    elif user is not None:
        found.update(target="sip_user", sip_user=user)
        if not user.is_active:
            return _refuse(base, 480, 18, Call.Status.FAILED, f"The SIP user {user.sip_uri} is inactive.", **found)
    else:
        return _refuse(base, 480, 18, Call.Status.FAILED, f"{number.number} has no voice target.", **found)
    return RoutingDecision(accepted=True, reason="Routed to its " + found["target"].replace("_", " "), **base, **found)


def inbound_call(from_number: str, to_number: str, source: str, switch_call_id: str = "") -> InboundResult:
    """Decide an inbound call and record it: a running call, a refused one, or (unknown number) nothing."""
    from telephony.services.calls import call_inbound_create

    decision = route_inbound(from_number, to_number, source)
    if not decision.recordable:
        logger.info("Inbound call %s -> %s refused: %s", from_number, to_number, decision.reason)
        return InboundResult(decision, None)
    call = call_inbound_create(decision=decision, switch_call_id=switch_call_id)
    return InboundResult(decision, call)

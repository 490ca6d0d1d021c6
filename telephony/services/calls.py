"""Writes to call legs: creating them, moving them through their states, and the switch's reports about them.

A leg's life (Restcomm's states; Opentact calls in-progress `live`):

    initiated -> ringing -> in-progress -> completed
            \\-> busy | no-answer | failed | canceled        (ended before an answer)

Every change goes through `leg_transition`, which records the new state with its time, raises the `call.*`
event (call.initiated, call.ringing, call.answered; call.hangup when an answered leg ends; call.completed for
every end) and queues the leg's status callbacks, all in the caller's `Effects` (written in one transaction).
A transition that the lifecycle does not allow (a second answer, anything after the end) changes nothing
and returns False: switches repeat and reorder events, and that is not an error.

Status callbacks (Restcomm semantics): a leg has at most one URL, with the events it wants among initiated,
ringing, answered, completed (none listed: completed only). Each request carries CallSid, AccountSid, From,
To, CallStatus, Direction, ParentCallSid, Timestamp, CallbackSource, SequenceNumber (0, 1, 2... per leg) and,
on completed, CallDuration. No response is expected; they go through the webhook delivery engine (signed,
retried, in the delivery log).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from telephony.engine.context import Effects, PendingCallback, PendingEvent, current_step
from telephony.models import FINAL_STATUSES, Call, CallStatus, CallWakeup
from telephony.q850 import cause_name
from telephony.switch.base import LEG_EVENTS

logger = logging.getLogger("telephony.engine")

_ORDER = {
    CallStatus.QUEUED: 0,
    CallStatus.INITIATED: 1,
    CallStatus.RINGING: 2,
    CallStatus.IN_PROGRESS: 3,
}
# Restcomm's callback event for each state.
CALLBACK_EVENT = {
    CallStatus.INITIATED: "initiated",
    CallStatus.RINGING: "ringing",
    CallStatus.IN_PROGRESS: "answered",
}
STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")

# The usual cause and SIP code of each way a leg can end without an answer.
END_DEFAULTS = {
    CallStatus.COMPLETED: (16, None),
    CallStatus.BUSY: (17, 486),
    CallStatus.NO_ANSWER: (19, 480),
    CallStatus.FAILED: (41, 503),
    CallStatus.CANCELED: (16, 487),
}


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def call_payload(leg: Call) -> dict:
    """The call entity of `call.*` events (telephony/event_types.py CALL), as the leg stands now."""
    return {
        "call_id": str(leg.public_id),
        "parent_call_id": str(leg.parent.public_id) if leg.parent_id else None,
        "direction": leg.direction,
        "from": leg.from_number,
        "to": leg.to_number,
        "state": leg.status,
        "duration": leg.duration if leg.is_final else None,
        "number_id": str(leg.phone_number.public_id) if leg.phone_number_id else None,
        "call_control_app_id": str(leg.app.public_id) if leg.app_id else None,
        "sip_user_id": str(leg.sip_user.public_id) if leg.sip_user_id else None,
        "created_at": iso(leg.created_at),
        "answered_at": iso(leg.answered_at),
        "ended_at": iso(leg.ended_at),
        "hangup_cause": leg.q850_cause,
        "hangup_cause_text": cause_name(leg.q850_cause),
        "sip_code": leg.sip_code,
        "reason": leg.end_reason or None,
        "source": leg.source,
    }


def _emit(effects: Effects, leg: Call, type_: str, at: datetime, **extra) -> None:
    payload = call_payload(leg)
    payload.update(extra)
    effects.events.append(PendingEvent(leg.account, type_, payload, str(leg.public_id), at))


def leg_transition(
    *,
    leg: Call,
    status: str,
    effects: Effects,
    at: datetime | None = None,
    cause: int | None = None,
    sip_code: int | None = None,
    reason: str = "",
) -> bool:
    """Move `leg` to `status` and record it in `effects`; False (and nothing recorded) if the lifecycle forbids it."""
    at = at or timezone.now()
    current = leg.status
    if current in FINAL_STATUSES:
        return False
    if status in FINAL_STATUSES:
        if leg.answered_at and status != CallStatus.COMPLETED:
            # An answered leg always ends completed (Restcomm); the cause keeps the detail.
            status = CallStatus.COMPLETED
        default_cause, default_sip = END_DEFAULTS[status]
        leg.status = status
        leg.ended_at = at
        leg.q850_cause = cause if cause is not None else default_cause
        if sip_code is not None or not leg.answered_at:
            leg.sip_code = sip_code if sip_code is not None else default_sip
        leg.end_reason = (reason or leg.end_reason)[:300]
        effects.touch(leg, "status", "ended_at", "q850_cause", "sip_code", "end_reason")
        if leg.answered_at:
            _emit(effects, leg, "call.hangup", at)
        _emit(effects, leg, "call.completed", at)
        _status_callback(effects, leg, "completed", at)
        _extension_hooks(effects, leg, status)
        return True
    if _ORDER.get(status, -1) <= _ORDER.get(current, -1):
        return False
    leg.status = status
    stamp = {
        CallStatus.INITIATED: "initiated_at",
        CallStatus.RINGING: "ringing_at",
        CallStatus.IN_PROGRESS: "answered_at",
    }.get(status)
    if stamp:
        setattr(leg, stamp, at)
    effects.touch(leg, "status", *([stamp] if stamp else []))
    event_type = {
        CallStatus.INITIATED: "call.initiated",
        CallStatus.RINGING: "call.ringing",
        CallStatus.IN_PROGRESS: "call.answered",
    }.get(status)
    if event_type:
        _emit(effects, leg, event_type, at)
    if status in CALLBACK_EVENT:
        _status_callback(effects, leg, CALLBACK_EVENT[status], at)
    _extension_hooks(effects, leg, status)
    return True


def _extension_hooks(effects: Effects, leg: Call, status: str) -> None:
    """The SIP user's event hooks (VoipNow CallAPI Events), queued when the step's writes are flushed."""
    if not leg.sip_user_id:
        return
    from telephony.services.extension_hooks import fire_for_leg, leg_hook_event

    event = leg_hook_event(leg, status)
    if event:
        effects.writes.append(lambda: fire_for_leg(leg, event))


def bridge_recorded(*, a_leg: Call, b_leg: Call, effects: Effects, at: datetime | None = None) -> None:
    """The `call.bridged` event of two joined legs (raised on the A-leg, naming the B-leg)."""
    _emit(effects, a_leg, "call.bridged", at or timezone.now(), bridged_call_id=str(b_leg.public_id))


def _status_callback(effects: Effects, leg: Call, event: str, at: datetime) -> None:
    if not leg.status_callback_url:
        return
    wanted = leg.status_callback_events or ["completed"]
    if event not in wanted:
        return
    params = {
        "CallSid": str(leg.public_id),
        "AccountSid": str(leg.account.public_id),
        "From": leg.from_number,
        "To": leg.to_number,
        "CallStatus": leg.status,
        "Direction": leg.direction,
        "ParentCallSid": str(leg.parent.public_id) if leg.parent_id else "",
        "Timestamp": iso(at),
        "CallbackSource": "call-progress-events",
        "SequenceNumber": str(leg.status_callback_sequence),
    }
    if event == "completed":
        params["CallDuration"] = str(leg.duration)
    leg.status_callback_sequence += 1
    effects.touch(leg, "status_callback_sequence")
    effects.callbacks.append(
        PendingCallback(leg.account, leg.status_callback_url, leg.status_callback_method or "POST", params, leg)
    )


def status_callback_events(raw) -> list[str]:
    """A callback event list as stored: known names only, in lifecycle order; [] means completed only."""
    if isinstance(raw, str):
        raw = raw.replace(",", " ").split()
    chosen = {str(item).strip().lower() for item in raw or ()}
    return [name for name in STATUS_CALLBACK_EVENTS if name in chosen]


# --- The switch's reports ------------------------------------------------------------------------------


def switch_leg_event(call: Call, event: str, *, delay_ms: int = 0, **data) -> None:
    """THE entry point for a switch reporting something about a leg (see telephony/switch/base.py).

    Durable and idempotent: the report is stored as a wake-up of the call, applied by the engine under the
    call's claim, and ignored there (with a log line) when it no longer applies. `delay_ms` is for the
    simulated switch, which keeps its own clock: the report takes effect that much later. Inside an engine
    step of the same call the report joins the step's own writes.
    """
    if event not in LEG_EVENTS:
        raise ValueError(f"unknown switch event {event!r}; see telephony/switch/base.py")
    now = timezone.now()
    root_id = call.parent_id or call.pk
    wakeup = CallWakeup(
        root_id=root_id,
        leg=call,
        kind=CallWakeup.Kind.SWITCH,
        event=event,
        data=data,
        due_at=now + timedelta(milliseconds=max(0, delay_ms)),
        created_at=now,
    )
    step = current_step()
    if step is not None and step.root_id == root_id:
        step.effects.wakeups.append(wakeup)
        return
    if root_id is None:
        raise ValueError("switch_leg_event needs a saved leg")
    with transaction.atomic():
        wakeup.save(force_insert=True)
        due_at = wakeup.due_at
        transaction.on_commit(lambda: _kick(root_id, due_at))


def _kick(root_id: int, due_at: datetime) -> None:
    from telephony.engine.runner import kick

    kick(root_id, due_at)


# --- Inbound calls -----------------------------------------------------------------------------------


def _inbound_status_callback(leg: Call, decision) -> None:
    number, app = decision.number, decision.app
    if number is not None and number.status_callback_url:
        leg.status_callback_url = number.status_callback_url
        leg.status_callback_method = number.status_callback_method or "POST"
        leg.status_callback_events = []
    elif app is not None and app.status_callback_url:
        leg.status_callback_url = app.status_callback_url
        leg.status_callback_method = app.status_callback_method or "POST"
        leg.status_callback_events = status_callback_events(app.status_callback_events)


def _forward_target(decision) -> str:
    if decision.sip_user is not None:
        return decision.sip_user.sip_uri
    connection = decision.sip_connection
    port = f":{connection.inbound_port}" if connection.inbound_port else ""
    return f"sip:{decision.to_number}@{connection.inbound_host}{port};transport={connection.inbound_transport}"


@transaction.atomic
def call_inbound_create(*, decision, switch_call_id: str = "") -> Call:
    """Record an inbound call the routing decided (telephony.engine.routing), and start its flow if accepted.

    A refused call becomes a leg that went straight from initiated to its final state, with the SIP code and
    the reason. An accepted one is admitted against the channel limits (a refusal then, too), gets its flow
    (the app's document; none yet for an app in url mode, which the engine fetches; a forwarding Dial for
    SIP targets), starts ringing, and is handed to the engine after the commit.
    """
    from django.conf import settings

    from telephony.callflow import CallFlowInvalid
    from telephony.engine import documents, limits
    from telephony.engine.runner import kick
    from telephony.switch import get_switch

    switch = get_switch()
    now = timezone.now()
    effects = Effects()
    leg = Call(
        account=decision.account,
        direction=Call.Direction.INBOUND,
        from_number=decision.from_number[:255],
        to_number=decision.to_number[:255],
        status=CallStatus.QUEUED,
        source=(decision.source or switch.name)[:16],
        switch_call_id=switch_call_id[:255],
        phone_number=decision.number,
        app=decision.app,
        sip_user=decision.sip_user,
        sip_connection=decision.sip_connection,
        created_at=now,
    )
    _inbound_status_callback(leg, decision)
    effects.new_legs.append(leg)
    leg_transition(leg=leg, status=CallStatus.INITIATED, effects=effects, at=now)

    def refuse(status, sip_code, cause, reason):
        leg.flow_state = Call.FlowState.NONE
        leg_transition(leg=leg, status=status, effects=effects, at=now, cause=cause, sip_code=sip_code, reason=reason)

    if not decision.accepted:
        if decision.answer_then_hangup:
            leg_transition(leg=leg, status=CallStatus.IN_PROGRESS, effects=effects, at=now)
        refuse(decision.status, decision.sip_code, decision.cause, decision.reason)
        effects.flush()
        return leg

    refusal = limits.admit_inbound(
        account=decision.account,
        app=decision.app,
        connection=decision.sip_connection if decision.target == "sip_connection" else None,
    )
    if refusal is not None:
        refuse(refusal.status, refusal.sip_code, refusal.cause, refusal.reason)
        effects.flush()
        return leg

    app = decision.app
    engine_state: dict = {"auto_answer": bool(app.auto_answer) if app else False}
    try:
        if app is None:
            target = _forward_target(decision)
            leg.document = documents.document_json(documents.forward_xml(target, settings.CALL_FORWARD_TIMEOUT_MS))
            if decision.sip_connection is not None:
                engine_state["forward_connection_id"] = decision.sip_connection.pk
        elif app.mode == app.Mode.XML:
            leg.document = documents.document_json(app.xml)
    except CallFlowInvalid as invalid:
        refuse(CallStatus.FAILED, 500, 41, f"The flow document does not validate: {invalid}"[:300])
        effects.flush()
        return leg

    max_length_s = app.max_call_length_s if app is not None else settings.CALL_MAX_LENGTH_S
    leg.variables = {"engine": engine_state}
    leg.flow_state = Call.FlowState.RUNNING
    leg_transition(leg=leg, status=CallStatus.RINGING, effects=effects, at=now)
    effects.wakeups.append(
        CallWakeup(
            root=leg,
            kind=CallWakeup.Kind.LIMIT,
            due_at=now + timedelta(milliseconds=max_length_s * 1000 / switch.time_scale()),
            created_at=now,
        )
    )
    effects.flush()
    transaction.on_commit(lambda: kick(leg.pk, now))
    return leg

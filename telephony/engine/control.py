"""Outbound A-legs and live control, applied by the engine under the call's claim (CallWakeup kind `control`).

An API call (telephony/services/outbound.py) is an A-leg the platform places: it waits `queued` for its
dispatch slot, then this module initiates and originates it, follows it through ringing to an answer (the
flow starts then) or to busy / no-answer / failed, and ends it when its ring time or time limit runs out.
Live control from the API arrives here the same way, as control wake-ups with `data.action`:

    dispatch      the call's pacing slot: check the concurrent call limit (wait or fail at the queue
                  deadline), then initiate and originate
    ring_timeout  no answer within `timeout`: the leg ends no-answer
    time_limit    the call's `time_limit` from the answer: the call ends
    hangup        end the leg (an A-leg ends the call; a Dial's leg ends alone and the Dial goes on)
    redirect      replace the rest of the flow with a new document (inline, or fetched from a URL now)
    play          play an audio file to the leg, over whatever the flow does
    send_digits   send DTMF to the far end of the leg
    bridge        stop this call's flow and join it to another call (`other`); the `a` side raises call.bridged.
                  When either ends, it hangs the other up (`before_save`).

An action that no longer applies (the call ended in the meantime) is ignored with a log line: the API answered
409 for calls that had ended when asked; a race after that is the far end's hangup winning.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from telephony.callflow import Document
from telephony.models import Call, CallStatus, CallWakeup, OutboundPolicy
from telephony.services.calls import bridge_recorded, iso, leg_transition

logger = logging.getLogger("telephony.engine")

FlowState = Call.FlowState
DISPATCHED_LIVE = [CallStatus.INITIATED, CallStatus.RINGING, CallStatus.IN_PROGRESS]
UNANSWERED = {
    "busy": CallStatus.BUSY,
    "no-answer": CallStatus.NO_ANSWER,
    "failed": CallStatus.FAILED,
    "hangup": CallStatus.FAILED,
}


def apply(step, wakeup: CallWakeup) -> None:
    data = wakeup.data or {}
    action = data.get("action")
    leg = wakeup.leg if wakeup.pk is None and wakeup.leg is not None else step.leg_by_id(wakeup.leg_id)
    if leg is None:
        logger.info("Call %s: control %r for an unknown leg ignored", step.root_id, action)
        return
    if leg.is_final:
        logger.info("Call %s: control %r on ended leg %s ignored", step.root_id, action, leg.public_id)
        return
    handler = ACTIONS.get(action)
    if handler is None:
        logger.warning("Call %s: unknown control action %r ignored", step.root_id, action)
        return
    handler(step, leg, data)


def _outbound(step) -> dict:
    return step.engine.setdefault("outbound", {})


def _later(step, leg: Call, due_at: datetime, data: dict) -> None:
    step.effects.wakeups.append(
        CallWakeup(root=step.root, leg=leg, kind=CallWakeup.Kind.CONTROL, data=data, due_at=due_at)
    )


# --- The outbound A-leg --------------------------------------------------------------------------------------


def _dispatch(step, leg: Call, data: dict) -> None:
    root = step.root
    if leg is not root or root.status != CallStatus.QUEUED:
        return
    out = _outbound(step)
    now = timezone.now()
    policy, live = _limits_and_live(root.account_id)
    from telephony.engine import limits

    refusal = limits.admit_outbound(account=root.account, connection=None, adding=1)
    if live >= policy.concurrency or refusal is not None:
        why = (
            refusal.reason
            if refusal is not None and live < policy.concurrency
            else f"the account's concurrent call limit ({policy.concurrency}) stayed reached"
        )
        deadline = datetime.fromisoformat(out["deadline"]) if out.get("deadline") else now
        if now >= deadline:
            waited = round((now - root.created_at).total_seconds())
            leg_transition(
                leg=root,
                status=CallStatus.FAILED,
                effects=step.effects,
                cause=34,
                sip_code=503,
                reason=f"The call waited {waited} s in the outbound queue, the longest allowed: {why.rstrip('.')}.",
            )
            root.flow_state, root.flow_wait = FlowState.DONE, None
            return
        out["queue_checks"] = out.get("queue_checks", 0) + 1
        retry = now + timedelta(seconds=max(0.1, 1 / policy.rate))
        _later(step, root, min(deadline, retry), {"action": "dispatch"})
        return
    leg_transition(leg=root, status=CallStatus.INITIATED, effects=step.effects, at=now)
    out["dispatched_at"] = iso(now)
    timeout_ms = int(out.get("timeout_ms") or 30000)
    step.switch.originate(root, caller_id=root.from_number, timeout_ms=timeout_ms)
    step.effects.touch(root, "switch_call_id")
    _later(step, root, now + step.real(timeout_ms), {"action": "ring_timeout"})
    max_length_s = out.get("max_length_s") or settings.CALL_MAX_LENGTH_S
    step.effects.wakeups.append(
        CallWakeup(root=root, kind=CallWakeup.Kind.LIMIT, due_at=now + step.real(max_length_s * 1000))
    )


# The account's concurrency settings and its dispatched live A-legs, in one statement: every dispatch asks, and
# the two ORM queries it replaces cost a quarter of a dispatched call's CPU in compiling them.
_LIMITS_AND_LIVE_SQL = (
    f"SELECT (SELECT calls_per_second FROM {OutboundPolicy._meta.db_table} WHERE account_id = %s), "  # noqa: S608
    f"(SELECT max_concurrent_calls FROM {OutboundPolicy._meta.db_table} WHERE account_id = %s), "
    f"(SELECT COUNT(*) FROM {Call._meta.db_table} WHERE account_id = %s AND direction = %s AND parent_id IS NULL "
    f"AND status IN ({', '.join(['%s'] * len(DISPATCHED_LIVE))}))"
)


def _limits_and_live(account_id: int) -> tuple[OutboundPolicy, int]:
    """The account's policy (its pace and concurrency; the settings' if it has none) and its live outbound calls.

    Counted, not locked (like a Dial's legs): dispatches are a pacing interval apart, so they rarely race.
    """
    params = [account_id, account_id, account_id, Call.Direction.OUTBOUND_API, *DISPATCHED_LIVE]
    with connection.cursor() as cursor:
        cursor.execute(_LIMITS_AND_LIVE_SQL, params)
        rate, concurrency, live = cursor.fetchone()
    # Unsaved: only its rate and concurrency are read (its properties apply the settings to empty fields).
    return OutboundPolicy(account_id=account_id, calls_per_second=rate, max_concurrent_calls=concurrency), live


def _ring_timeout(step, leg: Call, data: dict) -> None:
    root = step.root
    if leg is not root or root.answered_at or root.status == CallStatus.QUEUED:
        return
    seconds = round(int(_outbound(step).get("timeout_ms") or 0) / 1000)
    reason = f"No answer within {seconds} s."
    step.switch.hangup(root, cause=19, sip_code=480, reason=reason)
    leg_transition(leg=root, status=CallStatus.NO_ANSWER, effects=step.effects, cause=19, sip_code=480, reason=reason)
    root.flow_state, root.flow_wait = FlowState.DONE, None


def _time_limit(step, leg: Call, data: dict) -> None:
    seconds = _outbound(step).get("time_limit_s")
    step.end_call(f"The call reached its time limit ({seconds} s).", cause=102)


def outbound_progress(step, event: str, data: dict, at: datetime | None) -> bool:
    """A switch report about an outbound A-leg before its answer; True if handled here."""
    root = step.root
    if root.status == CallStatus.QUEUED:
        logger.info("Call %s: %r before dispatch ignored", step.root_id, event)
        return True
    cause, sip_code, reason = data.get("cause"), data.get("sip_code"), data.get("reason", "")
    if event == "ringing":
        leg_transition(leg=root, status=CallStatus.RINGING, effects=step.effects, at=at)
    elif event == "answered":
        if leg_transition(leg=root, status=CallStatus.IN_PROGRESS, effects=step.effects, at=at):
            _drop_ring_timeout(step)
            _start_flow(step)
    elif event in UNANSWERED:
        if event == "hangup" and not reason:
            reason = "The far end hung up before answering."
        leg_transition(
            leg=root,
            status=UNANSWERED[event],
            effects=step.effects,
            at=at,
            cause=cause,
            sip_code=sip_code,
            reason=reason,
        )
        root.flow_state, root.flow_wait = FlowState.DONE, None
    else:
        return False
    return True


def _drop_ring_timeout(step) -> None:
    """The answer makes the ring timeout moot: delete it with this step rather than wake the call for nothing."""
    root = step.root
    pending = CallWakeup.objects.filter(root_id=root.pk, kind=CallWakeup.Kind.CONTROL).values_list("pk", "data")
    step.effects.consumed += [pk for pk, data in pending if (data or {}).get("action") == "ring_timeout"]
    step.effects.wakeups = [w for w in step.effects.wakeups if (w.data or {}).get("action") != "ring_timeout"]


def _start_flow(step) -> None:
    root, out = step.root, _outbound(step)
    root.flow_state, root.flow_wait, root.position = FlowState.RUNNING, None, ""
    if out.get("time_limit_s"):
        _later(step, root, timezone.now() + step.real(out["time_limit_s"] * 1000), {"action": "time_limit"})
    if out.get("url"):
        _run_url(step, out["url"], out.get("method") or "POST", purpose="call_flow_url")


def _run_url(step, url: str, method: str, *, purpose: str) -> None:
    from telephony.engine.fetch import fetch_document

    document, error = fetch_document(
        step,
        purpose=purpose,
        url=url,
        method=method,
        timeout_ms=settings.ENGINE_ACTION_TIMEOUT_MS,
        params=step.request_params(),
    )
    if document is None:
        step.end_call(f"Could not get the flow: {error}"[:300], failed=True, sip_code=500)
        return
    step.replace_document(document)


# --- Live control -------------------------------------------------------------------------------------------


def _interrupt(step, reason: str) -> None:
    """Stop what the A-leg's flow is doing (its prompt, its key collection, its Dial's legs, a bridge)."""
    root = step.root
    wait = root.flow_wait or {}
    for key in ("op", "collect_op"):
        op = wait.get(key)
        if op:
            if key == "op":
                step.switch.stop_media(root, op=op)
            else:
                step.switch.stop_collect(root, op=op)
    for leg in step.live_children():
        status = CallStatus.COMPLETED if leg.answered_at else CallStatus.CANCELED
        step.hangup_leg(leg, status, cause=16, reason=reason)
    _unbridge(step, reason)
    root.flow_wait = None


def _unbridge(step, reason: str) -> None:
    other = step.engine.pop("bridged_with", None)
    if other:
        step.effects.wakeups.append(
            CallWakeup(
                root_id=other,
                leg_id=other,
                kind=CallWakeup.Kind.CONTROL,
                data={"action": "hangup", "reason": reason},
                due_at=timezone.now(),
            )
        )


def _hangup(step, leg: Call, data: dict) -> None:
    from telephony.engine.step import Signal

    root = step.root
    reason = data.get("reason") or "Hung up through the API."
    if leg is not root:
        status = CallStatus.COMPLETED if leg.answered_at else CallStatus.CANCELED
        step.hangup_leg(leg, status, cause=16, reason=reason)
        if root.flow_state == FlowState.WAITING:
            step.signal(Signal("leg", leg, "hangup", {}))
        return
    if root.answered_at:
        step.end_call(reason)
        return
    if root.status != CallStatus.QUEUED:
        step.switch.hangup(root, cause=16, sip_code=487, reason=reason)
    leg_transition(leg=root, status=CallStatus.CANCELED, effects=step.effects, cause=16, sip_code=487, reason=reason)
    root.flow_state, root.flow_wait = FlowState.DONE, None


def _redirect(step, leg: Call, data: dict) -> None:
    root = step.root
    if leg is not root:
        return
    if not root.answered_at:
        # Not answered yet: the new flow is what runs on answer.
        out = _outbound(step)
        if data.get("document"):
            step.doc = Document.from_json(data["document"])
            root.document = data["document"]
            step.document_changed = True
            out["url"] = ""
        else:
            out["url"], out["method"] = data.get("url", ""), data.get("method") or "POST"
        return
    _interrupt(step, "The call was redirected.")
    if data.get("document"):
        step.replace_document(Document.from_json(data["document"]))
    else:
        _run_url(step, data.get("url", ""), data.get("method") or "POST", purpose="redirect_url")


def _play(step, leg: Call, data: dict) -> None:
    if not leg.answered_at:
        return
    step.switch.play(leg, op=step.new_op(), url=data.get("url", ""), loop=int(data.get("loop") or 1))


def _send_digits(step, leg: Call, data: dict) -> None:
    if not leg.answered_at:
        return
    step.switch.send_digits(leg, digits=data.get("digits", ""))


def _bridge(step, leg: Call, data: dict) -> None:
    root = step.root
    if leg is not root or not root.answered_at:
        return
    other = Call.objects.filter(pk=data.get("other")).first()
    if other is None or other.is_final:
        logger.info("Call %s: bridge to an ended call ignored", step.root_id)
        return
    _interrupt(step, "The call was bridged to another call.")
    root.flow_state, root.position = FlowState.NONE, ""
    step.engine["bridged_with"] = other.pk
    if data.get("role") == "a":
        step.switch.bridge(root, other)
        bridge_recorded(a_leg=root, b_leg=other, effects=step.effects)


def before_save(step, final: bool) -> None:
    """A bridged call that ended hangs up the call it was bridged to (under that call's own claim)."""
    if final and step.engine.get("bridged_with"):
        _unbridge(step, "The call it was bridged to ended.")


ACTIONS = {
    "dispatch": _dispatch,
    "ring_timeout": _ring_timeout,
    "time_limit": _time_limit,
    "hangup": _hangup,
    "redirect": _redirect,
    "play": _play,
    "send_digits": _send_digits,
    "bridge": _bridge,
}

"""One handler per call-flow command: how it starts, what it waits for, and how it ends.

A handler's `start(step, node)` returns an outcome; a command that waits is resumed with `resume(step, node,
wait, signal)` for each signal that arrives while it waits (a timer, keys, the end of a prompt, a B-leg's
change), which returns an outcome, or None to keep waiting. Outcomes (the step acts on them, step.py):

    Done(success, reason)   the command is over; on failure its <Error> runs (if `run_error`), then the flow
                            continues after it. `fallback`: a failed fetch of the flow, which without an
                            <Error> tries the app's fallback URL, then hangs up (a missing flow cannot be
                            "continued").
    Enter(node, reason)     run a block of this command (Call/Geo/Scheduler children, a Gather branch, the
                            children of Record) starting at `node`.
    Replace(document)       run a fetched document instead of the rest of the flow (Callback, action URLs).
    Wait(kind, state, ms)   wait for a signal, or for `ms` of call time (a timer signal).
    Hangup(reason, tag)     end the call.

Times in documents are call time (ms); the step converts them with the switch's time scale.
"""

from __future__ import annotations

import json
import zoneinfo
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from telephony.callflow import Document, Node, schedule_matches, value_matches
from telephony.callflow.tags import E164, SIP_URI, normalize_number
from telephony.engine import fetch, limits
from telephony.engine.geo import state_of
from telephony.engine.variables import lookup
from telephony.models import CallStatus, SipConnection, SipUser
from telephony.services.calls import bridge_recorded, leg_transition

# --- Outcomes -------------------------------------------------------------------------------------------


@dataclass
class Done:
    success: bool
    reason: str
    error: str | None = None
    run_error: bool | None = None
    fallback: bool = False

    def __post_init__(self):
        if self.run_error is None:
            self.run_error = not self.success
        if not self.success and self.error is None:
            self.error = self.reason


@dataclass
class Enter:
    node: Node
    reason: str


@dataclass
class Replace:
    document: Document
    reason: str


@dataclass
class Wait:
    kind: str
    state: dict = field(default_factory=dict)
    timer_ms: float | None = None


@dataclass
class Hangup:
    reason: str
    tag: str = ""


class MediaError(Exception):
    """A prompt cannot be played (no such recording, no B-leg to play to)."""


def media_timeout(estimate_ms: int | None) -> float:
    """How long to wait for the switch's media_done before moving on without it (call time)."""
    if estimate_ms is None:
        return settings.ENGINE_MEDIA_UNKNOWN_MS
    return estimate_ms + settings.ENGINE_MEDIA_GRACE_MS


def enter_block(block: Node, reason: str) -> Enter | Done:
    commands = block.commands
    return Enter(commands[0], reason) if commands else Done(True, reason)


# --- Handlers -------------------------------------------------------------------------------------------


class Handler:
    def start(self, step, node: Node):  # pragma: no cover - every handler has one
        raise NotImplementedError

    def resume(self, step, node: Node, wait: dict, signal):
        return None

    def finish_block(self, step, node: Node):  # pragma: no cover - only Record has a block to finish
        raise NotImplementedError


class Answer(Handler):
    def start(self, step, node):
        if step.root.answered_at:
            return Done(True, "Already answered")
        if node.get("delay"):
            return Wait("answer", {}, node.get("delay"))
        step.answer()
        return Done(True, "Call answered")

    def resume(self, step, node, wait, signal):
        if signal.kind != "timer":
            return None
        step.answer()
        return Done(True, f"Call answered after {node.get('delay')} ms")


class HangupCommand(Handler):
    def start(self, step, node):
        tag = node.get("tag") or ""
        return Hangup(f"Hangup ({tag})" if tag else "Hangup", tag)


class Pause(Handler):
    def start(self, step, node):
        length = node.get("length")
        state = {}
        stop = node.get("dtmf_stop")
        if stop:
            op = step.new_op()
            step.switch.collect_digits(step.root, op=op, max_digits=None, stop_keys=stop)
            state["collect_op"] = op
        return Wait("pause", state, length)

    def resume(self, step, node, wait, signal):
        if signal.kind == "timer":
            self._stop(step, wait)
            return Done(True, f"Paused {node.get('length')} ms")
        if signal.kind == "dtmf" and signal.data.get("op") == wait.get("collect_op"):
            pressed = [key for key in signal.data.get("digits", "") if key in node.get("dtmf_stop")]
            if pressed:
                self._stop(step, wait)
                return Done(True, f"Pause ended by key {pressed[0]}")
        return None

    def _stop(self, step, wait):
        if wait.get("collect_op"):
            step.switch.stop_collect(step.root, op=wait["collect_op"])


def _media_legs(step, node):
    choice = node.get("leg") or "aleg"
    bridged = [leg for leg in step.live_children() if leg.answered_at]
    if choice == "aleg":
        return [step.root]
    if not bridged:
        raise MediaError(f"leg={choice}: there is no connected B-leg to play to")
    return bridged if choice == "bleg" else [step.root, *bridged]


def start_media(step, node: Node, op: str) -> int | None:
    """Start a Say, Play or Tone (a command or a Gather prompt); the estimated duration, in call-time ms."""
    switch = step.switch
    if node.tag == "Say":
        text = step.render(node.get("text"))
        voice = {k: node.get(k) for k in ("type", "gender", "lang", "code") if node.get(k) is not None}
        step.answer()
        return switch.say(step.root, op=op, text=text, voice=voice, loop=node.get("loop") or 1)
    legs = _media_legs(step, node)
    if step.root in legs:
        step.answer()
    estimates = []
    for leg in legs:
        if node.tag == "Play":
            if node.get("record"):
                url = step.variables.get("recordings", {}).get(node.get("record"))
                if not url:
                    raise MediaError(f"no recording tagged {node.get('record')!r} was made on this call")
            else:
                url = step.render(node.get("url"), url=True)
            estimates.append(switch.play(leg, op=op, url=url, loop=node.get("loop") or 1))
        else:
            estimates.append(
                switch.tone(
                    leg,
                    op=op,
                    hz=tuple(node.get("hz")),
                    on_ms=node.get("don"),
                    off_ms=node.get("doff"),
                    loop=node.get("loop") or 1,
                    volume_db=node.get("volume") or 0,
                    timeout_ms=node.get("timeout"),
                )
            )
    known = [e for e in estimates if e is not None]
    return max(known) if known else None


def media_reason(node: Node) -> str:
    if node.tag == "Say":
        return f"Said {len((node.get('text') or '').split())} words"
    if node.tag == "Play":
        return f"Played {node.get('record') or node.get('url')}"
    return f"Played a {'+'.join(str(hz) for hz in node.get('hz'))} Hz tone"


class Media(Handler):
    """Say, Play and Tone: start the media, wait for the switch to report its end."""

    def start(self, step, node):
        op = step.new_op()
        try:
            estimate = start_media(step, node, op)
        except MediaError as problem:
            return Done(False, str(problem))
        return Wait("media", {"op": op}, media_timeout(estimate))

    def resume(self, step, node, wait, signal):
        if signal.kind == "media_done" and signal.data.get("op") == wait.get("op"):
            if signal.data.get("ok", True):
                return Done(True, media_reason(node))
            return Done(False, f"The switch could not play it: {signal.data.get('error') or 'unknown error'}")
        if signal.kind == "timer":
            return Done(False, "The switch did not report the end of the media", run_error=False)
        return None


class Hold(Handler):
    def start(self, step, node):
        step.answer()
        leg = step.root
        step.switch.hold(leg)
        token = step.new_op()
        step.engine["held"] = {"leg": leg.pk, "token": token}
        from telephony.models import CallWakeup

        step.set_timer(node.get("timeout"), token, kind=CallWakeup.Kind.UNHOLD)
        return Done(True, f"On hold for at most {node.get('timeout')} ms")


class Unhold(Handler):
    def start(self, step, node):
        held = step.engine.pop("held", None)
        if not held:
            return Done(True, "Not on hold")
        leg = step.leg_by_id(held.get("leg"))
        if leg is not None and not leg.is_final:
            step.switch.unhold(leg)
        return Done(True, "Taken off hold")


class Meta(Handler):
    def start(self, step, node):
        value = step.render(node.get("value"))
        step.variables.setdefault("meta", {})[node.get("name")] = value
        return Done(True, f"{node.get('name')} = {value[:100]}")


class CallCondition(Handler):
    """<Call field value>: the children run when the field matches."""

    def start(self, step, node):
        field_name = node.get("field")
        actual = lookup(step.variables, step.root, field_name)
        pattern = step.render(node.get("value"))
        if value_matches(pattern, actual):
            return enter_block(node, f"{field_name}={actual} matches {pattern}")
        return Done(True, f"{field_name}={actual or '(empty)'} does not match {pattern}")


class Geo(Handler):
    def start(self, step, node):
        state = state_of(step.root.from_number)
        states = node.get("states")
        note = " (county is not checked: no county data)" if node.get("county") else ""
        if state is not None and state in states:
            return enter_block(node, f"Caller is in {state}{note}")
        where = f"in {state}" if state else "not locatable in the US"
        return Done(True, f"Caller is {where}, not in {','.join(states)}{note}")


class Scheduler(Handler):
    def start(self, step, node):
        name = node.get("timezone") or (step.root.app.time_zone if step.root.app_id else "") or "UTC"
        try:
            zone = zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = zoneinfo.ZoneInfo("UTC")
        local = timezone.now().astimezone(zone)
        window = node.get("time")
        described = f"{local:%a %H:%M:%S} {name}"
        if schedule_matches(node.get("dow"), window, local):
            return enter_block(node, f"{described} is inside the schedule")
        return Done(True, f"{described} is outside the schedule")


def _fetch_replacement(step, node, *, purpose: str, url: str, method: str, timeout_ms: int, params: dict, what: str):
    document, error = fetch.fetch_document(
        step, purpose=purpose, url=url, method=method, timeout_ms=timeout_ms, params=params, path=node.path
    )
    if document is None:
        return Done(False, f"{what}: {error}", fallback=True)
    return Replace(document, f"{what}: new flow received")


class Callback(Handler):
    def start(self, step, node):
        params = step.request_params(tag=node.get("tag") or "")
        if node.get("body") and step.root.app_id:
            params.update(app_id=str(step.root.app.public_id), app_name=step.root.app.name)
        return _fetch_replacement(
            step,
            node,
            purpose="callback",
            url=step.render(node.get("url"), url=True),
            method=node.get("method"),
            timeout_ms=node.get("timeout"),
            params=params,
            what="Callback",
        )


class Curl(Handler):
    def start(self, step, node):
        headers = {h.get("name"): step.render(h.get("value")) for h in node.clauses("Header")}
        body = step.render(node.get("body")) if node.get("body") is not None else None
        outcome = fetch.request(
            step,
            purpose="curl",
            url=step.render(node.get("url"), url=True),
            method=node.get("method"),
            timeout_ms=node.get("timeout"),
            body=body,
            headers=headers,
            path=node.path,
        )
        name = node.get("var")
        if name:
            text = outcome.text if outcome.body else ""
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = None
            step.variables.setdefault("curl", {})[name] = {
                "status": outcome.status or "",
                "body": text[:16_384],
                "json": parsed,
            }
        if outcome.ok:
            return Done(True, f"HTTP {outcome.status}")
        return Done(False, f"Curl: {outcome.error}")


# --- Gather -------------------------------------------------------------------------------------------


class Gather(Handler):
    """Prompts, then keys; see telephony/callflow/validator.py for the rules this follows."""

    def start(self, step, node):
        step.answer()
        return self._attempt(step, node, 1)

    def _attempt(self, step, node, number: int):
        op = step.new_op()
        step.switch.collect_digits(
            step.root, op=op, max_digits=node.get("dtmf_length"), stop_keys=node.get("dtmf_stop") or ""
        )
        return self._prompt(step, node, {"attempt": number, "collect_op": op, "digits": ""}, 0)

    def _prompt(self, step, node, state: dict, index: int):
        prompts = node.commands
        if index < len(prompts):
            prompt = prompts[index]
            started = timezone.now().isoformat()
            if prompt.tag == "Pause":
                return Wait(
                    "gather",
                    {**state, "phase": "prompt", "i": index, "op": None, "prompt_started": started},
                    prompt.get("length"),
                )
            op = step.new_op()
            try:
                estimate = start_media(step, prompt, op)
            except MediaError as problem:
                step.flow_event(prompt, False, str(problem), started_at=started)
                step.switch.stop_collect(step.root, op=state["collect_op"])
                return Done(False, f"A prompt could not be played: {problem}")
            return Wait(
                "gather",
                {**state, "phase": "prompt", "i": index, "op": op, "prompt_started": started},
                media_timeout(estimate),
            )
        return Wait("gather", {**state, "phase": "collect", "op": None}, node.get("timeout"))

    @staticmethod
    def _state(wait: dict) -> dict:
        return {"attempt": wait["attempt"], "collect_op": wait["collect_op"], "digits": wait.get("digits", "")}

    def resume(self, step, node, wait, signal):
        phase = wait.get("phase")
        if signal.kind == "dtmf":
            if signal.data.get("op") != wait.get("collect_op"):
                return None
            return self._keys(step, node, wait, str(signal.data.get("digits", "")))
        if phase == "prompt":
            prompt = node.commands[wait["i"]]
            ended = signal.kind == "timer" or (signal.kind == "media_done" and signal.data.get("op") == wait.get("op"))
            if not ended:
                return None
            if prompt.tag == "Pause":
                step.flow_event(prompt, True, f"Paused {prompt.get('length')} ms", started_at=wait["prompt_started"])
            elif signal.kind == "timer":
                step.flow_event(
                    prompt, False, "The switch did not report the end of the media", started_at=wait["prompt_started"]
                )
            else:
                step.flow_event(prompt, True, media_reason(prompt), started_at=wait["prompt_started"])
            return self._prompt(step, node, self._state(wait), wait["i"] + 1)
        if phase == "collect" and signal.kind == "timer":
            return self._finish(step, node, wait, wait.get("digits", ""))
        return None

    def _keys(self, step, node, wait, keys: str):
        if wait.get("phase") == "prompt":  # the first key stops the prompts (barge-in)
            prompt = node.commands[wait["i"]]
            if wait.get("op"):
                step.switch.stop_media(step.root, op=wait["op"])
            step.flow_event(prompt, True, "Interrupted by a key", started_at=wait["prompt_started"])
            wait = {**wait, "phase": "collect", "op": None}
        digits = wait.get("digits", "")
        stop = node.get("dtmf_stop") or ""
        length = node.get("dtmf_length")
        for key in keys:
            if key in stop:
                return self._finish(step, node, wait, digits)
            digits += key
            if length and len(digits) >= length:
                return self._finish(step, node, wait, digits)
        return Wait(
            "gather", {**self._state(wait), "digits": digits, "phase": "collect", "op": None}, node.get("timeout")
        )

    def _finish(self, step, node, wait, digits: str):
        step.switch.stop_collect(step.root, op=wait["collect_op"])
        attempt, attempts = wait["attempt"], node.get("attempts") or 1
        defaults = node.clauses("Default")
        if digits:
            step.engine["last_digits"] = digits
            for branch in node.clauses("DTMF"):
                if branch.get("value") == digits:
                    return enter_block(branch, f"Pressed {digits}: DTMF[{branch.index}]")
            if defaults:
                return enter_block(defaults[0], f"Pressed {digits}: no DTMF matches, Default")
            if node.get("action"):
                params = step.request_params(Digits=digits, dtmf=digits, tag=node.get("tag") or "")
                return _fetch_replacement(
                    step,
                    node,
                    purpose="gather_action",
                    url=step.render(node.get("action"), url=True),
                    method=node.get("method"),
                    timeout_ms=settings.ENGINE_ACTION_TIMEOUT_MS,
                    params=params,
                    what=f"Pressed {digits}; action",
                )
        if attempt < attempts:
            return self._attempt(step, node, attempt + 1)
        what = f"Pressed {digits}, which nothing matches" if digits else "No input"
        if defaults:
            return enter_block(defaults[0], f"{what} after {attempts} attempt(s): Default")
        return Done(False, f"{what} after {attempts} attempt(s)", run_error=False)


# --- Dial -----------------------------------------------------------------------------------------------

# When several targets ring and none answers, the Dial reports the first of these that any leg ended with.
DIAL_STATUS_ORDER = (CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.FAILED, CallStatus.CANCELED)


def _target(step, raw: str) -> str | None:
    value = step.render(raw).strip()
    if E164.match(value):
        return normalize_number(value)
    if SIP_URI.match(value):
        scheme, rest = value.split(":", 1)
        return f"{scheme.lower()}:{rest}"
    return None


def _sip_user_for(step, target: str) -> SipUser | None:
    if not target.startswith(("sip:", "sips:")):
        return None
    address = target.split(":", 1)[1].split(";", 1)[0]
    login, _, host = address.partition("@")
    host = host.split(":", 1)[0]
    return (
        SipUser.objects.select_related("domain")
        .filter(account=step.root.account, domain__domain__iexact=host, login__iexact=login)
        .first()
    )


class Dial(Handler):
    def start(self, step, node):
        root = step.root
        caller_id = node.get("caller_id") or root.from_number
        connection = None
        if step.engine.get("forward_connection_id"):
            connection = SipConnection.objects.filter(pk=step.engine["forward_connection_id"]).first()
        clauses = node.clauses("To")
        targets = [(clause, _target(step, clause.get("target"))) for clause in clauses]
        refusal = limits.admit_outbound(
            account=root.account, connection=connection, adding=sum(1 for _, t in targets if t)
        )
        legs = []
        for clause, target in targets:
            if target is None:
                leg = step.new_leg(
                    to=step.render(clause.get("target")) or "invalid", from_number=caller_id, clause=clause
                )
                leg_transition(
                    leg=leg,
                    status=CallStatus.FAILED,
                    effects=step.effects,
                    cause=28,
                    sip_code=484,
                    reason="Not an E.164 number or SIP URI.",
                )
            else:
                leg = step.new_leg(
                    to=target,
                    from_number=caller_id,
                    clause=clause,
                    connection=connection,
                    sip_user=_sip_user_for(step, target),
                )
                if refusal is not None:
                    leg_transition(
                        leg=leg,
                        status=refusal.status,
                        effects=step.effects,
                        cause=refusal.cause,
                        sip_code=refusal.sip_code,
                        reason=refusal.reason,
                    )
                else:
                    step.switch.originate(leg, caller_id=caller_id, timeout_ms=node.get("timeout"))
            legs.append(str(leg.public_id))
        state = {"legs": legs, "phase": "ringing"}
        if all(step.leg_by_public_id(leg).is_final for leg in legs):
            return self._finish(step, node, state)
        return Wait("dial", state, node.get("timeout"))

    def _legs(self, step, wait):
        return [leg for leg in (step.leg_by_public_id(pid) for pid in wait["legs"]) if leg is not None]

    def resume(self, step, node, wait, signal):
        phase = wait.get("phase")
        if signal.kind == "timer" and phase == "ringing":
            for leg in self._legs(step, wait):
                step.hangup_leg(
                    leg,
                    CallStatus.NO_ANSWER,
                    cause=19,
                    sip_code=480,
                    reason=f"No answer within {node.get('timeout')} ms.",
                )
            return self._finish(step, node, wait)
        if signal.kind != "leg" or str(signal.leg.public_id) not in wait["legs"]:
            return None
        leg = signal.leg
        if phase == "ringing":
            if leg.status == CallStatus.IN_PROGRESS:
                step.answer()
                step.switch.bridge(step.root, leg)
                bridge_recorded(a_leg=step.root, b_leg=leg, effects=step.effects)
                for other in self._legs(step, wait):
                    if other is not leg:
                        step.hangup_leg(other, CallStatus.CANCELED, cause=26, reason="Another target answered first.")
                return Wait("dial", {**wait_state(wait), "phase": "bridged", "bridged": str(leg.public_id)})
            if all(other.is_final for other in self._legs(step, wait)):
                return self._finish(step, node, wait)
            return None
        if phase == "bridged":
            if str(leg.public_id) == wait.get("bridged") and leg.is_final:
                return self._finish(step, node, wait)
            if leg.status == CallStatus.IN_PROGRESS:  # answered too late: another one is connected
                step.hangup_leg(leg, CallStatus.COMPLETED, cause=26, reason="Another target answered first.")
        return None

    def _finish(self, step, node, wait):
        legs = self._legs(step, wait)
        bridged = step.leg_by_public_id(wait["bridged"]) if wait.get("bridged") else None
        if bridged is not None:
            status, chosen = "completed", bridged
        else:
            status, chosen = CallStatus.FAILED.value, legs[0] if legs else None
            for candidate in DIAL_STATUS_ORDER:
                match = next((leg for leg in legs if leg.status == candidate), None)
                if match is not None:
                    status, chosen = candidate.value, match
                    break
        duration = chosen.duration if chosen is not None else 0
        step.engine["last_dial"] = {"status": status, "call_id": str(chosen.public_id) if chosen else None}
        summary = f"Dial {status}" + (f" after {duration} s" if bridged is not None else "")
        if node.get("action"):
            params = step.request_params(
                DialCallStatus=status,
                DialCallSid=str(chosen.public_id) if chosen else "",
                DialCallDuration=str(duration),
                tag=node.get("tag") or "",
            )
            return _fetch_replacement(
                step,
                node,
                purpose="dial_action",
                url=step.render(node.get("action"), url=True),
                method=node.get("method"),
                timeout_ms=settings.ENGINE_ACTION_TIMEOUT_MS,
                params=params,
                what=f"{summary}; action",
            )
        return Done(status == "completed", summary)


def wait_state(wait: dict) -> dict:
    """A wait's own state, without what the step adds (kind, token, path, started_at)."""
    return {k: v for k, v in wait.items() if k not in ("kind", "token", "path", "started_at")}


# --- Record -----------------------------------------------------------------------------------------------


class Record(Handler):
    def start(self, step, node):
        step.answer()
        op = step.new_op()
        step.switch.record_start(step.root, op=op, max_ms=node.get("timeout"), transcribe=bool(node.get("asr")))
        step.engine["recording"] = {
            "op": op,
            "path": node.path,
            "started_at": timezone.now().isoformat(),
            "tag": node.get("tag") or "",
            "transcribe": bool(node.get("asr")),
            "max_ms": node.get("timeout"),
        }
        if node.commands:
            return Enter(node.commands[0], "Recording started")
        return Wait("record", {"op": op, "phase": "recording"}, node.get("timeout"))

    def finish_block(self, step, node):
        return self._stop(step, node)

    def _stop(self, step, node):
        recording = step.engine.get("recording")
        if recording is None:  # already done (the switch stopped at max length)
            return self._done(step, node)
        if not recording.get("stopping"):
            recording["stopping"] = True
            step.switch.record_stop(step.root, op=recording["op"])
        return Wait("record", {"op": recording["op"], "phase": "stopping"}, settings.ENGINE_MEDIA_GRACE_MS)

    def resume(self, step, node, wait, signal):
        if signal.kind == "record_done" and signal.data.get("op") == wait.get("op"):
            return self._done(step, node)
        if signal.kind == "timer":
            if wait.get("phase") == "recording":
                return self._stop(step, node)
            step.engine.pop("recording", None)
            return Done(False, "The switch did not report the recording")
        return None

    def _done(self, step, node):
        last = step.engine.get("last_recording") or {}
        url, duration_ms = last.get("url", ""), last.get("duration_ms", 0)
        summary = f"Recorded {round(duration_ms / 1000)} s"
        if node.get("action"):
            params = step.request_params(
                RecordingUrl=url, RecordingDuration=str(round(duration_ms / 1000)), tag=node.get("tag") or ""
            )
            return _fetch_replacement(
                step,
                node,
                purpose="record_action",
                url=step.render(node.get("action"), url=True),
                method=node.get("method"),
                timeout_ms=settings.ENGINE_ACTION_TIMEOUT_MS,
                params=params,
                what=f"{summary}; action",
            )
        return Done(True, summary)


HANDLERS: dict[str, Handler] = {
    "Answer": Answer(),
    "Hangup": HangupCommand(),
    "Pause": Pause(),
    "Say": Media(),
    "Play": Media(),
    "Tone": Media(),
    "Hold": Hold(),
    "Unhold": Unhold(),
    "Meta": Meta(),
    "Call": CallCondition(),
    "Geo": Geo(),
    "Scheduler": Scheduler(),
    "Callback": Callback(),
    "Curl": Curl(),
    "Gather": Gather(),
    "Dial": Dial(),
    "Record": Record(),
}

"""The SIMULATED switch: the built-in adapter, for development, tests and the portal's test calls. No audio moves.

It plays the far ends of calls, deterministically, from rules:
- SimulatorRule rows (admin: "Simulator rules"), the way to set behaviour for one test or one demo: a worker
  process reads them from the database, so a test's rule reaches the worker that runs the call;
- then the SIMULATED_SWITCH["rules"] of the settings (same fields, as dicts with a "match" key);
- then SIMULATED_SWITCH["default"] (answer after 1 s).
A rule matches the far end of a leg: the callee of a leg it places (E.164, SIP URI), the caller of a call it
injects. An exact match beats a prefix (`+1555*`), a longer prefix a shorter one. A SIP URI in one of the
platform's SIP domains is a SIP user: offline (or unknown, or inactive) users do not answer (480, the
caller gets no-answer), unless an exact rule for the URI says otherwise.

Timing: every delay of a rule and every media duration (Say: SAY_MS_PER_WORD per word; Play: PLAY_MS per
loop; Tone: its cadence or timeout) is call time, divided by SIMULATED_SWITCH["speed"] (SIMULATED_SWITCH_SPEED
in the environment) into wall-clock time; the engine scales its own timers (Pause, Gather and Dial timeouts,
the maximum call length) by the same factor through `time_scale()`. At speed 1000 a 30-second flow takes 30 ms.

Reports go through `switch_leg_event` with a delay, which the engine stores as durable wake-ups: the
simulated world survives a worker's death like a real one.

Inbound calls enter through `simulate_inbound_call` (POST /api/v1/simulator/inbound-calls, the portal's test
call form), which takes the real inbound path (telephony.engine.routing.inbound_call), then remembers how the
caller behaves: the keys they press at each Gather, and when they hang up.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import F, Q

from telephony.engine.context import current_step
from telephony.models import Call, SimulatedLeg, SimulatorRule, SipDomain, SipUser
from telephony.services.calls import switch_leg_event
from telephony.switch.base import SwitchAdapter

DEFAULT_BEHAVIOUR = {
    "action": "answer",
    "ring_after_ms": 100,
    "answer_after_ms": 1000,
    "fail_cause": 41,
    "fail_sip_code": 503,
    "digits": "",
    "digits_after_ms": 300,
    "hangup_after_ms": None,
}
SAY_MS_PER_WORD = 60
MIN_SAY_MS = 200
PLAY_MS = 3000
RECORDINGS_BASE_URL = "https://media.simulated.invalid/recordings"


def config() -> dict:
    return getattr(settings, "SIMULATED_SWITCH", {}) or {}


def speed() -> float:
    try:
        value = float(config().get("speed", 1.0))
    except (TypeError, ValueError):
        value = 1.0
    return value if value > 0 else 1.0


def _pick(rules: list[dict], remote: str) -> dict | None:
    remote_key = remote.lower() if remote.lower().startswith(("sip:", "sips:")) else remote
    exact = [r for r in rules if not r["match"].endswith("*") and r["match"].lower() == remote_key.lower()]
    if exact:
        return exact[0]
    prefixes = [r for r in rules if r["match"].endswith("*") and remote_key.lower().startswith(r["match"][:-1].lower())]
    return max(prefixes, key=lambda r: len(r["match"])) if prefixes else None


_BEHAVIOUR_FIELDS = (
    "action", "ring_after_ms", "answer_after_ms", "fail_cause", "fail_sip_code", "digits", "digits_after_ms",
    "hangup_after_ms", "match",
)  # fmt: skip
_RULES_SQL = (
    f"SELECT {', '.join(_BEHAVIOUR_FIELDS)} FROM {SimulatorRule._meta.db_table} "  # noqa: S608 - our table
    "WHERE enabled AND (UPPER(match) = UPPER(%s) OR match LIKE %s) ORDER BY match"
)


def _db_rules(remote: str) -> list[dict]:
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        rows = SimulatorRule.objects.filter(enabled=True).filter(Q(match__iexact=remote) | Q(match__endswith="*"))
        return [{**row.as_behaviour(), "match": row.match} for row in rows]
    # Every injected call and every leg placed asks; written once rather than compiled by the ORM each time (the
    # same rows as above: SimulatorRule.as_behaviour's fields, "rule" being the match).
    from telephony.screening import hot_cursor, hot_execute

    with hot_cursor(db) as cursor:
        hot_execute(cursor, _RULES_SQL, [remote, "%*"])
        rows = cursor.fetchall()
    return [{**dict(zip(_BEHAVIOUR_FIELDS, row, strict=True)), "rule": row[-1]} for row in rows]


def _sip_user_offline(remote: str) -> str | None:
    """Why a SIP URI in one of the platform's domains does not answer, or None (online, or not ours)."""
    if not remote.lower().startswith(("sip:", "sips:")):
        return None
    address = remote.split(":", 1)[1].split(";", 1)[0]
    login, _, host = address.partition("@")
    host = host.split(":", 1)[0]
    if not SipDomain.objects.filter(domain__iexact=host).exists():
        return None
    user = SipUser.objects.filter(domain__domain__iexact=host, login__iexact=login).first()
    if user is None:
        return "no such SIP user"
    if not user.is_active:
        return "the SIP user is inactive"
    if user.state != SipUser.State.ONLINE:
        return "the SIP user is offline"
    return None


def behaviour_for(remote: str, *, presence: bool = True) -> dict:
    """How the phone at `remote` behaves (see the module docstring for the order of the rules)."""
    db_rules = _db_rules(remote)
    exact = _pick([r for r in db_rules if not r["match"].endswith("*")], remote)
    if exact is not None:
        return {**DEFAULT_BEHAVIOUR, **exact}
    if presence:
        offline = _sip_user_offline(remote)
        if offline:
            return {**DEFAULT_BEHAVIOUR, "action": "offline", "reason": offline, "ring_after_ms": 0}
    chosen = _pick(db_rules, remote) or _pick(list(config().get("rules", [])), remote)
    base = {**DEFAULT_BEHAVIOUR, **config().get("default", {})}
    return {**base, **chosen} if chosen else base


class SimulatedSwitch(SwitchAdapter):
    """The built-in simulated switch (see the module docstring)."""

    name = "simulated"

    def time_scale(self) -> float:
        return speed()

    def _report(self, leg: Call, event: str, after_ms: float = 0, **data) -> None:
        switch_leg_event(leg, event, delay_ms=int(after_ms / speed()), **data)

    # --- Legs ---------------------------------------------------------------------------------------

    def originate(self, leg, *, caller_id, timeout_ms):
        behaviour = behaviour_for(leg.to_number)
        leg.switch_call_id = f"sim-{uuid.uuid4().hex[:16]}"
        ring = behaviour.get("ring_after_ms") or 0
        answer_after = max(ring, behaviour.get("answer_after_ms") or 0)
        action = behaviour.get("action")
        if action == "offline":
            self._report(
                leg,
                "no-answer",
                0,
                sip_code=480,
                cause=18,
                reason=f"480 Temporarily Unavailable: {behaviour.get('reason')}",
            )
            return
        self._report(leg, "ringing", ring)
        if action == "busy":
            self._report(leg, "busy", answer_after, sip_code=486, cause=17, reason="486 Busy Here")
        elif action == "fail":
            self._report(
                leg,
                "failed",
                answer_after,
                sip_code=behaviour.get("fail_sip_code") or 503,
                cause=behaviour.get("fail_cause") or 41,
                reason="The simulated network failed the call.",
            )
        elif action == "no-answer":
            if behaviour.get("answer_after_ms"):
                self._report(leg, "no-answer", answer_after, sip_code=480, cause=19, reason="480 No answer")
        else:
            self._report(leg, "answered", answer_after)
            if behaviour.get("hangup_after_ms") is not None:
                self._report(
                    leg, "hangup", answer_after + behaviour["hangup_after_ms"], cause=16, reason="The callee hung up."
                )

    def answer(self, leg):
        pass

    def hangup(self, leg, *, cause, sip_code=None, reason=""):
        pass

    def bridge(self, a_leg, b_leg):
        pass

    # --- Media ----------------------------------------------------------------------------------------

    def say(self, leg, *, op, text, voice, loop):
        duration = max(MIN_SAY_MS, len(text.split()) * SAY_MS_PER_WORD) * max(1, loop)
        self._report(leg, "media_done", duration, op=op)
        return duration

    def play(self, leg, *, op, url, loop):
        duration = int(config().get("play_ms", PLAY_MS)) * max(1, loop)
        self._report(leg, "media_done", duration, op=op)
        return duration

    def tone(self, leg, *, op, hz, on_ms, off_ms, loop, volume_db, timeout_ms):
        duration = timeout_ms if not on_ms else min(timeout_ms, (on_ms + (off_ms or 0)) * max(1, loop))
        self._report(leg, "media_done", duration, op=op)
        return duration

    def stop_media(self, leg, *, op):
        pass  # the media_done already scheduled arrives with a stale op and is ignored

    # --- Input, recording, hold ---------------------------------------------------------------------------

    def _simulated_leg(self, leg: Call) -> SimulatedLeg | None:
        step = current_step()
        key = ("simulated_leg", leg.pk)
        if step is not None and key in step.cache:
            return step.cache[key]
        found = SimulatedLeg.objects.filter(pk=leg.pk).first() if leg.pk else None
        if step is not None:
            step.cache[key] = found
        return found

    def collect_digits(self, leg, *, op, max_digits, stop_keys):
        simulated = self._simulated_leg(leg)
        if simulated is None:
            return
        groups = (simulated.behaviour.get("digits") or "").split("|")
        index = simulated.digit_groups_used
        if index >= len(groups):
            return
        simulated.digit_groups_used += 1
        pk = simulated.pk

        def count() -> None:
            SimulatedLeg.objects.filter(pk=pk).update(digit_groups_used=F("digit_groups_used") + 1)

        step = current_step()
        if step is not None:
            step.effects.writes.append(count)
        else:
            count()
        if groups[index]:
            self._report(leg, "dtmf", simulated.behaviour.get("digits_after_ms") or 0, op=op, digits=groups[index])

    def stop_collect(self, leg, *, op):
        pass

    def record_start(self, leg, *, op, max_ms, transcribe):
        pass

    def record_stop(self, leg, *, op):
        self._report(
            leg,
            "record_done",
            0,
            op=op,
            url=f"{RECORDINGS_BASE_URL}/{leg.public_id}/{op}.wav",
            transcript="(simulated transcript)",
        )

    def send_digits(self, leg, *, digits):
        pass  # the simulated far ends do not listen for keys

    def hold(self, leg):
        pass

    def unhold(self, leg):
        pass


# --- Injecting inbound calls ------------------------------------------------------------------------------


def simulate_inbound_call(
    *, from_number: str, to_number: str, digits: str | None = None, hangup_after_ms: int | None = None
):
    """A call from `from_number` to `to_number`, through the real inbound path. Returns the InboundResult.

    The caller behaves as the simulator rules say for `from_number`, with `digits` (groups separated by |, one
    per Gather) and `hangup_after_ms` (from the start of the call) overriding them.
    """
    from telephony.engine.routing import inbound_call

    with transaction.atomic():
        result = inbound_call(
            from_number, to_number, source=SimulatedSwitch.name, switch_call_id=f"sim-{uuid.uuid4().hex[:16]}"
        )
        call = result.call
        if call is not None and call.flow_state != Call.FlowState.NONE:
            behaviour = behaviour_for(call.from_number, presence=False)
            if digits is not None:
                behaviour["digits"] = digits
            if hangup_after_ms is not None:
                behaviour["hangup_after_ms"] = hangup_after_ms
            if behaviour.get("digits"):  # the only state a caller needs kept: which keys come next
                SimulatedLeg.objects.create(call=call, behaviour=behaviour)
            if behaviour.get("hangup_after_ms") is not None:
                switch_leg_event(
                    call,
                    "hangup",
                    delay_ms=int(behaviour["hangup_after_ms"] / speed()),
                    cause=16,
                    reason="The caller hung up.",
                )
    return result

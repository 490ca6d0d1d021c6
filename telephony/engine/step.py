"""One worker's turn at one call tree, under its claim: load, apply due wake-ups, run commands, save.

See runner.py for how steps are scheduled and claimed; this module is what a step does. The Step object is also
what commands (commands.py) see: the call, its document and variables, the switch, and helpers to answer, hang
up, place legs, wait, fetch, and raise call.flow events.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from telephony.callflow import Document, Node
from telephony.engine import commands, control
from telephony.engine.claims import (
    EXTEND_SQL,
    LOADED_RELATIONS,
    Claimed,
    LostClaim,
    claim_update,
    delete_wakeups,
    due_horizon,
    kick,
    release,
)
from telephony.engine.context import Effects, PendingEvent, enter_step, leave_step
from telephony.engine.variables import builtins, meta, render
from telephony.models import Call, CallStatus, CallWakeup, SipConnection
from telephony.services.calls import iso, leg_transition
from telephony.switch import get_switch

logger = logging.getLogger("telephony.engine")

FlowState = Call.FlowState
# A step yields (saves, and lets its task be queued again) after this many commands or this much time, so one
# flow cannot hold a worker; its claim is not lost in between.
MAX_COMMANDS_PER_STEP = 100
MAX_INLINE_WAIT_TOTAL = 0.05
OPENTACT_STATES = {
    CallStatus.QUEUED: "init",
    CallStatus.INITIATED: "init",
    CallStatus.RINGING: "ringing",
    CallStatus.IN_PROGRESS: "live",
}
UNANSWERED_END = {
    # How an A-leg that was never answered ends, after a Dial that ended like this.
    "busy": (CallStatus.BUSY, 486, 17),
    "no-answer": (CallStatus.NO_ANSWER, 480, 19),
    "failed": (CallStatus.FAILED, 503, 41),
}


@dataclass
class Signal:
    """Something a waiting command may be waiting for."""

    kind: str  # timer, dtmf, media_done, record_done, leg
    leg: Call | None = None
    event: str = ""
    data: dict = field(default_factory=dict)


class Step:
    """One worker's turn at one call tree, under its claim."""

    def __init__(self, call_id: int, lease: datetime, claimed: Claimed | None = None):
        self.root_id = call_id
        self.lease = lease
        self.claimed = claimed  # the call and its due wake-ups, loaded with the claim (claims.claim_and_load)
        self.more_due = True  # after the save: whether work for the call is due already (see _persist)
        self.effects = Effects(root_id=call_id)
        self.switch = get_switch()
        self.scale = self.switch.time_scale() or 1.0
        self.cache: dict = {}  # scratch space for the switch adapter, for this step only
        self.commands_run = 0
        self.started = time.monotonic()
        self.inline_slept = 0.0
        self.command_started: datetime | None = None
        self.document_changed = False
        self.signal_at: datetime | None = None  # when the wake-up being applied fell due (the switch's time)
        self._children: list[Call] | None = None

    # --- Lifecycle -------------------------------------------------------------------------------------

    def run(self) -> None:
        token = enter_step(self)
        try:
            self._load()
            self._loop()
            self._persist()
        finally:
            leave_step(token)

    def _load(self) -> None:
        if self.claimed is not None:
            self.root, self.queue = self.claimed.root, self.claimed.wakeups
        else:
            self.root = Call.objects.select_related(*LOADED_RELATIONS).get(pk=self.root_id)
            horizon = timezone.now() + due_horizon()
            self.queue = list(
                CallWakeup.objects.filter(root_id=self.root_id, due_at__lte=horizon).order_by("due_at", "id")
            )
        variables = self.root.variables if isinstance(self.root.variables, dict) else {}
        variables.setdefault("engine", {})
        self.root.variables = variables
        self.doc = Document.from_json(self.root.document) if self.root.document else None

    @property
    def engine(self) -> dict:
        return self.root.variables["engine"]

    @property
    def variables(self) -> dict:
        return self.root.variables

    def children(self) -> list[Call]:
        if self._children is None:
            self._children = list(
                Call.objects.filter(parent_id=self.root.pk).select_related("sip_user", "sip_connection").order_by("id")
            )
            for child in self._children:
                child.parent = self.root
                child.account = self.root.account
                if child.app_id == self.root.app_id:
                    child.app = self.root.app
        return self._children

    def leg_by_id(self, pk: int | None) -> Call | None:
        if pk is None or pk == self.root.pk:
            return self.root
        return next((c for c in self.children() if c.pk == pk), None)

    def leg_by_public_id(self, public_id: str) -> Call | None:
        if str(self.root.public_id) == public_id:
            return self.root
        return next((c for c in self.children() if str(c.public_id) == public_id), None)

    def _loop(self) -> None:
        while True:
            now = timezone.now()
            while self.queue and self.queue[0].due_at <= now:
                self._apply(self.queue.pop(0))
            if self.root.flow_state == FlowState.RUNNING:
                self.execute()
                if self.root.flow_state == FlowState.RUNNING:
                    return  # yielded: out of budget
            nxt = self._next_inline()
            if nxt is None:
                return
            delay = (nxt.due_at - timezone.now()).total_seconds()
            if delay > 0:
                self.inline_slept += delay
                time.sleep(delay)

    def _next_inline(self) -> CallWakeup | None:
        """The earliest wake-up (saved or just made) due soon enough to wait for in this step, moved to the queue."""
        if self.inline_slept >= MAX_INLINE_WAIT_TOTAL or self._over_budget():
            return None
        horizon = timezone.now() + due_horizon()
        fresh = [w for w in self.effects.wakeups if w.due_at <= horizon and w.kind != CallWakeup.Kind.LIMIT]
        candidates = fresh + [w for w in self.queue if w.due_at <= horizon]
        if not candidates:
            return None
        earliest = min(candidates, key=lambda w: w.due_at)
        if earliest in fresh:
            self.effects.wakeups.remove(earliest)
            self.queue.append(earliest)
            self.queue.sort(key=lambda w: w.due_at)
        return earliest

    def _over_budget(self) -> bool:
        elapsed = time.monotonic() - self.started
        return self.commands_run >= MAX_COMMANDS_PER_STEP or elapsed > settings.ENGINE_CLAIM_LEASE_SECONDS / 2

    def extend_claim(self, seconds: float) -> None:
        """Keep the claim for `seconds` more than the lease (before a request that may take that long)."""
        until = timezone.now() + timedelta(seconds=seconds + settings.ENGINE_CLAIM_LEASE_SECONDS)
        if until <= self.lease:
            return
        if claim_update(EXTEND_SQL, [until, self.root_id, self.lease]) != 1:
            raise LostClaim()
        self.lease = until

    def _persist(self) -> None:
        root = self.root
        # Wake-ups made in this step and moved to the queue for an inline wait, but not reached, are kept.
        self.effects.wakeups += [w for w in self.queue if w.pk is None]
        final = root.is_final and all(c.is_final for c in (self._children or []))
        if final:
            root.flow_state = FlowState.DONE
            root.flow_wait = None
            # Nothing is left to wait for, except the file of a recording that was stopped as the call ended.
            self.effects.wakeups = [w for w in self.effects.wakeups if w.event == "record_done"]
        else:
            # Timers of waits the flow has already left would only be ignored later; do not write them.
            token = (root.flow_wait or {}).get("token")
            self.effects.wakeups = [
                w for w in self.effects.wakeups if w.kind != CallWakeup.Kind.TIMER or w.data.get("token") == token
            ]
        control.before_save(self, final)
        fields = self.effects.take_dirty(root) | {"position", "variables", "flow_wait", "flow_state", "engine_steps"}
        if self.document_changed:
            fields.add("document")
        values = {name: getattr(root, name) for name in fields}
        now = timezone.now()
        due_by = None if final else now + due_horizon()
        announced_one = bool(self.effects.consumed)
        with transaction.atomic():
            arrived, next_due = release(root, self.lease, values, consumed=self.effects.consumed, due_by=due_by)
            if announced_one and next_due is not None and not arrived:
                # The task that brought this step was for a wake-up it consumed; the next one has none yet.
                transaction.on_commit(lambda: kick(root.pk, next_due))
            if final:
                # Everything left (the length limit, reports of the far ends) goes, with what this step consumed.
                delete_wakeups(root.pk, ids=self.effects.consumed, all_but_recordings=True)
                self.effects.consumed = []
            self.effects.flush()
        # Work for this call due now: something arrived while the step held the claim, or a wake-up the step made
        # (an inline wait it had no budget left for). The worker claims again rather than leave it to a task.
        self.more_due = arrived or (due_by is not None and any(w.due_at <= due_by for w in self.effects.wakeups))

    # --- Applying wake-ups --------------------------------------------------------------------------------

    def _apply(self, wakeup: CallWakeup) -> None:
        if wakeup.pk is not None:
            self.effects.consumed.append(wakeup.pk)
        self.signal_at = min(wakeup.due_at, timezone.now())
        try:
            self._apply_wakeup(wakeup)
        finally:
            self.signal_at = None

    def _apply_wakeup(self, wakeup: CallWakeup) -> None:
        kind = wakeup.kind
        if kind == CallWakeup.Kind.TIMER:
            wait = self.root.flow_wait or {}
            if self.root.flow_state == FlowState.WAITING and wait.get("token") == wakeup.data.get("token"):
                self.signal(Signal("timer"))
        elif kind == CallWakeup.Kind.LIMIT:
            if not self.root.is_final:
                limit = self.root.app.max_call_length_s if self.root.app_id else settings.CALL_MAX_LENGTH_S
                self.end_call(f"The call reached its maximum length ({limit} s).", cause=102)
        elif kind == CallWakeup.Kind.CONTROL:
            control.apply(self, wakeup)
        elif kind == CallWakeup.Kind.UNHOLD:
            held = self.engine.get("held")
            if held and held.get("token") == wakeup.data.get("token"):
                leg = self.leg_by_id(held.get("leg"))
                self.engine.pop("held", None)
                if leg is not None and not leg.is_final:
                    self.switch.unhold(leg)
        else:
            # A wake-up made in this step holds the very leg object (which may not be saved yet).
            leg = wakeup.leg if wakeup.pk is None else self.leg_by_id(wakeup.leg_id)
            if leg is None:
                logger.info("Call %s: %s for an unknown leg ignored", self.root_id, wakeup.event)
                return
            # The switch's time of the event (the simulated switch's clock), not the time it is processed.
            self.leg_event(leg, wakeup.event, wakeup.data or {}, at=self.signal_at)

    def leg_event(self, leg: Call, event: str, data: dict, at: datetime | None = None) -> None:
        """A switch report about one leg (see telephony/switch/base.py), applied if it still applies."""
        root = self.root
        if event == "record_done":
            self._recording_done(data)
            if root.flow_state == FlowState.WAITING:
                self.signal(Signal("record_done", leg, event, data))
            return
        if event in ("dtmf", "media_done"):
            if leg.is_final or root.flow_state != FlowState.WAITING:
                logger.debug("Call %s: %s on leg %s ignored (not waiting)", self.root_id, event, leg.pk)
                return
            self.signal(Signal(event, leg, event, data))
            return
        if leg.is_final:
            logger.info("Call %s: late %r for ended leg %s ignored", self.root_id, event, leg.public_id)
            return
        cause, sip_code, reason = data.get("cause"), data.get("sip_code"), data.get("reason", "")
        outbound_unanswered = leg is root and root.direction == Call.Direction.OUTBOUND_API and not root.answered_at
        if outbound_unanswered and control.outbound_progress(self, event, data, at):
            return  # an API call's own leg ringing, answered (its flow starts) or failing
        if leg is root:
            if event in ("hangup", "busy", "no-answer", "failed"):
                self.caller_hangup(cause=cause, reason=reason or "The caller hung up.", at=at)
            else:
                logger.info("Call %s: %r on the A-leg ignored", self.root_id, event)
            return
        status = {
            "ringing": CallStatus.RINGING,
            "answered": CallStatus.IN_PROGRESS,
            "busy": CallStatus.BUSY,
            "no-answer": CallStatus.NO_ANSWER,
            "failed": CallStatus.FAILED,
            "hangup": CallStatus.COMPLETED if leg.answered_at else CallStatus.FAILED,
        }[event]
        if event == "hangup" and not reason:
            reason = "The callee hung up." if leg.answered_at else "The callee hung up before answering."
        if not leg_transition(
            leg=leg, status=status, effects=self.effects, at=at, cause=cause, sip_code=sip_code, reason=reason
        ):
            logger.info("Call %s: %r for leg %s (%s) ignored", self.root_id, event, leg.public_id, leg.status)
            return
        if root.flow_state == FlowState.WAITING:
            self.signal(Signal("leg", leg, event, data))

    def signal(self, signal: Signal) -> None:
        root = self.root
        if root.flow_state != FlowState.WAITING or not root.flow_wait or self.doc is None:
            return
        wait = root.flow_wait
        if wait.get("kind") == "error_say":
            if (signal.kind == "media_done" and signal.data.get("op") == wait.get("op")) or signal.kind == "timer":
                error = self.doc.node_at(wait["path"])
                self._run_block_or_continue(error, self.doc.parent_of(error))
            return
        node = self.doc.node_at(wait["path"])
        handler = commands.HANDLERS[node.tag]
        outcome = handler.resume(self, node, wait, signal)
        if outcome is not None:
            self.apply_outcome(node, outcome)

    # --- Running the flow -------------------------------------------------------------------------------

    def execute(self) -> None:
        root = self.root
        while root.flow_state == FlowState.RUNNING:
            if self._over_budget():
                return
            if self.doc is None:
                if root.app_id and root.app.mode == root.app.Mode.URL and not self.engine.get("flow_fetched"):
                    self._fetch_app_flow()
                    continue
                self.end_call("The call has no flow to run.")
                return
            if not root.position:
                first = self.doc.root.commands[0] if self.doc.root.commands else None
                if first is None:
                    self.end_call("The flow ended.")
                    return
                root.position = first.path
            if self.engine.get("auto_answer"):
                self.engine["auto_answer"] = False
                self.answer()
            position = root.position
            if position.endswith("#end"):
                node = self.doc.node_at(position[:-4])
                self.command_started = timezone.now()
                outcome = commands.HANDLERS[node.tag].finish_block(self, node)
            else:
                node = self.doc.node_at(position)
                root.engine_steps += 1
                self.commands_run += 1
                if root.engine_steps > settings.ENGINE_MAX_STEPS:
                    self.end_call(f"The flow ran more than {settings.ENGINE_MAX_STEPS} commands.", failed=True)
                    return
                self.command_started = timezone.now()
                outcome = commands.HANDLERS[node.tag].start(self, node)
            self.apply_outcome(node, outcome)

    def apply_outcome(self, node: Node, outcome) -> None:
        root = self.root
        if isinstance(outcome, commands.Wait):
            self._wait(node, outcome)
            return
        if isinstance(outcome, commands.Done):
            self.flow_event(node, outcome.success, outcome.reason, error=outcome.error)
            if not outcome.success and outcome.run_error:
                error = node.error
                if error is not None:
                    self._enter_error(node, error, outcome.reason)
                    return
                if outcome.fallback:
                    self._app_fallback(node, outcome.reason)
                    return
            self.continue_after(node)
        elif isinstance(outcome, commands.Enter):
            self.flow_event(node, True, outcome.reason)
            root.position, root.flow_wait, root.flow_state = outcome.node.path, None, FlowState.RUNNING
        elif isinstance(outcome, commands.Replace):
            self.flow_event(node, True, outcome.reason)
            self.replace_document(outcome.document)
        elif isinstance(outcome, commands.Hangup):
            self.flow_event(node, True, outcome.reason)
            self.end_call(outcome.reason, tag=outcome.tag)
        else:  # pragma: no cover - a handler bug
            raise TypeError(f"unknown outcome {outcome!r}")

    def _wait(self, node: Node, wait: commands.Wait) -> None:
        root = self.root
        previous = root.flow_wait or {}
        started = previous.get("started_at") if previous.get("path") == node.path else None
        token = secrets.token_hex(8)
        root.flow_wait = {
            "kind": wait.kind,
            "token": token,
            "path": node.path,
            "started_at": started or iso(self.command_started or timezone.now()),
            **wait.state,
        }
        root.flow_state = FlowState.WAITING
        if wait.timer_ms is not None:
            self.set_timer(wait.timer_ms, token)

    def set_timer(self, call_ms: float, token: str, kind: str = CallWakeup.Kind.TIMER) -> None:
        now = timezone.now()
        self.effects.wakeups.append(
            CallWakeup(
                root=self.root, kind=kind, data={"token": token}, due_at=now + self.real(call_ms), created_at=now
            )
        )

    def real(self, call_ms: float) -> timedelta:
        """A duration of call time as wall-clock time (the simulated switch may run faster than real time)."""
        return timedelta(milliseconds=max(0.0, call_ms) / self.scale)

    def continue_after(self, node: Node) -> None:
        root = self.root
        root.flow_wait, root.flow_state = None, FlowState.RUNNING
        following = self._following(node)
        if following is None:
            root.position = ""
            self.end_call("The flow ended.")
        else:
            root.position = following

    def _following(self, node: Node) -> str | None:
        """The position after `node` has finished: the next command, a Record to finish ("<path>#end"), or None."""
        doc, current = self.doc, node
        while True:
            parent = doc.parent_of(current)
            if parent is None:
                return None
            if current.kind == "command":
                block = parent.commands
                index = next(i for i, sibling in enumerate(block) if sibling.path == current.path)
                if index + 1 < len(block):
                    return block[index + 1].path
                if parent.tag == "Record":
                    return f"{parent.path}#end"
            owner = parent
            while owner.kind == "clause":
                owner = doc.parent_of(owner)
            if owner.kind == "root":
                return None
            current = owner

    def _enter_error(self, node: Node, error: Node, reason: str) -> None:
        root = self.root
        if error.get("say"):
            op = self.new_op()
            estimate = self.switch.say(root, op=op, text=reason, voice={"lang": "en-US"}, loop=1)
            self._wait(error, commands.Wait("error_say", {"op": op}, commands.media_timeout(estimate)))
            return
        self._run_block_or_continue(error, node)

    def _run_block_or_continue(self, block: Node, owner: Node) -> None:
        root = self.root
        if block.commands:
            root.position, root.flow_wait, root.flow_state = block.commands[0].path, None, FlowState.RUNNING
        else:
            self.continue_after(owner)

    def replace_document(self, document: Document) -> None:
        """Run `document` instead of the rest of the flow (Callback, action URLs); the variables carry over."""
        root = self.root
        recording = self.engine.get("recording")
        if recording and not recording.get("stopping"):
            recording["stopping"] = True
            self.switch.record_stop(root, op=recording["op"])
        self.doc = document
        root.document = document.to_json()
        self.document_changed = True
        root.position, root.flow_wait, root.flow_state = "", None, FlowState.RUNNING
        self.engine["documents"] = self.engine.get("documents", 0) + 1

    def _fetch_app_flow(self) -> None:
        app = self.root.app
        self.engine["flow_fetched"] = True
        errors = []
        for purpose, url in (("call_flow_url", app.call_flow_url), ("fallback_url", app.fallback_url)):
            if not url:
                continue
            from telephony.engine.fetch import fetch_document

            document, error = fetch_document(
                self,
                purpose=purpose,
                url=url,
                method=app.call_flow_method,
                timeout_ms=app.call_flow_timeout_ms,
                params=self.request_params(),
            )
            if document is not None:
                self.replace_document(document)
                return
            errors.append(f"{purpose}: {error}")
        self.end_call(("Could not get the flow: " + "; ".join(errors))[:300], failed=True, sip_code=500)

    def _app_fallback(self, node: Node, reason: str) -> None:
        """A fetch for the flow failed and the command has no <Error>: the app's fallback URL, else hang up."""
        app = self.root.app
        if app is not None and app.fallback_url:
            from telephony.engine.fetch import fetch_document

            document, error = fetch_document(
                self,
                purpose="fallback_url",
                url=app.fallback_url,
                method=app.call_flow_method,
                timeout_ms=app.call_flow_timeout_ms,
                params=self.request_params(),
                path=node.path,
            )
            if document is not None:
                self.replace_document(document)
                return
            reason = f"{reason}; fallback_url: {error}"
        self.end_call(reason[:300], failed=True, sip_code=500)

    # --- Helpers for commands --------------------------------------------------------------------------

    def new_op(self) -> str:
        return secrets.token_hex(6)

    def render(self, template: str | None, *, url: bool = False) -> str:
        return render(template, self.variables, self.root, url=url)

    def request_params(self, **extra: str) -> dict[str, str]:
        """What every request to a customer's server carries: Opentact's fields, Restcomm's, and the Meta variables."""
        root = self.root
        values = builtins(root)
        params = meta(self.variables)
        params.update(
            {
                "call": values["call"],
                "sca": values["app"],
                "state": OPENTACT_STATES.get(root.status, "hangup"),
                "from": root.from_number,
                "to": root.to_number,
                "tn": values["tn"],
                "CallSid": values["call"],
                "AccountSid": str(root.account.public_id),
                "From": root.from_number,
                "To": root.to_number,
                "CallStatus": root.status,
                "Direction": root.direction,
            }
        )
        params.update({k: v for k, v in extra.items() if v is not None})
        return params

    def flow_event(
        self, node: Node, success: bool, reason: str, *, error: str | None = None, started_at: str | None = None
    ) -> None:
        """The call.flow event of one executed command (Opentact's message format included)."""
        root, now = self.root, timezone.now()
        if started_at is None:
            wait = root.flow_wait or {}
            started_at = wait.get("started_at") if wait.get("path") == node.path else None
            started_at = started_at or iso(self.command_started or now)
        short_path = node.path.split("/", 1)[1] if "/" in node.path else node.path
        verdict = "success" if success else "failure"
        payload = {
            "call_id": str(root.public_id),
            "command": node.tag,
            "path": node.path,
            "tag": node.get("tag"),
            "success": success,
            "reason": reason,
            "error": error,
            "line": node.line,
            "started_at": started_at,
            "ended_at": iso(now),
            # What ended it, when a switch report or a timer did: the moment it fell due.
            "signaled_at": iso(self.signal_at),
            "message": f"[{verdict}] command {short_path}, reason: {reason}",
        }
        self.effects.events.append(PendingEvent(root.account, "call.flow", payload, str(root.public_id), now))

    # --- Legs ---------------------------------------------------------------------------------------------

    def answer(self) -> None:
        root = self.root
        if root.answered_at or root.is_final:
            return
        self.switch.answer(root)
        leg_transition(leg=root, status=CallStatus.IN_PROGRESS, effects=self.effects)

    def hangup_leg(self, leg: Call, status: str, *, cause: int, reason: str, sip_code: int | None = None) -> None:
        if leg.is_final:
            return
        self.switch.hangup(leg, cause=cause, sip_code=sip_code, reason=reason)
        leg_transition(leg=leg, status=status, effects=self.effects, cause=cause, sip_code=sip_code, reason=reason)

    def new_leg(
        self,
        *,
        to: str,
        from_number: str,
        clause: Node | None = None,
        connection: SipConnection | None = None,
        sip_user=None,
    ) -> Call:
        """A B-leg of this call (saved with the step), initiated."""
        from telephony.services.calls import status_callback_events

        root = self.root
        leg = Call(
            account=root.account,
            parent=root,
            direction=Call.Direction.OUTBOUND_DIAL,
            from_number=from_number[:255],
            to_number=to[:255],
            status=CallStatus.QUEUED,
            source=self.switch.name[:16],
            app=root.app,
            sip_user=sip_user,
            sip_connection=connection,
            created_at=timezone.now(),
        )
        status_callback = self.render(clause.get("status_callback"), url=True) if clause is not None else ""
        if len(status_callback) > Call._meta.get_field("status_callback_url").max_length:
            # Variables (a Curl response, the caller's input) can make it any length: the leg goes without one
            # rather than fail to save and take the call down.
            logger.warning("Call %s: a <To> statusCallback of %d characters was dropped", root.pk, len(status_callback))
            status_callback = ""
        if status_callback:
            leg.status_callback_url = status_callback
            leg.status_callback_method = clause.get("status_callback_method") or "POST"
            leg.status_callback_events = status_callback_events(clause.get("status_callback_events") or ())
        self.effects.new_legs.append(leg)
        self.children().append(leg)
        self.engine["legs"] = self.engine.get("legs", 0) + 1
        leg_transition(leg=leg, status=CallStatus.INITIATED, effects=self.effects)
        return leg

    def live_children(self) -> list[Call]:
        if self._children is None and not self.engine.get("legs"):
            return []  # this call never placed a leg: spare the query
        return [c for c in self.children() if not c.is_final]

    def _end_children(self, reason: str) -> None:
        for leg in self.live_children():
            status = CallStatus.COMPLETED if leg.answered_at else CallStatus.CANCELED
            self.hangup_leg(leg, status, cause=16, reason=reason)

    def _stop_recording(self) -> None:
        recording = self.engine.get("recording")
        if recording and not recording.get("stopping"):
            recording["stopping"] = True
            self.switch.record_stop(self.root, op=recording["op"])

    def caller_hangup(self, *, cause: int | None, reason: str, at: datetime | None = None) -> None:
        """The A-leg's far end hung up: the call is over, for every leg."""
        root = self.root
        self._stop_recording()
        self._end_children("The caller hung up.")
        status = CallStatus.COMPLETED if root.answered_at else CallStatus.CANCELED
        leg_transition(leg=root, status=status, effects=self.effects, at=at, cause=cause, reason=reason)
        root.flow_state, root.flow_wait = FlowState.DONE, None

    def end_call(
        self, reason: str, *, tag: str = "", cause: int = 16, failed: bool = False, sip_code: int | None = None
    ) -> None:
        """The platform ends the call: B-legs first, then the A-leg (rejected if it was never answered)."""
        root = self.root
        self._stop_recording()
        self._end_children(reason)
        if not root.is_final:
            if root.answered_at:
                status, code, cause = CallStatus.COMPLETED, None, cause
            elif failed:
                status, code, cause = CallStatus.FAILED, sip_code or 500, 41
            else:
                last = (self.engine.get("last_dial") or {}).get("status")
                status, code, cause = UNANSWERED_END.get(last, (CallStatus.FAILED, 603, 21))
            if tag:
                root.tag = tag[:255]
                self.effects.touch(root, "tag")
            self.switch.hangup(root, cause=cause, sip_code=code, reason=reason)
            leg_transition(
                leg=root, status=status, effects=self.effects, cause=cause, sip_code=code, reason=tag or reason
            )
        root.flow_state, root.flow_wait = FlowState.DONE, None

    # --- Recordings --------------------------------------------------------------------------------------

    def _recording_done(self, data: dict) -> None:
        import uuid

        recording = self.engine.get("recording")
        if not recording or recording.get("op") != data.get("op"):
            return
        self.engine.pop("recording")
        started = datetime.fromisoformat(recording["started_at"])
        duration_ms = data.get("duration_ms")
        if duration_ms is None:  # the switch did not say: measure it, in call time, within its maximum
            duration_ms = (timezone.now() - started).total_seconds() * 1000 * self.scale
            if recording.get("max_ms"):
                duration_ms = min(duration_ms, recording["max_ms"])
        url = data.get("url") or ""
        tag = recording.get("tag") or f"recording{self.engine.get('recordings_made', 0) + 1}"
        self.engine["recordings_made"] = self.engine.get("recordings_made", 0) + 1
        self.variables.setdefault("recordings", {})[tag] = url
        self.engine["last_recording"] = {"url": url, "duration_ms": int(duration_ms)}
        recording_id = str(uuid.uuid4())
        now = timezone.now()
        account, call_id = self.root.account, str(self.root.public_id)
        self.effects.events.append(
            PendingEvent(
                account,
                "recording.available",
                {
                    "recording_id": recording_id,
                    "call_id": call_id,
                    "tag": recording.get("tag") or None,
                    "url": url,
                    "duration": round(duration_ms / 1000),
                    "format": "mp3" if url.endswith(".mp3") else "wav",
                },
                recording_id,
                now,
            )
        )
        if recording.get("transcribe"):
            self.effects.events.append(
                PendingEvent(
                    account,
                    "recording.transcript_available",
                    {
                        "recording_id": recording_id,
                        "call_id": call_id,
                        "text": data.get("transcript") or "",
                        "language": "en-US",
                    },
                    recording_id,
                    now,
                )
            )

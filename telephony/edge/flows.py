"""Call-control app flows on the SIP edge: the signalling commands run, a command that needs media stops the call.

Kamailio is a proxy: it can fork an INVITE, reject it, and try again when every branch failed, but it never
answers a call itself and has no media. So a flow runs here, in the portal's request handler, until it
reaches one of:
- <Dial>: its targets become the INVITE's branches (parallel ringing, the Dial's timeout); when they all fail,
  Kamailio reports the outcome and the Dial's action URL (called with the real DialCallStatus) or the rest
  of the flow decides what happens next — another Dial, or a final reply;
- <Hangup>: the INVITE is refused (603);
- a command that needs media (Say, Play, Tone, Gather, Record, Pause, Hold, Unhold): refused with 488 and the
  reason recorded on the call, since no media server is part of the edge;
- the end of the flow: refused with the last Dial's outcome (480 when there was none).
<Answer> is a no-op here: the caller is connected when a Dial target answers. Meta, Call, Geo, Scheduler,
Callback and Curl run with the engine's own handlers (telephony.engine.commands), through `EdgeStep`, which
offers them the parts of an engine step they use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from telephony.callflow import Document, Node
from telephony.engine import commands
from telephony.engine.context import Effects
from telephony.engine.fetch import fetch_document
from telephony.engine.step import OPENTACT_STATES
from telephony.engine.variables import meta, render
from telephony.models import Call

# The engine's handlers that only compute, branch or talk HTTP: safe to run without a switch.
SIGNALLING = frozenset({"Meta", "Call", "Geo", "Scheduler", "Callback", "Curl"})
MEDIA = frozenset({"Say", "Play", "Tone", "Gather", "Record", "Pause", "Hold", "Unhold"})
MAX_COMMANDS = 200


@dataclass
class FlowStop:
    """Where a flow stopped: at a Dial to ring, or with a final SIP reply."""

    dial: Node | None = None
    sip_code: int = 0
    reason: str = ""
    status: str = Call.Status.FAILED


class EdgeStep:
    """What the engine's handlers need of a step, for a call the edge carries (no claim, no switch)."""

    def __init__(self, root: Call, effects: Effects):
        self.root = root
        self.effects = effects
        variables = root.variables if isinstance(root.variables, dict) else {}
        self.variables = variables
        self.engine = variables.setdefault("engine", {})
        self.flow_events: list[dict] = []

    def render(self, template: str | None, *, url: bool = False) -> str:
        return render(template, self.variables, self.root, url=url)

    def request_params(self, **extra: str) -> dict[str, str]:
        root = self.root
        params = meta(self.variables)
        params.update(
            {
                "call": str(root.public_id),
                "sca": str(root.app.public_id) if root.app_id else "",
                "state": OPENTACT_STATES.get(root.status, "hangup"),
                "from": root.from_number,
                "to": root.to_number,
                "tn": root.phone_number.number if root.phone_number_id else root.to_number,
                "CallSid": str(root.public_id),
                "AccountSid": str(root.account.public_id),
                "From": root.from_number,
                "To": root.to_number,
                "CallStatus": root.status,
                "Direction": root.direction,
            }
        )
        params.update({k: v for k, v in extra.items() if v is not None})
        return params

    def extend_claim(self, seconds: float) -> None:
        """Nothing to extend: an edge call is advanced only by Kamailio's requests, never by a worker."""


def fetch_app_flow(step: EdgeStep) -> tuple[Document | None, str]:
    """The flow of an app in url mode: its call_flow_url, then its fallback URL."""
    app = step.root.app
    errors = []
    for purpose, url in (("call_flow_url", app.call_flow_url), ("fallback_url", app.fallback_url)):
        if not url:
            continue
        document, error = fetch_document(
            step,
            purpose=purpose,
            url=url,
            method=app.call_flow_method or "POST",
            timeout_ms=app.call_flow_timeout_ms or settings.ENGINE_ACTION_TIMEOUT_MS,
            params=step.request_params(),
        )
        if document is not None:
            return document, ""
        errors.append(f"{purpose}: {error}")
    return None, "; ".join(errors) or "the app has no call flow URL"


@dataclass
class FlowRun:
    document: Document
    node: Node | None
    last_dial_code: int | None = None
    last_dial_status: str = ""
    notes: list[str] = field(default_factory=list)


def run(step: EdgeStep, run_state: FlowRun) -> FlowStop:
    """Run the flow from `run_state.node` until it must stop (see the module docstring)."""
    doc, node = run_state.document, run_state.node
    for _ in range(MAX_COMMANDS):
        if node is None:
            return _flow_ended(run_state)
        tag = node.tag
        if tag == "Dial":
            run_state.document, run_state.node = doc, node
            return FlowStop(dial=node)
        if tag == "Hangup":
            label = node.get("tag") or ""
            return FlowStop(sip_code=603, reason=f"Hangup ({label})" if label else "Hangup")
        if tag in MEDIA:
            return FlowStop(
                sip_code=488,
                reason=f"The flow's <{tag}> needs media, which the SIP edge does not provide (no media server).",
            )
        if tag == "Answer":
            node = doc.next_after(node)
            continue
        if tag not in SIGNALLING:  # pragma: no cover - the validator knows no other commands
            return FlowStop(sip_code=500, reason=f"<{tag}> cannot run on the SIP edge.")
        outcome = commands.HANDLERS[tag].start(step, node)
        if isinstance(outcome, commands.Enter):
            node = outcome.node
        elif isinstance(outcome, commands.Replace):
            doc = outcome.document
            step.root.document = doc.to_json()
            node = doc.root.commands[0] if doc.root.commands else None
        elif isinstance(outcome, commands.Done):
            if not outcome.success and outcome.run_error and node.error is not None and node.error.commands:
                node = node.error.commands[0]
            elif not outcome.success and outcome.fallback:
                return FlowStop(sip_code=500, reason=outcome.reason[:300])
            else:
                node = doc.next_after(node)
        else:  # pragma: no cover - Wait/Hangup come only from the handlers not allowed here
            return FlowStop(sip_code=500, reason=f"<{tag}> cannot run on the SIP edge.")
        run_state.document = doc
    return FlowStop(sip_code=500, reason=f"The flow ran more than {MAX_COMMANDS} commands on the edge.")


def _flow_ended(run_state: FlowRun) -> FlowStop:
    if run_state.last_dial_code:
        return FlowStop(
            sip_code=run_state.last_dial_code,
            reason=f"The flow ended after a Dial ({run_state.last_dial_status}).",
            status=run_state.last_dial_status or Call.Status.FAILED,
        )
    return FlowStop(sip_code=480, reason="The flow ended without connecting the call.")

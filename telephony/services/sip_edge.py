"""Calls carried by the SIP edge (Kamailio): routing each new INVITE, and recording what happens to it.

Kamailio asks three things of the portal (telephony/edge/views.py):

    edge_route(invite)              a new INVITE: who calls, where it goes (branches to ring) or the reply
    edge_dial_outcome(call_id, ...) every branch failed (or the caller cancelled): record it, say what next
    edge_call_events(events)        ringing / answered / ended / failed reports, in batches

The records are the engine's: an A-leg (`inbound`, the caller's leg into the platform) and one B-leg
(`outbound-dial`) per target it rings, moved through their states by `leg_transition`, which raises the
call.* events, queues the status callbacks and (for legs to SIP users) the extension hooks. Every leg has
source "kamailio" and the SIP Call-ID as `switch_call_id`; the engine never runs these calls (their
flow_state stays "none"): Kamailio is a proxy, and the flow's signalling runs here (telephony/edge/flows.py).

The inbound path is the engine's (telephony.engine.routing.route_inbound: number, voice, account,
screening, target) and its channel limits (telephony.engine.limits). Calls placed by registered SIP users:
to a SIP user of the platform (same_domain_calls_only honoured on both sides), to one of the platform's
numbers (the inbound path), or to any other number through the user's SIP connection (the PSTN).

An answered Dial's action URL after the call, and calls whose end Kamailio never reported: sip_edge_lifecycle.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from telephony.callflow import CallFlowInvalid, Document
from telephony.callflow.tags import E164, SIP_URI, normalize_number
from telephony.edge import flows
from telephony.edge.registrations import registrations_for_login
from telephony.edge.routing import (
    Caller,
    InviteRequest,
    caller_by_address,
    caller_by_credentials,
    challenge_realm,
    dialable_number,
    target_sip_user,
)
from telephony.engine import documents, limits
from telephony.engine.context import Effects
from telephony.engine.fetch import fetch_document
from telephony.engine.routing import RoutingDecision, route_inbound
from telephony.models import Call, CallStatus, PhoneNumber, SipConnection, SipUser
from telephony.services.calls import _inbound_status_callback, bridge_recorded, leg_transition
from telephony.sipauth import connection_realm

logger = logging.getLogger("telephony.edge")

SOURCE = "kamailio"
PHRASES = {
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    480: "Temporarily Unavailable",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    503: "Service Unavailable",
    600: "Busy Everywhere",
    603: "Decline",
}


@dataclass
class EdgeAnswer:
    """What Kamailio does with the INVITE: `relay` to `routes`, `reply` with `code`, or `challenge` in `realm`."""

    action: str
    code: int = 0
    reason: str = ""  # why, for the logs and the call record (never sent to the caller)
    realm: str = ""
    routes: list[dict] = field(default_factory=list)
    timeout_ms: int = 0
    call: Call | None = None
    from_user: str = ""  # relayed with this user part in From: the caller ID a PSTN call goes out with

    def as_json(self) -> dict:
        body: dict = {"action": self.action}
        if self.action == "relay":
            rtjson = {"version": "1.0", "routing": "parallel", "routes": self.routes}
            body["rtjson"] = json.dumps(rtjson, separators=(",", ":"))
            body.update(routes=self.routes, timeout_ms=self.timeout_ms)
            if self.from_user:
                body["from_user"] = self.from_user
        elif self.action == "challenge":
            body["realm"] = self.realm
        else:
            body.update(code=self.code, reason=PHRASES.get(self.code, "Refused"))
        if self.call is not None:
            body["call"] = str(self.call.public_id)
        return body


def _reply(code: int, reason: str, call: Call | None = None) -> EdgeAnswer:
    return EdgeAnswer("reply", code=code, reason=reason, call=call)


def dial_status(code: int, canceled: bool = False) -> str:
    """The Restcomm status of a leg whose INVITE ended with `code` (DialCallStatus)."""
    if canceled:
        return CallStatus.CANCELED
    if code in (486, 600, 603):
        return CallStatus.BUSY
    if code in (408, 480, 487):
        return CallStatus.NO_ANSWER
    return CallStatus.FAILED


def _hook(effects: Effects, leg: Call, event: str) -> None:
    """The caller's own extension hooks (dial-out, answer, hangup) for a call a registered phone placed.

    Legs to SIP users raise theirs in leg_transition; an inbound leg raises none there (extension_hooks
    leg_hook_event), so the edge raises the caller's here.
    """
    if not leg.sip_user_id or not (leg.variables or {}).get("edge", {}).get("caller_user"):
        return
    try:
        from telephony.services.extension_hooks import fire_for_leg
    except ImportError:  # pragma: no cover - hooks are another area's; calls work without them
        return
    effects.writes.append(lambda: fire_for_leg(leg, event))


# --- Routing a new INVITE --------------------------------------------------------------------------------


def edge_route(invite: InviteRequest) -> EdgeAnswer:
    """Decide a new INVITE and record the call (see the module docstring)."""
    if invite.auth_user:
        caller = caller_by_credentials(invite.auth_user, invite.auth_realm)
        if caller is None:
            return _reply(403, f"{invite.auth_user}@{invite.auth_realm} may not place calls.")
    else:
        # A From in one of our SIP domains is a phone that has not sent its credentials yet, even from a trunk's
        # address (an office behind one NAT); anything else must come from a trunk's address.
        realm = challenge_realm(invite.from_domain)
        if realm is not None and realm != connection_realm():
            return EdgeAnswer("challenge", realm=realm, reason="Credentials needed.")
        caller = caller_by_address(invite.source_ip)
        if caller is None:
            if realm is not None:
                return EdgeAnswer("challenge", realm=realm, reason="Credentials needed.")
            return _reply(403, f"Unknown source {invite.source_ip} (not a SIP connection's address).")
    if caller.kind == "sip_user":
        return _from_sip_user(invite, caller)
    caller_id = dialable_number(invite.from_user) or (invite.from_user or "anonymous")
    return _inbound(invite, from_number=caller_id, to_number=invite.to_user)


def _from_sip_user(invite: InviteRequest, caller: Caller) -> EdgeAnswer:
    user = caller.sip_user
    callee = target_sip_user(invite.to_user, invite.to_domain)
    if callee is not None:
        return _user_to_user(invite, user, callee)
    number = dialable_number(invite.to_user)
    if number is None:
        return _reply(404, f"{invite.to_user}@{invite.to_domain} is neither a SIP user nor a number.")
    caller_id = user.caller_id_number.number if user.caller_id_number_id else None
    if PhoneNumber.objects.filter(number=number, status=PhoneNumber.Status.ACTIVE).exists():
        return _inbound(invite, from_number=caller_id or user.sip_uri, to_number=number)
    return _to_pstn(invite, user, number, caller_id)


def _new_a_leg(*, account, invite: InviteRequest, from_number: str, to_number: str, **fields) -> Call:
    return Call(
        account=account,
        direction=Call.Direction.INBOUND,
        from_number=from_number[:255],
        to_number=to_number[:255],
        status=CallStatus.QUEUED,
        source=SOURCE,
        switch_call_id=invite.call_id[:255],
        created_at=timezone.now(),
        variables={"edge": {"from_tag": invite.from_tag}},
        **fields,
    )


def _new_b_leg(effects: Effects, a_leg: Call, *, to: str, sip_user=None, connection=None, clause=None, step=None,
               caller_id: str | None = None):  # fmt: skip
    from telephony.services.calls import status_callback_events

    leg = Call(
        account=a_leg.account,
        parent=a_leg,
        direction=Call.Direction.OUTBOUND_DIAL,
        from_number=caller_id or a_leg.from_number,
        to_number=to[:255],
        status=CallStatus.QUEUED,
        source=SOURCE,
        switch_call_id=a_leg.switch_call_id,
        app=a_leg.app,
        sip_user=sip_user,
        sip_connection=connection,
        created_at=timezone.now(),
    )
    if clause is not None and clause.get("status_callback") and step is not None:
        leg.status_callback_url = step.render(clause.get("status_callback"), url=True)
        leg.status_callback_method = clause.get("status_callback_method") or "POST"
        leg.status_callback_events = status_callback_events(clause.get("status_callback_events") or ())
    effects.new_legs.append(leg)
    leg_transition(leg=leg, status=CallStatus.INITIATED, effects=effects)
    return leg


def _end(effects: Effects, leg: Call, status: str, code: int | None, reason: str, cause: int | None = None, at=None):
    leg.flow_state = Call.FlowState.NONE
    leg_transition(leg=leg, status=status, effects=effects, at=at, cause=cause, sip_code=code, reason=reason)


def _refuse_a_leg(a_leg: Call, status: str, code: int, reason: str, cause: int | None = None) -> EdgeAnswer:
    """A new A-leg refused at once: initiated, then its final state; saved with its events."""
    # No savepoint when called inside the decision's transaction: an error there undoes the whole decision.
    with transaction.atomic(savepoint=False):
        effects = Effects()
        effects.new_legs.append(a_leg)
        leg_transition(leg=a_leg, status=CallStatus.INITIATED, effects=effects)
        _end(effects, a_leg, status, code, reason, cause)
        effects.flush()
    return _reply(code, reason, a_leg)


def _contact_routes(login: str, domain: str) -> list[dict]:
    routes = []
    for registration in registrations_for_login(login, domain):
        route = {"uri": registration.contact}
        if registration.received:
            route["dst_uri"] = registration.received
        routes.append(route)
    return routes


def _user_to_user(invite: InviteRequest, user: SipUser, callee: SipUser) -> EdgeAnswer:
    same_domain = callee.domain_id == user.domain_id
    a_leg = _new_a_leg(
        account=user.account, invite=invite, from_number=user.sip_uri, to_number=callee.sip_uri, sip_user=user
    )
    a_leg.variables["edge"].update(kind="forward", caller_user=True)
    if not same_domain and (user.same_domain_calls_only or user.domain.same_domain_calls_only):
        return _refuse_a_leg(a_leg, CallStatus.FAILED, 403, f"{user.sip_uri} may call only its own domain.", 21)
    if not same_domain and (callee.same_domain_calls_only or callee.domain.same_domain_calls_only):
        return _refuse_a_leg(a_leg, CallStatus.FAILED, 403, f"{callee.sip_uri} takes calls only from its domain.", 21)
    if not callee.is_active or not callee.account.is_active:
        return _refuse_a_leg(a_leg, CallStatus.FAILED, 480, f"The SIP user {callee.sip_uri} is inactive.", 18)
    target = _Target(to=callee.sip_uri, sip_user=callee, routes=_contact_routes(callee.login, callee.domain.domain))
    return _start_forward(a_leg, [target], limit_account=user.account)


def _to_pstn(invite: InviteRequest, user: SipUser, number: str, caller_id: str | None) -> EdgeAnswer:
    """Out through the user's SIP connection. With a caller ID number the call leaves with it in From (a carrier
    shows, and checks, the number, not the phone's login); without one the phone's From goes as it came."""
    connection = user.sip_connection or user.domain.default_sip_connection or _account_trunk(user.account)
    a_leg = _new_a_leg(account=user.account, invite=invite, from_number=user.sip_uri, to_number=number, sip_user=user)
    a_leg.variables["edge"].update(kind="forward", caller_user=True)
    if connection is None or not connection.is_active or not connection.inbound_host:
        return _refuse_a_leg(
            a_leg, CallStatus.FAILED, 403, f"{user.sip_uri} has no active SIP connection to reach {number}.", 21
        )
    refusal = limits.admit_outbound(account=user.account, connection=connection, adding=1)
    if refusal is not None:
        return _refuse_a_leg(a_leg, refusal.status, refusal.sip_code, refusal.reason, refusal.cause)
    target = _Target(to=number, connection=connection, routes=[{"uri": _connection_uri(connection, number)}],
                     caller_id=caller_id)  # fmt: skip
    answer = _start_forward(a_leg, [target], limit_account=None)
    answer.from_user = caller_id or ""  # only a relay carries it (EdgeAnswer.as_json)
    return answer


def _account_trunk(account) -> SipConnection | None:
    """The account's first active SIP connection that can take calls (has an inbound host)."""
    return SipConnection.objects.filter(account=account, is_active=True).exclude(inbound_host="").order_by("id").first()


def _connection_uri(connection: SipConnection, number: str) -> str:
    return (
        f"sip:{number}@{connection.inbound_host}:{connection.inbound_port or 5060}"
        f";transport={connection.inbound_transport}"
    )


@dataclass
class _Target:
    to: str
    routes: list[dict]
    sip_user: SipUser | None = None
    connection: SipConnection | None = None
    clause: object = None
    failure: tuple[str, int, str] | None = None  # status, sip code, reason: this target cannot ring
    caller_id: str | None = None  # the B-leg's From, when the edge rewrites it


def _ring(effects: Effects, a_leg: Call, targets: list[_Target], step=None) -> tuple[list[dict], list[Call]]:
    """B-legs for `targets` (a target without routes fails at once): the routes Kamailio forks to, the legs."""
    routes, branches, legs, made = [], {}, [], []
    for target in targets:
        leg = _new_b_leg(
            effects, a_leg, to=target.to, sip_user=target.sip_user, connection=target.connection,
            clause=target.clause, step=step, caller_id=target.caller_id,
        )  # fmt: skip
        legs.append(str(leg.public_id))
        made.append(leg)
        if target.failure is not None:
            status, code, reason = target.failure
            _end(effects, leg, status, code, reason)
        elif not target.routes:
            _end(effects, leg, CallStatus.NO_ANSWER, 480, f"{target.to} is not registered (offline).", 18)
        for route in target.routes:
            routes.append(route)
            branches[route["uri"]] = str(leg.public_id)
    edge = a_leg.variables.setdefault("edge", {})
    edge.update(legs=legs, branches=branches)
    effects.touch(a_leg, "variables")
    return routes, made


def _start_forward(a_leg: Call, targets: list[_Target], *, limit_account) -> EdgeAnswer:
    """An A-leg that rings `targets` directly (no flow): admitted, ringing, forked; or refused."""
    with transaction.atomic():
        effects = Effects()
        effects.new_legs.append(a_leg)
        leg_transition(leg=a_leg, status=CallStatus.INITIATED, effects=effects)
        _hook(effects, a_leg, "dial-out")
        if limit_account is not None:
            refusal = limits.admit_inbound(account=limit_account, app=None, connection=None)
            if refusal is not None:
                _end(effects, a_leg, refusal.status, refusal.sip_code, refusal.reason, refusal.cause)
                _hook(effects, a_leg, "hangup")
                effects.flush()
                return _reply(refusal.sip_code, refusal.reason, a_leg)
        leg_transition(leg=a_leg, status=CallStatus.RINGING, effects=effects)
        routes, made = _ring(effects, a_leg, targets)
        if not routes:
            first = made[0]
            _end(effects, a_leg, first.status, first.sip_code or 480, first.end_reason, first.q850_cause)
            _hook(effects, a_leg, "hangup")
            effects.flush()
            return _reply(first.sip_code or 480, first.end_reason, a_leg)
        effects.flush()
    return EdgeAnswer("relay", routes=routes, timeout_ms=settings.CALL_FORWARD_TIMEOUT_MS, call=a_leg)


def _inbound(invite: InviteRequest, *, from_number: str, to_number: str) -> EdgeAnswer:
    """A call to one of the platform's numbers: the engine's inbound path, on the edge."""
    # Deciding and recording share one transaction (one commit: the screening hit counter joins it), except
    # for apps, whose flow may call customers' servers and must not hold a transaction open meanwhile.
    with transaction.atomic():
        decision = route_inbound(from_number, to_number, source=SOURCE)
        if not decision.recordable:
            logger.info("Edge call %s -> %s refused: %s", from_number, to_number, decision.reason)
            return _reply(decision.sip_code or 404, decision.reason)
        if not (decision.accepted and decision.target == "app"):
            return _record_inbound(invite, decision)
    return _record_inbound(invite, decision)


def _record_inbound(invite: InviteRequest, decision: RoutingDecision) -> EdgeAnswer:
    a_leg = _new_a_leg(
        account=decision.account,
        invite=invite,
        from_number=decision.from_number,
        to_number=decision.to_number,
        phone_number=decision.number,
        app=decision.app,
        sip_user=decision.sip_user,
        sip_connection=decision.sip_connection,
    )
    _inbound_status_callback(a_leg, decision)
    if not decision.accepted:
        if decision.answer_then_hangup:
            # "Answer, then hang up" needs a media server to answer with; the edge declines instead.
            return _refuse_a_leg(a_leg, CallStatus.FAILED, 603, decision.reason, decision.cause)
        return _refuse_a_leg(a_leg, decision.status, decision.sip_code, decision.reason, decision.cause)
    if decision.target == "app":
        return _start_app(a_leg, decision)
    if decision.target == "sip_user":
        user = decision.sip_user
        target = _Target(to=user.sip_uri, sip_user=user, routes=_contact_routes(user.login, user.domain.domain))
    else:
        connection = decision.sip_connection
        target = _Target(
            to=decision.to_number,
            connection=connection,
            routes=[{"uri": _connection_uri(connection, decision.to_number)}],
        )
    a_leg.variables["edge"]["kind"] = "forward"
    return _start_inbound(a_leg, decision, [target])


def _admit(decision: RoutingDecision):
    return limits.admit_inbound(
        account=decision.account,
        app=decision.app,
        connection=decision.sip_connection if decision.target == "sip_connection" else None,
    )


def _start_inbound(a_leg: Call, decision: RoutingDecision, targets: list[_Target]) -> EdgeAnswer:
    with transaction.atomic(savepoint=False):
        effects = Effects()
        effects.new_legs.append(a_leg)
        leg_transition(leg=a_leg, status=CallStatus.INITIATED, effects=effects)
        refusal = _admit(decision)
        if refusal is not None:
            _end(effects, a_leg, refusal.status, refusal.sip_code, refusal.reason, refusal.cause)
            effects.flush()
            return _reply(refusal.sip_code, refusal.reason, a_leg)
        leg_transition(leg=a_leg, status=CallStatus.RINGING, effects=effects)
        routes, made = _ring(effects, a_leg, targets)
        if not routes:
            first = made[0]
            _end(effects, a_leg, first.status, first.sip_code or 480, first.end_reason, first.q850_cause)
            effects.flush()
            return _reply(first.sip_code or 480, first.end_reason, a_leg)
        effects.flush()
    return EdgeAnswer("relay", routes=routes, timeout_ms=settings.CALL_FORWARD_TIMEOUT_MS, call=a_leg)


# --- Apps --------------------------------------------------------------------------------------------------


def _start_app(a_leg: Call, decision: RoutingDecision) -> EdgeAnswer:
    app = decision.app
    a_leg.variables["edge"]["kind"] = "app"
    a_leg.variables["engine"] = {}
    with transaction.atomic():
        effects = Effects()
        effects.new_legs.append(a_leg)
        leg_transition(leg=a_leg, status=CallStatus.INITIATED, effects=effects)
        refusal = _admit(decision)
        if refusal is None:
            leg_transition(leg=a_leg, status=CallStatus.RINGING, effects=effects)
        else:
            _end(effects, a_leg, refusal.status, refusal.sip_code, refusal.reason, refusal.cause)
        effects.flush()
    if refusal is not None:
        return _reply(refusal.sip_code, refusal.reason, a_leg)
    effects = Effects()
    step = flows.EdgeStep(a_leg, effects)
    document = None
    try:
        if app.mode == app.Mode.XML:
            document = Document.from_json(documents.document_json(app.xml))
        else:
            document, error = flows.fetch_app_flow(step)
            if document is None:
                return _finish_app(a_leg, effects, flows.FlowStop(sip_code=500, reason=f"No flow: {error}"[:300]))
    except CallFlowInvalid as invalid:
        return _finish_app(a_leg, effects, flows.FlowStop(sip_code=500, reason=f"Invalid flow: {invalid}"[:300]))
    a_leg.document = document.to_json()
    first = document.root.commands[0] if document.root.commands else None
    return _advance_app(a_leg, effects, step, flows.FlowRun(document, first))


def _advance_app(a_leg: Call, effects: Effects, step: flows.EdgeStep, run_state: flows.FlowRun) -> EdgeAnswer:
    """Run the flow until it rings something (relay) or ends (reply); write what it did."""
    for _ in range(20):
        stop = flows.run(step, run_state)
        if stop.dial is None:
            return _finish_app(a_leg, effects, stop)
        node = stop.dial
        targets = [_dial_target(step, a_leg, clause) for clause in node.clauses("To")]
        with transaction.atomic():
            routes, failed = _ring(effects, a_leg, targets, step=step)
            edge = a_leg.variables["edge"]
            edge["dial_path"] = node.path
            a_leg.position = node.path
            effects.touch(a_leg, "variables", "document", "position")
            if routes:
                effects.flush()
                return EdgeAnswer("relay", routes=routes, timeout_ms=node.get("timeout"), call=a_leg)
            effects.flush()
        # Nothing could ring: the Dial is over at once, and the flow goes on with fresh writes.
        effects = step.effects = Effects()
        status, code = _dial_result(failed)
        run_state = _after_dial(a_leg, effects, step, run_state.document, node, status, code, None)
        if isinstance(run_state, flows.FlowStop):
            return _finish_app(a_leg, effects, run_state)
    return _finish_app(a_leg, effects, flows.FlowStop(sip_code=500, reason="The flow dialled too many times."))


def _dial_result(legs: list[Call]) -> tuple[str, int]:
    for candidate in (CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.FAILED, CallStatus.CANCELED):
        match = next((leg for leg in legs if leg.status == candidate), None)
        if match is not None:
            return candidate.value, match.sip_code or 480
    return CallStatus.FAILED.value, 480


def _after_dial(a_leg, effects, step, document, node, status: str, code: int, chosen: Call | None):
    """Where the flow goes after a Dial that ended `status`: its action URL's document, or the next command."""
    run_state = flows.FlowRun(document, None, last_dial_code=code, last_dial_status=status)
    step.engine["last_dial"] = {"status": status, "call_id": str(chosen.public_id) if chosen else None}
    if node.get("action"):
        params = step.request_params(
            DialCallStatus=status,
            DialCallSid=str(chosen.public_id) if chosen else "",
            DialCallDuration=str(chosen.duration if chosen else 0),
            tag=node.get("tag") or "",
        )
        fetched, error = fetch_document(
            step,
            purpose="dial_action",
            url=step.render(node.get("action"), url=True),
            method=node.get("method") or "POST",
            timeout_ms=settings.ENGINE_ACTION_TIMEOUT_MS,
            params=params,
            path=node.path,
        )
        if fetched is None:
            return flows.FlowStop(sip_code=500, reason=f"Dial {status}; action: {error}"[:300])
        a_leg.document = fetched.to_json()
        run_state.document = fetched
        run_state.node = fetched.root.commands[0] if fetched.root.commands else None
    else:
        run_state.node = document.next_after(node)
    return run_state


def _finish_app(a_leg: Call, effects: Effects, stop: flows.FlowStop) -> EdgeAnswer:
    with transaction.atomic():
        locked = Call.objects.select_for_update().filter(pk=a_leg.pk).values_list("status", flat=True).first()
        if locked not in (None, *[s.value for s in (CallStatus.INITIATED, CallStatus.RINGING)]):
            effects.flush()
            return _reply(stop.sip_code, stop.reason, a_leg)
        status = stop.status if stop.status in (CallStatus.BUSY, CallStatus.NO_ANSWER) else CallStatus.FAILED
        a_leg.position = ""
        effects.touch(a_leg, "variables", "document", "position")
        _end(effects, a_leg, status, stop.sip_code, stop.reason)
        effects.flush()
    return _reply(stop.sip_code, stop.reason, a_leg)


def _inactive_user(user: SipUser, clause) -> _Target:
    # A disabled user's phones may still be registered until their registration expires: they must not ring.
    failure = (CallStatus.FAILED, 480, f"The SIP user {user.sip_uri} is inactive.")
    return _Target(to=user.sip_uri, routes=[], clause=clause, failure=failure)


def _dial_target(step, a_leg: Call, clause) -> _Target:
    raw = step.render(clause.get("target")).strip()
    if E164.match(raw):
        number = normalize_number(raw)
        local = PhoneNumber.objects.filter(number=number, status=PhoneNumber.Status.ACTIVE).first()
        if local is not None and local.sip_user_id:
            user = SipUser.objects.select_related("domain").get(pk=local.sip_user_id)
            if not user.is_active:
                return _inactive_user(user, clause)
            return _Target(to=user.sip_uri, sip_user=user, clause=clause,
                           routes=_contact_routes(user.login, user.domain.domain))  # fmt: skip
        connection = _account_trunk(a_leg.account)
        if connection is None:
            failure = (CallStatus.FAILED, 503, "No SIP connection with an inbound host to reach it.")
            return _Target(to=number, routes=[], clause=clause, failure=failure)
        return _Target(to=number, connection=connection, clause=clause,
                       routes=[{"uri": _connection_uri(connection, number)}])  # fmt: skip
    if SIP_URI.match(raw):
        scheme, rest = raw.split(":", 1)
        uri = f"{scheme.lower()}:{rest}"
        login, _, host = rest.split(";", 1)[0].partition("@")
        user = target_sip_user(login, host.split(":", 1)[0])
        if user is not None and user.account_id == a_leg.account_id:
            if not user.is_active:
                return _inactive_user(user, clause)
            return _Target(to=uri, sip_user=user, clause=clause, routes=_contact_routes(user.login, user.domain.domain))
        if user is not None:  # another account's user: the platform's users are reached only within an account
            return _Target(to=uri, routes=[], clause=clause, failure=(CallStatus.FAILED, 404, "No such SIP user."))
        return _Target(to=uri, routes=[{"uri": uri}], clause=clause)
    return _Target(to=raw or "invalid", routes=[], clause=clause,
                   failure=(CallStatus.FAILED, 484, "Not an E.164 number or SIP URI."))  # fmt: skip


# --- Outcomes and events reported by Kamailio ---------------------------------------------------------------


def _find_a_leg(call_id: str, *, lock: bool) -> Call | None:
    queryset = Call.objects.filter(source=SOURCE, switch_call_id=call_id[:255], parent__isnull=True)
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    return queryset.select_related("account", "app", "phone_number").order_by("-created_at", "-id").first()


def _moment(raw: str | None) -> datetime:
    try:
        return datetime.fromtimestamp(float(raw), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):  # OSError: beyond the platform's time_t
        return timezone.now()


def edge_dial_outcome(*, call_id: str, code: int, canceled: bool = False, at: str | None = None) -> EdgeAnswer:
    """Every branch of the call's INVITE failed with `code` (or the caller cancelled): record, then what next."""
    moment = _moment(at)
    status = dial_status(code, canceled)
    with transaction.atomic():
        a_leg = _find_a_leg(call_id, lock=True)
        if a_leg is None or a_leg.is_final:
            return _reply(code or 500, "No live call with this Call-ID.")
        effects = Effects()
        legs = list(a_leg.children.select_for_update().order_by("id"))
        reason = "The caller hung up before an answer." if canceled else f"SIP {code}."
        for leg in legs:
            if not leg.is_final:
                _end(effects, leg, status, code, reason, at=moment)
        edge = (a_leg.variables or {}).get("edge", {})
        if canceled or edge.get("kind") != "app":
            _end(effects, a_leg, status, code, reason, at=moment)
            _hook(effects, a_leg, "hangup")
            effects.flush()
            return _reply(code, reason, a_leg)
        effects.flush()
    # An app's Dial: its action URL or the rest of the flow decides (outside the transaction: HTTP).
    document = Document.from_json(a_leg.document)
    node = document.node_at(edge["dial_path"])
    ids = set(edge.get("legs", []))
    dialled = [leg for leg in legs if str(leg.public_id) in ids]
    dial_status_value, dial_code = _dial_result(dialled) if dialled else (status, code)
    chosen = next((leg for leg in dialled if leg.status == dial_status_value), None)
    effects = Effects()
    step = flows.EdgeStep(a_leg, effects)
    run_state = _after_dial(a_leg, effects, step, document, node, dial_status_value, dial_code, chosen)
    if isinstance(run_state, flows.FlowStop):
        return _finish_app(a_leg, effects, run_state)
    return _advance_app(a_leg, effects, step, run_state)


def _same_contact(a: str, b: str) -> bool:
    def host_port(uri: str) -> str:
        text = uri.strip().strip("<>").split(">", 1)[0]
        text = text.split(":", 1)[-1].split(";", 1)[0]
        return text.rsplit("@", 1)[-1].lower()

    return bool(a) and bool(b) and host_port(a) == host_port(b)


def end_dialog(
    effects: Effects,
    a_leg: Call,
    legs: list[Call],
    live: list[Call],
    reason: str,
    *,
    at=None,
    cause: int = 16,
    unanswered: str = CallStatus.CANCELED,
    status: str = CallStatus.COMPLETED,
) -> None:
    """The dialog is over: every live B-leg ends (answered ones completed, the others `unanswered`), then the
    A-leg (`status`); an app's answered Dial has its action URL requested afterwards (sip_edge_lifecycle)."""
    for leg in live:
        _end(effects, leg, CallStatus.COMPLETED if leg.answered_at else unanswered, None, reason, cause, at=at)
    _end(effects, a_leg, status, None, reason, cause, at=at)
    _hook(effects, a_leg, "hangup")
    from telephony.services.sip_edge_lifecycle import schedule_dial_action  # it imports this module

    schedule_dial_action(effects, a_leg, legs)


def edge_call_events(events: list[dict]) -> int:
    """Apply Kamailio's reports (ringing, answered, ended, failed); how many applied to a known call."""
    applied = 0
    for event in events:
        try:
            with transaction.atomic():
                applied += _apply_event(event)
        except Exception:  # one bad report must not lose the batch's others
            logger.exception("SIP edge event %r could not be applied", event)
    return applied


def _apply_event(event: dict) -> int:
    kind = event.get("event", "")
    a_leg = _find_a_leg(event.get("call_id", ""), lock=True)
    if a_leg is None:
        return 0
    at = _moment(event.get("at"))
    effects = Effects()
    legs = list(a_leg.children.select_for_update().order_by("id"))
    live = [leg for leg in legs if not leg.is_final]
    if kind == "ringing":
        for leg in live:
            leg_transition(leg=leg, status=CallStatus.RINGING, effects=effects, at=at)
    elif kind == "answered":
        if a_leg.is_final or a_leg.answered_at:
            return 0
        branches = (a_leg.variables or {}).get("edge", {}).get("branches", {})
        wanted = next((lid for uri, lid in branches.items() if _same_contact(uri, event.get("contact", ""))), None)
        chosen = next((leg for leg in live if str(leg.public_id) == wanted), live[0] if live else None)
        leg_transition(leg=a_leg, status=CallStatus.IN_PROGRESS, effects=effects, at=at)
        _hook(effects, a_leg, "answer")
        if chosen is not None:
            leg_transition(leg=chosen, status=CallStatus.IN_PROGRESS, effects=effects, at=at)
            bridge_recorded(a_leg=a_leg, b_leg=chosen, effects=effects, at=at)
        for leg in live:
            if leg is not chosen:
                _end(effects, leg, CallStatus.CANCELED, 487, "Another target answered first.", 26)
    elif kind == "ended":
        if a_leg.is_final:
            return 0
        from_tag = (a_leg.variables or {}).get("edge", {}).get("from_tag")
        by_caller = event.get("by") == "caller" or (event.get("from_tag") and event.get("from_tag") == from_tag)
        if event.get("by") == "timeout":
            reason = "Kamailio ended the dialog: no in-dialog keepalive answer, or the call's maximum length."
        else:
            reason = f"The {'caller' if by_caller else 'callee'} hung up."
        end_dialog(effects, a_leg, legs, live, reason, at=at)
    elif kind == "failed":
        if a_leg.is_final:
            return 0
        for leg in live:
            _end(effects, leg, CallStatus.FAILED, None, "The dialog failed.")
        _end(effects, a_leg, CallStatus.FAILED, None, "The dialog failed.")
        _hook(effects, a_leg, "hangup")
    else:
        return 0
    effects.flush()
    return 1

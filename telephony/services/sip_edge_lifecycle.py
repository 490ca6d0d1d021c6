"""The end of calls carried by the SIP edge: an answered Dial's action URL, and calls whose end Kamailio never reported.

An app's Dial that was answered ends with the dialog: Kamailio is a proxy, so when either side hangs up the
whole call is over. Its action URL is still requested (DialCallStatus=completed, DialCallDuration,
DialCallSid, as Restcomm and Twilio do) so the customer's server learns the outcome, but the XML it answers
is not run: there is no call left to run it on (any 2xx answer is taken, unparsed). It is a callback
(telephony.services.callbacks, kind `dial_action`): a Delivery row written in the transaction that ends the
call, so it is never lost between the two (a broker down at that moment, a lost kick: the webhook workers'
sweep finds it), sent by the webhook workers after the commit and never in Kamailio's event post (a slow
customer server must not hold up the edge's events), form-encoded (a query string for GET) and signed like
status callbacks, retried on the webhook schedule until a 2xx, and sent once it succeeded. It and the Dial's
verdict (a `call.flow` event) are on the call's timeline; its attempts are in the delivery log.

Reconciliation (`edge_reconcile`, run by the beat every 30 s): Kamailio reports each dialog's end in a
batch posted from memory, so a post that failed, a route request that timed out on its side
after the portal had recorded the call, or a restart of Kamailio leave legs `ringing` or `in-progress` for
ever, holding channel-limit slots. The sweep ends, with a reason starting "edge-lost":
- every live edge call that Kamailio's live dialog list (the `dlg.list` RPC, telephony.switch.kamailio) does
  not hold, once its last news is older than the grace period (so a dialog being set up is never taken for lost;
  an ended dialog stays listed for dialog's end_timeout, so neither is an end in flight in the next event batch),
  unless the call was set up before Kamailio last started: a restart empties the list, not the calls;
- when Kamailio cannot be asked, or started after the call: unanswered calls older than the longest an INVITE
  transaction may live (tm's max_inv_lifetime, SIP_EDGE["max_ring_s"]), and answered calls longer than the
  maximum call length (dialog's default_timeout, CALL_MAX_LENGTH_S), each plus the grace period. Kamailio
  itself ends dead answered dialogs sooner: in-dialog OPTIONS keepalives (dialog's ka_interval) end a dialog
  whose side stopped answering, with BYEs and a dialog:end report.
Ending them raises the same call.* events, status callbacks and hooks as any end, and frees their channels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from telephony.callflow import Document
from telephony.edge import flows
from telephony.engine.context import Effects, PendingEvent
from telephony.engine.limits import LIVE_STATUSES
from telephony.models import Call, CallStatus, Delivery
from telephony.services.callbacks import callback_enqueue
from telephony.services.sip_edge import SOURCE, end_dialog

logger = logging.getLogger("telephony.edge")

LOST = "edge-lost"


# --- The action URL of an answered Dial ------------------------------------------------------------------------


def _answered_dial(a_leg: Call, legs: list[Call]):
    """The app's last Dial node and its answered leg, when that Dial has an action URL; else None."""
    edge = (a_leg.variables or {}).get("edge", {})
    if edge.get("kind") != "app" or not edge.get("dial_path") or not a_leg.document:
        return None
    ids = set(edge.get("legs", []))
    bridged = next((leg for leg in legs if str(leg.public_id) in ids and leg.answered_at), None)
    if bridged is None:
        return None
    node = Document.from_json(a_leg.document).node_at(edge["dial_path"])
    if node is None or node.tag != "Dial" or not node.get("action"):
        return None
    return node, bridged


def schedule_dial_action(effects: Effects, a_leg: Call, legs: list[Call]) -> None:
    """Called inside the transaction that ends an edge call: queue an answered Dial's action URL as a callback.

    A Delivery row written with the call's end, so nothing is lost between the two: the webhook workers send it
    after the commit (a lost kick is picked up by their sweep), retry it on the webhook schedule, and record each
    attempt in the delivery log and on the call's timeline.
    """
    found = _answered_dial(a_leg, legs)
    if found is None:
        return
    node, bridged = found
    step = flows.EdgeStep(a_leg, effects)
    step.engine["last_dial"] = {"status": "completed", "call_id": str(bridged.public_id)}
    effects.touch(a_leg, "variables")
    params = step.request_params(
        DialCallStatus="completed",
        DialCallSid=str(bridged.public_id),
        DialCallDuration=str(bridged.duration or 0),
        tag=node.get("tag") or "",
    )
    summary = f"Dial completed after {bridged.duration or 0} s"
    try:
        delivery = callback_enqueue(
            account=a_leg.account,
            url=step.render(node.get("action"), url=True),
            method=(node.get("method") or "POST").upper(),
            params=params,
            kind=Delivery.Kind.DIAL_ACTION,
            call=a_leg,
        )
    except ValueError as exc:  # a URL rendered from the flow's variables that no request may go to
        _flow_event(a_leg, effects, node, False, f"{summary}; action not requested: {exc}"[:300])
        return
    _flow_event(
        a_leg, effects, node, True,
        f"{summary}; action URL requested by callback {delivery.public_id}, its answer not run: the call had "
        "already ended (the SIP edge is a proxy, so a hang-up ends both sides)."[:300],
    )  # fmt: skip


def _flow_event(a_leg: Call, effects: Effects, node, success: bool, reason: str) -> None:
    now = timezone.now()
    short_path = node.path.split("/", 1)[1] if "/" in node.path else node.path
    payload = {
        "call_id": str(a_leg.public_id),
        "command": node.tag,
        "path": node.path,
        "tag": node.get("tag"),
        "success": success,
        "reason": reason,
        "error": None,
        "line": node.line,
        "started_at": a_leg.answered_at.isoformat() if a_leg.answered_at else now.isoformat(),
        "ended_at": now.isoformat(),
        "message": f"[{'success' if success else 'failure'}] command {short_path}, reason: {reason}",
    }
    effects.events.append(PendingEvent(a_leg.account, "call.flow", payload, str(a_leg.public_id), now))


# --- Reconciliation ---------------------------------------------------------------------------------------------


def _grace() -> timedelta:
    return timedelta(seconds=settings.SIP_EDGE["lost_grace_s"])


def edge_reconcile(
    *,
    live_dialogs: Callable[[], set[str] | None],
    started_at: Callable[[], datetime | None] = lambda: None,
) -> int:
    """End the live edge calls Kamailio no longer carries (see the module docstring); how many were ended.

    `live_dialogs()` answers the Call-IDs of Kamailio's dialogs, or None when it cannot be asked; it is
    called only when some live call is old enough to be checked. `started_at()` answers when Kamailio started
    (None: unknown): a call set up before then is missing from a restarted Kamailio's list while it goes on (its
    BYE is still relayed and reported), so it is judged by the time bounds only.
    """
    now = timezone.now()
    grace = _grace()
    candidates = [
        (pk, call_id, created_at, answered_at)
        for pk, call_id, created_at, answered_at in Call.objects.filter(
            source=SOURCE, parent__isnull=True, status__in=LIVE_STATUSES, created_at__lt=now - grace
        )
        .order_by("created_at", "id")
        .values_list("pk", "switch_call_id", "created_at", "answered_at")
        .iterator(chunk_size=2000)
        if (answered_at or created_at) < now - grace
    ]
    if not candidates:
        return 0
    live_call_ids = live_dialogs()
    started = started_at() if live_call_ids is not None else None
    lost: list[tuple[int, str]] = []
    ring_bound = timedelta(seconds=settings.SIP_EDGE["max_ring_s"]) + grace
    talk_bound = timedelta(seconds=settings.CALL_MAX_LENGTH_S) + grace
    for pk, call_id, created_at, answered_at in candidates:
        if live_call_ids is not None and call_id not in live_call_ids and (started is None or created_at >= started):
            lost.append((pk, f"{LOST}: Kamailio no longer carries this dialog; its end was never reported."))
        elif answered_at is None and created_at < now - ring_bound:
            lost.append((pk, f"{LOST}: no answer reported within {ring_bound.total_seconds():.0f} s of the INVITE."))
        elif answered_at is not None and answered_at < now - talk_bound:
            lost.append((pk, f"{LOST}: no hang-up reported within the maximum call length."))
    return sum(_end_lost(pk, reason) for pk, reason in lost)


def _end_lost(pk: int, reason: str) -> int:
    with transaction.atomic():
        a_leg = (
            Call.objects.select_for_update(of=("self",))
            .select_related("account", "app", "phone_number")
            .filter(pk=pk, status__in=LIVE_STATUSES)
            .first()
        )
        if a_leg is None:  # ended meanwhile by a late report
            return 0
        effects = Effects()
        legs = list(a_leg.children.select_for_update().order_by("id"))
        live = [leg for leg in legs if not leg.is_final]
        answered = a_leg.answered_at is not None
        end_dialog(
            effects, a_leg, legs, live, reason[:300], at=timezone.now(), cause=16 if answered else 41,
            unanswered=CallStatus.FAILED, status=CallStatus.COMPLETED if answered else CallStatus.FAILED,
        )  # fmt: skip
        effects.flush()
    logger.warning("Edge call %s (%s) ended by the reconcile sweep: %s", a_leg.public_id, a_leg.switch_call_id, reason)
    return 1

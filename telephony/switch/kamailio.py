"""The SIP edge as a switch adapter: Kamailio in front of the portal (telephony/edge, README "SIP edge").

Kamailio is a SIP proxy and registrar, not a media server: it forks and relays INVITEs, and reports what
happens to them; the calls it carries are routed and recorded by telephony.services.sip_edge, not run by
the engine (their legs have source "kamailio" and flow_state "none"). What the engine could ask of a switch
beyond that (originating a leg, answering, media, input, recording, hold) needs a media server, which is not
part of this edge: those methods report the leg `failed` with the reason, which the engine records like any
other failure, instead of pretending. A deployment that sets SWITCH_ADAPTER to this class therefore runs
real SIP calls through Kamailio, while flows that need media fail clearly.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from django.conf import settings
from django.utils import timezone

from telephony.switch.base import SwitchAdapter

if TYPE_CHECKING:
    from telephony.models import Call

logger = logging.getLogger("telephony.edge")

NO_MEDIA = "The SIP edge (Kamailio) has no media server: it cannot {what}."


class KamailioSwitch(SwitchAdapter):
    name = "kamailio"

    def _unsupported(self, leg: Call, what: str) -> None:
        from telephony.services.calls import switch_leg_event

        reason = NO_MEDIA.format(what=what)
        logger.info("Leg %s: %s", leg.public_id, reason)
        switch_leg_event(leg, "failed", sip_code=488, cause=79, reason=reason)

    def originate(self, leg: Call, *, caller_id: str, timeout_ms: int) -> None:
        self._unsupported(leg, "place a call on its own (a proxy only relays the INVITEs it receives)")

    def answer(self, leg: Call) -> None:
        self._unsupported(leg, "answer a call itself")

    def hangup(self, leg: Call, *, cause: int, sip_code: int | None = None, reason: str = "") -> None:
        # The edge's calls end by their own BYE/CANCEL; the engine marks the leg ended itself.
        logger.info("Leg %s: hang-up requested (%s); Kamailio ends its calls by SIP", leg.public_id, cause)

    def bridge(self, a_leg: Call, b_leg: Call) -> None:
        self._unsupported(a_leg, "bridge two legs")

    def say(self, leg: Call, *, op: str, text: str, voice: dict, loop: int) -> int | None:
        self._media(leg, op, "speak")
        return None

    def play(self, leg: Call, *, op: str, url: str, loop: int) -> int | None:
        self._media(leg, op, "play audio")
        return None

    def tone(self, leg, *, op, hz, on_ms, off_ms, loop, volume_db, timeout_ms) -> int | None:
        self._media(leg, op, "play tones")
        return None

    def _media(self, leg: Call, op: str, what: str) -> None:
        from telephony.services.calls import switch_leg_event

        switch_leg_event(leg, "media_done", op=op, ok=False, error=NO_MEDIA.format(what=what))

    def stop_media(self, leg: Call, *, op: str) -> None:
        return None

    def collect_digits(self, leg: Call, *, op: str, max_digits: int | None, stop_keys: str) -> None:
        self._unsupported(leg, "collect keys")

    def stop_collect(self, leg: Call, *, op: str) -> None:
        return None

    def record_start(self, leg: Call, *, op: str, max_ms: int | None, transcribe: bool) -> None:
        self._unsupported(leg, "record")

    def record_stop(self, leg: Call, *, op: str) -> None:
        return None

    def hold(self, leg: Call) -> None:
        self._unsupported(leg, "put a call on hold")

    def unhold(self, leg: Call) -> None:
        return None


def rpc_url() -> str:
    """Where Kamailio answers its RPC (JSON-RPC over HTTP on its SIP TCP port, behind the shared secret)."""
    edge = settings.SIP_EDGE
    if edge.get("rpc_url"):
        return edge["rpc_url"]
    host = edge["listen_host"]
    host = "127.0.0.1" if host in ("0.0.0.0", "", "*") else host  # noqa: S104 - naming the wildcard, not binding it
    return f"http://{host}:{edge['port']}/RPC"


def _rpc(method: str, timeout: float):
    """Kamailio's answer to the RPC `method` (no parameters); None, logged, when it cannot be asked."""
    from telephony.edge.config import edge_secret
    from telephony.edge.views import SECRET_HEADER

    try:
        response = httpx.post(
            rpc_url(),
            json={"jsonrpc": "2.0", "method": method, "id": 1},
            headers={SECRET_HEADER: edge_secret()},
            timeout=timeout,
        )
        response.raise_for_status()
        answer = response.json()
    except (httpx.HTTPError, ValueError) as error:
        logger.warning("Kamailio's %s is unavailable (%s): edge calls are reconciled by time only", method, error)
        return None
    if not isinstance(answer, dict) or "error" in answer:
        logger.warning("Kamailio refused %s: %r", method, answer.get("error") if isinstance(answer, dict) else answer)
        return None
    return answer.get("result")


def live_dialog_call_ids(timeout: float = 5.0) -> set[str] | None:
    """The Call-IDs of every dialog Kamailio holds now (`dlg.list`), or None when it cannot be asked."""
    dialogs = _rpc("dlg.list", timeout)
    if dialogs is None:
        return None
    if isinstance(dialogs, dict):  # one dialog may come as an object rather than a list of one
        dialogs = [dialogs]
    return {str(d.get("call-id", "")) for d in dialogs if isinstance(d, dict)}


def kamailio_started_at(timeout: float = 5.0) -> datetime | None:
    """When the running Kamailio started (`core.uptime`), in the portal's clock; None when it cannot be asked.

    Dialogs live in its memory only: a restarted Kamailio lists none of the calls set up before, though they go
    on, and their BYEs, relayed by Record-Route, are still reported.
    """
    result = _rpc("core.uptime", timeout)
    try:
        return timezone.now() - timedelta(seconds=int(result["uptime"]))
    except (TypeError, KeyError, ValueError):
        return None

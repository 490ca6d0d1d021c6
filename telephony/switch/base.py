"""The switch adapter interface: everything the call engine asks of a telephony switch, and what it must report.

The engine never talks to a switch any other way (STYLE rule 10). An adapter for a real switch (a Kamailio
edge with a media server behind it, FreeSWITCH over ESL, Asterisk over ARI) implements `SwitchAdapter` and is
named in the SWITCH_ADAPTER setting; `SimulatedSwitch` (simulated.py) is the built-in one.

Legs
    A leg is a `telephony.models.Call` row. Adapters identify it to the switch by `leg.public_id` (a UUID that
    exists before the row is saved, so a leg can be originated in the same step that creates it) and may keep
    the switch's own id in `leg.switch_call_id`. A-legs (the caller's leg into the platform) are created by
    the inbound path (`telephony.engine.routing.inbound_call`); B-legs by the engine (`originate`).

Commands (engine -> switch)
    Each method below is called by the engine while it holds the call's claim. They must return quickly: an
    adapter sends the command and returns; the outcome comes back as an event. They never raise for what the
    network or the far end does (report a `failed` event instead); raising means the adapter itself is broken
    and fails the engine's step, which is then retried.

    `op` is an opaque id (a short string) the engine gives every media and input operation; the adapter
    echoes it in the events the operation causes, so a late event of an operation the flow has moved past is
    recognised and ignored.

    Durations are in milliseconds of *call time*. A real switch runs at speed 1; the simulated switch may run
    faster (`time_scale()`), and the engine divides every timer of the flow by it.

Events (switch -> engine)
    The adapter reports through one entry point, `telephony.services.calls.switch_leg_event(leg, event,
    **data)`, from any thread or process (an HTTP endpoint receiving a real switch's callbacks, a socket
    listener). It is durable (a row is written before it returns) and idempotent: an event that no longer
    applies (a second `answered`, a `ringing` after the leg ended, a `media_done` of an earlier prompt) is
    ignored with a log line. The events, with their data:

    ringing       the far end of an outbound leg is ringing (SIP 180/183).
    answered      the far end of an outbound leg answered (200 OK). Not needed for `answer()`: the engine
                  counts an A-leg answered when it asks.
    busy          the far end is busy (486/600); data: sip_code, cause (Q.850, default 17).
    no-answer     the network gave up ringing (408/480/487 from the far side); data: sip_code, cause (19).
    failed        the leg could not be set up; data: sip_code, cause, reason.
    hangup        the far end hung up (BYE, or CANCEL of an unanswered inbound leg); data: cause (16), reason.
                  Not needed after the engine's own `hangup()`: the engine ends the leg when it asks.
    dtmf          keys pressed on the leg; data: digits ("1", "12#"), op (of `collect_digits`).
    media_done    a say/play/tone finished; data: op, ok (bool, default true), error.
    record_done   a recording is complete; data: op, url, duration_ms.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from telephony.models import Call

# The events an adapter may report, with what each means (see the module docstring).
LEG_EVENTS = frozenset(
    {"ringing", "answered", "busy", "no-answer", "failed", "hangup", "dtmf", "media_done", "record_done"}
)


class SwitchAdapter(ABC):
    """One telephony switch, as the call engine sees it. One instance per process; it must be thread-safe."""

    #: Stored on every leg it carries (`Call.source`), at most 16 characters.
    name: str = ""

    def time_scale(self) -> float:
        """How many times faster than real time calls run on this switch: 1 for a real one."""
        return 1.0

    # --- Legs --------------------------------------------------------------------------------------

    @abstractmethod
    def originate(self, leg: Call, *, caller_id: str, timeout_ms: int) -> None:
        """Place an outbound leg from `leg.from_number` (shown as `caller_id`) to `leg.to_number`.

        `to_number` is an E.164 number (route it to the PSTN) or a SIP URI (send the INVITE there; a URI in one
        of the platform's SIP domains is a registered SIP user). Report ringing, then answered, or busy /
        no-answer / failed. `timeout_ms` is how long the engine will let it ring; the engine cancels the leg
        itself then (with `hangup`), so an adapter need not time it out.
        """

    @abstractmethod
    def answer(self, leg: Call) -> None:
        """Answer an inbound leg (200 OK). The engine has already marked it answered."""

    @abstractmethod
    def hangup(self, leg: Call, *, cause: int, sip_code: int | None = None, reason: str = "") -> None:
        """End a leg: BYE if answered, CANCEL if ringing out, a final response (`sip_code`) if ringing in.

        `cause` is the Q.850 cause to signal. The engine has already marked the leg ended.
        """

    @abstractmethod
    def bridge(self, a_leg: Call, b_leg: Call) -> None:
        """Join two answered legs so their media flows both ways."""

    # --- Media -------------------------------------------------------------------------------------

    @abstractmethod
    def say(self, leg: Call, *, op: str, text: str, voice: dict, loop: int) -> int | None:
        """Speak `text` `loop` times (text-to-speech; `voice` has type, gender, lang, code). Report media_done.

        Returns how long it will take, in call-time ms, when known (the engine waits a little longer than that
        for media_done before it moves on without it), else None.
        """

    @abstractmethod
    def play(self, leg: Call, *, op: str, url: str, loop: int) -> int | None:
        """Play the audio file at `url` (mp3/wav) `loop` times. Report media_done; return as for `say`."""

    @abstractmethod
    def tone(
        self,
        leg: Call,
        *,
        op: str,
        hz: tuple[int, ...],
        on_ms: int | None,
        off_ms: int | None,
        loop: int,
        volume_db: int,
        timeout_ms: int,
    ) -> int | None:
        """Play the frequencies `hz` mixed, `on_ms` on and `off_ms` off (continuous without `on_ms`), `loop`
        times, for at most `timeout_ms`. Report media_done; return as for `say`."""

    @abstractmethod
    def stop_media(self, leg: Call, *, op: str) -> None:
        """Stop the say/play/tone `op` now (a caller pressed a key). No media_done is needed for it."""

    # --- Input and recording -----------------------------------------------------------------------

    @abstractmethod
    def collect_digits(self, leg: Call, *, op: str, max_digits: int | None, stop_keys: str) -> None:
        """Start reporting the keys pressed on `leg` (dtmf events with this `op`) until `stop_collect`.

        `max_digits` and `stop_keys` are hints (the engine applies them itself); a switch that buffers keys
        may use them to report fewer, larger events.
        """

    @abstractmethod
    def stop_collect(self, leg: Call, *, op: str) -> None:
        """Stop reporting keys for `op`."""

    @abstractmethod
    def record_start(self, leg: Call, *, op: str, max_ms: int | None, transcribe: bool) -> None:
        """Start recording the leg (both directions when bridged), for at most `max_ms`."""

    @abstractmethod
    def record_stop(self, leg: Call, *, op: str) -> None:
        """Stop recording `op` and report record_done with the file's URL and duration."""

    def send_digits(self, leg: Call, *, digits: str) -> None:
        """Send DTMF `digits` to the far end of `leg` (RFC 2833/4733; `w` waits 0.5 s, `W` 1 s).

        Not abstract: an adapter that cannot send keys keeps this default, which logs and sends nothing.
        """
        import logging

        logging.getLogger("telephony.engine").warning("%s cannot send digits; %r not sent", type(self).__name__, digits)

    # --- Hold ----------------------------------------------------------------------------------------

    @abstractmethod
    def hold(self, leg: Call) -> None:
        """Put the leg on hold (music on hold to it, its media to nobody)."""

    @abstractmethod
    def unhold(self, leg: Call) -> None:
        """Take the leg off hold."""

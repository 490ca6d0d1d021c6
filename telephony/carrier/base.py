"""The carrier adapter interface: everything messaging asks of an SMS carrier, and what a carrier reports back.

Messaging never talks to a carrier any other way (STYLE rule 10). An adapter for a real carrier (SMPP, or an
HTTP API such as a CPaaS wholesale endpoint) implements `CarrierAdapter` and is named in the CARRIER_ADAPTER
setting; `SimulatedCarrier` (simulated.py) is the built-in one.

Sending (platform -> carrier)
    `submit(message)` is called by a messaging worker for one outbound `telephony.models.Message` that it has
    claimed (status `sending`), outside any database transaction (through `submit_many` for a batch, which an
    adapter may override to pipeline them). It hands the message to the carrier and
    returns a `SubmitResult` at once: `accepted=True` with the carrier's id for it (an SMPP submit_sm_resp
    message_id, an HTTP API's id), or `accepted=False` with an error code and text when the carrier refused it
    (the message becomes `failed`). It must not wait for the delivery receipt. Raising means the adapter itself
    is broken (the message becomes `failed` with code `carrier_error`).

    The message carries `from_number` (one of the account's numbers, E.164), `to_number` (E.164), `text`,
    `encoding` ("GSM-7" or "UCS-2") and `segments`; `public_id` is a stable id to give the carrier as a
    client reference.

Reports (carrier -> platform), from any thread or process (an SMPP receiver bound as transceiver, an HTTP
endpoint receiving the carrier's callbacks):
    `telephony.services.messaging.message_receipt(carrier=<adapter name>, carrier_message_id=..., status=...,
        error_code="", error_text="")`
        a delivery receipt (SMPP deliver_sm with a receipt, a DLR callback). `status` is `delivered` (DELIVRD),
        `undelivered` (UNDELIV, EXPIRED, REJECTD) or `failed` (a carrier-side failure after acceptance). Late and
        repeated receipts are ignored. A receipt for an id no message carries yet raises `ReceiptTooEarly`
        (retry it shortly); an adapter whose receipts can outrun its submit's answer may record the id first with
        `message_attach_carrier_id`, and a receipt then arriving before the outcome was recorded counts the
        message sent first.
    `telephony.services.messaging.message_receive(from_=..., to=..., text=..., carrier=..., carrier_message_id=...)`
        an inbound message (SMPP deliver_sm without a receipt, an MO callback) to one of the platform's numbers.
        Returns the stored Message, or None when `to` is not an SMS-enabled number (the adapter should answer
        the carrier with its "unknown destination" error then).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from telephony.models import Message

# The statuses a delivery receipt may report.
RECEIPT_STATUSES = frozenset({"delivered", "undelivered", "failed"})


@dataclass(frozen=True)
class SubmitResult:
    accepted: bool
    carrier_message_id: str = ""
    error_code: str = ""
    error_text: str = ""


class CarrierAdapter(ABC):
    """One SMS carrier, as messaging sees it. One instance per process; it must be thread-safe."""

    #: Stored on every message it carries (`Message.carrier`), at most 32 characters.
    name: str = ""

    @abstractmethod
    def submit(self, message: Message) -> SubmitResult:
        """Hand one outbound message to the carrier; see the module docstring."""

    def submit_many(self, messages: list[Message]) -> list[SubmitResult]:
        """Hand several messages over, one result each in order. Override to pipeline them (SMPP windowing)."""
        return [self.submit(message) for message in messages]

"""The SIMULATED carrier: the built-in adapter, for development, tests and the portal's test messages. No SMS leaves.

- On-net: a message to one of the platform's own SMS-enabled numbers is delivered at once as an inbound message
  to that number's account (through `message_receive`, the path a real carrier's MO messages take), and its
  receipt says delivered.
- Off-net destinations follow rules, deterministically: SimulatedCarrierRule rows (admin: "Simulated carrier
  rules"; the way to set behaviour for one test, since the worker reads them from the database), then
  SIMULATED_CARRIER["rules"] in the settings, then SIMULATED_CARRIER["default"] (delivered after 200 ms).
  A rule's `match` is an exact number or a prefix ending in `*`; exact beats prefix, longer beats shorter.
  Actions: `deliver` (receipt delivered after `after_ms`), `fail` (refused at submit with `error_code`),
  `undelivered` (accepted, then an undelivered receipt after `after_ms`), `silent` (accepted, never a receipt).

Receipts are reported through `message_receipt` by a Celery task with a countdown, like a carrier's DLR arriving
later on its own connection.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction

from telephony.carrier.base import CarrierAdapter, SubmitResult
from telephony.models import Message, MessagingNumber, PhoneNumber, SimulatedCarrierRule

DEFAULT_RULE = {"action": "deliver", "after_ms": 200, "error_code": "", "error_text": ""}
DEFAULT_ERRORS = {
    "fail": ("30006", "Landline or unreachable carrier"),
    "undelivered": ("30003", "Unreachable destination handset"),
}


def _matches(pattern: str, number: str) -> int:
    """How specific a match is (0: none): exact beats any prefix, a longer prefix a shorter one."""
    if pattern == number:
        return 10_000
    if pattern.endswith("*") and number.startswith(pattern[:-1]):
        return len(pattern)
    return 0


def rule_for(number: str) -> dict:
    best, score = None, 0
    for row in SimulatedCarrierRule.objects.all():
        value = _matches(row.match, number)
        if value > score:
            best, score = row, value
    if best is not None:
        return {
            "action": best.action, "after_ms": best.after_ms, "error_code": best.error_code,
            "error_text": best.error_text,
        }  # fmt: skip
    config = getattr(settings, "SIMULATED_CARRIER", {}) or {}
    for rule in config.get("rules", []):
        value = _matches(rule.get("match", ""), number)
        if value > score:
            best, score = rule, value
    return {**DEFAULT_RULE, **(config.get("default") or {}), **(best or {})}


def on_net(number: str) -> bool:
    return MessagingNumber.objects.filter(number=number, phone_number__status=PhoneNumber.Status.ACTIVE).exists()


class SimulatedCarrier(CarrierAdapter):
    name = "simulated"

    def submit(self, message: Message) -> SubmitResult:
        from telephony.services.messaging import message_attach_carrier_id, message_receive

        carrier_id = f"sim-{uuid.uuid4()}"
        if on_net(message.to_number):
            message_attach_carrier_id(message=message, carrier=self.name, carrier_message_id=carrier_id)
            message_receive(
                from_=message.from_number, to=message.to_number, text=message.text, carrier=self.name,
                carrier_message_id=carrier_id,
            )  # fmt: skip
            self._report(carrier_id, "delivered", 0)
            return SubmitResult(True, carrier_id)
        rule = rule_for(message.to_number)
        action = rule.get("action", "deliver")
        code, text = DEFAULT_ERRORS.get(action, ("", ""))
        code, text = rule.get("error_code") or code, rule.get("error_text") or text
        if action == "fail":
            return SubmitResult(False, error_code=code, error_text=text)
        message_attach_carrier_id(message=message, carrier=self.name, carrier_message_id=carrier_id)
        if action == "undelivered":
            self._report(carrier_id, "undelivered", int(rule.get("after_ms") or 0), code, text)
        elif action != "silent":
            self._report(carrier_id, "delivered", int(rule.get("after_ms") or 0))
        return SubmitResult(True, carrier_id)

    def _report(self, carrier_id: str, status: str, after_ms: int, code: str = "", text: str = "") -> None:
        from telephony.messaging_tasks import simulated_receipt

        # After the caller's commit (at once outside a transaction), as a carrier's receipt comes after the submit.
        transaction.on_commit(
            lambda: simulated_receipt.apply_async(
                args=[self.name, carrier_id, status, code, text], countdown=after_ms / 1000 if after_ms > 0 else None
            )
        )

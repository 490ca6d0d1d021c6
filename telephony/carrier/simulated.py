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

Receipts are reported through `message_receipt` by a Celery task with a countdown (one per submitted batch and
delay), like a carrier's DLRs arriving later on their own connection; one that arrives before the worker recorded
the submit is tried again shortly, as carriers retry DLRs.
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


def rule_for(number: str, rows: list[SimulatedCarrierRule] | None = None) -> dict:
    """The behaviour for a destination; `rows` are the rule rows when the caller already read them."""
    best, score = None, 0
    for row in SimulatedCarrierRule.objects.all() if rows is None else rows:
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


def on_net(numbers: list[str]) -> set[str]:
    """Which of these numbers are the platform's own SMS numbers."""
    return set(
        MessagingNumber.objects.filter(number__in=numbers, phone_number__status=PhoneNumber.Status.ACTIVE).values_list(
            "number", flat=True
        )
    )


class SimulatedCarrier(CarrierAdapter):
    name = "simulated"

    def submit(self, message: Message) -> SubmitResult:
        return self.submit_many([message])[0]

    def submit_many(self, messages: list[Message]) -> list[SubmitResult]:
        from telephony.services.messaging import message_receive

        results: list[SubmitResult] = []
        receipts: dict[int, list[list[str]]] = {}  # delay (ms) -> receipts due then
        ours = on_net(list({message.to_number for message in messages}))
        rows = list(SimulatedCarrierRule.objects.all())
        for message in messages:
            carrier_id = f"sim-{uuid.uuid4()}"
            if message.to_number in ours:
                message_receive(
                    from_=message.from_number, to=message.to_number, text=message.text, carrier=self.name,
                    carrier_message_id=carrier_id,
                )  # fmt: skip
                receipts.setdefault(0, []).append([carrier_id, "delivered", "", ""])
                results.append(SubmitResult(True, carrier_id))
                continue
            rule = rule_for(message.to_number, rows)
            action = rule.get("action", "deliver")
            code, text = DEFAULT_ERRORS.get(action, ("", ""))
            code, text = rule.get("error_code") or code, rule.get("error_text") or text
            if action == "fail":
                results.append(SubmitResult(False, error_code=code, error_text=text))
                continue
            after_ms = int(rule.get("after_ms") or 0)
            if action == "undelivered":
                receipts.setdefault(after_ms, []).append([carrier_id, "undelivered", code, text])
            elif action != "silent":
                receipts.setdefault(after_ms, []).append([carrier_id, "delivered", "", ""])
            results.append(SubmitResult(True, carrier_id))
        for after_ms, batch in receipts.items():
            self._report(batch, after_ms)
        return results

    def _report(self, receipts: list[list[str]], after_ms: int) -> None:
        from telephony.messaging_tasks import simulated_receipts

        # After the caller's commit (at once outside a transaction), as a carrier's receipt comes after the submit.
        transaction.on_commit(
            lambda: simulated_receipts.apply_async(
                args=[self.name, receipts], countdown=after_ms / 1000 if after_ms > 0 else None
            )
        )

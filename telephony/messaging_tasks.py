"""Messaging tasks: thin, each calls a service (telephony/services/messaging)."""

from __future__ import annotations

from celery import shared_task

from telephony.services import messaging as services

# Rounds of up to SEND_BATCH messages one task sends before it leaves the rest to the next kick or the sweeper.
DRAIN_ROUNDS = 20


@shared_task(ignore_result=True)
def send_message(message_pk: int) -> str:
    """Kicked after a message is accepted, at its slot: send it, and whatever else is due, in batches."""
    outcome = services.message_send_step(message_pk=message_pk)
    if outcome.status == "not_due" and outcome.retry_in < 60:
        # Woken early (clock skew between processes): come back at the slot; the sweeper covers longer waits.
        send_message.apply_async(args=[message_pk], countdown=outcome.retry_in)
        return outcome.status
    _drain()
    return outcome.status


@shared_task(ignore_result=True)
def send_due() -> int:
    """Kicked when messages whose slot has already come were accepted: send everything due, in batches."""
    services.clear_kick()
    return _drain()


def _drain() -> int:
    sent = 0
    for _ in range(DRAIN_ROUNDS):
        taken = services.messages_send_due()
        sent += taken
        if taken < services.SEND_BATCH:
            break
    return sent


@shared_task(ignore_result=True)
def sweep_messages() -> int:
    """Send what is due that no kick announced (a lost broker message, a slot beyond the kick horizon)."""
    sent = _drain()
    services.messages_fail_stuck()
    return sent


@shared_task(ignore_result=True)
def simulated_receipts(carrier: str, receipts: list[list[str]], attempt: int = 0) -> None:
    """Delivery receipts of the simulated carrier: [carrier_message_id, status, error_code, error_text] each."""
    _, early = services.message_receipts(carrier=carrier, receipts=[tuple(receipt) for receipt in receipts])
    if early and attempt < 30:
        # Receipts for messages whose submit is not recorded yet: again shortly, as a carrier retries a DLR.
        simulated_receipts.apply_async(
            args=[carrier, [list(receipt) for receipt in early], attempt + 1], countdown=min(0.1 * 2**attempt, 5.0)
        )

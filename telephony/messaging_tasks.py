"""Messaging tasks: thin, each loads by id and calls a service (telephony/services/messaging)."""

from __future__ import annotations

from celery import shared_task

from telephony.services import messaging as services


@shared_task(ignore_result=True)
def send_message(message_pk: int) -> str:
    outcome = services.message_send_step(message_pk=message_pk)
    if outcome.status == "not_due" and outcome.retry_in < 60:
        # Woken early (clock skew between processes): come back at the slot; the sweeper covers longer waits.
        send_message.apply_async(args=[message_pk], countdown=outcome.retry_in)
    return outcome.status


@shared_task(ignore_result=True)
def sweep_messages() -> int:
    """Send what is due that no kick announced (a lost broker message, a slot beyond the countdown horizon)."""
    due = services.messages_due()
    for message_pk in due:
        services.message_send_step(message_pk=message_pk)
    services.messages_fail_stuck()
    return len(due)


@shared_task(
    ignore_result=True,
    autoretry_for=(services.ReceiptTooEarly,),
    retry_backoff=0.2,
    retry_backoff_max=5,
    max_retries=30,
)
def simulated_receipt(carrier: str, carrier_message_id: str, status: str, error_code: str = "", error_text: str = ""):
    services.message_receipt(
        carrier=carrier, carrier_message_id=carrier_message_id, status=status, error_code=error_code,
        error_text=error_text,
    )  # fmt: skip

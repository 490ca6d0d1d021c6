"""Celery tasks for telephony. Thin on purpose: each calls one service, which holds the logic and is safe
to run twice (a task may be redelivered after a worker crash)."""

from __future__ import annotations

from celery import shared_task

from telephony.services import numbers as number_services


@shared_task(name="telephony.tasks.process_expired_number_leases")
def process_expired_number_leases() -> dict[str, int]:
    return number_services.number_leases_process_expired()


@shared_task(name="telephony.tasks.return_quarantined_numbers")
def return_quarantined_numbers() -> int:
    return number_services.stock_return_quarantined()

"""Celery tasks of bulk calls. Thin: the dispatcher decides everything from the database, so any run is safe."""

from __future__ import annotations

from celery import shared_task

from telephony.services import bulk_calls


@shared_task(name="telephony.bulk_tasks.dispatch_bulk_call", ignore_result=True, acks_late=False)
def dispatch_bulk_call(bulk_call_id: int) -> int:
    # A nudge after a change (created, resumed): the periodic tick does the same a second later anyway.
    return bulk_calls.bulk_call_dispatch(bulk_call_id=bulk_call_id)


@shared_task(name="telephony.bulk_tasks.tick", ignore_result=True)
def tick() -> int:
    return bulk_calls.bulk_calls_tick()

"""Celery tasks for events and webhooks, on the `webhooks` queue. Thin: each calls the engine or a service.

Every task is safe to run twice and at any time: the delivery rows in the database say what is due, so a
lost or duplicated task message changes nothing but timing.
"""

from __future__ import annotations

from celery import shared_task

from telephony import delivery
from telephony.services import events as event_services


# A drain claims for DRAIN_BUDGET_SECONDS, then finishes what it holds: requests queued behind an endpoint's
# concurrency limit can take two more rounds of the 15 s timeout, so it gets more than the default limits.
@shared_task(name="telephony.webhook_tasks.deliver_due", ignore_result=True, soft_time_limit=120, time_limit=150)
def deliver_due() -> dict[str, int]:
    return dict(delivery.drain())


@shared_task(name="telephony.webhook_tasks.sweep_deliveries", ignore_result=True)
def sweep_deliveries() -> bool:
    return delivery.sweep()


@shared_task(name="telephony.webhook_tasks.disable_failing_endpoints", ignore_result=True)
def disable_failing_endpoints() -> int:
    return delivery.endpoints_disable_failing()


@shared_task(name="telephony.webhook_tasks.purge_expired_events", ignore_result=True)
def purge_expired_events() -> int:
    from telephony.services.callbacks import callbacks_purge_expired

    callbacks_purge_expired()
    return event_services.events_purge_expired()

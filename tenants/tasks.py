from __future__ import annotations

from celery import shared_task

from tenants import idempotency


@shared_task(name="tenants.tasks.purge_expired_idempotency_keys")
def purge_expired_idempotency_keys() -> int:
    return idempotency.purge_expired()

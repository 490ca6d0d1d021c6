"""The one Celery app. Tasks live in the apps' tasks.py and stay thin: load by id, call a service."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    # A task is acknowledged only when it finished, and handed out again if its worker died, so work
    # survives a crash; every task is written to be safe to run twice.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_soft_time_limit=60,
    task_time_limit=90,
    broker_connection_retry_on_startup=True,
    # Separate queues so a flood of webhook retries never delays a live call.
    task_default_queue="default",
    task_queues=(Queue("default"), Queue("webhooks"), Queue("calls")),
    task_routes={
        "telephony.tasks.deliver_*": {"queue": "webhooks"},
        "telephony.tasks.call_*": {"queue": "calls"},
    },
    beat_schedule={
        "purge-expired-idempotency-keys": {
            "task": "tenants.tasks.purge_expired_idempotency_keys",
            "schedule": 3600.0,
        },
    },
)
app.autodiscover_tasks()

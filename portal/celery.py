"""The one Celery app. Tasks live in the apps' tasks.py and stay thin: load by id, call a service."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Mapping
from typing import Any

from celery import Celery, signals
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")


class DjangoSettingsSnapshot(Mapping):
    """Django's settings as a dict, read when Celery first loads its configuration (after Django's setup).

    Celery reads several settings on every publish (task_always_eager, task_send_sent_event, task_repr_maxlevels,
    broker_pool_acquire_timeout...), each under two or three names, and for the ones we leave at their defaults
    every name misses the settings first. Through Django's LazySettings a miss raises and catches AttributeError;
    those misses were a tenth of the CPU of a publish. A miss in a dict costs nearly nothing. The settings do
    not change in a running process, so a copy is as good as the live object.
    """

    def __init__(self) -> None:
        self._values: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._values is None:
            from django.conf import settings

            self._values = {name: getattr(settings, name) for name in dir(settings) if name.isupper()}
        return self._values

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


# Modules autodiscovery does not find (it only looks for <app>/tasks.py).
app = Celery(
    "portal",
    include=[
        "telephony.webhook_tasks",
        "telephony.call_tasks",
        "telephony.messaging_tasks",
        "telephony.bulk_tasks",
        "telephony.edge_tasks",
    ],
)
app.config_from_object(DjangoSettingsSnapshot(), namespace="CELERY")
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
        "telephony.webhook_tasks.*": {"queue": "webhooks"},
        "telephony.call_tasks.*": {"queue": "calls"},
        "telephony.edge_tasks.*": {"queue": "calls"},
    },
    beat_schedule={
        # Webhooks: the database is the queue; this wakes a worker for anything due that no kick announced
        # (retries, deliveries of a worker that died, kicks lost with the broker).
        "sweep-webhook-deliveries": {
            "task": "telephony.webhook_tasks.sweep_deliveries",
            "schedule": 1.0,
            # A sweep nobody ran within seconds is superseded by the next; do not let them pile up.
            "options": {"expires": 10},
        },
        "disable-failing-webhook-endpoints": {
            "task": "telephony.webhook_tasks.disable_failing_endpoints",
            "schedule": 300.0,
        },
        # Calls: the database holds every wake-up; this queues calls whose wake-up no task announced (a lost
        # message, a worker that died holding it) and calls whose worker died mid-step (claim lapsed).
        "sweep-calls": {
            "task": "telephony.call_tasks.sweep",
            "schedule": 1.0,
            "options": {"expires": 10},
        },
        # Bulk calls: record finished calls' outcomes and place the next due destinations of every live campaign.
        "dispatch-bulk-calls": {
            "task": "telephony.bulk_tasks.tick",
            "schedule": 1.0,
            "options": {"expires": 10},
        },
        # Messages: the database is the queue; this sends queued messages whose slot came and no kick announced.
        "sweep-messages": {
            "task": "telephony.messaging_tasks.sweep_messages",
            "schedule": 1.0,
            "options": {"expires": 10},
        },
        # SIP edge: end calls whose end Kamailio never reported (lost event posts, a restart), freeing channels.
        "reconcile-sip-edge-calls": {
            "task": "telephony.edge_tasks.reconcile",
            "schedule": 30.0,
            "options": {"expires": 60},
        },
        "purge-expired-events": {"task": "telephony.webhook_tasks.purge_expired_events", "schedule": 86400.0},
        "purge-expired-idempotency-keys": {
            "task": "tenants.tasks.purge_expired_idempotency_keys",
            "schedule": 3600.0,
        },
        # Renew or release number leases whose paid period ended; hourly, so a lease ends within the hour.
        "process-expired-number-leases": {
            "task": "telephony.tasks.process_expired_number_leases",
            "schedule": 3600.0,
        },
        "return-quarantined-numbers": {
            "task": "telephony.tasks.return_quarantined_numbers",
            "schedule": 3600.0,
        },
    },
)
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.worker_process_init.connect
def _freeze_startup_objects(**kwargs) -> None:
    """Take what the worker built at startup (Django, every task module) out of the garbage collector's full
    passes, as the web process does (portal/asgi.py): a full pass over a Django process's startup objects takes
    about 50 ms with the GIL held, in the middle of whatever call step runs. Frozen before the pool forks, they also
    stay shared with the children instead of being copied into each when the collector touches them."""
    gc.collect()
    gc.freeze()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(**kwargs) -> None:
    """What Django does around each request: drop connections that broke or outlived CONN_MAX_AGE. Celery no
    longer closes them after every task (CELERY_DB_REUSE_MAX in the settings), so a worker does it here."""
    from django.db import close_old_connections

    close_old_connections()

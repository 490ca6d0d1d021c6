"""The Celery wiring, exercised by a real worker process on the suite's broker and database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.celery import app
from tenants.models import IdempotencyKey
from tenants.tasks import purge_expired_idempotency_keys
from tenants.tests.factories import AccountFactory
from tenants.tests.fixtures import wait_for


@pytest.mark.worker
def test_a_real_worker_runs_the_periodic_purge(celery_worker):
    account = AccountFactory()
    IdempotencyKey.objects.create(account=account, key="keep", fingerprint="x")
    IdempotencyKey.objects.create(
        account=account, key="stale", fingerprint="x", created_at=timezone.now() - timedelta(days=2)
    )

    purge_expired_idempotency_keys.delay()

    wait_for(lambda: not IdempotencyKey.objects.filter(key="stale").exists(), message="the worker to purge")
    assert IdempotencyKey.objects.filter(key="keep").exists()


def test_the_app_is_configured_to_survive_worker_crashes():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert {q.name for q in conf.task_queues} >= {"default", "webhooks", "calls"}
    assert "purge-expired-idempotency-keys" in conf.beat_schedule

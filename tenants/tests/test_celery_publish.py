"""Publishing tasks (the kicks of calls, messages and webhook deliveries) through the project's broker wiring.

Each Redis test points the product's Celery app at a private redis-server, so it can count what arrived and
kill and restart the broker without disturbing anyone else's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import timedelta

import kombu.pools
import pytest
import redis as redis_py
from django.utils import timezone

from portal.celery import app
from telephony.engine.claims import kick
from telephony.tests.test_delivery_worker import RedisServer, free_port
from tenants.models import IdempotencyKey
from tenants.tasks import purge_expired_idempotency_keys
from tenants.tests.factories import AccountFactory
from tenants.tests.fixtures import ROOT, service_missing, start_celery_worker, stop_celery_worker, wait_for


@pytest.fixture
def broker(settings):
    """The product's app publishing to a private redis-server, restored afterwards.

    The transport and its options are the settings' own for a Redis broker, so the suite's broker must be Redis.
    """
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        service_missing("needs a Redis broker: set CELERY_BROKER_URL=redis://...")
    if not shutil.which("redis-server"):
        pytest.skip("needs the redis-server binary")
    server = RedisServer(free_port())
    server.start()
    settings.ENGINE_KICK_HORIZON_SECONDS = 60
    saved_url = app.conf.get("broker_write_url")

    def use_fresh_pools():
        # kombu keeps pools in a process-wide registry keyed by connection: a pool closed but left there would be
        # handed out again (closed) to the next user of the same broker URL, so the registry is cleared too.
        kombu.pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    use_fresh_pools()
    # broker_url itself comes from the CELERY_BROKER_URL environment first; the write URL is what publishes use.
    server.url = app.conf.broker_write_url = f"redis://127.0.0.1:{server.port}/0"
    server.queued = lambda: redis_py.Redis(port=server.port).llen("calls")
    try:
        yield server
    finally:
        use_fresh_pools()
        app.conf.broker_write_url = saved_url
        server.kill()


def count_redis_clients(monkeypatch) -> list[int]:
    built = [0]
    init = redis_py.Redis.__init__

    def counting_init(self, *args, **kwargs):
        built[0] += 1
        init(self, *args, **kwargs)

    monkeypatch.setattr(redis_py.Redis, "__init__", counting_init)
    return built


@pytest.mark.redis
def test_it_publishes_each_kick_without_building_a_redis_client(broker, monkeypatch):
    kick(1)  # the first publish opens the connection and its channel
    built = count_redis_clients(monkeypatch)

    for root_id in range(200):
        kick(root_id)

    assert built[0] == 0  # kombu's own transport builds one per publish
    assert broker.queued() == 201


@pytest.mark.redis
def test_it_publishes_from_many_threads_at_once(broker, monkeypatch):
    built = count_redis_clients(monkeypatch)
    errors = []

    def publish():
        try:
            for root_id in range(100):
                kick(root_id)
        except Exception as exc:  # noqa: BLE001 - kick never raises; anything here is the failure
            errors.append(exc)

    threads = [threading.Thread(target=publish) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Two per channel opened (kombu pings a new channel with its BRPOP client), not one per publish.
    assert built[0] <= 2 * len(threads)
    assert not errors
    assert broker.queued() == 800


@pytest.mark.redis
def test_it_reconnects_after_the_broker_restarts(broker, caplog):
    kick(1)
    assert broker.queued() == 1

    broker.kill()
    for root_id in (2, 3):
        started = time.monotonic()
        kick(root_id)  # logged, never raised: the sweeper is the safety net
        # At once, not after kombu's default connect retries (~6 s), which held every request that kicked.
        assert time.monotonic() - started < 1
    assert "Could not queue call 3" in caplog.text

    broker.start()  # empty: whatever it held is gone
    kick(4)
    kick(5)
    assert broker.queued() == 2


@pytest.mark.redis
@pytest.mark.worker
def test_a_worker_takes_tasks_again_after_the_broker_restarts(transactional_db, broker):
    # The broker options make publishes give up at once; a worker must still reconnect and wait for the broker.
    worker = start_celery_worker(env={"CELERY_BROKER_URL": broker.url}, log_name="test-worker-broker-restart.log")
    try:
        account = AccountFactory()
        stale = timezone.now() - timedelta(days=2)
        IdempotencyKey.objects.create(account=account, key="before", fingerprint="x", created_at=stale)
        purge_expired_idempotency_keys.delay()
        wait_for(lambda: not IdempotencyKey.objects.filter(key="before").exists(), message="the first purge")

        broker.kill()
        time.sleep(1)  # long enough for the worker to lose its connection
        broker.start()
        IdempotencyKey.objects.create(account=account, key="after", fingerprint="x", created_at=stale)
        purge_expired_idempotency_keys.delay()
        wait_for(lambda: not IdempotencyKey.objects.filter(key="after").exists(), message="a purge after the restart")
    finally:
        stop_celery_worker(worker)


@pytest.mark.redis
def test_a_forked_child_and_its_parent_both_keep_publishing(broker):
    kick(1)  # the parent holds a live connection when it forks, as a prefork worker's parent does

    pid = os.fork()
    if pid == 0:  # the child: sockets inherited from the parent must not be shared with it
        try:
            for root_id in range(50):
                kick(root_id)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    for root_id in range(50):
        kick(root_id)

    assert broker.queued() == 101


def run_python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_it_keeps_kombus_filesystem_transport_for_the_filesystem_broker(tmp_path):
    code = (
        "import django; django.setup()\n"
        "from portal.celery import app\n"
        "from telephony.engine.claims import kick\n"
        "kick(7)\n"
        "with app.connection_for_write() as conn: print(type(conn.transport).__module__)\n"
    )
    env = {"CELERY_BROKER_URL": "filesystem://", "VAR_DIR": str(tmp_path)}

    assert run_python(code, **env) == "kombu.transport.filesystem"
    assert len(list((tmp_path / "broker" / "queue").iterdir())) == 1


def test_it_uses_the_portal_transport_for_a_redis_broker():
    code = (
        "import django; django.setup()\n"
        "from portal.celery import app\n"
        "with app.connection_for_write() as conn: print(type(conn.transport).__module__)\n"
    )

    assert run_python(code, CELERY_BROKER_URL="redis://127.0.0.1:1/0") == "portal.broker"

"""Webhook delivery through real Celery workers, a real broker and real local receivers, crashes included."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess

import pytest
from standardwebhooks import Webhook

from telephony.models import Delivery
from telephony.services import webhooks as services
from telephony.services.events import event_emit
from telephony.tests.receivers import Answer, receiver_fixture  # noqa: F401 - the receiver fixture
from tenants.tests.factories import AccountFactory
from tenants.tests.fixtures import start_celery_worker, stop_celery_worker, wait_for

pytestmark = pytest.mark.worker

# Retries a second apart (the sweeper, in the worker's embedded beat, runs every second).
FAST_RETRIES = {"WEBHOOK_RETRY_SCHEDULE": "0,1,1,1,1,1,1,1"}


def add_endpoint(account, url):
    created = services.webhook_endpoint_create(account=account, actor=None, url=url, event_types=["call.*"])
    return created.endpoint, created.secret


def emit(account, object_id: str):
    return event_emit(account=account, type="call.ringing", object_type="call", object_id=object_id, payload={})


def test_a_real_worker_delivers_a_signed_event(celery_worker, receiver):
    account = AccountFactory()
    _, secret = add_endpoint(account, receiver.url)

    event = emit(account, "w1")  # committed (transactional data): the kick goes to the worker after commit

    wait_for(lambda: receiver.count() >= 1, timeout=20, message="the worker to deliver")
    request = receiver.requests[0]
    body = Webhook(secret).verify(request.body, request.headers)
    assert body["id"] == str(event.public_id) and body["type"] == "call.ringing"
    wait_for(lambda: Delivery.objects.get(event=event).status == "delivered", message="the delivery to be recorded")


def test_500_twice_then_200_through_a_worker_is_three_attempts_and_one_delivery(transactional_db, receiver):
    receiver.respond(Answer(500, b"one"), Answer(500, b"two"))
    account = AccountFactory()
    add_endpoint(account, receiver.url)
    worker = start_celery_worker(env=FAST_RETRIES, beat=True, log_name="test-worker-retries.log")
    try:
        event = emit(account, "r1")

        wait_for(
            lambda: Delivery.objects.get(event=event).status == "delivered", timeout=30, message="the third attempt"
        )
    finally:
        stop_celery_worker(worker)

    delivery = Delivery.objects.get(event=event)
    assert [(a.number, a.status_code) for a in delivery.attempts.order_by("number")] == [(1, 500), (2, 500), (3, 200)]
    assert delivery.attempt_count == 3
    assert receiver.ids() == [str(event.public_id)] * 3


# --- Crash: the worker is killed mid-delivery and the broker restarts ----------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A private redis-server for one test, so restarting it disturbs no one else's broker."""

    def __init__(self, port: int):
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10, message="redis-server to start")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.mark.redis
def test_nothing_is_lost_when_the_worker_is_killed_mid_delivery_and_the_broker_restarts(transactional_db, receiver):
    if not shutil.which("redis-server"):
        pytest.skip("needs the redis-server binary")
    redis = RedisServer(free_port())
    redis.start()
    env = {
        **FAST_RETRIES,
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis.port}/0",
        # Short leases so the test need not wait a minute for the killed worker's claims to lapse.
        "WEBHOOK_CLAIM_LEASE_SECONDS": "4",
    }
    account = AccountFactory()
    add_endpoint(account, receiver.url)
    receiver.default = Answer(200, b"slow", delay=1.5)  # so the kill lands while requests are in flight
    worker = start_celery_worker(env=env, pool="prefork", concurrency=2, beat=True, log_name="test-worker-crash.log")
    events = []
    try:
        events += [emit(account, f"before-{n}") for n in range(20)]
        wait_for(lambda: receiver.count() >= 1, timeout=20, message="a delivery to be in flight")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        assert Delivery.objects.filter(status="pending").exists()  # the kill left work unfinished

        redis.kill()  # whatever the broker held is gone
        events += [emit(account, f"while-down-{n}") for n in range(10)]  # committed with no broker at all
        redis.start()
        receiver.default = Answer(200, b"ok")
        worker = start_celery_worker(env=env, pool="prefork", concurrency=2, beat=True,
                                     log_name="test-worker-crash-2.log")  # fmt: skip

        wanted = {str(e.public_id) for e in events}
        wait_for(lambda: wanted <= set(receiver.ids()), timeout=60, message="every event to arrive")
        wait_for(
            lambda: not Delivery.objects.exclude(status="delivered").exists(),
            timeout=30,
            message="every delivery to be recorded as delivered",
        )
    finally:
        stop_celery_worker(worker)
        redis.kill()

    received = receiver.ids()
    assert set(received) == wanted  # duplicates are allowed; every one carries an event's own id
    assert len(received) >= len(wanted)

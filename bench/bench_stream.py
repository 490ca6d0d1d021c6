"""The websocket event stream: delivery latency to many sockets, burst throughput, and memory per connection.

Starts its own uvicorn process (portal.asgi, DEBUG off) on 127.0.0.1 and opens websocket clients in this process.
Events are committed by this process, not the server, so every event crosses processes as a worker's would:
through Redis (REDIS_URL set: a channel-layer wake-up) or through the poll (the embedded default).

1. Latency: 200 connections subscribed to `*`; 100 events committed one by one at 20/s; per delivery, the time
   from the commit to the client's receipt. Target (PostgreSQL + Redis): p99 under 250 ms.
2. Resume: 5,000 events committed (in transactions of 500) while the clients are away; one client, then 20 at
   once, reconnect with the last event id they saw; time until each has all 5,000, i.e. how fast a connection
   replays from the database (batches of STREAM_BATCH_SIZE, sent as fast as the client reads).
   Target: one connection catches up at 5,000 events/s or more.
3. Memory: the server's resident size before and after opening the connections.

Data: the account `bench-stream` (created once, its events deleted at the start of each run).

    DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/portal REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/bench_stream.py
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
if not os.environ.get("DATABASE_URL"):
    # Its own file, so the reference run never touches the developer's database.
    os.environ["DATABASE_URL"] = f"sqlite:///{ROOT / 'var' / 'bench_stream.sqlite3'}"

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402

from telephony.models import Event, EventSequence  # noqa: E402
from telephony.services.events import event_emit  # noqa: E402
from tenants import services as tenant_services  # noqa: E402
from tenants.models import Account, ApiKey, User  # noqa: E402

settings.DEBUG = False

SLUG = "bench-stream"
LATENCY_CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "200"))
LATENCY_EVENTS = 100
LATENCY_RATE = 20.0
BURST_CONNECTIONS = 20
BURST_EVENTS = 5_000
BURST_TRANSACTION = 500
TARGET_P99_MS = 250
TARGET_CATCH_UP = 5_000
OUT = ROOT / "bench" / "out" / "bench_stream.json"


def setup() -> tuple[Account, str]:
    call_command("migrate", verbosity=0)
    account = Account.objects.filter(slug=SLUG).first()
    if account is None:
        owner, _ = User.objects.get_or_create(email="bench-stream@example.invalid")
        account = tenant_services.account_create(name="Bench stream", owner=owner, slug=SLUG)
    Event.objects.filter(account=account).delete()
    ApiKey.objects.filter(account=account).delete()  # keys of earlier runs
    created = tenant_services.api_key_create(account=account, actor=None, name="bench")
    Event.objects.filter(account=account).delete()  # the key's own audit event
    return account, created.secret


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-stream-not-secret"),
           "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--lifespan", "off", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("uvicorn did not start") from None
            time.sleep(0.1)


class Clients:
    """Websocket clients recording, per event id, when each one received it."""

    def __init__(self, url: str, secret: str, count: int, last_event_id: str | None = None) -> None:
        self.url, self.secret, self.count, self.last_event_id = url, secret, count, last_event_id
        self.sockets: list = []
        self.received: list[dict[str, float]] = [{} for _ in range(count)]
        self.readers: list[asyncio.Task] = []

    async def open(self) -> None:
        async def one(index: int) -> None:
            # No per-message compression: on one small machine the client's inflating would be measured too.
            ws = await websockets.connect(self.url, max_size=None, open_timeout=30, compression=None)
            await ws.send(json.dumps({"type": "auth", "payload": self.secret, "last_event_id": self.last_event_id,
                                      "subscriptions": [{"event_types": ["*"]}]}))  # fmt: skip
            for expected in ("auth", "subscribed"):
                assert json.loads(await ws.recv())["type"] == expected
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(self.read(ws, self.received[index])))

        for start in range(0, self.count, 50):  # not all at once: that would measure the accept backlog
            await asyncio.gather(*(one(i) for i in range(start, min(self.count, start + 50))))

    async def read(self, ws, received: dict[str, float]) -> None:
        async for frame in ws:
            message = json.loads(frame)
            if message["type"] == "event":
                received[message["event"]["id"]] = time.time()

    async def wait_for(self, event_ids: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(len(received) >= len(event_ids) for received in self.received):
                return True
            await asyncio.sleep(0.05)
        return False

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


RUN = uuid.uuid4().hex[:8]  # object ids of this run: sequence counters of earlier runs never collide with them


def emit_one(account: Account, n: int) -> tuple[str, float]:
    object_id = f"stream-bench-{RUN}-{n % 50}"
    event = event_emit(account=account, type="call.ringing", object_type="call", object_id=object_id,
                       payload={"to": "+12015550123", "n": n})  # fmt: skip
    return str(event.public_id), time.time()  # event_emit outside a transaction commits before it returns


def in_thread(function, *args):
    """Run database work on a plain thread, so the clients' event loop keeps reading meanwhile."""
    result: dict = {}

    def target() -> None:
        try:
            result["value"] = function(*args)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, result


async def latency(url: str, secret: str, account: Account, server_pid: int) -> dict:
    before = rss_kb(server_pid)
    clients = Clients(url, secret, LATENCY_CONNECTIONS)
    await clients.open()
    await asyncio.sleep(1)
    after = rss_kb(server_pid)

    def emit_paced() -> list[tuple[str, float]]:
        out = []
        for n in range(LATENCY_EVENTS):
            out.append(emit_one(account, n))
            time.sleep(1 / LATENCY_RATE)
        return out

    thread, result = in_thread(emit_paced)
    while thread.is_alive():
        await asyncio.sleep(0.05)
    committed = result["value"]
    complete = await clients.wait_for([event_id for event_id, _ in committed], timeout=30)
    samples = [
        (received[event_id] - at) * 1000
        for received in clients.received
        for event_id, at in committed
        if event_id in received
    ]
    await clients.close()
    samples.sort()
    quantile = statistics.quantiles(samples, n=100) if len(samples) > 1 else [0] * 99
    return {
        "connections": LATENCY_CONNECTIONS,
        "events": LATENCY_EVENTS,
        "deliveries": len(samples),
        "complete": complete,
        "p50_ms": round(quantile[49], 1),
        "p95_ms": round(quantile[94], 1),
        "p99_ms": round(quantile[98], 1),
        "max_ms": round(samples[-1], 1) if samples else None,
        "server_rss_kb_before": before,
        "server_rss_kb_with_connections": after,
        "rss_kb_per_connection": round((after - before) / LATENCY_CONNECTIONS, 1),
    }


async def commit_missed(account: Account) -> tuple[str, float]:
    """The last event the clients saw, then BURST_EVENTS more committed while they are away."""
    result: dict = {}

    def emit_burst() -> float:
        result["before"] = emit_one(account, -1)[0]
        started = time.time()
        for start in range(0, BURST_EVENTS, BURST_TRANSACTION):
            with transaction.atomic():
                for n in range(start, start + BURST_TRANSACTION):
                    emit_one(account, n)
        return time.time() - started

    thread, outcome = in_thread(emit_burst)
    while thread.is_alive():
        await asyncio.sleep(0.05)
    return result["before"], outcome["value"]


async def resume(url: str, secret: str, before: str, connections: int) -> dict:
    """Clients reconnect with the last event id they saw and catch up on BURST_EVENTS missed events."""
    ids = [str(i) for i in range(BURST_EVENTS)]  # only the count matters to wait_for
    clients = Clients(url, secret, connections, last_event_id=before)
    started = time.time()
    await clients.open()
    complete = await clients.wait_for(ids, timeout=120)
    finished = max(max(received.values()) for received in clients.received if received)
    await clients.close()
    seconds = finished - started
    return {
        "connections": connections,
        "events": BURST_EVENTS,
        "complete": complete,
        "catch_up_seconds": round(seconds, 2),
        "events_per_second_per_connection": round(BURST_EVENTS / seconds),
        "messages_per_second_total": round(BURST_EVENTS * connections / seconds),
    }


def main() -> int:
    account, secret = setup()
    vendor = connection.vendor
    layer = "redis" if settings.REDIS_URL else "in-memory (poll carries cross-process events)"
    port = free_port()
    server = start_server(port)
    url = f"ws://127.0.0.1:{port}/ws/events"
    try:
        print(f"database: {vendor}; channel layer: {layer}; STREAM_POLL_SECONDS={settings.STREAM_POLL_SECONDS}")
        result_latency = asyncio.run(latency(url, secret, account, server.pid))
        print(
            f"latency, {result_latency['connections']} connections x {result_latency['events']} events: "
            f"p50 {result_latency['p50_ms']} ms, p95 {result_latency['p95_ms']} ms, p99 {result_latency['p99_ms']} ms,"
            f" max {result_latency['max_ms']} ms ({result_latency['deliveries']} deliveries, "
            f"complete={result_latency['complete']}); server memory "
            f"{result_latency['rss_kb_per_connection']} KB per connection"
        )
        before, commit_seconds = asyncio.run(commit_missed(account))
        print(f"committed {BURST_EVENTS} events in {commit_seconds:.1f} s while the clients were away")
        result_resume = [asyncio.run(resume(url, secret, before, count)) for count in (1, BURST_CONNECTIONS)]
        for result in result_resume:
            print(
                f"resume, {result['connections']} connection(s) x {result['events']} missed events: all caught up "
                f"in {result['catch_up_seconds']} s ({result['events_per_second_per_connection']} events/s per "
                f"connection, {result['messages_per_second_total']} messages/s in all; complete={result['complete']})"
            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        Event.objects.filter(account=account).delete()
        EventSequence.objects.filter(object_id__startswith=f"stream-bench-{RUN}-").delete()
    targets_apply = vendor == "postgresql" and bool(settings.REDIS_URL)
    met = result_latency["p99_ms"] < TARGET_P99_MS and result_resume[0]["events_per_second_per_connection"] >= (
        TARGET_CATCH_UP
    )
    print(
        f"targets (PostgreSQL + Redis): p99 < {TARGET_P99_MS} ms, catch-up >= {TARGET_CATCH_UP} events/s: "
        + (("met" if met else "NOT met") if targets_apply else "not applicable on this setup")
    )
    OUT.parent.mkdir(exist_ok=True)
    figures = {
        "database": vendor,
        "channel_layer": layer,
        "latency": result_latency,
        "resume": result_resume,
        "targets_apply": targets_apply,
        "targets_met": met,
    }
    OUT.write_text(json.dumps(figures, indent=2))
    return 0 if (met or not targets_apply) else 1


if __name__ == "__main__":
    sys.exit(main())

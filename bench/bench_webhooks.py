"""Webhook delivery on this machine: outbox cost, sustained delivery rate, and commit-to-receipt latency.

What it runs (PostgreSQL + Redis, one Celery worker host, a fast local receiver; all on 127.0.0.1):

1. Outbox overhead: N ordinary transactions that insert one row, then the same with `event_emit` added (the
   event, its per-object sequence and one Delivery row), one after another: the cost per state change.
2. Ceiling: a plain pooled httpx client posting the same signed payloads to the same receiver, no database.
3. Backlog: BACKLOG events written in transactions of 100 (the outbox's write rate in bulk), then a real
   worker (`celery worker -P prefork --concurrency 4 -B`, the image's default) is started and the receiver
   counts what arrives: deliveries/s sustained over 60 s (or until the backlog is gone).
4. Latency: producer processes commit events at 200/s (one per transaction) and then 1,000/s (ten per
   transaction, through event_emit_many, as the call engine writes a step's events) for 30 s each; the
   receiver stamps each arrival; latency = arrival - commit, per event id (first arrival). The figures say
   how many events/s the producers actually committed.

Targets: >= 1,000 deliveries/s sustained; p99 <= 1 s at 200/s offered. Everything shares this machine's
cores (PostgreSQL, Redis, worker, receiver and producers), as the issue asks.

    DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/portal .venv/bin/python bench/bench_webhooks.py

CELERY_BROKER_URL and REDIS_URL default to Redis databases 7 and 8 on 127.0.0.1 (the bench's own). The data
lives in the accounts `bench-webhooks` and `bench-webhooks-outbox` and is deleted at the start and the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "bench_webhooks.json"
SLUG = "bench-webhooks"
OUTBOX_SLUG = "bench-webhooks-outbox"
OUTBOX_TRANSACTIONS = int(os.environ.get("BENCH_OUTBOX_TRANSACTIONS", "3000"))
CEILING_REQUESTS = int(os.environ.get("BENCH_CEILING_REQUESTS", "20000"))
BACKLOG = int(os.environ.get("BENCH_BACKLOG", "90000"))
SUSTAIN_SECONDS = float(os.environ.get("BENCH_SUSTAIN_SECONDS", "60"))
LATENCY_SECONDS = float(os.environ.get("BENCH_LATENCY_SECONDS", "30"))
# Worker processes: the image's default (docker/start-worker, CELERY_CONCURRENCY=4). Each sends from a thread
# pool while its main thread claims and records, so more processes than cores keeps both cores busy.
WORKER_CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "4"))
# The websocket stream's after-commit wake-up (telephony/stream.py) is not part of webhook delivery; it is
# measured on its own in phase 1 and left out of the other phases unless BENCH_STREAM_WAKE=1.
STREAM_WAKE = os.environ.get("BENCH_STREAM_WAKE", "0") == "1"
# At 1,000 events/s the producers commit ten events per transaction (as a call engine step writes its events):
# one event per transaction at that rate is more commits than this shared 2-core machine makes beside the rest.
# Producers mostly wait for their commits, so several keep the offered rate where one would fall behind.
LATENCY_200_PRODUCERS = int(os.environ.get("BENCH_LATENCY_200_PRODUCERS", "4"))
LATENCY_1000_PRODUCERS = int(os.environ.get("BENCH_LATENCY_1000_PRODUCERS", "2"))
LATENCY_1000_EVENTS_PER_TX = int(os.environ.get("BENCH_LATENCY_1000_EVENTS_PER_TX", "10"))
EVENTS_PER_CALL = 4  # events share objects the way a call's state changes do


def environment() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/7")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/8")
    # Production runs with DEBUG off; with it on Django keeps every query in memory, which is not the product.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-webhooks-not-secret")
    os.environ.setdefault("OUTBOUND_URL_ALLOW_LOOPBACK", "true")  # the receiver is on 127.0.0.1


def setup_django() -> None:
    environment()
    import django

    django.setup()
    if not STREAM_WAKE:
        stream_wake(False)


def stream_wake(on: bool) -> None:
    try:
        from telephony import stream
    except ImportError:  # no websocket stream in this checkout
        return
    if not hasattr(stream, "_bench_original_notify"):
        stream._bench_original_notify = stream.notify_stream
    stream.notify_stream = stream._bench_original_notify if on else (lambda *args, **kwargs: None)


# --- The receiver (its own process) -------------------------------------------------------------------


def run_receiver(conn) -> None:
    """A minimal HTTP/1.1 server (httptools on uvloop) that stamps each request's webhook-id on arrival."""
    import httptools
    import uvloop

    records: list[tuple[str, float]] = []
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    class Request(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.parser = httptools.HttpRequestParser(self)
            self.webhook_id = ""

        def data_received(self, data):
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

        def on_header(self, name, value):
            if name.lower() == b"webhook-id":
                self.webhook_id = value.decode()

        def on_message_complete(self):
            records.append((self.webhook_id, time.time()))
            self.webhook_id = ""
            self.transport.write(answer)

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Request, "127.0.0.1", 0, backlog=1024)
        conn.send(server.sockets[0].getsockname()[1])
        stop = asyncio.Event()

        def control():
            # Blocking pipe reads on their own thread; list appends and swaps are atomic under the GIL.
            nonlocal records
            while True:
                what = conn.recv()
                if what == "count":
                    conn.send(len(records))
                elif what == "dump":
                    taken, records = records, []
                    conn.send(taken)
                elif what == "stop":
                    loop.call_soon_threadsafe(stop.set)
                    return

        threading.Thread(target=control, daemon=True).start()
        await stop.wait()
        server.close()

    uvloop.run(main())


class ReceiverProcess:
    def __init__(self):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=run_receiver, args=(child,), daemon=True)
        self.process.start()
        self.port = self.conn.recv()

    def ask(self, what: str):
        self.conn.send(what)
        return self.conn.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            self.conn.send("stop")
            self.process.join(timeout=5)
            if self.process.is_alive():
                self.process.kill()


# --- Producers (their own processes) ------------------------------------------------------------------


def run_producer(account_id: int, rate: float, seconds: float, start_at: float, tag: str, per_tx: int, conn) -> None:
    """Commit `per_tx` events per transaction at `rate` events/s; report (event id, time just after commit)."""
    setup_django()
    from django.db import transaction

    from telephony.services.events import event_emit, event_emit_many
    from tenants.models import Account

    account = Account.objects.get(pk=account_id)
    committed: list[tuple[str, float]] = []
    time.sleep(max(0.0, start_at - time.time()))
    interval = per_tx / rate
    next_at = time.monotonic()
    deadline = next_at + seconds
    n = 0
    while next_at < deadline:
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ids = []
        with transaction.atomic():
            if per_tx == 1:
                call = f"bench-{tag}-{n // EVENTS_PER_CALL}"
                event = event_emit(
                    account=account,
                    type="call.ringing",
                    object_type="call",
                    object_id=call,
                    payload={"call_id": call, "state": "ringing", "n": n},
                )
                ids.append(str(event.public_id))
                n += 1
            else:
                # Several events in one transaction go in together, as the call engine writes a step's events.
                batch = []
                for _ in range(per_tx):
                    call = f"bench-{tag}-{n // EVENTS_PER_CALL}"
                    batch.append((account, "call.ringing", {"call_id": call, "state": "ringing", "n": n}, "call", call,
                                  None))  # fmt: skip
                    n += 1
                ids += [str(event.public_id) for event in event_emit_many(batch)]
        at = time.time()
        committed.extend((event_id, at) for event_id in ids)
        next_at += interval
    conn.send(committed)


# --- Helpers ----------------------------------------------------------------------------------------


def wipe(account) -> None:
    """Delete an account's events, deliveries, attempts and endpoints with plain SQL (fast at 100k rows)."""
    from django.db import connection

    from telephony.models import Delivery, DeliveryAttempt, Event, EventSequence, WebhookEndpoint

    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {DeliveryAttempt._meta.db_table} WHERE delivery_id IN "  # noqa: S608 - our table names
            f"(SELECT id FROM {Delivery._meta.db_table} WHERE account_id = %s)",
            [account.pk],
        )
        cursor.execute(f"DELETE FROM {Delivery._meta.db_table} WHERE account_id = %s", [account.pk])  # noqa: S608
        cursor.execute(f"DELETE FROM {Event._meta.db_table} WHERE account_id = %s", [account.pk])  # noqa: S608
    WebhookEndpoint.objects.filter(account=account).delete()
    EventSequence.objects.filter(object_id__startswith="bench-").delete()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_worker(log_path: Path) -> subprocess.Popen:
    from django.conf import settings

    schedule = Path(settings.VAR_DIR) / "bench-webhooks-beat-schedule"
    schedule.unlink(missing_ok=True)
    log = open(log_path, "w")  # noqa: SIM115 - the worker writes to it until it is stopped
    command = [
        sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "webhooks,default", "-P", "prefork",
        "--concurrency", str(WORKER_CONCURRENCY), "-B", "-s", str(schedule), "--without-heartbeat",
        "--without-mingle", "--without-gossip", "-l", "WARNING",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    time.sleep(3)  # the worker connects, forks its pool and starts beat
    if process.poll() is not None:
        raise SystemExit(f"the worker did not start; see {log_path}")
    return process


def stop_worker(process: subprocess.Popen) -> None:
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


# --- Phases -----------------------------------------------------------------------------------------


def outbox_overhead(account) -> dict:
    from django.db import transaction

    from telephony.services.events import event_emit
    from tenants.models import AuditEntry

    def state_change(n: int) -> None:
        AuditEntry.objects.create(
            account=account, action="bench.change", object_type="call", object_id=f"bench-o-{n}",
            object_repr="bench", actor_label="bench",
        )  # fmt: skip

    def run(with_event: bool) -> float:
        started = time.perf_counter()
        for n in range(OUTBOX_TRANSACTIONS):
            with transaction.atomic():
                state_change(n)
                if with_event:
                    event_emit(
                        account=account, type="call.ringing", object_type="call",
                        object_id=f"bench-o-{n // EVENTS_PER_CALL}", payload={"state": "ringing", "n": n},
                    )  # fmt: skip
        return time.perf_counter() - started

    run(True)  # warm up connections, caches and plans
    plain = run(False)
    with_outbox = run(True)
    stream_wake(True)
    with_wake = run(True)
    stream_wake(STREAM_WAKE)
    AuditEntry.objects.filter(account=account, action="bench.change").delete()
    return {
        "transactions": OUTBOX_TRANSACTIONS,
        "plain_tx_per_s": round(OUTBOX_TRANSACTIONS / plain),
        "with_event_tx_per_s": round(OUTBOX_TRANSACTIONS / with_outbox),
        "overhead_us_per_state_change": round((with_outbox - plain) / OUTBOX_TRANSACTIONS * 1e6),
        "with_event_and_stream_wake_tx_per_s": round(OUTBOX_TRANSACTIONS / with_wake),
        "stream_wake_us_per_transaction": round((with_wake - with_outbox) / OUTBOX_TRANSACTIONS * 1e6),
        "note": "event + sequence upsert + one Delivery row (one endpoint subscribed) + the worker kick, per "
        "transaction; stream_wake is telephony/stream.py's after-commit websocket wake-up, measured apart",
    }


CEILING_THREADS = 16


def run_ceiling(url: str, bodies: list[tuple[dict, str]], start_at: float, conn) -> None:
    """One process of the ceiling: the worker's kind of client (httpcore's pool, as httpx uses it, driven
    directly) and a thread pool, posting every body once; no database, no policy, no signing."""
    import concurrent.futures

    import httpcore

    connections = httpcore.ConnectionPool(max_connections=64, max_keepalive_connections=64)

    def post(item):
        headers, body = item
        wire = [(k.encode(), v.encode()) for k, v in headers.items()]
        with connections.stream("POST", url, headers=wire, content=body.encode()) as response:
            for _ in response.iter_stream():
                pass
            if response.status >= 300:
                raise RuntimeError(f"the receiver answered {response.status}")

    time.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(CEILING_THREADS) as pool:
        list(pool.map(post, bodies))
    conn.send((started, time.time()))


def ceiling(url: str, endpoint) -> dict:
    """A plain pooled-client loop: the same signed payloads to the same receiver, no database, no policy.

    As many processes as the worker has, each with the same kind of client (pooled, threads).
    """
    import uuid

    from django.utils import timezone

    from telephony import delivery as engine

    signer = engine.signers(endpoint, timezone.now())[0]
    bodies = []
    for n in range(CEILING_REQUESTS):
        message_id = str(uuid.uuid4())
        body = json.dumps(
            {"id": message_id, "type": "call.ringing", "occurred_at": "2025-01-01T00:00:00Z", "account": "x",
             "object": {"type": "call", "id": f"bench-{n}"}, "sequence": 1, "data": {"state": "ringing", "n": n}},
            separators=(",", ":"),
        )  # fmt: skip
        now = timezone.now()
        headers = {
            "content-type": "application/json", "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signer.sign(message_id, now, body),
        }  # fmt: skip
        bodies.append((headers, body))
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 2
    pipes, processes = [], []
    for index in range(WORKER_CONCURRENCY):
        parent, child = context.Pipe()
        share = bodies[index::WORKER_CONCURRENCY]
        process = context.Process(target=run_ceiling, args=(url, share, start_at, child))
        process.start()
        pipes.append(parent)
        processes.append(process)
    spans = [parent.recv() for parent in pipes]
    for process in processes:
        process.join(timeout=10)
    seconds = max(end for _, end in spans) - min(start for start, _ in spans)
    return {
        "requests": CEILING_REQUESTS,
        "processes": WORKER_CONCURRENCY,
        "threads_per_process": CEILING_THREADS,
        "requests_per_s": round(CEILING_REQUESTS / seconds),
    }


def preload(account) -> dict:
    from django.db import transaction

    from telephony.services.events import event_emit

    started = time.perf_counter()
    for start in range(0, BACKLOG, 100):
        with transaction.atomic():
            for n in range(start, min(start + 100, BACKLOG)):
                event_emit(
                    account=account, type="call.ringing", object_type="call",
                    object_id=f"bench-b-{n // EVENTS_PER_CALL}", payload={"state": "ringing", "n": n},
                )  # fmt: skip
    seconds = time.perf_counter() - started
    return {"events": BACKLOG, "events_per_s_written_in_transactions_of_100": round(BACKLOG / seconds)}


def sustained(receiver: ReceiverProcess) -> dict:

    first_seen = None
    samples = []
    deadline = time.monotonic() + SUSTAIN_SECONDS + 60
    while time.monotonic() < deadline:
        time.sleep(0.5)
        count = receiver.ask("count")
        now = time.monotonic()
        if count and first_seen is None:
            first_seen = now
        if first_seen is not None:
            samples.append((now - first_seen, count))
            if now - first_seen >= SUSTAIN_SECONDS or count >= BACKLOG:
                break
    records = receiver.ask("dump")
    if not records:
        raise SystemExit("nothing was delivered; see bench/out/bench_webhooks-worker.log")
    start = min(t for _, t in records)
    window = [r for r in records if r[1] - start <= SUSTAIN_SECONDS]
    unique = len({webhook_id for webhook_id, _ in window})
    elapsed = min(SUSTAIN_SECONDS, max(t for _, t in window) - start)
    drained = len({i for i, _ in records}) >= BACKLOG
    result = {
        "backlog": BACKLOG,
        "window_s": round(elapsed, 1),
        "delivered_in_window": unique,
        "deliveries_per_s": round(unique / elapsed) if elapsed else None,
        "duplicates_in_window": len(window) - unique,
        "backlog_drained_within_window": drained,
        "per_second_counts": [c for _, c in samples][::2][:130],
        "worker": f"celery -P prefork --concurrency {WORKER_CONCURRENCY} -B",
    }
    return result


def set_aside_leftovers(worker: subprocess.Popen) -> subprocess.Popen:
    """Deliveries still pending (a backlog that outlasted the window) are not part of the next phase.

    The worker is stopped first: bulk-updating rows it is claiming and recording would only deadlock with it.
    """
    from telephony.models import Delivery

    pending = Delivery.objects.filter(account__slug=SLUG, status=Delivery.Status.PENDING)
    if not pending.exists():
        return worker
    stop_worker(worker)
    pending.update(status=Delivery.Status.FAILED, next_attempt_at=None, last_error="bench: set aside")
    return start_worker(OUT.parent / "bench_webhooks-worker.log")


def latency(receiver: ReceiverProcess, account, rate: int, producers: int, per_tx: int = 1) -> dict:
    receiver.ask("dump")
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 8  # every producer has set Django up by then
    pipes, processes = [], []
    for index in range(producers):
        parent, child = context.Pipe()
        process = context.Process(
            target=run_producer,
            args=(account.pk, rate / producers, LATENCY_SECONDS, start_at, f"{rate}-{index}", per_tx, child),
        )
        process.start()
        pipes.append(parent)
        processes.append(process)
    committed: dict[str, float] = {}
    for parent in pipes:
        committed.update(parent.recv())
    for process in processes:
        process.join(timeout=10)
    ids = set(committed)
    deadline = time.monotonic() + 30
    arrivals: dict[str, float] = {}
    while time.monotonic() < deadline:
        for webhook_id, at in receiver.ask("dump"):
            if webhook_id in ids and webhook_id not in arrivals:
                arrivals[webhook_id] = at
        if len(arrivals) >= len(ids):
            break
        time.sleep(0.5)
    latencies = [arrivals[i] - committed[i] for i in arrivals]
    span = max(committed.values()) - min(committed.values()) if committed else 0
    return {
        "offered_per_s": rate,
        "producers": producers,
        "events_per_transaction": per_tx,
        "committed": len(committed),
        "committed_per_s": round(len(committed) / span) if span else None,
        "delivered": len(arrivals),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p90_ms": round(percentile(latencies, 0.90) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
    }


def main() -> int:
    # A SIGTERM (e.g. from `timeout`) unwinds through the finally below, so the worker and receiver stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    environment()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        message = "skipped: the webhook targets assume PostgreSQL; set DATABASE_URL=postgres://..."
        print(message)
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(json.dumps({"skipped": message}, indent=2))
        return 0
    setup_django()
    from django.db import connection

    from portal.celery import app
    from telephony.services import webhooks as webhook_services
    from tenants.models import Account

    if "telephony_event" not in connection.introspection.table_names():
        raise SystemExit("run `manage.py migrate` on this database first")
    app.control.purge()  # stale kicks from an earlier run of this bench, on its own broker database
    account, _ = Account.objects.get_or_create(slug=SLUG, defaults={"name": "Bench webhooks"})
    outbox_account, _ = Account.objects.get_or_create(slug=OUTBOX_SLUG, defaults={"name": "Bench webhooks outbox"})
    for a in (account, outbox_account):
        wipe(a)
    receiver = ReceiverProcess()
    url = f"http://127.0.0.1:{receiver.port}/hook"
    worker = None
    results: dict = {"machine_cpus": os.cpu_count(), "database": connection.vendor}
    try:
        endpoint = webhook_services.webhook_endpoint_create(
            account=account, actor=None, url=url, event_types=["call.*"]
        ).endpoint
        webhook_services.webhook_endpoint_create(account=outbox_account, actor=None, url=url, event_types=["call.*"])

        print("1/4 outbox overhead...", flush=True)
        results["outbox"] = outbox_overhead(outbox_account)
        wipe(outbox_account)
        print(f"    {results['outbox']}", flush=True)

        print("2/4 ceiling: plain pooled client...", flush=True)
        results["ceiling"] = ceiling(url, endpoint)
        receiver.ask("dump")
        print(f"    {results['ceiling']}", flush=True)

        print(f"3/4 backlog of {BACKLOG} events, then a real worker...", flush=True)
        results["outbox_bulk"] = preload(account)
        print(f"    {results['outbox_bulk']}", flush=True)
        receiver.ask("dump")
        worker = start_worker(OUT.parent / "bench_webhooks-worker.log")
        results["sustained"] = sustained(receiver)
        worker = set_aside_leftovers(worker)
        time.sleep(1)
        print(f"    { ({k: v for k, v in results['sustained'].items() if k != 'per_second_counts'}) }", flush=True)

        print("4/4 latency from commit to receipt...", flush=True)
        results["latency_200"] = latency(receiver, account, 200, producers=LATENCY_200_PRODUCERS)
        print(f"    {results['latency_200']}", flush=True)
        worker = set_aside_leftovers(worker)
        results["latency_1000"] = latency(
            receiver, account, 1000, producers=LATENCY_1000_PRODUCERS, per_tx=LATENCY_1000_EVENTS_PER_TX
        )
        print(f"    {results['latency_1000']}", flush=True)
    finally:
        if worker is not None:
            stop_worker(worker)
        receiver.stop()
        for a in (account, outbox_account):
            wipe(a)

    sustained_rate = results["sustained"]["deliveries_per_s"] or 0
    results["targets"] = {
        "deliveries_per_s_at_least_1000": sustained_rate >= 1000,
        "p99_at_200_per_s_at_most_1000_ms": results["latency_200"]["p99_ms"] <= 1000,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print("\nWebhook delivery (PostgreSQL + Redis, one worker host, fast local receiver)")
    print(f"  outbox, per state change:  +{results['outbox']['overhead_us_per_state_change']} us "
          f"({results['outbox']['plain_tx_per_s']} -> {results['outbox']['with_event_tx_per_s']} tx/s); "
          f"bulk {results['outbox_bulk']['events_per_s_written_in_transactions_of_100']} events/s; "
          f"websocket wake-up +{results['outbox']['stream_wake_us_per_transaction']} us/tx")  # fmt: skip
    print(f"  sustained delivery:        {sustained_rate} deliveries/s over {results['sustained']['window_s']} s "
          f"(ceiling, plain pooled client: {results['ceiling']['requests_per_s']} req/s)")  # fmt: skip
    for key in ("latency_200", "latency_1000"):
        r = results[key]
        print(f"  latency at {r['offered_per_s']}/s offered:  p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms "
              f"({r['delivered']}/{r['committed']} delivered, {r['committed_per_s']}/s committed, "
              f"{r['events_per_transaction']} per transaction)")  # fmt: skip
    print(f"  targets: {results['targets']}")
    print(f"  figures: {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

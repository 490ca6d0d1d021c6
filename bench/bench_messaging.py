"""Messaging: messages accepted per second through the API, and accept -> sent latency at 100 messages/s.

A real HTTP server (uvicorn on the project's ASGI app, BENCH_SERVER_WORKERS processes) and real clients (httpx,
BENCH_CLIENTS threads with keep-alive connections):

1. Accept: for BENCH_ACCEPT_SECONDS (10 s) the clients POST /api/v1/messages as fast as the server answers, each
   from the pool of a messaging profile of 50 toll-free numbers to a distinct off-net destination. Everything
   the product does to accept a message runs: API-key authentication, throttling, validation (E.164, segments,
   opt-out), choosing the sender, its throughput slot, the insert, the `message.queued` event, the kick of the
   send task. No worker runs in this phase. Figure: accepted (201) messages per second; target >= 500/s.
   Then the same through POST /api/v1/messages/batch, BENCH_BATCH_SIZE (100) messages a request (0 skips it):
   the target is met by either. Each reports server and database CPU per accepted message, which the
   machine's other load does not change much (wall figures do: quote them with the load average).
2. Latency: a real Celery worker (`-P prefork --concurrency 2 -B`, the sweeper in its beat) runs, and paced
   clients (BENCH_FEEDERS threads, each its share of the schedule) send BENCH_RATE (100) messages/s for
   BENCH_LATENCY_SECONDS (20 s); with BENCH_LATENCY_BATCH=n (default 1) they arrive n to a request through
   /api/v1/messages/batch, still RATE messages per second (single requests cost more CPU than two cores have at
   100/s next to the worker). Each message's accept -> sent time
   is `sent_at - created_at` (both written by the product). Figures: p50/p99/max; the simulated carrier answers
   at once (submit), so this is the platform's own queueing and sending.

    DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/portal .venv/bin/python bench/bench_messaging.py

On PostgreSQL + Redis when DATABASE_URL / REDIS_URL say so (the targets assume them); CELERY_BROKER_URL and
REDIS_URL default to Redis databases 13 and 14. Data lives in the account `bench-messaging` and the stock numbers
+1 833 990 00xx, deleted at the start and the end. BENCH_PHASES=accept,latency picks the parts.
Writes bench/out/bench_messaging.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "bench_messaging.json"
SLUG = "bench-messaging"
SENDERS = 50
ACCEPT_SECONDS = float(os.environ.get("BENCH_ACCEPT_SECONDS", "10"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
SERVER_WORKERS = int(os.environ.get("BENCH_SERVER_WORKERS", "2"))
RATE = float(os.environ.get("BENCH_RATE", "100"))
LATENCY_SECONDS = float(os.environ.get("BENCH_LATENCY_SECONDS", "20"))
PHASES = set(os.environ.get("BENCH_PHASES", "accept,latency").split(","))
ACCEPT_TARGET = 500.0
FEEDERS = int(os.environ.get("BENCH_FEEDERS", "8"))
BATCH_SIZE = int(os.environ.get("BENCH_BATCH_SIZE", "100"))  # 0: no batch accept phase
LATENCY_BATCH = max(1, int(os.environ.get("BENCH_LATENCY_BATCH", "1")))  # messages per request in the latency phase


def environment() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/13")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ["DEBUG"] = "false"  # with DEBUG on, Django keeps every query in memory: not the product
    os.environ.setdefault("SECRET_KEY", "bench-messaging-not-secret")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ.setdefault("API_RATE_LIMIT", "100000/s")
    os.environ["MESSAGING_ACCOUNT_DAILY_LIMIT"] = "0"
    import django

    django.setup()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flush_broker() -> None:
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()


def teardown() -> None:
    from telephony.models import Message, MessagingNumber, MessagingProfile, StockNumber
    from tenants.models import Account

    account = Account.objects.filter(slug=SLUG).first()
    if account is not None:
        Message.objects.filter(account=account).delete()
        MessagingNumber.objects.filter(account=account).delete()
        MessagingProfile.objects.filter(account=account).delete()
        account.delete()
    StockNumber.objects.filter(number__startswith="+183399000").delete()


def setup():
    from django.utils import timezone

    from telephony.models import PhoneNumber, StockNumber
    from telephony.services import messaging
    from tenants.models import Account
    from tenants.tests.factories import make_api_key

    teardown()
    account = Account.objects.create(name="Bench messaging", slug=SLUG)
    profile = messaging.messaging_profile_create(account=account, actor=None, name="Bench pool", sticky_sender=False)
    now = timezone.now()
    for line in range(SENDERS):
        number = f"+183399000{line:02d}"
        stock = StockNumber.objects.create(
            number=number, digits=number[1:], country="US", number_type="toll_free", sms=True, status="assigned"
        )
        phone = PhoneNumber.objects.create(
            account=account, stock=stock, number=number, leased_at=now, expires_at=now + timedelta(days=30)
        )
        messaging.number_sms_enable(account=account, actor=None, number=phone, profile=profile)
    secret, _ = make_api_key(account, name="bench")
    return account, profile, secret


def reset(account) -> None:
    from telephony.models import Event, Message, MessagingNumber

    Message.objects.filter(account=account).delete()
    Event.objects.filter(account=account, type__startswith="message.").delete()
    MessagingNumber.objects.filter(account=account).update(next_slot_at=None)
    flush_broker()


def start_server(port: int) -> subprocess.Popen:
    import httpx
    from django.conf import settings

    log = open(Path(settings.VAR_DIR) / "bench-messaging-server.log", "w")  # noqa: SIM115 - written until stopped

    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--port", str(port), "--workers",
         str(SERVER_WORKERS), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "DB_POOL_MAX_SIZE": os.environ.get("DB_POOL_MAX_SIZE", "10")},  # as docker/start-web
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except httpx.HTTPError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise
            time.sleep(0.2)


def stop_process(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def start_worker() -> subprocess.Popen:
    from django.conf import settings

    schedule = Path(settings.VAR_DIR) / "bench-messaging-beat-schedule"
    schedule.unlink(missing_ok=True)
    log = open(Path(settings.VAR_DIR) / "bench-messaging-worker.log", "w")  # noqa: SIM115 - written until stopped
    command = [
        sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "default,webhooks", "-P", "prefork",
        "--concurrency", "2", "-B", "-s", str(schedule), "--without-heartbeat", "--without-mingle",
        "--without-gossip", "-l", "WARNING",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(4)
    if process.poll() is not None:
        raise SystemExit("the worker did not start; see bench-messaging-worker.log")
    return process


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds of every live process of a process group (the server and its worker processes)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[2]) == pgid:
                total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def database_cpu_seconds() -> float:
    """CPU seconds of the PostgreSQL backends connected to this database (the server's pooled connections)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return sum(cpu_seconds(pid) for (pid,) in cursor.fetchall())


def accept_phase(url: str, secret: str, profile_id: str, server: subprocess.Popen, batch: int = 0) -> dict:
    """Single sends (batch=0), or batches of `batch` messages to POST /api/v1/messages/batch."""
    import resource

    import httpx

    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    counts = {"ok": 0, "other": 0}
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = [0.0]
    start = threading.Barrier(CLIENTS + 1)
    target = f"{url}/batch" if batch else url

    def destination(index: int, n: int) -> str:
        return f"+1212{200 + index:03d}{n % 10000:04d}"

    def body_for(index: int, n: int) -> dict:
        if not batch:
            return {"messaging_profile": profile_id, "to": destination(index, n), "text": "Your code is 123456"}
        return {
            "messages": [
                {
                    "messaging_profile": profile_id,
                    "to": destination(index, n * batch + k),
                    "text": "Your code is 123456",
                }
                for k in range(batch)
            ]
        }

    def accepted(response) -> int:
        if response.status_code != 201:
            return 0
        return len(response.json()["accepted"]) if batch else 1

    def client(index: int) -> None:
        ok = other = 0
        with httpx.Client(timeout=60, headers=headers) as http:
            # Warm-up request (connection, server imports), not counted.
            http.post(target, json=body_for(index, 0))
            start.wait()
            n = 0
            while time.monotonic() < stop_at[0]:
                n += 1
                response = http.post(target, json=body_for(index, n))
                taken = accepted(response)
                ok += taken
                if taken < (batch or 1):
                    other += (batch or 1) - taken
                    with lock:
                        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        with lock:
            counts["ok"] += ok
            counts["other"] += other

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.monotonic() + ACCEPT_SECONDS + 60  # set properly once every client is warm
    start.wait()
    began = time.monotonic()
    server_cpu, db_cpu = group_cpu_seconds(server.pid), database_cpu_seconds()
    client_cpu = resource.getrusage(resource.RUSAGE_SELF)
    stop_at[0] = began + ACCEPT_SECONDS
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    server_cpu = group_cpu_seconds(server.pid) - server_cpu
    db_cpu = database_cpu_seconds() - db_cpu
    usage = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = usage.ru_utime + usage.ru_stime - client_cpu.ru_utime - client_cpu.ru_stime
    rate = counts["ok"] / elapsed
    per = max(counts["ok"], 1)
    # CPU per accepted message, whatever else runs on the machine: what the figure would be on idle cores.
    cpu = {
        "server_ms": round(server_cpu * 1000 / per, 2),
        "database_ms": round(db_cpu * 1000 / per, 2),
        "client_ms": round(client_cpu * 1000 / per, 2),
    }
    cores = os.cpu_count() or 1
    ceiling = cores * 1000 / max(cpu["server_ms"] + cpu["database_ms"], 0.001)
    label = f"accept (batches of {batch})" if batch else "accept (single sends)"
    print(f"{label} CPU per message: {cpu}; server+database CPU bound on {cores} idle cores: {ceiling:.0f}/s")
    print(f"{label}: {counts['ok']} accepted in {elapsed:.1f} s = {rate:.0f}/s; other answers {statuses}", flush=True)
    return {
        "batch_size": batch or None,
        "accepted": counts["ok"],
        "other_answers": statuses,
        "seconds": round(elapsed, 2),
        "accepted_per_s": round(rate, 1),
        "target_per_s": ACCEPT_TARGET,
        "met": rate >= ACCEPT_TARGET,
        "clients": CLIENTS,
        "server_workers": SERVER_WORKERS,
        "cpu_per_message": cpu,
        "cpu_bound_per_s_on_idle_cores": round(ceiling),
    }


def latency_phase(account, url: str, secret: str, profile_id: str) -> dict:
    import httpx

    from telephony.models import Message

    worker = start_worker()
    try:
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        total = int(RATE * LATENCY_SECONDS)
        requests = -(-total // LATENCY_BATCH)
        late = [0]
        lock = threading.Lock()
        began = time.monotonic() + 1.0

        def message(n: int) -> dict:
            return {"messaging_profile": profile_id, "to": f"+1310555{n % 10000:04d}", "text": f"Message {n}"}

        def feeder(offset: int) -> None:
            # Request r carries messages r*B .. r*B+B-1, due at began + r*B / RATE; feeder k sends r = k, k + FEEDERS,
            # ...: together, RATE messages per second.
            missed = 0
            with httpx.Client(timeout=30, headers=headers) as http:
                for r in range(offset, requests, FEEDERS):
                    first = r * LATENCY_BATCH
                    pause = began + first / RATE - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    elif pause < -0.05:
                        missed += 1
                    numbers = range(first, min(first + LATENCY_BATCH, total))
                    if LATENCY_BATCH == 1:
                        response = http.post(url, json=message(first))
                    else:
                        response = http.post(url + "/batch", json={"messages": [message(n) for n in numbers]})
                        assert len(response.json()["accepted"]) == len(numbers), response.text[:300]
                    assert response.status_code == 201, response.text[:300]
            with lock:
                late[0] += missed

        threads = [threading.Thread(target=feeder, args=(k,)) for k in range(FEEDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        feeding = time.monotonic() - began
        late = late[0]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not Message.objects.filter(account=account, sent_at__isnull=True).exists():
                break
            time.sleep(0.5)
        rows = list(Message.objects.filter(account=account).values_list("created_at", "sent_at", "send_after"))
    finally:
        stop_process(worker)
    latencies = [(sent - created).total_seconds() * 1000 for created, sent, _ in rows if sent is not None]
    # How much of it is the sender's throughput limit (the slot it was given) and how much the worker.
    slot_waits = [(slot - created).total_seconds() * 1000 for created, _, slot in rows]
    worker_waits = [(sent - slot).total_seconds() * 1000 for _, sent, slot in rows if sent is not None]
    summary = {
        "rate_per_s": RATE,
        "messages_per_request": LATENCY_BATCH,
        "messages": total,
        "sent": len(latencies),
        "feeder_seconds": round(feeding, 2),
        "feeder_late_sends": late,
        "accept_to_sent_ms": {
            "p50": round(percentile(latencies, 0.5), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(max(latencies), 1) if latencies else None,
        },
        "slot_wait_ms": {"p50": round(percentile(slot_waits, 0.5), 1), "p99": round(percentile(slot_waits, 0.99), 1)},
        "slot_to_sent_ms": {
            "p50": round(percentile(worker_waits, 0.5), 1),
            "p99": round(percentile(worker_waits, 0.99), 1),
        },
    }
    print(
        f"latency at {RATE:.0f}/s: {json.dumps(summary['accept_to_sent_ms'])} ({len(latencies)}/{total} sent); "
        f"slot wait {json.dumps(summary['slot_wait_ms'])}, slot -> sent {json.dumps(summary['slot_to_sent_ms'])}"
    )
    return summary


def main() -> int:
    environment()
    from django.db import connection

    if connection.vendor != "postgresql":
        print("bench_messaging: running on SQLite; the target assumes PostgreSQL + Redis (set DATABASE_URL).")
    account, profile, secret = setup()
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1/messages"
    result: dict = {
        "at": datetime.now().isoformat(timespec="seconds"),
        "database": connection.vendor,
        "load_before": os.getloadavg(),
    }
    reset(account)
    server = start_server(port)
    try:
        if "accept" in PHASES:
            result["accept"] = accept_phase(url, secret, str(profile.public_id), server)
            result["load_after_accept"] = os.getloadavg()
            reset(account)
            if BATCH_SIZE:
                result["accept_batch"] = accept_phase(url, secret, str(profile.public_id), server, batch=BATCH_SIZE)
                result["load_after_accept_batch"] = os.getloadavg()
                reset(account)
        if "latency" in PHASES:
            result["latency"] = latency_phase(account, url, secret, str(profile.public_id))
            result["load_after_latency"] = os.getloadavg()
    finally:
        stop_process(server)
        reset(account)
        teardown()
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    met = [result[phase]["met"] for phase in ("accept", "accept_batch") if phase in result]
    return 0 if any(met) or not met else 1


if __name__ == "__main__":
    sys.exit(main())

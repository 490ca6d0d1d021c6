"""Outbound calls on this machine: dispatch pacing accuracy, and the call log's CSV export of 1,000,000 calls.

1. Pacing: for each rate in BENCH_PACING_RATES (10, 50, 200 calls/s), the account's policy is set to that rate and
   calls are placed through the real service (`call_place`, the one POST /api/v1/calls uses) for
   BENCH_PACING_SECONDS (60 s) worth of calls, by BENCH_FEEDERS processes (default: 2 + rate / 50, at most 6)
   placing as fast as they can. The account's queue starts BENCH_HEAD_START_S after them (default: the time they
   need at 20 calls/s each), so the calls are queued before the first is dispatched and the feeders' CPU is not
   taken from the workers being measured (on a 2-core machine, placing and dispatching 200 calls/s at once
   would need more CPU than there is); the product paces the backlog as it paces any queue.
   Real Celery workers on the `calls` queue (`-P prefork --concurrency 2 -B`, the sweeper in its beat) dispatch
   them: each call's `initiated_at` is the moment the engine dispatched it. The simulated switch runs at 10^6x,
   so a call (ring, answer, `<Hangup/>`) is over in the step that dispatches it. Figures per rate: the measured
   rate over the run ((n - 1) / (last dispatch - first)) and its error against the configured one (target
   within +/-5 %), the rate the calls' slots offered (the configured one unless the feeders fell behind) and the
   error against it, the dispatch lateness against each call's slot (p50/p99/max), the busiest and quietest
   whole second of the steady part, and the feeders' own placing rate and how many calls they placed after the
   first dispatch.
2. Export: 1,000,000 call rows are inserted for the bench account (INSERT ... SELECT generate_series, in
   batches), then GET /api/v1/calls/export is read through Django's test client with an API key (the real view,
   authentication, filters and streaming response; no HTTP socket). Figures: rows/s, bytes, and the process's
   resident memory sampled every 100,000 rows (target >= 50,000 rows/s, memory flat).

    DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/portal .venv/bin/python bench/bench_calls.py

Refuses to run without PostgreSQL. CELERY_BROKER_URL and REDIS_URL default to Redis databases 11 and 12 on
127.0.0.1 (the bench's own). Data lives in the account `bench-calls` (caller +1555 0300 000), deleted at the start
and the end. BENCH_PHASES=pacing,export picks the parts; BENCH_EXPORT_ROWS sets the export size. Writes
bench/out/bench_calls.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "bench_calls.json"
SLUG = "bench-calls"
CALLER = "+15550300000"
RATES = [float(r) for r in os.environ.get("BENCH_PACING_RATES", "10,50,200").split(",") if r]
PACING_SECONDS = float(os.environ.get("BENCH_PACING_SECONDS", "60"))
# The feeders start this long before the first dispatch slot (default: the time they need to place the run's
# calls at FEEDER_PER_S each), so that the calls are queued before the workers dispatch them: on a small machine
# the feeders' CPU would otherwise be taken from the workers whose pace is measured.
HEAD_START_S = os.environ.get("BENCH_HEAD_START_S", "")
FEEDER_PER_S = 20  # calls one feeder process places per second, a low estimate for a busy 2-core machine
EXPORT_ROWS = int(os.environ.get("BENCH_EXPORT_ROWS", "1000000"))
INSERT_BATCH = 100_000
WORKER_CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "2"))
# Processes placing calls (call_place), like API clients. One places about 50 calls/s on this machine (its CPU
# per call, plus its waits on the database), so by default there are enough of them for the rate with room to
# spare: the bench measures the product's pace, which the feeders must be able to exceed.
FEEDERS = os.environ.get("BENCH_FEEDERS", "auto")
PHASES = set(os.environ.get("BENCH_PHASES", "pacing,export").split(","))
FLOW = "<Response><Hangup/></Response>"


def environment() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/11")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
    os.environ["DEBUG"] = "false"  # with DEBUG on, Django keeps every query in memory: not the product
    os.environ.setdefault("SECRET_KEY", "bench-calls-not-secret")
    os.environ["CALL_ACCOUNT_CHANNEL_LIMIT"] = "0"
    os.environ["SIMULATED_SWITCH_SPEED"] = "1000000"
    os.environ["CALL_MAX_LENGTH_S"] = str(10**9)  # at 10^6x, 4 h of call time would be 14 ms
    os.environ.setdefault("API_RATE_LIMIT", "100000/s")
    # The whole run is queued ahead (HEAD_START_S): every call's dispatch must be announced by its countdown
    # task, not left to the sweeper as wake-ups further away than the default 60 s are.
    os.environ["ENGINE_KICK_HORIZON_SECONDS"] = "600"


def setup_django() -> None:
    environment()
    import django

    django.setup()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def flush_broker() -> None:
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()


def start_workers() -> subprocess.Popen:
    from django.conf import settings

    schedule = Path(settings.VAR_DIR) / "bench-calls-beat-schedule"
    schedule.unlink(missing_ok=True)
    log = open(Path(settings.VAR_DIR) / "bench-calls-worker.log", "w")  # noqa: SIM115 - written until stopped
    command = [
        sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "calls", "-P", "prefork",
        "--concurrency", str(WORKER_CONCURRENCY), "-B", "-s", str(schedule), "--without-heartbeat",
        "--without-mingle", "--without-gossip", "-l", "WARNING",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(4)
    if process.poll() is not None:
        raise SystemExit("the worker did not start; see bench-calls-worker.log")
    return process


def stop_workers(process: subprocess.Popen) -> None:
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def wipe(account) -> None:
    from django.db import connection

    from telephony.models import Call, CallWakeup, Event

    with connection.cursor() as cursor:
        table = Call._meta.db_table
        cursor.execute(
            f"DELETE FROM {CallWakeup._meta.db_table} WHERE root_id IN (SELECT id FROM {table} WHERE account_id = %s)",  # noqa: S608
            [account.pk],
        )
        cursor.execute(f"DELETE FROM {table} WHERE account_id = %s", [account.pk])  # noqa: S608
        cursor.execute(f"DELETE FROM {Event._meta.db_table} WHERE account_id = %s", [account.pk])  # noqa: S608


def prepare():
    from django.utils import timezone

    from telephony.models import PhoneNumber, StockNumber
    from tenants.models import Account

    account, _ = Account.objects.get_or_create(slug=SLUG, defaults={"name": "Benchmark: outbound calls"})
    wipe(account)
    stock, _ = StockNumber.objects.get_or_create(
        number=CALLER, defaults={"digits": CALLER[1:], "country": "US", "status": StockNumber.Status.ASSIGNED}
    )
    number = PhoneNumber.objects.filter(number=CALLER, status="active").first()
    if number is None or number.account_id != account.pk:
        PhoneNumber.objects.filter(number=CALLER, status="active").update(status="released")
        now = timezone.now()
        PhoneNumber.objects.create(
            account=account, stock=stock, number=CALLER, leased_at=now, expires_at=now + timedelta(days=30)
        )
    return account


# --- 1. Pacing ------------------------------------------------------------------------------------------------


def fitted_rate(times: list) -> float:
    if len(times) < 2:
        return 0.0
    seconds = [(t - times[0]).total_seconds() for t in times]
    mean_i, mean_t = (len(seconds) - 1) / 2, sum(seconds) / len(seconds)
    covariance = sum((i - mean_i) * (t - mean_t) for i, t in enumerate(seconds))
    slope = covariance / sum((i - mean_i) ** 2 for i in range(len(seconds)))
    return 1 / slope if slope > 0 else 0.0


def run_feeder(account_id: int, count: int, offset: int, start_at: float, conn) -> None:
    """Place `count` calls through call_place, as fast as it can."""
    try:
        conn.send(feed(account_id, count, offset, start_at))
    except Exception as exc:  # noqa: BLE001 - the parent must not wait forever for a feeder that died
        conn.send(f"feeder failed: {type(exc).__name__}: {exc}")


def feed(account_id: int, count: int, offset: int, start_at: float) -> list[int]:
    setup_django()
    from telephony.services.outbound import call_place
    from tenants.models import Account

    account = Account.objects.get(pk=account_id)
    ids = []
    time.sleep(max(0.0, start_at - time.time()))  # every feeder starts at once, Django imported
    for n in range(offset, offset + count):
        call = call_place(account=account, actor="bench", from_=CALLER, to=f"+1310{n % 10_000_000:07d}", xml=FLOW)
        ids.append(call.pk)
    return ids


def pacing(account, rate: float) -> dict:
    import multiprocessing
    from datetime import datetime

    from django.utils import timezone

    from telephony.models import Call, OutboundPolicy

    wipe(account)
    total = int(rate * PACING_SECONDS)
    feeders = feeders_for(rate)
    head_start = head_start_for(total, feeders)
    start_at = time.time() + 5 + feeders / 2  # each process imports Django first
    # The account's queue starts `head_start` after the feeders do: the calls they place meanwhile take the
    # slots from then on, one every 1/rate s, as the product paces any backlog.
    first_slot = timezone.now() + timedelta(seconds=start_at - time.time() + head_start)
    OutboundPolicy.objects.update_or_create(
        account=account,
        defaults={
            "calls_per_second": rate,
            "max_concurrent_calls": 100_000,
            "max_queue_wait_s": int(head_start + PACING_SECONDS + 60),
            "next_dispatch_at": first_slot,
        },
    )
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    share = -(-total // feeders)
    for index in range(feeders):
        count = max(0, min(share, total - index * share))
        parent, child = context.Pipe()
        process = context.Process(target=run_feeder, args=(account.pk, count, index * share, start_at, child))
        process.start()
        pipes.append(parent)
        processes.append(process)
    replies = [pipe.recv() for pipe in pipes]
    for process in processes:
        process.join()
    failures = [reply for reply in replies if isinstance(reply, str)]
    if failures:
        raise SystemExit("; ".join(failures))
    ids = [pk for reply in replies for pk in reply]
    deadline = time.monotonic() + max(0.0, (first_slot - timezone.now()).total_seconds()) + PACING_SECONDS + 120
    while Call.objects.filter(pk__in=ids, initiated_at__isnull=True).exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    rows = list(Call.objects.filter(pk__in=ids).values_list("initiated_at", "variables", "status", "created_at"))
    placed = sorted(r[3] for r in rows)
    slots = sorted(datetime.fromisoformat(r[1]["engine"]["outbound"]["slot"]) for r in rows)
    offered = (len(slots) - 1) / (slots[-1] - slots[0]).total_seconds() if len(slots) > 1 else 0
    dispatched = sorted(r[0] for r in rows if r[0] is not None)
    lateness = [
        (r[0] - datetime.fromisoformat(r[1]["engine"]["outbound"]["slot"])).total_seconds() * 1000
        for r in rows
        if r[0] is not None
    ]
    measured = (len(dispatched) - 1) / (dispatched[-1] - dispatched[0]).total_seconds() if len(dispatched) > 1 else 0
    fitted = fitted_rate(dispatched)
    # Dispatches per whole second, without the first and last second (partial).
    first = dispatched[0]
    per_second: dict[int, int] = {}
    for moment in dispatched:
        second = int((moment - first).total_seconds())
        per_second[second] = per_second.get(second, 0) + 1
    steady = [count for second, count in per_second.items() if 0 < second < max(per_second)]
    return {
        "configured_per_s": rate,
        "calls": total,
        "dispatched": len(dispatched),
        "failed": sum(1 for r in rows if r[2] == "failed"),
        "measured_per_s": round(measured, 3),
        "error_pct": round((measured / rate - 1) * 100, 2) if measured else None,
        # 1 / the slope of a least-squares line through the dispatch times: what a few late calls move little.
        "fitted_per_s": round(fitted, 3),
        "fitted_error_pct": round((fitted / rate - 1) * 100, 2) if fitted else None,
        # The schedule the placed calls got: below the configured rate when the feeders could not place calls
        # as fast as the pace (each call's slot is then the moment it was placed).
        "offered_per_s": round(offered, 3),
        "error_vs_offered_pct": round((measured / offered - 1) * 100, 2) if measured and offered else None,
        "lateness_p50_ms": round(percentile(lateness, 0.5), 1),
        "lateness_p99_ms": round(percentile(lateness, 0.99), 1),
        "lateness_max_ms": round(max(lateness), 1) if lateness else None,
        "busiest_second": max(steady) if steady else None,
        "quietest_second": min(steady) if steady else None,
        "feeders": feeders,
        "head_start_s": round(head_start, 1),
        # How fast the feeders placed calls (all of them, from their first to their last), and how many they
        # had not placed yet when the first one was dispatched: the bench measures the product's pace only
        # while the feeders stay ahead of it (offered_per_s then equals the configured rate).
        "feeders_placed_per_s": round((len(placed) - 1) / (placed[-1] - placed[0]).total_seconds(), 1),
        "placed_after_first_dispatch": sum(1 for moment in placed if moment > first),
    }


def feeders_for(rate: float) -> int:
    if FEEDERS != "auto":
        return int(FEEDERS)
    return max(2, min(6, int(rate // 50) + 2))


def head_start_for(total: int, feeders: int) -> float:
    """Seconds from the feeders' start to the first slot: enough for them to place most calls before it."""
    if HEAD_START_S:
        return float(HEAD_START_S)
    return max(10.0, min(240.0, total / (feeders * FEEDER_PER_S)))


# --- 2. Export --------------------------------------------------------------------------------------------------


def insert_calls(account, rows: int) -> float:
    """`rows` finished calls for the account, varied in status, direction and times. Returns seconds taken."""
    from django.db import connection, transaction
    from django.utils import timezone

    from telephony.models import Call

    template = Call(account=account, direction="inbound", from_number="+12125550100", to_number=CALLER)
    expressions = {
        "public_id": "gen_random_uuid()",
        "direction": "(ARRAY['inbound','outbound-api','outbound-dial'])[1 + i %% 3]",
        "from_number": "'+1212' || lpad((i %% 10000000)::text, 7, '0')",
        "status": "(ARRAY['completed','busy','no-answer','failed','completed'])[1 + i %% 5]",
        "q850_cause": "(ARRAY[16,17,19,41,16])[1 + i %% 5]",
        "created_at": "%(base)s - (i * interval '1 millisecond')",
        "initiated_at": "%(base)s - (i * interval '1 millisecond')",
        "ringing_at": "%(base)s - (i * interval '1 millisecond') + interval '100 milliseconds'",
        "answered_at": "CASE WHEN i %% 5 IN (0, 4) THEN %(base)s - (i * interval '1 millisecond') + interval '3 s' END",
        "ended_at": "%(base)s - (i * interval '1 millisecond') + interval '63 s'",
        "tag": "'bench'",
    }
    columns, values, params = [], [], {"base": timezone.now()}
    for field in Call._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.column)
        if field.name in expressions:
            values.append(expressions[field.name])
        else:
            key = f"f_{field.column}"
            params[key] = field.get_db_prep_save(getattr(template, field.attname), connection)
            values.append(f"%({key})s")
    started = time.monotonic()
    for offset in range(0, rows, INSERT_BATCH):
        count = min(INSERT_BATCH, rows - offset)
        sql = (
            f"INSERT INTO {Call._meta.db_table} ({', '.join(columns)}) "  # noqa: S608 - our table and columns
            f"SELECT {', '.join(values)} FROM generate_series({offset}, {offset + count - 1}) AS i"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Call._meta.db_table}")
    return time.monotonic() - started


def export(account) -> dict:
    from django.test import Client

    from tenants.tests.factories import make_api_key

    wipe(account)
    insert_s = insert_calls(account, EXPORT_ROWS)
    secret, _ = make_api_key(account, name="bench-export")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    memory = [{"rows": 0, "rss_mb": rss_mb()}]
    started = time.monotonic()
    response = client.get("/api/v1/calls/export", HTTP_HOST="localhost")
    assert response.status_code == 200, (response.status_code, getattr(response, "content", b"")[:300])
    rows, size, next_sample = -1, 0, 100_000  # the header line is not a row
    for chunk in response.streaming_content:
        size += len(chunk)
        rows += chunk.count(b"\n")
        if rows >= next_sample:
            memory.append({"rows": rows, "rss_mb": rss_mb()})
            next_sample += 100_000
    seconds = time.monotonic() - started
    memory.append({"rows": rows, "rss_mb": rss_mb()})
    steady = [sample["rss_mb"] for sample in memory[1:]]
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "megabytes": round(size / 1e6, 1),
        "insert_seconds": round(insert_s, 1),
        "rss_mb_before": memory[0]["rss_mb"],
        "rss_mb_min_during": min(steady),
        "rss_mb_max_during": max(steady),
        "rss_samples": memory,
    }


def main() -> int:
    setup_django()
    from django.db import connection

    if connection.vendor != "postgresql":
        print("bench_calls needs PostgreSQL: set DATABASE_URL=postgres://... (the targets assume it)")
        return 0
    account = prepare()
    results: dict = {"machine_cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    try:
        if "pacing" in PHASES:
            flush_broker()
            workers = start_workers()
            results["pacing_seconds_per_rate"] = PACING_SECONDS
            results["pacing"] = []
            try:
                for rate in RATES:
                    print(f"1. pacing at {rate:g} calls/s for {PACING_SECONDS:g} s ...", flush=True)
                    figures = pacing(account, rate)
                    figures["load_average"] = os.getloadavg()
                    results["pacing"].append(figures)
                    print(json.dumps(figures), flush=True)
            finally:
                stop_workers(workers)
        if "export" in PHASES:
            print(f"2. export of {EXPORT_ROWS:,} calls ...", flush=True)
            results["export"] = export(account)
            results["export"]["load_average"] = os.getloadavg()
            print(json.dumps({k: v for k, v in results["export"].items() if k != "rss_samples"}), flush=True)
    finally:
        wipe(account)
        from tenants.models import ApiKey

        ApiKey.objects.filter(account=account).delete()
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2, default=str))
    print(f"written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

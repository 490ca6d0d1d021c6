"""The call engine on this machine: per-command overhead, Dial action round trip, sustained calls per second.

Everything is real except the far ends of calls (the simulated switch): PostgreSQL, Redis as broker, Celery
workers on the `calls` queue (`celery worker -P prefork --concurrency 2 -B`, the sweeper in its beat), a
local customer server answering instantly (its own process), and calls entering through the real inbound
path (`simulate_inbound_call`: routing, screening, limits, leg creation) from injector processes.

1. Platform overhead per executed command: calls run a 16-command flow (Say, Pause, Meta, Play, Tone, a
   Callback to the local server, Hangup). For consecutive commands of a call, overhead = next command's start
   - previous command's end, where the end of a media command or a Pause is when the switch reported it (or
   the timer fell due), and the end of a Callback is when its answer arrived: customer server time is
   excluded. Two configurations:
   a. `inline`: the simulated switch at 10^6x (media takes ~0), events due within ENGINE_INLINE_WAIT_MS are
      applied in the same step (the built-in switch's normal path);
   b. `via_broker`: the switch at 10x (a prompt lasts tens of ms) and ENGINE_INLINE_WAIT_MS=0, so every switch
      report and timer goes through the database and a Celery task, as a real switch's reports would.
2. Dial action round trip: a Dial rings a phone that never answers; the bench, acting as the switch, reports
   `busy` for the B-leg (switch_leg_event, as a SIP edge's HTTP hook would). Round trip = start of the first
   command of the XML the action URL returned - the report, minus the action request's own duration.
3. Sustained calls/s: injector processes place calls at a fixed rate for BENCH_SUSTAIN_SECONDS through a
   5-command flow with one Callback (Answer, Meta, Callback -> Say, Hangup); every call must end, none may be
   stuck. Reports the offered and the completed rate and the end-to-end call time.

Targets: overhead p50 <= 5 ms and p99 <= 25 ms; Dial action round trip p99 <= 50 ms; >= 100 calls/s.

The machine is shared, so rates and latencies move with its load (each phase records the load average). Phases 1
and 3 also report CPU per call, which moves much less: the workers' processes (`/proc`, the main process apart),
their PostgreSQL backends, and the injectors with theirs (the inbound path). BENCH_PYSPY=<py-spy binary> records
each phase's workers (only the threads holding the GIL: CPU, not waiting) into bench/out/bench_engine-<phase>.txt.

    DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/portal .venv/bin/python bench/bench_engine.py

Refuses to run without PostgreSQL. CELERY_BROKER_URL and REDIS_URL default to Redis databases 9 and 10 on
127.0.0.1 (the bench's own). Data lives in the account `bench-engine` (numbers +1555 01x xxxx), deleted at the
start and the end. Writes bench/out/bench_engine.json.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "bench_engine.json"
SLUG = "bench-engine"
OVERHEAD_CALLS = int(os.environ.get("BENCH_OVERHEAD_CALLS", "200"))
OVERHEAD_RATE = float(os.environ.get("BENCH_OVERHEAD_RATE", "20"))
DIAL_CALLS = int(os.environ.get("BENCH_DIAL_CALLS", "200"))
SUSTAIN_RATE = float(os.environ.get("BENCH_SUSTAIN_RATE", "100"))
SUSTAIN_SECONDS = float(os.environ.get("BENCH_SUSTAIN_SECONDS", "20"))
INJECTORS = int(os.environ.get("BENCH_INJECTORS", "2"))
WORKER_CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "2"))
DRAIN_SECONDS = 60
# Which phases to run (all by default): 1a, 1b, 2, 3.
PHASES = set(os.environ.get("BENCH_PHASES", "1a,1b,2,3").split(","))
SEARCH_RATES = [float(r) for r in os.environ.get("BENCH_SEARCH_RATES", "75,50,35,25,15").split(",") if r]
SEARCH_SECONDS = float(os.environ.get("BENCH_SEARCH_SECONDS", "10"))
# A py-spy binary: each phase's worker is profiled into bench/out/bench_engine-<phase>.txt (collapsed stacks).
PYSPY = os.environ.get("BENCH_PYSPY", "")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

OVERHEAD_FLOW = (
    "<Response><Answer/>" + '<Say>Welcome to the benchmark</Say><Pause length="500"/><Meta name="n" value="{{from}}"/>'
    '<Play>https://media.example.com/hold.mp3</Play><Tone hz="440" don="200" doff="200" loop="2"/>'
    * 2
    + '<Callback url="{callback}"/></Response>'
)
CALLBACK_REPLY = '<Response><Say>Thanks for calling</Say><Meta name="done" value="1"/><Hangup tag="done"/></Response>'
SUSTAIN_FLOW = '<Response><Answer/><Meta name="customer" value="{{from}}"/><Callback url="{callback}"/></Response>'
SUSTAIN_REPLY = '<Response><Say>Goodbye</Say><Hangup tag="done"/></Response>'
DIAL_FLOW = '<Response><Dial timeout="600000" action="{action}"><To>+15550199999</To></Dial></Response>'
ACTION_REPLY = '<Response><Hangup tag="after-action"/></Response>'


def environment() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/10")
    # Production runs with DEBUG off; with it on Django keeps every query in memory, which is not the product.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-engine-not-secret")
    os.environ.setdefault("OUTBOUND_URL_ALLOW_LOOPBACK", "true")  # the customer server is on 127.0.0.1
    os.environ["CALL_ACCOUNT_CHANNEL_LIMIT"] = "0"
    os.environ["SIMULATOR_ENABLED"] = "true"


def setup_django() -> None:
    environment()
    import django

    django.setup()


# --- The customer's server (its own process) ------------------------------------------------------------


def run_server(conn) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    replies = {"/callback": CALLBACK_REPLY, "/sustain": SUSTAIN_REPLY, "/action": ACTION_REPLY}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1  # headers and body in one write: no 40 ms Nagle/delayed-ACK stall between them

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            body = replies.get(self.path.split("?", 1)[0], "<Response/>").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _handle

        def log_message(self, format, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    server = Server(("127.0.0.1", 0), Handler)
    conn.send(server.server_address[1])
    server.serve_forever()


# --- Injectors (their own processes) ----------------------------------------------------------------------


def run_injector(numbers: list[str], rate: float, seconds: float, start_at: float, conn) -> None:
    """Place calls through the real inbound path at `rate`/s; report (call id, placed at) for each."""
    setup_django()
    from telephony.switch.simulated import simulate_inbound_call

    placed: list[tuple[int, float]] = []
    time.sleep(max(0.0, start_at - time.time()))
    cpu_at_start = time.process_time()
    interval, n = 1.0 / rate, 0
    next_at = time.monotonic()
    deadline = next_at + seconds
    while next_at < deadline:
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        result = simulate_inbound_call(from_number=f"+1212555{n % 10000:04d}", to_number=numbers[n % len(numbers)])
        placed.append((result.call.pk, time.time()))
        n += 1
        next_at += interval
    (backend, backend_cpu_s), *_ = backend_cpu(own=True).items()
    conn.send((placed, time.process_time() - cpu_at_start + backend_cpu_s, backend))


def inject(numbers: list[str], rate: float, seconds: float) -> tuple[list[tuple[int, float]], float, set[int]]:
    """Place calls from INJECTORS processes; (call id, placed at) for each, the CPU seconds the injectors and
    their database connections used, and those connections' backend pids."""
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3  # the injectors import Django first
    pipes, processes = [], []
    for _ in range(INJECTORS):
        parent, child = context.Pipe()
        process = context.Process(target=run_injector, args=(numbers, rate / INJECTORS, seconds, start_at, child))
        process.start()
        pipes.append(parent)
        processes.append(process)
    replies = [pipe.recv() for pipe in pipes]
    for process in processes:
        process.join()
    placed = [item for reply in replies for item in reply[0]]
    return placed, sum(reply[1] for reply in replies), {reply[2] for reply in replies}


# --- Helpers ------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float], unit: str = "ms") -> dict:
    return {
        "count": len(values),
        f"p50_{unit}": round(percentile(values, 0.50), 2),
        f"p90_{unit}": round(percentile(values, 0.90), 2),
        f"p99_{unit}": round(percentile(values, 0.99), 2),
        f"max_{unit}": round(max(values), 2) if values else None,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds of every live process of a process group (the worker, its pool, its beat)."""
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


def backend_cpu(own: bool = False) -> dict[int, float]:
    """CPU seconds of PostgreSQL backends by pid: this process's own (`own`), or every other connection to this
    database. The server runs on this machine; the other benches' databases are not ours."""
    from django.db import connection

    with connection.cursor() as cursor:
        if own:
            cursor.execute("SELECT pg_backend_pid()")
        else:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        return {pid: cpu_seconds(pid) for (pid,) in cursor.fetchall()}


class CpuMeter:
    """CPU seconds used by the workers (their processes and their database connections) during a phase."""

    def __init__(self, workers: subprocess.Popen):
        self.workers = workers
        self.worker_start = group_cpu_seconds(workers.pid)
        self.main_start = cpu_seconds(workers.pid)
        self.backends_start = backend_cpu()

    def stop(self, injector_backends: set[int]) -> dict:
        backends = backend_cpu()
        worker_db = sum(cpu - self.backends_start.get(pid, 0.0) for pid, cpu in backends.items()
                        if pid not in injector_backends)  # fmt: skip
        return {
            "worker_cpu_s": round(group_cpu_seconds(self.workers.pid) - self.worker_start, 2),
            # The worker's main process (receiving tasks, handing them to the pool, beat's sweeper) apart.
            "worker_main_cpu_s": round(cpu_seconds(self.workers.pid) - self.main_start, 2),
            "worker_db_cpu_s": round(worker_db, 2),
        }


def cpu_per_call(meter: dict, injector_cpu: float, calls: int) -> dict:
    """CPU per call, less sensitive to the machine's load than rates: the workers, their PostgreSQL backends, and
    the injectors placing calls through the inbound path (with theirs). Redis and the customer server not counted."""
    per_call = lambda seconds: round(seconds * 1000 / calls, 2) if calls else None  # noqa: E731
    return {
        **meter,
        "injector_cpu_s": round(injector_cpu, 2),
        "worker_cpu_ms_per_call": per_call(meter["worker_cpu_s"]),
        "worker_db_cpu_ms_per_call": per_call(meter["worker_db_cpu_s"]),
        "injector_cpu_ms_per_call": per_call(injector_cpu),
        "total_cpu_ms_per_call": per_call(meter["worker_cpu_s"] + meter["worker_db_cpu_s"] + injector_cpu),
    }


def profile(workers: subprocess.Popen, name: str) -> subprocess.Popen | None:
    if not PYSPY:
        return None
    return subprocess.Popen(
        [PYSPY, "record", "--subprocesses", "--nonblocking", "--gil", "--rate", "200", "--format", "raw", "-p",
         str(workers.pid), "-o", str(OUT.parent / f"bench_engine-{name}.txt")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop_profile(profiler: subprocess.Popen | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            profiler.wait(timeout=30)


def start_workers(env: dict[str, str], log_name: str) -> subprocess.Popen:
    from django.conf import settings

    schedule = Path(settings.VAR_DIR) / "bench-engine-beat-schedule"
    schedule.unlink(missing_ok=True)
    log_path = Path(settings.VAR_DIR) / log_name
    log = open(log_path, "w")  # noqa: SIM115 - the worker writes to it until it is stopped
    # The `calls` queue only: the database is shared, and other benches' webhook deliveries are not ours to run.
    command = [
        sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "calls", "-P", "prefork",
        "--concurrency", str(WORKER_CONCURRENCY), "-B", "-s", str(schedule), "--without-heartbeat",
        "--without-mingle", "--without-gossip", "-l", os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    time.sleep(4)  # the worker connects, forks its pool and starts beat
    if process.poll() is not None:
        raise SystemExit(f"the worker did not start; see {log_path}")
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

    from telephony.models import Call, CallHttpRequest, CallWakeup, Delivery, Event, PhoneNumber, SimulatedLeg

    calls = f"SELECT id FROM {Call._meta.db_table} WHERE account_id = %s"  # noqa: S608 - our table names
    with connection.cursor() as cursor:
        for model, column in ((CallWakeup, "root_id"), (SimulatedLeg, "call_id"), (CallHttpRequest, "call_id")):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE {column} IN ({calls})", [account.pk])  # noqa: S608
        cursor.execute(
            f"DELETE FROM {Call._meta.db_table} WHERE account_id = %s AND parent_id IS NOT NULL",  # noqa: S608
            [account.pk],
        )
        cursor.execute(f"DELETE FROM {Call._meta.db_table} WHERE account_id = %s", [account.pk])  # noqa: S608
        cursor.execute(f"DELETE FROM {Delivery._meta.db_table} WHERE account_id = %s", [account.pk])  # noqa: S608
        cursor.execute(f"DELETE FROM {Event._meta.db_table} WHERE account_id = %s", [account.pk])  # noqa: S608
    PhoneNumber.objects.filter(account=account).update(call_control_app=None)


def prepare(callback_base: str):
    from datetime import timedelta

    from django.utils import timezone

    from telephony.models import CallControlApp, PhoneNumber, SimulatorRule, StockNumber
    from tenants.models import Account

    account, _ = Account.objects.get_or_create(slug=SLUG, defaults={"name": "Benchmark: call engine"})
    wipe(account)
    CallControlApp.objects.filter(account=account).delete()
    SimulatorRule.objects.update_or_create(match="+15550199999", defaults={"action": "no-answer", "answer_after_ms": 0})

    def app(name: str, xml: str):
        # The simulated switch runs up to 10^6 times faster, maximum call length included: keep it out of the way.
        return CallControlApp.objects.create(account=account, name=name, mode="xml", xml=xml,
                                             max_call_length_s=10**9)  # fmt: skip

    apps = {
        "overhead": app("overhead", OVERHEAD_FLOW.replace("{callback}", f"{callback_base}/callback")),
        "sustain": app("sustain", SUSTAIN_FLOW.replace("{callback}", f"{callback_base}/sustain")),
        "dial": app("dial", DIAL_FLOW.replace("{action}", f"{callback_base}/action")),
    }
    numbers: dict[str, list[str]] = {}
    now = timezone.now()
    for index, (name, target) in enumerate(apps.items()):
        numbers[name] = []
        for line in range(20):
            value = f"+155501{index}{line:04d}"
            stock, _ = StockNumber.objects.get_or_create(
                number=value, defaults={"digits": value[1:], "country": "US", "status": StockNumber.Status.ASSIGNED}
            )
            number = PhoneNumber.objects.filter(number=value, status="active").first()
            if number is None or number.account_id != account.pk:
                PhoneNumber.objects.filter(number=value, status="active").update(status="released")
                number = PhoneNumber.objects.create(
                    account=account, stock=stock, number=value, leased_at=now, expires_at=now + timedelta(days=30)
                )
            number.call_control_app = target
            number.tn_profile = None
            number.voice_enabled = True
            number.save()
            numbers[name].append(value)
    return account, numbers


def wait_final(call_ids: list[int], timeout: float) -> tuple[int, int]:
    """Wait until every call has ended; (ended, still running)."""
    from telephony.models import Call

    deadline = time.monotonic() + timeout
    while True:
        running = Call.objects.filter(pk__in=call_ids).exclude(flow_state__in=["done", "none"]).count()
        if not running or time.monotonic() > deadline:
            return len(call_ids) - running, running
        time.sleep(0.25)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def command_gaps(call_ids: list[int]) -> tuple[list[float], int]:
    from telephony.models import Call, Event

    public = {str(pid) for pid in Call.objects.filter(pk__in=call_ids).values_list("public_id", flat=True)}
    by_call: dict[str, list[dict]] = {}
    for object_id, payload in (
        Event.objects.filter(type="call.flow", object_id__in=public).order_by("id").values_list("object_id", "payload")
    ):
        by_call.setdefault(object_id, []).append(payload)
    gaps, commands = [], 0
    for events in by_call.values():
        commands += len(events)
        for previous, current in itertools.pairwise(events):
            ended = _time(previous.get("signaled_at")) or _time(previous["ended_at"])
            gaps.append((_time(current["started_at"]) - ended).total_seconds() * 1000)
    return gaps, commands


# --- Phases -------------------------------------------------------------------------------------------------


def overhead(numbers: list[str], inline: bool) -> dict:
    env = {"SIMULATED_SWITCH_SPEED": "1000000"}
    if not inline:
        # Media and pauses of tens of ms (more than the 5 ms a step waits in place), each reported through the
        # database and a task.
        env = {"SIMULATED_SWITCH_SPEED": "10", "ENGINE_INLINE_WAIT_MS": "0"}
    workers = start_workers(env, f"bench-engine-overhead-{'inline' if inline else 'broker'}.log")
    try:
        # Via the broker every command is a task of its own (15 per call): a lower rate keeps the workers from
        # queueing, so what is measured is the hop, not a backlog.
        calls, rate = (OVERHEAD_CALLS, OVERHEAD_RATE) if inline else (OVERHEAD_CALLS // 4, OVERHEAD_RATE / 5)
        meter = CpuMeter(workers)
        profiler = profile(workers, "overhead-inline" if inline else "overhead-broker")
        placed, injector_cpu, injector_backends = inject(numbers, rate, calls / rate)
        ids = [pk for pk, _ in placed]
        ended, running = wait_final(ids, DRAIN_SECONDS)
        cpu = cpu_per_call(meter.stop(injector_backends), injector_cpu, len(ids))
        stop_profile(profiler)
    finally:
        stop_workers(workers)
    gaps, commands = command_gaps(ids)
    return {
        "calls": len(ids), "ended": ended, "stuck": running, "commands": commands, **summary(gaps),
        "load_average": os.getloadavg(), "cpu": cpu,
    }  # fmt: skip


def dial_round_trip(numbers: list[str]) -> dict:
    from django.utils import timezone

    from telephony.models import Call, CallHttpRequest, Event
    from telephony.services.calls import switch_leg_event
    from telephony.switch.simulated import simulate_inbound_call

    workers = start_workers({"SIMULATED_SWITCH_SPEED": "10"}, "bench-engine-dial.log")
    trips, ids = [], []
    try:
        for n in range(DIAL_CALLS):
            call = simulate_inbound_call(from_number=f"+1212555{n:04d}", to_number=numbers[n % len(numbers)]).call
            ids.append(call.pk)
            deadline = time.monotonic() + 10
            b_leg = None
            while time.monotonic() < deadline:
                b_leg = Call.objects.filter(parent_id=call.pk, status="ringing").first()
                if b_leg:
                    break
                time.sleep(0.002)
            if b_leg is None:
                continue
            switch_leg_event(b_leg, "busy", sip_code=486, cause=17)
        ended, running = wait_final(ids, DRAIN_SECONDS)
    finally:
        stop_workers(workers)
    for call in Call.objects.filter(pk__in=ids):
        b_leg = Call.objects.filter(parent_id=call.pk).first()
        hangup = next(
            (
                p
                for p in Event.objects.filter(type="call.flow", object_id=str(call.public_id)).values_list(
                    "payload", flat=True
                )
                if p["command"] == "Hangup"
            ),
            None,
        )
        action = CallHttpRequest.objects.filter(call=call, purpose="dial_action").first()
        if not (b_leg and b_leg.ended_at and hangup and action):
            continue
        action_ms = sum(a.get("duration_ms") or 0 for a in action.attempts)
        trip = (_time(hangup["started_at"]) - b_leg.ended_at).total_seconds() * 1000 - action_ms
        trips.append(trip)
    del timezone
    return {
        "calls": len(ids), "ended": ended, "stuck": running, **summary(trips), "action_request_ms_excluded": True,
        "load_average": os.getloadavg(),
    }  # fmt: skip


def sustained(numbers: list[str], rate: float, seconds: float) -> dict:
    from django.db.models import Max, Min

    from telephony.models import Call

    workers = start_workers({"SIMULATED_SWITCH_SPEED": "1000000"}, f"bench-engine-sustain-{rate:g}.log")
    try:
        meter = CpuMeter(workers)
        profiler = profile(workers, f"sustain-{rate:g}")
        placed, injector_cpu, injector_backends = inject(numbers, rate, seconds)
        ids = [pk for pk, _ in placed]
        ended, running = wait_final(ids, DRAIN_SECONDS)
        cpu = cpu_per_call(meter.stop(injector_backends), injector_cpu, len(ids))
        stop_profile(profiler)
    finally:
        stop_workers(workers)
    calls = Call.objects.filter(pk__in=ids, parent__isnull=True)
    span = calls.aggregate(first=Min("created_at"), last=Max("ended_at"))
    completed = calls.filter(status="completed", end_reason="done").count()
    durations = [
        (c.ended_at - c.created_at).total_seconds() * 1000 for c in calls.only("created_at", "ended_at") if c.ended_at
    ]
    placed_span = max(t for _, t in placed) - min(t for _, t in placed) if placed else 0
    wall = (span["last"] - span["first"]).total_seconds() if span["first"] and span["last"] else 0
    return {
        "offered_rate_per_s": rate,
        "placed": len(ids),
        "placed_rate_per_s": round(len(ids) / placed_span, 1) if placed_span else None,
        "completed": completed,
        "ended": ended,
        "stuck": running,
        "completed_rate_per_s": round(completed / wall, 1) if wall else None,
        "call_time": summary(durations),
        "load_average": os.getloadavg(),
        "cpu": cpu,
    }


def keeps_up(outcome: dict) -> bool:
    placed_ok = (outcome.get("placed_rate_per_s") or 0) >= 0.95 * outcome["offered_rate_per_s"]
    return placed_ok and outcome["stuck"] == 0 and outcome["call_time"]["p99_ms"] < 2000


def flush_broker() -> None:
    """The bench's own Redis database: queues left by an earlier run, and periodic tasks no bench worker consumes."""
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()


def main() -> int:
    setup_django()
    from django.db import connection

    if connection.vendor != "postgresql":
        print("bench_engine needs PostgreSQL: set DATABASE_URL=postgres://... (the targets assume it)")
        return 0
    flush_broker()
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=run_server, args=(child,), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{parent.recv()}"
    account, numbers = prepare(base)
    results: dict = {"machine_cpus": os.cpu_count()}
    results["load_average_at_start"] = os.getloadavg()
    try:
        if "1a" in PHASES:
            print("1a. command overhead, inline switch events ...", flush=True)
            results["command_overhead_inline"] = overhead(numbers["overhead"], inline=True)
            print(json.dumps(results["command_overhead_inline"]), flush=True)
        if "1b" in PHASES:
            print("1b. command overhead, every switch event through the broker ...", flush=True)
            results["command_overhead_via_broker"] = overhead(numbers["overhead"], inline=False)
            print(json.dumps(results["command_overhead_via_broker"]), flush=True)
        if "2" in PHASES:
            print("2. Dial action round trip ...", flush=True)
            results["dial_action_round_trip"] = dial_round_trip(numbers["dial"])
            print(json.dumps(results["dial_action_round_trip"]), flush=True)
        if "3" not in PHASES:
            return finish(results)
        print(f"3. sustained calls at {SUSTAIN_RATE}/s for {SUSTAIN_SECONDS} s ...", flush=True)
        results["sustained"] = sustained(numbers["sustain"], SUSTAIN_RATE, SUSTAIN_SECONDS)
        print(json.dumps(results["sustained"]), flush=True)
        # Then the highest of a few lower rates this machine keeps up with: every call placed on time and ended
        # within 2 s (the flow itself takes milliseconds), i.e. no backlog building up.
        results["sustained_search"] = []
        if not keeps_up(results["sustained"]):
            for rate in SEARCH_RATES:
                if rate >= SUSTAIN_RATE:
                    continue
                print(f"3b. sustained calls at {rate}/s for {SEARCH_SECONDS} s ...", flush=True)
                outcome = sustained(numbers["sustain"], rate, SEARCH_SECONDS)
                results["sustained_search"].append(outcome)
                print(json.dumps(outcome), flush=True)
                if keeps_up(outcome):
                    results["max_sustained_rate_per_s"] = rate
                    break
        else:
            results["max_sustained_rate_per_s"] = SUSTAIN_RATE
    finally:
        wipe(account)
        server.kill()
        flush_broker()
    return finish(results)


def finish(results: dict) -> int:
    results["load_average_at_end"] = os.getloadavg()
    results["targets"] = {
        "command_overhead_p50_ms": 5,
        "command_overhead_p99_ms": 25,
        "dial_action_round_trip_p99_ms": 50,
        "calls_per_s": 100,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

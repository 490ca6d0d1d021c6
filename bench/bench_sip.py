"""The SIP edge: REGISTERs per second through real Kamailio, and calls per second routed by the portal.

Needs PostgreSQL (DATABASE_URL) and the `kamailio` and `sipp` programs (`make sip` installs them). Sets up the
account `bench-sip` (USERS SIP users, an IP trunk on 127.0.0.2, a number with a TN profile whose blacklist holds
1,000 entries, routed to a SIP connection), starts the portal (uvicorn, as docker/start-web does) and
Kamailio (the project's configuration) on free ports, then:

1. REGISTER: sipp registers the users (injection file, digest auth: two transactions each) at a fixed offered
   rate; the figure is successful registrations per second. Target: >= 500/s.
2. Route decisions: INVITE decisions posted to /internal/sip/route as Kamailio's async workers do, at
   ROUTE_RATE a second for ROUTE_SECONDS (open loop, after ROUTE_WARMUP_SECONDS (2) at the same rate that are
   not counted: a restarted server's first requests, see portal/asgi.py), half from blacklisted callers
   (refused, recorded), half allowed (A- and B-leg recorded, relayed); then a closed loop of ROUTE_THREADS
   clients for the ceiling.
   Figures: decisions/s and latency p50/p99 as the client sees it (each client thread keeps its connection
   open, as Kamailio's named httpcon does) and as the portal measures it (the view's Server-Timing: the
   decision's time and CPU), and the portal's CPU per decision: its processes plus their PostgreSQL backends
   (/proc), which the machine's other load does not inflate the way it inflates latencies. Target: >= 100/s,
   p99 <= 20 ms. The portal runs as in production (docker/start-web): uvicorn with WEB_CONCURRENCY (2)
   processes and a connection pool.
3. End to end: sipp sends blacklisted trunk INVITEs through Kamailio at 100/s; each is decided by the portal
   and refused 603. Figures: calls completed per second, sipp's failures, and the INVITE -> 603 time that sipp
   measures (p50/p99: Kamailio, its HTTP request and the decision together).
Each phase records the load average (1 min) before and after it: the machine is shared.

    DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/portal .venv/bin/python bench/bench_sip.py
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
os.environ["DEBUG"] = "false"
os.environ.setdefault("SECRET_KEY", "bench-sip-secret-key-not-for-production")
# Every allowed call stays ringing in this benchmark: the account channel limit would turn them into 503s.
os.environ["CALL_ACCOUNT_CHANNEL_LIMIT"] = "0"

USERS = int(os.environ.get("BENCH_SIP_USERS", "2000"))
REGISTER_RATE = int(os.environ.get("BENCH_SIP_REGISTER_RATE", "700"))
ROUTE_THREADS = int(os.environ.get("BENCH_SIP_ROUTE_THREADS", "4"))
ROUTE_RATE = float(os.environ.get("BENCH_SIP_ROUTE_RATE", "100"))
WEB_WORKERS = os.environ.get("WEB_CONCURRENCY", "2")
ROUTE_SECONDS = float(os.environ.get("BENCH_SIP_ROUTE_SECONDS", "10"))
ROUTE_WARMUP_SECONDS = float(os.environ.get("BENCH_SIP_ROUTE_WARMUP_SECONDS", "2"))
ASYNC_WORKERS = int(os.environ.get("BENCH_SIP_ASYNC_WORKERS", "8"))
PASSWORD = "Bench-password-2031"
SLUG = "bench-sip"


def main() -> int:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("bench_sip needs PostgreSQL: set DATABASE_URL=postgres://... (skipped)")
        return 0
    if not shutil.which("sipp") or not Path("/usr/sbin/kamailio").exists():
        print("bench_sip needs kamailio and sipp (`make sip` installs them) (skipped)")
        return 0
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False
    data = setup()
    from telephony.tests.sip_edge_support import free_port, start_kamailio, stop_kamailio

    work = Path(tempfile.mkdtemp(prefix="bench-sip-"))
    port = free_port()
    env = {**os.environ, "DB_POOL_MAX_SIZE": "10"}  # per process, as docker/start-web sets it
    log = open(work / "portal.log", "w")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/uvicorn"), "portal.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning", "--workers", WEB_WORKERS],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    portal = f"http://127.0.0.1:{port}"
    edge = None
    results: dict = {"users": USERS, "load_before": os.getloadavg()}
    try:
        wait_http(portal + "/healthz")
        edge = start_kamailio(work / "kamailio", portal, children=4, async_workers=ASYNC_WORKERS, debug=1)
        results["register"] = phase(bench_register, edge, data, work)
        meter = CpuMeter(server.pid)
        results["route"] = phase(bench_route, portal, data)
        results["route"]["portal_cpu"] = meter.per(results["route"]["decisions"] + results["route"]["closed_loop"])
        meter = CpuMeter(server.pid, edge.process.pid)
        results["end_to_end"] = phase(bench_end_to_end, edge, data, work)
        results["end_to_end"]["cpu"] = meter.per(results["end_to_end"]["calls"])
    finally:
        if edge is not None:
            stop_kamailio(edge)
        server.terminate()
        server.wait(timeout=20)
        log.close()
    results["load_after"] = os.getloadavg()
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "sip.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    register_ok = results["register"]["per_second"] >= 500
    route_ok = results["route"]["per_second"] >= 100 and results["route"]["p99_ms"] <= 20
    print(f"REGISTER target (>= 500/s): {'met' if register_ok else 'NOT met'}; "
          f"route target (>= 100/s, p99 <= 20 ms): {'met' if route_ok else 'NOT met'}")  # fmt: skip
    return 0


def phase(run, *args) -> dict:
    before = os.getloadavg()[0]
    figures = run(*args)
    return {**figures, "load_1min_before": round(before, 2), "load_1min_after": round(os.getloadavg()[0], 2)}


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(*groups: int) -> float:
    """User + system CPU seconds of every live process in these process groups."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[2]) in groups:
                total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def backend_cpu_seconds() -> dict[int, float]:
    """CPU seconds of the other PostgreSQL backends of this database (the portal's and Kamailio's)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [pid for (pid,) in cursor.fetchall()]
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return found


class CpuMeter:
    """CPU used by process groups (the portal's uvicorn processes, Kamailio's) and by the database's backends."""

    def __init__(self, *groups: int):
        self.groups = groups
        self.start = group_cpu_seconds(*groups)
        self.backends = backend_cpu_seconds()

    def per(self, operations: int) -> dict:
        processes = group_cpu_seconds(*self.groups) - self.start
        database = sum(cpu - self.backends.get(pid, 0.0) for pid, cpu in backend_cpu_seconds().items())
        per = max(operations, 1)
        return {
            "operations": operations,
            "processes_cpu_ms_each": round(processes * 1000 / per, 2),
            "database_cpu_ms_each": round(database * 1000 / per, 2),
            "total_cpu_ms_each": round((processes + database) * 1000 / per, 2),
        }


def setup() -> dict:
    from django.db import connection, transaction

    from telephony.models import Call, PhoneNumber, SipConnection, SipDomain, SipUser
    from telephony.services.profiles import caller_list_change, tn_profile_create
    from telephony.sipauth import digest_hashes
    from telephony.tests.isolation_sip import make_number
    from tenants.models import Account

    account, _ = Account.objects.get_or_create(slug=SLUG, defaults={"name": "Bench SIP"})
    Call.objects.filter(account=account).delete()
    domain = SipDomain.objects.filter(account=account).first()
    if domain is None:
        from telephony.services.sip import sip_domain_create

        domain = sip_domain_create(account=account, actor=None, name=SLUG)
    have = SipUser.objects.filter(domain=domain).count()
    if have < USERS:
        users = []
        for i in range(have, USERS):
            login = f"u{i:05d}"
            ha1, ha1b = digest_hashes(login, domain.domain, PASSWORD)
            users.append(SipUser(account=account, domain=domain, login=login, ha1=ha1, ha1b=ha1b))
        SipUser.objects.bulk_create(users, batch_size=1000)
    number = PhoneNumber.objects.filter(account=account, status="active").first()
    if number is None:
        with transaction.atomic():
            SipConnection.objects.create(account=account, name="Bench carrier", auth_type="ip",
                                         allowed_ips=["127.0.0.2"])  # fmt: skip
            pbx = SipConnection.objects.create(account=account, name="Bench PBX", auth_type="ip",
                                               allowed_ips=["198.51.100.1"], inbound_host="127.0.0.1",
                                               inbound_port=9)  # fmt: skip
            profile = tn_profile_create(account=account, actor=None, name="Bench block")
            entries = [f"+1900555{i:04d}" for i in range(1000)]
            caller_list_change(account=account, actor=None, profile=profile, list_type="blacklist", add=entries)
            number = make_number(account, "+12015557777", tn_profile=profile, sip_connection=pbx)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sip_edge_location WHERE domain = %s", [domain.domain])
    return {"domain": domain.domain, "number": number.number}


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def _sipp(edge, scenario: Path, *args: str, ip: str = "127.0.0.1", timeout: int = 120) -> tuple[int, float, str]:
    started = time.monotonic()
    stats = scenario.with_suffix(".stat.csv")
    result = subprocess.run(
        ["sipp", edge.target, "-sf", str(scenario), "-nostdin", "-i", ip, "-bind_local", "-timeout", f"{timeout}s",
         "-trace_stat", "-stf", str(stats), "-fd", "1", *args],
        cwd=scenario.parent, capture_output=True, text=True,
    )  # fmt: skip
    return result.returncode, time.monotonic() - started, stats.read_text() if stats.exists() else ""


def _stat(csv_text: str, column: str) -> int:
    lines = [line for line in csv_text.splitlines() if line.strip()]
    if len(lines) < 2:
        return 0
    header = lines[0].split(";")
    return int(lines[-1].split(";")[header.index(column)])


def bench_register(edge, data: dict, work: Path) -> dict:
    scenario = work / "register.xml"
    scenario.write_text((ROOT / "telephony/tests/sipp/register.xml").read_text().replace("EXPECTED", "200"))
    users = work / "users.csv"
    lines = ["SEQUENTIAL"] + [
        f"u{i:05d};{data['domain']};{PASSWORD};600;[authentication username=u{i:05d} password={PASSWORD}]"
        for i in range(USERS)
    ]
    users.write_text("\n".join(lines) + "\n")
    total = USERS
    code, elapsed, stats = _sipp(edge, scenario, "-inf", str(users), "-r", str(REGISTER_RATE), "-m", str(total),
                                 "-l", "2000")  # fmt: skip
    ok = _stat(stats, "SuccessfulCall(C)")
    failed = _stat(stats, "FailedCall(C)")
    return {"offered_rate": REGISTER_RATE, "registrations": total, "successful": ok, "failed": failed,
            "seconds": round(elapsed, 2), "per_second": round(ok / elapsed, 1), "sipp_exit": code}  # fmt: skip


def bench_route(portal: str, data: dict) -> dict:
    """Open loop: ROUTE_RATE decisions a second for ROUTE_SECONDS (Kamailio's async workers do not wait for
    each other), then closed loop with ROUTE_THREADS clients for the ceiling."""
    from concurrent.futures import ThreadPoolExecutor

    from telephony.edge.config import edge_secret

    secret = edge_secret()
    serial = iter(range(10**9))
    lock = threading.Lock()
    local = threading.local()
    address = urllib.parse.urlsplit(portal)

    def post(body: bytes) -> tuple[dict, str]:
        # One kept-alive connection per client thread, as each of Kamailio's async workers keeps its httpcon.
        for attempt in (1, 2):
            if getattr(local, "connection", None) is None:
                local.connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
            try:
                local.connection.request("POST", "/internal/sip/route", body=body, headers={
                    "X-Sip-Edge-Secret": secret, "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
                response = local.connection.getresponse()
                return json.loads(response.read()), response.getheader("Server-Timing", "")
            except (http.client.HTTPException, OSError):
                local.connection.close()
                local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def decide(rng: random.Random) -> tuple[float, str, dict]:
        blocked = rng.random() < 0.5
        caller = f"+1900555{rng.randrange(1000):04d}" if blocked else f"+1212{rng.randrange(10**7):07d}"
        with lock:
            n = next(serial)
        body = urllib.parse.urlencode({
            "call_id": f"bench-{n}-{time.time_ns()}", "from_tag": "b", "from_user": caller,
            "from_domain": "127.0.0.2", "to_user": data["number"], "to_domain": "127.0.0.1",
            "source_ip": "127.0.0.2", "source_port": "5060", "transport": "udp", "auth_user": "", "auth_realm": "",
        }).encode()  # fmt: skip
        started = time.perf_counter()
        answer, timing = post(body)
        took = (time.perf_counter() - started) * 1000
        server = {name: float(value) for name, _, value in
                  (part.strip().partition(";dur=") for part in timing.split(",")) if value}  # fmt: skip
        return took, answer["action"] if answer["action"] != "reply" else f"reply {answer['code']}", server

    def open_loop(seconds: float, first: int) -> tuple[list, float]:
        total = int(ROUTE_RATE * seconds)
        started = time.monotonic()

        def paced(i: int) -> tuple[float, str, dict]:
            delay = started + i / ROUTE_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            return decide(random.Random(first + i))

        with ThreadPoolExecutor(max_workers=32) as pool:
            results = list(pool.map(paced, range(total)))
        return results, time.monotonic() - started

    # Warm-up, not counted: the first decisions of each server thread run code paths for the first time and may
    # meet a connection the pool has just opened (a restart's cold start, once per deploy, not the steady state).
    if ROUTE_WARMUP_SECONDS > 0:
        open_loop(ROUTE_WARMUP_SECONDS, 10**6)
    # Open loop at the target rate.
    results, elapsed = open_loop(ROUTE_SECONDS, 0)
    latencies = sorted(took for took, _, _ in results)
    decide_ms = sorted(server.get("decide", 0.0) for _, _, server in results)
    cpu_ms = sorted(server.get("cpu", 0.0) for _, _, server in results)
    outcomes: dict[str, int] = {}
    for _, outcome, _ in results:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    # Closed loop: the ceiling with ROUTE_THREADS clients that each wait for their answer.
    count = 0
    deadline = time.monotonic() + 5

    def client(seed: int) -> None:
        nonlocal count
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            decide(rng)
            with lock:
                count += 1

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(ROUTE_THREADS)]
    closed_started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "offered_rate": ROUTE_RATE,
        "decisions": len(latencies),
        "seconds": round(elapsed, 2),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": percentile(latencies, 99),
        "max_ms": round(latencies[-1], 2),
        # As the portal's view measures it (Server-Timing): the decision alone, and its thread's CPU.
        "server_decide_p50_ms": round(statistics.median(decide_ms), 2),
        "server_decide_p99_ms": percentile(decide_ms, 99),
        "server_cpu_p50_ms": round(statistics.median(cpu_ms), 2),
        "server_cpu_mean_ms": round(statistics.fmean(cpu_ms), 2),
        "outcomes": outcomes,
        "closed_loop_threads": ROUTE_THREADS,
        "closed_loop": count,
        "closed_loop_per_second": round(count / (time.monotonic() - closed_started), 1),
    }


def percentile(ordered: list[float], pct: float) -> float:
    return round(ordered[max(0, int(len(ordered) * pct / 100) - 1)], 2) if ordered else 0.0


def bench_end_to_end(edge, data: dict, work: Path) -> dict:
    from telephony.tests.sip_edge_support import REFUSED

    text = (ROOT / "telephony/tests/sipp/trunk_invite.xml").read_text().replace("BRANCH", REFUSED)
    # sipp times INVITE -> final answer (response time 1): Kamailio, its request to the portal, the decision.
    text = text.replace('<send retrans="500">', '<send retrans="500" start_rtd="1">', 1)
    text = text.replace('<recv response="EXPECTED"/>', '<recv response="EXPECTED" rtd="1"/>', 1)
    scenario = work / "trunk.xml"
    scenario.write_text(text.replace("CALLER", "+19005550001").replace("EXPECTED", "603"))
    calls = 1000
    code, elapsed, stats = _sipp(edge, scenario, "-s", data["number"], "-r", "100", "-m", str(calls), "-l", "500",
                                 "-trace_rtt", "-rtt_freq", "1", ip="127.0.0.2")  # fmt: skip
    ok = _stat(stats, "SuccessfulCall(C)")
    rtts = []
    for path in work.glob("trunk_*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 2:
                try:
                    rtts.append(float(parts[1]))
                except ValueError:
                    continue
        path.unlink()
    rtts.sort()
    return {"offered_rate": 100, "calls": calls, "successful": ok, "failed": _stat(stats, "FailedCall(C)"),
            "seconds": round(elapsed, 2), "per_second": round(ok / elapsed, 1), "sipp_exit": code,
            "invite_to_final_p50_ms": round(statistics.median(rtts), 2) if rtts else None,
            "invite_to_final_p99_ms": percentile(rtts, 99), "timed": len(rtts)}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

"""Accepting a 100,000-destination bulk call, end to end through the API.

A real HTTP server (uvicorn on the project's ASGI app, its own process) and a real client (httpx): each run
POSTs /api/v1/bulk-calls with 100,000 destinations (1 % of them bad, 1 % on the do-not-call list) and times
from the first byte sent to the last byte of the 201 received. Everything between is the product's own path:
authentication, JSON parsing, checking every destination, the bulk insert, the `bulk_call.created` event.
The campaign's window is set in the past week's unused hour so nothing is dialed during the bench.

Target: <= 5 s per request.

    DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/portal .venv/bin/python bench/bench_bulk.py

On PostgreSQL when DATABASE_URL says so (the target assumes it), else on the embedded SQLite. Data lives in the
account `bench-bulk`, deleted at the start and the end. Writes bench/out/bench_bulk.json.
"""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "bench_bulk.json"
SLUG = "bench-bulk"
DESTINATIONS = int(os.environ.get("BENCH_BULK_DESTINATIONS", "100000"))
RUNS = int(os.environ.get("BENCH_BULK_RUNS", "3"))
TARGET_S = 5.0


def environment() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup():
    from datetime import timedelta

    from django.utils import timezone

    from telephony.models import PhoneNumber, StockNumber
    from tenants.models import Account
    from tenants.tests.factories import make_api_key

    Account.objects.filter(slug=SLUG).delete()
    StockNumber.objects.filter(number="+15550177000").delete()
    account = Account.objects.create(name="Bench bulk", slug=SLUG)
    stock = StockNumber.objects.create(number="+15550177000", digits="15550177000", country="US", status="assigned")
    now = timezone.now()
    PhoneNumber.objects.create(
        account=account, stock=stock, number="+15550177000", leased_at=now, expires_at=now + timedelta(days=30)
    )
    secret, _ = make_api_key(account, name="bench")
    return account, secret


def teardown() -> None:
    from telephony.models import StockNumber
    from tenants.models import Account

    Account.objects.filter(slug=SLUG).delete()
    StockNumber.objects.filter(number="+15550177000").delete()


def body() -> dict:
    rng = random.Random(7)
    # Area codes 201-899: clear of the premium-rate +1900 and +1976, which would be refused.
    numbers = [f"+1{rng.randint(2012000000, 8999999999)}" for _ in range(DESTINATIONS * 2)]
    unique = list(dict.fromkeys(numbers))[:DESTINATIONS]
    for index in range(0, DESTINATIONS, 100):
        unique[index] = f"bad-{index}"
    return {
        "from": "+15550177000",
        "destinations": unique,
        "xml": "<Response><Say>Your appointment is tomorrow at nine.</Say><Hangup/></Response>",
        "calls_per_second": 50,
        "max_concurrent": 200,
        "window_days": ["mon"],
        "window_start": "03:00",
        "window_end": "03:01",
        "time_zone": "Pacific/Kiritimati",
        "retry_rules": {"busy": {"attempts": 3, "delay_s": 600}, "no-answer": {"attempts": 2, "delay_s": 1800}},
        "do_not_call": unique[1::100][: DESTINATIONS // 100],
    }


def main() -> int:
    environment()
    import httpx
    from django.db import connection

    _account, secret = setup()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--port", str(port), "--log-level", "warning",
         "--no-access-log"],
        cwd=ROOT,
    )  # fmt: skip
    results = []
    try:
        url = f"http://127.0.0.1:{port}/api/v1/bulk-calls"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        payload = json.dumps(body()).encode()
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        with httpx.Client(timeout=120) as client:
            for run in range(RUNS + 1):  # the first warms the server's imports and caches, and is not counted
                started = time.perf_counter()
                response = client.post(url, content=payload, headers=headers)
                elapsed = time.perf_counter() - started
                assert response.status_code == 201, response.text[:500]
                answer = response.json()
                assert answer["total"] == DESTINATIONS - DESTINATIONS // 100, answer["total"]
                assert answer["invalid_count"] == DESTINATIONS // 100
                assert answer["counts"]["do-not-call"] == DESTINATIONS // 100
                if run:
                    results.append(elapsed)
                print(f"run {run}{' (warm-up)' if not run else ''}: {elapsed:.2f} s, {len(payload) / 1e6:.1f} MB")
    finally:
        server.terminate()
        server.wait(timeout=10)
        teardown()

    summary = {
        "at": datetime.now().isoformat(timespec="seconds"),
        "database": connection.vendor,
        "destinations": DESTINATIONS,
        "runs_s": [round(r, 3) for r in results],
        "median_s": round(statistics.median(results), 3),
        "max_s": round(max(results), 3),
        "target_s": TARGET_S,
        "met": max(results) <= TARGET_S,
        "load": os.getloadavg(),
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0 if summary["met"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Shared pytest fixtures, loaded for the whole suite (pyproject: -p tenants.tests.fixtures).

The cast: Alice owns account A, Bob is a viewer on A, Charlie owns account B. Tests of isolation act
as Charlie against A's objects and expect 404s.

Services the suite talks to are real. When one is missing a test that needs it skips with the reason;
with REQUIRE_SERVICES=1 (CI) that skip is a failure instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def service_missing(reason: str) -> None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1: a missing service is a failure)", pytrace=False)
    pytest.skip(reason)


def redis_url() -> str | None:
    from django.conf import settings

    return settings.REDIS_URL or None


def redis_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres"):
        from django.db import connection

        if connection.vendor != "postgresql":
            service_missing("needs PostgreSQL: set DATABASE_URL=postgres://...")
    if item.get_closest_marker("redis"):
        url = redis_url()
        if not url or not redis_reachable(url):
            service_missing("needs Redis: set REDIS_URL=redis://...")
    if item.get_closest_marker("browser") and not Path(CHROMIUM).exists():
        service_missing(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")


@dataclass
class Member:
    user: object
    account: object
    membership: object
    password: str


@pytest.fixture
def alice(db):
    from tenants.tests.factories import PASSWORD, MembershipFactory, UserFactory

    user = UserFactory(email="alice@example.com", name="Alice")
    membership = MembershipFactory(user=user, account__name="Account A", account__slug="account-a", role="owner")
    return Member(user, membership.account, membership, PASSWORD)


@pytest.fixture
def bob(alice):
    from tenants.tests.factories import PASSWORD, MembershipFactory, UserFactory

    user = UserFactory(email="bob@example.com", name="Bob")
    membership = MembershipFactory(user=user, account=alice.account, role="viewer")
    return Member(user, alice.account, membership, PASSWORD)


@pytest.fixture
def charlie(db):
    from tenants.tests.factories import PASSWORD, MembershipFactory, UserFactory

    user = UserFactory(email="charlie@example.com", name="Charlie")
    membership = MembershipFactory(user=user, account__name="Account B", account__slug="account-b", role="owner")
    return Member(user, membership.account, membership, PASSWORD)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


def _client_with_key(account, **kwargs):
    from rest_framework.test import APIClient

    from tenants.tests.factories import make_api_key

    secret, _ = make_api_key(account, **kwargs)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    client.secret = secret
    return client


@pytest.fixture
def alice_api(alice):
    """An API client acting for account A with a full API key."""
    return _client_with_key(alice.account, actor=alice.user)


@pytest.fixture
def charlie_api(charlie):
    return _client_with_key(charlie.account, actor=charlie.user)


@pytest.fixture
def token_client():
    """token_client(user, account) -> an API client authenticated with a login token for that account."""
    from rest_framework.test import APIClient

    from tenants.credentials import issue_auth_token

    def make(user, account):
        token, _ = issue_auth_token(user, account)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit and login-failure counters live in the cache; each test starts from zero."""
    from django.core.cache import cache

    cache.clear()
    yield


# --- A real Celery worker ------------------------------------------------------------------------


@pytest.fixture
def celery_worker(transactional_db):
    """A real `celery worker` process on the suite's broker and test database, stopped after the test.

    Tests that use it commit their data (transactional_db) so the worker, another process, can see it.
    """
    process = start_celery_worker()
    yield process
    stop_celery_worker(process)


def start_celery_worker(
    *,
    env: dict[str, str] | None = None,
    pool: str = "solo",
    concurrency: int | None = None,
    beat: bool = False,
    log_name: str = "test-worker.log",
) -> subprocess.Popen:
    """Start a worker as the `celery_worker` fixture does, for tests that need more than one or other options.

    `env` overrides settings (e.g. CELERY_BROKER_URL); `beat` runs the periodic tasks in it too. The worker
    leads its own process group, so `os.killpg(process.pid, SIGKILL)` kills it with its pool children.
    Stop it with stop_celery_worker(). The test must use transactional data (transactional_db).
    """
    from django.conf import settings
    from django.db import connection

    if connection.vendor == "sqlite":
        db_name = str(connection.settings_dict["NAME"])
    else:
        db_name = connection.settings_dict["NAME"]
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "WORKER_TEST_DATABASE": db_name,
        "VAR_DIR": str(settings.VAR_DIR),
        **(env or {}),
    }
    log_path = settings.VAR_DIR / log_name
    log = open(log_path, "w")  # noqa: SIM115 - closed by stop_celery_worker
    command = [
        sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "default,webhooks,calls", "-P", pool,
        "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "INFO",
    ]  # fmt: skip
    if concurrency:
        command += ["--concurrency", str(concurrency)]
    if beat:
        schedule = settings.VAR_DIR / f"{log_name}.beat-schedule"
        schedule.unlink(missing_ok=True)
        command += ["-B", "-s", str(schedule)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    process.log_file = log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while "ready." not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_celery_worker(process)
            pytest.fail(f"the Celery worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    return process


def stop_celery_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # pool children and embedded beat, if any outlived it
    process.wait(timeout=10)
    process.log_file.close()  # type: ignore[attr-defined]


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05, message: str = "condition"):
    """Poll until predicate() is truthy; the assertion names what never happened.

    Patient by default: real worker and server processes share two cores with the rest of the suite, and a
    passing condition returns at once, so only a real failure pays the full wait.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@pytest.fixture
def chromium_path():
    return shutil.which("chromium") or CHROMIUM


# --- A real browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    from tenants.tests.browser import launch_browser

    with launch_browser(CHROMIUM) as launched:
        yield launched


@pytest.fixture
def page(browser):
    from tenants.tests.browser import new_page

    context, page = new_page(browser)
    yield page
    context.close()
    _wait_for_requests_in_flight()


def _wait_for_requests_in_flight(timeout: float = 5.0) -> None:
    """Let the live server finish what the closed page asked of it before the test's database is flushed.

    A page's scripts (the dashboard's live pane fetches a stream token and the latest events) can leave a request
    running in the live server after the browser closed; a request still writing while the flush's TRUNCATE takes
    its locks can deadlock with it. Bounded: a worker of the test that keeps querying only delays the flush.
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)

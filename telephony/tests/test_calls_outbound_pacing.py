"""Outbound pacing: calls per second, the concurrent call limit, and the bounded queue, per account.

Assertions are on what the platform recorded (each call's dispatch slot and its `initiated_at`, the moment
the engine dispatched it), not on how long the test took.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from telephony.engine import runner
from telephony.models import Call, OutboundPolicy
from telephony.services.outbound import call_place, outbound_queue_room
from telephony.tests.engine_support import next_number
from telephony.tests.isolation_sip import make_number
from tenants.tests.factories import AccountFactory
from tenants.tests.fixtures import wait_for

pytestmark = pytest.mark.django_db

QUICK = "<Response><Hangup/></Response>"


@pytest.fixture
def caller(alice):
    return make_number(alice.account, next_number())


def place(account, caller, to: str, xml: str = QUICK) -> Call:
    return call_place(account=account, actor="test", from_=caller.number, to=to, xml=xml)


def slot(call: Call) -> datetime:
    return datetime.fromisoformat(call.variables["engine"]["outbound"]["slot"])


def drive_all(calls: list[Call], timeout: float = 20.0) -> list[Call]:
    """Run the engine on every call until all have ended (each as its wake-ups fall due)."""
    deadline = time.monotonic() + timeout
    while True:
        for call in calls:
            runner.process_call(call.pk)
        fresh = list(Call.objects.filter(pk__in=[c.pk for c in calls]).order_by("pk"))
        if all(c.is_final for c in fresh):
            return fresh
        assert time.monotonic() < deadline, [(c.status, c.flow_state) for c in fresh]
        time.sleep(0.005)


@pytest.mark.worker
def test_a_worker_dispatches_calls_at_the_accounts_rate(celery_worker, alice, caller):
    rate = 10
    # The queue starts a second from now, so every call takes the next slot however long placing one takes on a
    # busy machine (on an idle queue a call placed more than 1/rate after the previous slot is due at once).
    OutboundPolicy.objects.create(
        account=alice.account, calls_per_second=rate, next_dispatch_at=timezone.now() + timedelta(seconds=1)
    )

    placed = [place(alice.account, caller, f"+1310555{i:04d}") for i in range(15)]

    wait_for(lambda: Call.objects.filter(pk__in=[c.pk for c in placed], ended_at__isnull=False).count() == 15)
    calls = sorted(Call.objects.filter(pk__in=[c.pk for c in placed]), key=lambda c: c.initiated_at)
    slots = sorted(slot(c) for c in calls)
    assert all(b - a == timedelta(seconds=1 / rate) for a, b in itertools.pairwise(slots))
    # Never ahead of its slot (a countdown may fire a hair early: the engine's 5 ms horizon), and on time within
    # what a busy two-core machine allows: how close to the slots a worker gets is bench_calls.py's to measure.
    lateness = [(c.initiated_at - slot(c)).total_seconds() for c in calls]
    assert min(lateness) >= -0.005 and max(lateness) < 5, lateness


def test_each_call_takes_the_next_slot_of_the_account(alice, charlie, caller):
    OutboundPolicy.objects.create(account=alice.account, calls_per_second=4)

    calls = [place(alice.account, caller, f"+1310556{i:04d}") for i in range(5)]
    other = place(charlie.account, make_number(charlie.account, next_number()), "+13105569999")

    gaps = [(slot(b) - slot(a)).total_seconds() for a, b in itertools.pairwise(calls)]
    assert gaps == [0.25] * 4
    assert slot(other) - other.created_at < timedelta(seconds=0.1)  # another account has its own pace
    calls = drive_all(calls)
    assert all(c.initiated_at >= slot(c) - timedelta(milliseconds=5) for c in calls)


def test_a_call_that_would_wait_longer_than_the_queue_allows_fails_at_once(alice, caller):
    OutboundPolicy.objects.create(account=alice.account, calls_per_second=0.5, max_queue_wait_s=1)

    first = place(alice.account, caller, "+13105570001")
    second = place(alice.account, caller, "+13105570002")

    assert first.status == "queued"
    assert second.status == "failed" and second.sip_code == 503 and second.flow_state == "done"
    assert "outbound queue is full" in second.end_reason and "maximum queue wait of 1 s" in second.end_reason
    assert outbound_queue_room(alice.account) == 0


def test_a_call_over_the_concurrent_limit_waits_for_a_free_channel(alice, caller, settings):
    settings.SIMULATED_SWITCH = {**settings.SIMULATED_SWITCH, "speed": 10.0}
    OutboundPolicy.objects.create(account=alice.account, calls_per_second=50, max_concurrent_calls=1)
    busy_xml = '<Response><Pause length="1000"/></Response>'  # 100 ms at 10x

    first = place(alice.account, caller, "+13105580001", busy_xml)
    second = place(alice.account, caller, "+13105580002", busy_xml)
    first, second = drive_all([first, second])

    assert first.status == second.status == "completed"
    assert second.initiated_at >= first.ended_at  # it waited for the first call's channel
    assert second.variables["engine"]["outbound"]["queue_checks"] >= 1


def test_a_call_still_over_the_concurrent_limit_at_its_deadline_fails_with_the_reason(alice, caller, settings):
    settings.SIMULATED_SWITCH = {**settings.SIMULATED_SWITCH, "speed": 1.0}
    OutboundPolicy.objects.create(account=alice.account, max_concurrent_calls=1, max_queue_wait_s=1)
    first = place(alice.account, caller, "+13105590001", '<Response><Pause length="60000"/></Response>')
    second = place(alice.account, caller, "+13105590002")

    deadline = time.monotonic() + 15
    while not Call.objects.get(pk=second.pk).is_final:
        runner.process_call(first.pk)
        runner.process_call(second.pk)
        assert time.monotonic() < deadline
        time.sleep(0.02)

    second = Call.objects.get(pk=second.pk)
    assert second.status == "failed" and second.initiated_at is None
    assert "in the outbound queue" in second.end_reason and "concurrent call limit (1)" in second.end_reason
    assert not Call.objects.get(pk=first.pk).is_final


def test_queue_room_counts_the_calls_that_fit_in_the_wait(alice):
    OutboundPolicy.objects.create(account=alice.account, calls_per_second=2, max_queue_wait_s=10)

    assert outbound_queue_room(alice.account) == 21  # now, then every 0.5 s up to 10 s


@pytest.mark.postgres
def test_it_gives_callers_placing_at_once_one_slot_each_one_interval_apart(transactional_db):
    # Real concurrent placers, one connection each: the slot is taken by one statement under the policy row's
    # lock, so no two calls share a slot and none is skipped.
    account = AccountFactory()
    number = make_number(account, next_number())
    start = timezone.now() + timedelta(seconds=5)  # a queue already ahead: every call takes the next slot
    OutboundPolicy.objects.create(account=account, calls_per_second=100, next_dispatch_at=start)
    barrier = threading.Barrier(4)

    def feed(offset: int) -> list[Call]:
        try:
            barrier.wait(timeout=10)
            return [place(account, number, f"+1310561{offset + i:04d}") for i in range(10)]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        calls = [call for placed in pool.map(feed, range(0, 40, 10)) for call in placed]

    slots = sorted(slot(call) for call in calls)
    assert slots[0] == start
    assert all(b - a == timedelta(milliseconds=10) for a, b in itertools.pairwise(slots))
    assert OutboundPolicy.objects.get(account=account).next_dispatch_at == slots[-1] + timedelta(milliseconds=10)
    assert all(call.status == "queued" for call in Call.objects.filter(account=account))

"""The bulk call dispatcher: the calling window (time frozen), retries per outcome, pause/resume/cancel.

The dispatcher runs here in the test's process (what the `bulk_tasks.tick` task runs each second), and the calls
it places run on the real engine through `drive`, against the simulated switch's rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from telephony.models import BulkCall, BulkCallItem, Call, Event, SimulatorRule
from telephony.services import bulk_calls
from telephony.tests.engine_support import drive
from telephony.tests.isolation_sip import make_number

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
FLOW = "<Response><Hangup/></Response>"
BUSY, ANSWERS = "+13105550101", "+13105550102"


def at(*args) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


def start(account, destinations, **fields) -> BulkCall:
    number = make_number(account, "+12015550150")
    values = {"xml": FLOW, "calls_per_second": 10, "max_concurrent": 10, **fields}
    return bulk_calls.bulk_call_create(
        account=account, actor=None, from_=number.number, destinations=destinations, **values
    )


def dispatch(bulk: BulkCall) -> int:
    return bulk_calls.bulk_call_dispatch(bulk_call_id=bulk.pk)


def finish_calls(bulk: BulkCall) -> list[Call]:
    calls = list(Call.objects.filter(pk__in=BulkCallItem.objects.filter(bulk_call=bulk).values("last_call")))
    return [drive(call) for call in calls if not call.is_final]


def item(bulk: BulkCall, destination: str) -> BulkCallItem:
    return BulkCallItem.objects.select_related("last_call").get(bulk_call=bulk, destination=destination)


def test_it_calls_only_inside_the_window_and_retries_busy_with_the_same_caller_id(alice):
    SimulatorRule.objects.create(match=BUSY, action="busy")
    SimulatorRule.objects.create(match=ANSWERS, action="answer")
    # Saturday 10:00 in New York: outside a weekday 09:00-17:00 window.
    with time_machine.travel(at(2026, 11, 21, 10, 0), tick=True) as clock:
        bulk = start(
            alice.account, [BUSY, ANSWERS], window_days=["mon", "tue", "wed", "thu", "fri"], window_start="09:00",
            window_end="17:00", time_zone="America/New_York", retry_rules={"busy": {"attempts": 2, "delay_s": 600}},
        )  # fmt: skip
        assert dispatch(bulk) == 0
        clock.move_to(at(2026, 11, 23, 8, 59))  # Monday, a minute early
        assert dispatch(bulk) == 0
        assert not Call.objects.exists()

        clock.move_to(at(2026, 11, 23, 9, 0))
        assert dispatch(bulk) == 2
        finish_calls(bulk)
        dispatch(bulk)  # records the outcomes: busy is due again in 600 s, the answered one is done

        busy, answered = item(bulk, BUSY), item(bulk, ANSWERS)
        assert (busy.state, busy.outcome, busy.attempts) == ("pending", "busy", 1)
        assert busy.next_attempt_at >= busy.last_call.ended_at + timedelta(seconds=600)
        assert (answered.state, answered.outcome, answered.attempts) == ("done", "completed", 1)
        first_call = busy.last_call

        clock.shift(300)
        assert dispatch(bulk) == 0  # not due yet
        clock.shift(301)
        assert dispatch(bulk) == 1
        busy = item(bulk, BUSY)
        assert busy.attempts == 2 and busy.last_call != first_call
        assert busy.last_call.from_number == first_call.from_number == "+12015550150"
        finish_calls(bulk)
        dispatch(bulk)

    busy = item(bulk, BUSY)
    assert (busy.state, busy.outcome, busy.attempts) == ("done", "busy", 2)  # the rule's two calls are used up
    bulk.refresh_from_db()
    assert bulk.status == "completed" and bulk.completed_at is not None
    completed = Event.objects.get(type="bulk_call.completed", object_id=str(bulk.public_id))
    assert completed.payload["counts"]["busy"] == 1 and completed.payload["counts"]["completed"] == 1
    assert Event.objects.filter(type="bulk_call.progress", object_id=str(bulk.public_id)).exists()


def test_a_window_across_midnight_belongs_to_the_day_it_starts_on(alice):
    bulk = start(alice.account, [ANSWERS], window_days=["fri"], window_start="22:00", window_end="02:00",
                 time_zone="America/New_York")  # fmt: skip

    assert bulk_calls.in_window(bulk, at(2026, 11, 20, 23, 30))  # Friday night
    assert bulk_calls.in_window(bulk, at(2026, 11, 21, 1, 30))  # early Saturday: Friday's window
    assert not bulk_calls.in_window(bulk, at(2026, 11, 21, 23, 30))  # Saturday night
    assert not bulk_calls.in_window(bulk, at(2026, 11, 20, 21, 59))


def test_it_holds_the_campaigns_pace_and_concurrency(alice):
    destinations = [f"+1310555{n:04d}" for n in range(20)]
    SimulatorRule.objects.create(match="+1310555*", action="no-answer")
    with time_machine.travel(at(2026, 11, 23, 10, 0), tick=False) as clock:
        bulk = start(alice.account, destinations, calls_per_second=2, max_concurrent=3)
        assert dispatch(bulk) == 2  # one second's worth
        assert dispatch(bulk) == 0  # no time has passed
        clock.shift(1)
        assert dispatch(bulk) == 1  # two more allowed by the pace, one by the concurrency
        clock.shift(10)
        assert dispatch(bulk) == 0  # three in flight


def test_pause_stops_new_calls_resume_continues_and_cancel_ends_the_rest(alice):
    SimulatorRule.objects.create(match="+1310555*", action="answer")
    destinations = [f"+1310555{n:04d}" for n in range(6)]
    with time_machine.travel(at(2026, 11, 23, 10, 0), tick=True) as clock:
        bulk = start(alice.account, destinations, calls_per_second=2)
        assert dispatch(bulk) == 2
        bulk_calls.bulk_call_pause(account=alice.account, actor=None, bulk_call=bulk)
        clock.shift(5)
        assert dispatch(bulk) == 0
        finish_calls(bulk)
        dispatch(bulk)  # a paused campaign still records the calls it had in flight
        assert BulkCallItem.objects.filter(bulk_call=bulk, outcome="completed").count() == 2

        bulk_calls.bulk_call_resume(account=alice.account, actor=None, bulk_call=bulk)
        assert dispatch(bulk) == 2
        bulk_calls.bulk_call_cancel(account=alice.account, actor=None, bulk_call=bulk)
        clock.shift(5)
        assert bulk_calls.bulk_calls_tick() == 0
        finish_calls(bulk)
        bulk_calls.bulk_calls_tick()  # a canceled campaign is still visited while it has calls in flight

    counts = bulk_calls.bulk_call_counts(bulk)
    assert counts["completed"] == 4 and counts["canceled"] == 2 and counts["calling"] == 0
    bulk.refresh_from_db()
    assert bulk.status == "canceled"
    assert Call.objects.count() == 4


def test_the_accounts_own_pace_is_shared_with_single_calls(alice):
    from telephony.services import outbound

    outbound.outbound_policy_update(account=alice.account, actor=None, calls_per_second=1, max_queue_wait_s=2)
    destinations = [f"+1310555{n:04d}" for n in range(20)]
    with time_machine.travel(at(2026, 11, 23, 10, 0), tick=False):
        bulk = start(alice.account, destinations, calls_per_second=50, max_concurrent=100)
        placed = dispatch(bulk)

    # The campaign alone would place 50; the account's queue takes what it dispatches within its 2 s wait.
    assert placed == 3
    assert not Call.objects.filter(status="failed").exists()


def test_a_destination_the_accounts_policy_refuses_ends_failed_with_the_reason(alice):
    from telephony.services import outbound

    outbound.outbound_policy_update(account=alice.account, actor=None, allowed_countries=["GB"])
    with time_machine.travel(at(2026, 11, 23, 10, 0), tick=False):
        bulk = start(alice.account, [ANSWERS, "+442079460000"])
        assert dispatch(bulk) == 1

    refused = item(bulk, ANSWERS)
    assert (refused.state, refused.outcome, refused.attempts, refused.last_call) == ("done", "failed", 1, None)
    assert "GB" in refused.reason


def test_a_campaign_with_nothing_left_to_call_completes_at_its_first_pass(alice):
    bulk = start(alice.account, [ANSWERS], do_not_call=[ANSWERS])

    assert bulk_calls.bulk_calls_tick() == 0

    bulk.refresh_from_db()
    assert bulk.status == "completed" and bulk.last_progress["do-not-call"] == 1
    assert Event.objects.filter(type="bulk_call.completed", object_id=str(bulk.public_id)).exists()

"""The engine in real worker processes: a worker killed mid-call, and another one finishing the call.

Calls are durable: what a call waits for is a row (a wake-up), the position is saved after every step, and a
worker's claim on a call lapses. A second worker (its beat runs the sweeper each second) finds the call and
finishes it, without repeating what the first one committed.
"""

from __future__ import annotations

import os
import signal

import pytest

from telephony.models import Call, CallHttpRequest
from telephony.tests.engine_support import CustomerServer, commands, number_for_app, place
from tenants.tests.fixtures import start_celery_worker, stop_celery_worker, wait_for

pytestmark = pytest.mark.worker


def kill(worker) -> None:
    os.killpg(worker.pid, signal.SIGKILL)  # the worker, its pool children and its embedded beat, without warning
    worker.wait(timeout=10)
    worker.log_file.close()


def test_a_worker_killed_while_the_call_waits_and_another_finishes_the_call(transactional_db, alice):
    env = {"SIMULATED_SWITCH_SPEED": "1"}  # real time: the Pause lasts 3 s
    number, _ = number_for_app(
        alice.account, '<Response><Say>one</Say><Pause length="3000"/><Say>two</Say><Hangup tag="finished"/></Response>'
    )
    first = start_celery_worker(env=env, beat=True, log_name="engine-worker-1.log")
    try:
        call = place(number)
        wait_for(
            lambda: Call.objects.filter(pk=call.pk, position="Response/Pause[0]", flow_state="waiting").exists(),
            timeout=20,
            message="the first worker to reach the Pause",
        )
    finally:
        kill(first)

    second = start_celery_worker(env=env, beat=True, log_name="engine-worker-2.log")
    try:
        done = wait_for(
            lambda: Call.objects.filter(pk=call.pk, status="completed").first(),
            timeout=30,
            message="the second worker to finish the call",
        )
    finally:
        stop_celery_worker(second)

    assert done.end_reason == "finished"
    assert commands(done) == ["Say:ok", "Pause:ok", "Say:ok", "Hangup:ok"]  # each exactly once


def test_a_worker_killed_mid_step_lets_its_claim_lapse_and_the_step_is_repeated(transactional_db, alice):
    server = CustomerServer()
    url = server.route("/slow", '<Response><Hangup tag="from the server"/></Response>', delay=1.5)
    env = {"ENGINE_CLAIM_LEASE_SECONDS": "1"}
    number, _ = number_for_app(
        alice.account, f'<Response><Say>hi</Say><Callback url="{url}" timeout="3000"/></Response>'
    )
    first = start_celery_worker(env=env, beat=True, log_name="engine-worker-3.log")
    try:
        call = place(number)
        wait_for(lambda: server.to("/slow"), timeout=60, message="the first worker to call the server")
    finally:
        kill(first)  # while it waits for the answer, holding the call's claim

    second = start_celery_worker(env=env, beat=True, log_name="engine-worker-4.log")
    try:
        done = wait_for(
            lambda: Call.objects.filter(pk=call.pk, status="completed").first(),
            timeout=30,
            message="the second worker to repeat the step",
        )
    finally:
        stop_celery_worker(second)
        server.stop()

    assert done.end_reason == "from the server"
    assert len(server.to("/slow")) == 2  # the request was repeated; nothing the first worker did was committed
    assert CallHttpRequest.objects.filter(call=done).count() == 1
    assert commands(done) == ["Say:ok", "Callback:ok", "Hangup:ok"]


def test_a_step_that_crashes_after_another_worker_took_its_call_over_does_not_end_the_call(db, alice):
    from datetime import timedelta

    from django.utils import timezone

    from telephony.engine import runner

    number, _ = number_for_app(alice.account, '<Response><Answer/><Pause length="600000"/></Response>')
    call = place(number)
    runner.process_call(call.pk)  # answered, waiting in the Pause
    assert Call.objects.get(pk=call.pk).status == "in-progress"
    lapsed = timezone.now() - timedelta(seconds=1)  # the crashed step's lease, which ran out
    Call.objects.filter(pk=call.pk).update(engine_claimed_until=timezone.now() + timedelta(seconds=30))

    runner.fail_call(call.pk, lapsed, RuntimeError("a bug in the step"))

    call = Call.objects.get(pk=call.pk)
    assert call.status == "in-progress" and call.flow_state != Call.FlowState.DONE


def test_a_report_due_after_another_of_the_same_leg_wakes_the_call_without_the_sweeper(transactional_db, alice):
    # The switch reports "ringing" (100 ms) and "answered" (1 s) at once; only the first gets a countdown task
    # when they are saved, so the step that applies "ringing" must announce "answered". No beat: no sweeper.
    number, _ = number_for_app(
        alice.account, '<Response><Dial timeout="20000"><To>+15550001111</To></Dial><Hangup/></Response>'
    )
    worker = start_celery_worker(env={"SIMULATED_SWITCH_SPEED": "1"}, beat=False, log_name="engine-worker-5.log")
    try:
        call = place(number)
        leg = wait_for(
            lambda: Call.objects.filter(parent=call, status="in-progress").first(),
            timeout=30,
            message="the dialled leg to be answered without the sweeper",
        )
    finally:
        stop_celery_worker(worker)

    assert leg.to_number == "+15550001111"

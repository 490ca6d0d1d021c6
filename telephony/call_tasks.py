"""Celery tasks of the call engine, on the low-latency `calls` queue. Thin: each calls the engine.

Both are safe to run any number of times, at any time: the database says what is due, and a call is advanced
only by the worker holding its claim.
"""

from __future__ import annotations

from celery import shared_task

from telephony.engine import runner


@shared_task(name="telephony.call_tasks.advance", ignore_result=True, acks_late=False)
def advance(call_id: int) -> None:
    # acks_late off: the message is only a nudge (what is due is in the database), so one lost with a worker that
    # died mid-step costs the sweeper's second, while one handed out again after the broker's visibility
    # timeout (an hour) would be pure noise.
    runner.process_call(call_id)


@shared_task(name="telephony.call_tasks.sweep", ignore_result=True)
def sweep() -> int:
    return runner.sweep()

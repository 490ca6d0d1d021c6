"""The call engine: claim a call, apply what is due, run its flow until it must wait, save, let go.

A call tree (the A-leg and the B-legs its Dials place) is advanced by one worker at a time, the one that
holds the A-leg's claim: `UPDATE call SET engine_claimed_until = now + lease WHERE id = ? AND (it is null or
past) AND (the flow runs or a wake-up is due)` that changed one row, so a duplicate or early task costs one
statement that changes nothing. Under the claim a step:
1. loads the A-leg and the wake-ups due for the tree (switch events, flow timers, the length limit);
2. applies them in time order: leg state changes (with their call.* events and status callbacks), and the
   signals the waiting command wanted (a key, the end of a prompt, a B-leg's answer, a timer);
3. runs commands from `position` while the flow is running, each raising a call.flow event, until one
   must wait (for the switch, a timer, or nothing more: the call ends). Requests to customers' servers are
   made here, bounded by their timeouts, with the claim extended to cover them;
4. anything the switch reports, or a timer set, that falls due within ENGINE_INLINE_WAIT_MS (5 ms at least) is
   applied in the same step after a short sleep (the simulated switch at speed answers "at once"), so fast
   flows never leave the worker;
5. saves the call's position, variables and wait, the legs it changed, the events, callbacks, new wake-ups
   and request records, deletes the wake-ups it consumed and releases the claim, in one transaction whose
   UPDATE of the A-leg only matches while the claim is still ours (else everything is rolled back: another
   worker has taken over and repeats the step).
After the release it claims again if there is work (a wake-up may have arrived while it held the claim), and
each new wake-up is announced by a Celery countdown task for its due time (precision). A wake-up that no task
announced (a lost message, a killed worker holding it) is found by the sweeper within a second or two of
falling due; a call whose worker died mid-step once its claim lapses. The sweeper queues a call at most once
every SWEEP_REKICK_SECONDS, so a backlog is not buried under duplicates. Work is repeated rather than lost:
every wake-up and switch event is idempotent, and a repeated step repeats its HTTP requests (each recorded).

Waiting: `Call.flow_wait` = {kind, token, path, started_at, ...the command's own state}. Every wait gets a new
token; a timer carries the token it was set with and is ignored if the flow has moved on. Media and input
operations carry an `op` id that the switch echoes, with the same effect for its late reports.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from telephony.engine.claims import LostClaim, claim, claim_and_load, kick
from telephony.engine.context import Effects
from telephony.engine.step import Signal, Step
from telephony.models import FINAL_STATUSES, Call, CallStatus, CallWakeup
from telephony.services.calls import leg_transition
from telephony.switch import get_switch

logger = logging.getLogger("telephony.engine")

FlowState = Call.FlowState
MAX_ROUNDS = 50
SWEEP_REKICK_SECONDS = 5

__all__ = ["LostClaim", "Signal", "Step", "claim", "fail_call", "kick", "process_call", "sweep"]


def process_call(call_id: int) -> None:
    """Advance a call as far as it can go now (the `advance` task). Safe to run any number of times."""
    for _ in range(MAX_ROUNDS):
        claimed = claim_and_load(call_id)
        if claimed is None:
            return  # nothing to do, or another worker has it (and looks again when it lets go)
        lease = claimed.lease
        step = None
        try:
            step = Step(call_id, lease, claimed)
            step.run()
            if step.root.flow_state == FlowState.DONE and step.root.is_final:
                return  # a report arriving now about an ended call has nothing to change
            if step.root.flow_state != FlowState.RUNNING and not step.more_due:
                return  # nothing due now; what falls due later has its own task (or the sweeper)
        except LostClaim:
            logger.warning("Call %s: claim lost mid-step; the new holder repeats the step", call_id)
            return
        except Call.DoesNotExist:
            return
        except (OperationalError, InterfaceError):
            # The database is unreachable or restarting: nothing was saved, and the claim lapses by itself; the
            # sweeper hands the call out again then. A transient outage must not end calls.
            logger.exception("Call %s: database error; the step is retried once the claim lapses", call_id)
            return
        except Exception as exc:
            logger.exception("Call %s: step failed", call_id)
            fail_call(call_id, step.lease if step is not None else lease, exc)  # the lease as the step extended it
            return


def sweep(now: datetime | None = None, limit: int = 200) -> int:
    """Queue every call with overdue wake-ups or an abandoned running flow (the 1 s beat task). Returns calls queued."""
    now = now or timezone.now()
    grace = now - timedelta(milliseconds=settings.ENGINE_SWEEP_GRACE_MS)
    unclaimed = Q(root__engine_claimed_until__isnull=True) | Q(root__engine_claimed_until__lt=now)
    roots = set(
        CallWakeup.objects.filter(due_at__lte=grace)
        .filter(unclaimed)
        .values_list("root_id", flat=True)
        .distinct()[:limit]
    )
    stuck = Call.objects.filter(flow_state=FlowState.RUNNING).filter(
        Q(engine_claimed_until__lt=now) | Q(engine_claimed_until__isnull=True, created_at__lte=grace)
    )
    roots.update(stuck.values_list("pk", flat=True)[:limit])
    roots = _not_recently_swept(roots)
    for root_id in roots:
        kick(root_id)
    if roots:
        logger.info("Sweeper queued %d call(s)", len(roots))
    return len(roots)


def _not_recently_swept(roots: set[int]) -> list[int]:
    """The calls the sweeper has not queued within SWEEP_REKICK_SECONDS. When the workers are behind, every
    waiting call looks overdue; queueing each again every second would bury the backlog under duplicates."""
    if not roots:
        return []
    keys = {f"engine:swept:{root_id}": root_id for root_id in roots}
    try:
        recent = cache.get_many(list(keys))
        fresh = {key: root_id for key, root_id in keys.items() if key not in recent}
        cache.set_many(dict.fromkeys(fresh, 1), timeout=SWEEP_REKICK_SECONDS)
    except Exception:  # without the cache, sweep everything (duplicates are only wasteful)
        logger.warning("Sweeper: cache unavailable", exc_info=True)
        return sorted(roots)
    return sorted(fresh.values())


def fail_call(call_id: int, lease: datetime, exc: BaseException) -> None:
    """End a call whose step crashed (a bug, not the network): every leg ends, with the reason recorded.

    `lease`: the crashed step's claim; nothing is done if the call is no longer held with it."""
    try:
        with transaction.atomic():
            # Only while the crashed step's claim is still ours: once it lapsed, another worker may hold the call
            # and be running it correctly, and ending it here would cut off a live call.
            root = Call.objects.select_for_update().filter(pk=call_id, engine_claimed_until=lease).first()
            if root is None:
                logger.warning("Call %s: its claim was taken over; the new holder carries on", call_id)
                return
            effects = Effects(root_id=call_id)
            reason = f"The call engine failed: {type(exc).__name__}"[:300]
            switch = get_switch()
            for leg in [*Call.objects.filter(parent_id=call_id).exclude(status__in=FINAL_STATUSES), root]:
                if leg.is_final:
                    continue
                leg.parent = root if leg.parent_id else None
                try:
                    switch.hangup(leg, cause=41, sip_code=500, reason=reason)
                except Exception:  # a broken switch must not keep the call from being recorded as ended
                    logger.exception("Call %s: switch hangup failed while failing the call", leg.pk)
                leg_transition(
                    leg=leg, status=CallStatus.FAILED, effects=effects, cause=41, sip_code=500, reason=reason
                )
            fields = effects.take_dirty(root) | {"flow_state", "flow_wait", "engine_claimed_until"}
            root.flow_state, root.flow_wait, root.engine_claimed_until = FlowState.DONE, None, None
            root.save(update_fields=sorted(fields))
            CallWakeup.objects.filter(root_id=call_id).delete()
            effects.flush()
    except Exception:  # nothing more to do here: the claim lapses and the sweeper retries the call
        logger.exception("Call %s: could not record the engine failure", call_id)

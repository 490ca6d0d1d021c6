"""The call engine's own rows: durable wake-ups of calls, and the simulated switch's far ends.

A call's memory is its Call rows (calls.py). What a call must react to later lives here, in
`CallWakeup`: a timer of its flow (a Pause ends, a Dial stops ringing), the call's maximum length, or an
event the switch reported (a leg answered, a key was pressed) waiting to be applied. The engine consumes
wake-ups under the call's claim and deletes them in the same transaction that saves what they caused, so
a worker that dies leaves them in place for the next one; the sweeper finds the overdue ones.

`SimulatorRule` and `SimulatedLeg` belong to the simulated switch (telephony/switch/simulated.py), the
built-in adapter for development, tests and the portal's test calls. They are platform rows, not an
account's: a rule describes how the simulated world's phones behave (a number that is always busy, a
caller who presses 1#), like a carrier would, whichever account calls them.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class CallWakeup(models.Model):
    """Something a call must react to at a time: a switch event to apply, or one of its flow's timers.

    Owned through its call (the account is the call's); every row is short-lived, deleted once applied.
    """

    class Kind(models.TextChoices):
        SWITCH = "switch", "Switch event"  # `event` on `leg`, with `data` as the switch reported it
        TIMER = "timer", "Flow timer"  # resumes the flow if `data.token` is still the one it waits with
        LIMIT = "limit", "Maximum call length"
        UNHOLD = "unhold", "Hold timeout"
        # Outbound dispatch, ring timeout, time limit and live control through the API (telephony/engine/control.py).
        CONTROL = "control", "Call control"

    # Every wake-up of a call tree is applied under the claim of its A-leg (the root), so a B-leg's answer
    # and the A-leg's flow never race.
    root = models.ForeignKey("telephony.Call", on_delete=models.CASCADE, related_name="+", db_index=False)
    leg = models.ForeignKey(
        "telephony.Call", null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    event = models.CharField(max_length=32, blank=True)
    data = models.JSONField(default=dict, blank=True)
    due_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            # The engine's question: what is due for this call? And the sweeper's: what is overdue anywhere?
            models.Index(fields=["root", "due_at"], name="telephony_wakeup_root_due"),
            models.Index(fields=["due_at"], name="telephony_wakeup_due"),
            # Cascading deletes of legs find their wake-ups without a scan.
            models.Index(fields=["leg"], condition=Q(leg__isnull=False), name="telephony_wakeup_leg"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["switch", "timer", "limit", "unhold", "control"]),
                name="telephony_callwakeup_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.event} for call {self.root_id} at {self.due_at:%H:%M:%S.%f}"


class SimulatorRule(models.Model):
    """How a phone in the simulated world behaves: answer (and press keys, hang up), be busy, not answer, fail.

    `match` is an E.164 number, a SIP URI, or a prefix ending in `*` (`+1555*`, `sip:bob@*`). The simulated
    switch applies it to the far end of each leg: the callee of a leg it places, the caller of a call it
    injects. The most specific rule wins (exact, then the longest prefix); then the SIMULATED_SWITCH rules of
    the settings; then the settings' default.
    """

    class Action(models.TextChoices):
        ANSWER = "answer", "Answer"
        BUSY = "busy", "Busy (SIP 486)"
        NO_ANSWER = "no-answer", "Ring, never answer"
        FAIL = "fail", "Fail with a cause"

    match = models.CharField(max_length=255, unique=True)
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.ANSWER)
    ring_after_ms = models.PositiveIntegerField(default=100, help_text="Ringing is reported after this long.")
    answer_after_ms = models.PositiveIntegerField(
        default=1000,
        help_text="Answer (or busy/fail) after this long. With no-answer: 0 rings until the platform gives up, "
        "more makes the network report no answer (480) after it.",
    )
    fail_cause = models.PositiveSmallIntegerField(default=41, help_text="Q.850 cause of a failure (41: temporary).")
    fail_sip_code = models.PositiveSmallIntegerField(default=503)
    digits = models.CharField(
        max_length=200,
        blank=True,
        help_text="Keys pressed each time the platform collects input, one group per time, separated by |: "
        "'1#|42#' presses 1# at the first Gather and 42# at the second.",
    )
    digits_after_ms = models.PositiveIntegerField(default=300, help_text="From the start of collection to the keys.")
    hangup_after_ms = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Hang up this long after answering (a callee), or after the start of the call (a caller the "
        "simulator injects); empty: stay on the line.",
    )
    enabled = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["match"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=["answer", "busy", "no-answer", "fail"]),
                name="telephony_simulatorrule_action_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.match}: {self.action}"

    def as_behaviour(self) -> dict:
        return {
            "action": self.action,
            "ring_after_ms": self.ring_after_ms,
            "answer_after_ms": self.answer_after_ms,
            "fail_cause": self.fail_cause,
            "fail_sip_code": self.fail_sip_code,
            "digits": self.digits,
            "digits_after_ms": self.digits_after_ms,
            "hangup_after_ms": self.hangup_after_ms,
            "rule": self.match,
        }


class SimulatedLeg(models.Model):
    """The simulated far end of a call the simulator injected: the caller's behaviour and its key presses so far."""

    call = models.OneToOneField("telephony.Call", primary_key=True, on_delete=models.CASCADE, related_name="+")
    behaviour = models.JSONField(default=dict)
    digit_groups_used = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Simulated caller of call {self.call_id}"

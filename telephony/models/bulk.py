"""Bulk calls (campaigns): one caller ID calling a list of destinations with one flow, paced and in a window.

A campaign's destinations are rows (`BulkCallItem`), written in one bulk insert when the campaign is accepted.
The dispatcher (telephony.services.bulk_calls.bulk_call_dispatch) is the only writer after that: it records
the outcome of each finished call, schedules retries, and places the next due destinations through the
outbound call service, so a campaign shares the account's pacing with single calls.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import AccountOwnedModel

# Outcomes a retry rule may name, as the call's final status says them.
RETRYABLE_OUTCOMES = ("busy", "no-answer", "failed")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BulkCall(AccountOwnedModel):
    """A campaign: one caller ID calling many destinations with one flow, paced, in a calling window."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELED = "canceled", "Canceled"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    from_number = models.CharField(max_length=32, help_text="The caller ID of every attempt, retries included.")
    phone_number = models.ForeignKey(
        "telephony.PhoneNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The flow each answered call runs: exactly one of an app, an inline document, or a URL.
    app = models.ForeignKey(
        "telephony.CallControlApp", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    xml = models.TextField(blank=True)
    url = models.CharField(max_length=2000, blank=True)
    method = models.CharField(max_length=4, default="POST")
    timeout_s = models.PositiveIntegerField(default=30, help_text="Ring time of each attempt.")
    time_limit_s = models.PositiveIntegerField(null=True, blank=True)
    calls_per_second = models.FloatField(default=1.0)
    max_concurrent = models.PositiveIntegerField(default=10)
    # The calling window: weekdays (mon..sun) and hours [start, end) in `time_zone`; no hours = all day.
    window_days = models.JSONField(default=list, blank=True)
    window_start = models.TimeField(null=True, blank=True)
    window_end = models.TimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    # {"busy": {"attempts": 3, "delay_s": 600}, ...}: at most `attempts` calls in all to a destination whose
    # last call ended that way, `delay_s` apart.
    retry_rules = models.JSONField(default=dict, blank=True)
    tag = models.CharField(max_length=255, blank=True)
    total = models.PositiveIntegerField(default=0, help_text="Destinations accepted (do-not-call ones included).")
    invalid_count = models.PositiveIntegerField(default=0)
    # The refused destinations with their position in the request: [{"position", "destination", "reason"}].
    invalid = models.JSONField(default=list, blank=True)
    last_dispatch_at = models.DateTimeField(null=True, blank=True)
    pace_tokens = models.FloatField(default=0.0, help_text="Calls the pace allows now (a token bucket).")
    dispatch_claimed_until = models.DateTimeField(null=True, blank=True)
    last_progress = models.JSONField(default=dict, blank=True, help_text="The counts last announced.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status"], name="telephony_bulkcall_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["running", "paused", "completed", "canceled"]),
                name="telephony_bulkcall_status_valid",
            ),
            models.CheckConstraint(condition=Q(calls_per_second__gt=0), name="telephony_bulkcall_rate_positive"),
        ]

    def __str__(self) -> str:
        return self.name or f"Bulk call from {self.from_number}"

    @property
    def is_over(self) -> bool:
        return self.status in (self.Status.COMPLETED, self.Status.CANCELED)


class BulkCallItem(AccountOwnedModel):
    """One destination of a campaign: its attempts so far and how the last one ended."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be called"  # first attempt or a retry, due at next_attempt_at
        CALLING = "calling", "Call in progress"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped (do not call)"
        CANCELED = "canceled", "Canceled"

    bulk_call = models.ForeignKey(BulkCall, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(help_text="Index in the request's destination list, from 0.")
    destination = models.CharField(max_length=32)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(max_length=16, blank=True, help_text="The last call's final status.")
    duration = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=300, blank=True, help_text="Why the last attempt was refused or failed.")
    next_attempt_at = models.DateTimeField()
    last_call = models.ForeignKey(
        "telephony.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )

    class Meta:
        ordering = ["position"]
        indexes = [
            # The dispatcher's two questions: which destinations are due, and which calls are in flight.
            models.Index(fields=["bulk_call", "state", "next_attempt_at", "position"], name="telephony_bulkitem_due"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["bulk_call", "position"], name="telephony_bulkcallitem_position_unique"),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "calling", "done", "skipped", "canceled"]),
                name="telephony_bulkcallitem_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.destination} ({self.state})"

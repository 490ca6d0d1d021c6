"""Events (the transactional outbox), the customer endpoints they are delivered to, and each delivery's attempts.

An Event row is written in the same database transaction as the change it describes; deliveries are rows
too, so a worker crash or a broker restart loses nothing: the database is the queue, Celery only wakes
the workers up.
"""

from __future__ import annotations

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import Account, AccountOwnedModel


class EventSequence(models.Model):
    """The last sequence number given to one object's events, so that object's events count 1, 2, 3..."""

    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    last = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["object_type", "object_id"], name="telephony_eventsequence_object_unique")
        ]

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_id}: {self.last}"


class Event(AccountOwnedModel):
    """Something that happened in an account (a call rang, a number was ordered), kept for replay and audit.

    The integer id only grows, so a consumer tails an account with `account_id = ? AND id > ?` on the
    (account, id) index and resumes from a public id by looking up its integer id first.
    """

    # Redeclared without its own index: the (account, id) index below serves every account lookup, and one
    # index fewer is one write fewer per event.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(
        max_length=64, help_text="From the catalogue (telephony/event_types.py), e.g. call.ringing."
    )
    occurred_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    object_type = models.CharField(max_length=64, help_text="What the event is about, e.g. call, number, sip_user.")
    object_id = models.CharField(max_length=64, help_text="The public id of that object.")
    sequence = models.PositiveBigIntegerField(help_text="1, 2, 3... per object: lets receivers order and spot gaps.")
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["account", "id"], name="telephony_event_account_tail"),
            models.Index(fields=["account", "type", "id"], name="telephony_event_account_type"),
            models.Index(fields=["created_at"], name="telephony_event_created"),
        ]
        constraints = [
            # Also the index behind ?object=: one object's events in sequence order.
            models.UniqueConstraint(
                fields=["account", "object_type", "object_id", "sequence"], name="telephony_event_object_sequence"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.object_type} {self.object_id} #{self.sequence}"


class WebhookEndpoint(AccountOwnedModel):
    """A customer URL that receives the account's events, signed with its own secret."""

    class PayloadFormat(models.TextChoices):
        JSON = "json", "JSON"
        FORM = "form", "Form fields (Restcomm/Twilio-style status callback)"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=500, blank=True)
    event_types = models.JSONField(default=list, help_text='Types or patterns: "call.*", "number.ordered", "*".')
    enabled = models.BooleanField(default=True)
    rate_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most deliveries per second; empty: no limit."
    )
    payload_format = models.CharField(max_length=8, choices=PayloadFormat.choices, default=PayloadFormat.JSON)
    # The signing secret must be usable to sign, so it is stored encrypted (Fernet), never hashed.
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    # Health, kept by the delivery engine.
    failing_since = models.DateTimeField(null=True, blank=True, help_text="First failure after the last success.")
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    circuit_open_until = models.DateTimeField(
        null=True, blank=True, help_text="While in the future, deliveries wait instead of being attempted."
    )
    # The current one-second window of the rate limit, shared by every worker through this row.
    rate_window_start = models.DateTimeField(null=True, blank=True)
    rate_window_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook endpoint"
        indexes = [
            models.Index(fields=["enabled", "failing_since"], name="telephony_webhook_failing"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(payload_format__in=["json", "form"]), name="telephony_webhookendpoint_format_valid"
            ),
            models.CheckConstraint(
                condition=Q(rate_limit__isnull=True) | Q(rate_limit__gte=1),
                name="telephony_webhookendpoint_rate_limit_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.url


class AttemptTrigger(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    REPLAY = "replay", "Replay"
    RECOVER = "recover", "Recover"
    TEST = "test", "Test send"


class Delivery(AccountOwnedModel):
    """One event on its way to one endpoint: pending until a 2xx arrives, or failed when retries run out.

    `next_attempt_at` is the queue: a worker claims due rows by moving it forward by the claim lease, so a
    worker that dies mid-delivery simply lets the row fall due again.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        EVENT = "event", "Event"
        TEST = "test", "Test send"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    # Indexed by the (endpoint, status, created_at) index below.
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.EVENT)
    # A test send has no Event row; its sample payload lives here.
    test_payload = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    retry_index = models.PositiveSmallIntegerField(
        default=0, help_text="Position in the retry schedule; a replay or recover starts it again."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # What queued the next attempt, copied onto that attempt's record.
    trigger = models.CharField(max_length=16, choices=AttemptTrigger.choices, default=AttemptTrigger.SCHEDULED)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            # The queue: only pending rows are in it, so it stays as small as the backlog.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="telephony_delivery_due"),
            models.Index(fields=["account", "id"], name="telephony_delivery_account"),
            models.Index(fields=["endpoint", "status", "created_at"], name="telephony_delivery_endpoint"),
            # Only test sends (event deliveries leave with their event): every index on this table is written
            # three times per delivery (created, claimed, recorded), so it carries no index it can do without.
            models.Index(fields=["created_at"], condition=Q(kind="test"), name="telephony_delivery_test_sent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "delivered", "failed"]), name="telephony_delivery_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind="test") | Q(event__isnull=False), name="telephony_delivery_event_required"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} -> {self.endpoint_id} ({self.status})"

    @property
    def message_id(self) -> str:
        """The webhook-id header: the event's id, so retries and replays of one event carry the same id."""
        return str(self.event.public_id) if self.event_id else str(self.public_id)

    @property
    def event_type(self) -> str:
        if self.event_id:
            return self.event.type
        return (self.test_payload or {}).get("type", "")


class DeliveryAttempt(models.Model):
    """One HTTP request made for a delivery, with what came back (or why nothing did)."""

    Trigger = AttemptTrigger

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField(help_text="1 for the first attempt of the delivery.")
    trigger = models.CharField(max_length=16, choices=AttemptTrigger.choices, default=AttemptTrigger.SCHEDULED)
    attempted_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True, help_text="The start of the response body, at most 8 KB.")
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery_id", "number", "id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error}"

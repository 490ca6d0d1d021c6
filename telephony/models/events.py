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

from tenants.models import Account, AccountOwnedModel, AccountOwnedQuerySet


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


class WebhookEndpointQuerySet(AccountOwnedQuerySet):
    def webhooks(self):
        """The endpoints customers manage (the webhooks API and portal); callback URLs' hidden rows left out."""
        return self.filter(purpose=WebhookEndpoint.Purpose.WEBHOOK)


class WebhookEndpoint(AccountOwnedModel):
    """A customer URL that receives the account's events, signed with its own secret.

    A `callback` endpoint is a hidden row per account and callback server (the origin of the URLs of status
    callbacks, extension hooks, message callbacks): it gives those requests the delivery engine's circuit
    breaker, concurrency limit and health, but subscribes to no events, is never listed, never disabled, and
    signs with the account's callback signing secret (CallbackSigningSecret, copied onto it).
    """

    class PayloadFormat(models.TextChoices):
        JSON = "json", "JSON"
        FORM = "form", "Form fields (Restcomm/Twilio-style status callback)"

    class Purpose(models.TextChoices):
        WEBHOOK = "webhook", "Webhook endpoint"
        CALLBACK = "callback", "Callback URL (hidden)"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    purpose = models.CharField(max_length=8, choices=Purpose.choices, default=Purpose.WEBHOOK)
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

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook endpoint"
        indexes = [
            models.Index(fields=["enabled", "failing_since"], name="telephony_webhook_failing"),
        ]
        constraints = [
            # One hidden row per account and callback origin: concurrent enqueues meet on it.
            models.UniqueConstraint(
                fields=["account", "url"],
                condition=Q(purpose="callback"),
                name="telephony_webhookendpoint_callback_url",
            ),
            models.CheckConstraint(
                condition=Q(purpose__in=["webhook", "callback"]), name="telephony_webhookendpoint_purpose_valid"
            ),
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
        # Requests to a URL the customer gave for one object (telephony/services/callbacks.py): no Event row,
        # the request's parameters live in `params`.
        STATUS_CALLBACK = "status_callback", "Status callback"
        EXTENSION_HOOK = "extension_hook", "Extension event hook"
        MESSAGE_CALLBACK = "message_callback", "Message callback"
        DIAL_ACTION = "dial_action", "Dial action"  # an answered Dial's action URL after a SIP edge call

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    # Indexed by the (endpoint, status, created_at) index below.
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.EVENT)
    # A test send has no Event row; its sample payload lives here.
    test_payload = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    # Callbacks only (empty for events and test sends). The database defaults keep the event outbox's INSERT
    # (telephony/services/events.py, raw SQL on PostgreSQL) unaware of these columns.
    params = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder, help_text="The callback's fields.")
    url = models.CharField(
        max_length=2000, blank=True, default="", db_default="",
        help_text="A callback's URL (its endpoint stands for the URL's origin).",
    )  # fmt: skip
    method = models.CharField(max_length=6, blank=True, default="", db_default="")
    payload_format = models.CharField(
        max_length=8, blank=True, default="", db_default="", help_text="form (body, or query string for GET) or json."
    )
    fallback_url = models.CharField(
        max_length=2000, blank=True, default="", db_default="", help_text="Where the attempt after a failed one goes."
    )
    call = models.ForeignKey(
        "telephony.Call", null=True, blank=True, on_delete=models.CASCADE, related_name="callback_deliveries",
        db_index=False,
    )  # fmt: skip
    object_type = models.CharField(max_length=64, blank=True, default="", db_default="")
    object_id = models.CharField(max_length=64, blank=True, default="", db_default="", help_text="A public id.")
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
            # Callbacks only (partial), for a call's timeline and an object's deliveries.
            models.Index(fields=["call"], condition=Q(call__isnull=False), name="telephony_delivery_call"),
            models.Index(
                fields=["account", "object_type", "object_id"],
                condition=~Q(object_type=""),
                name="telephony_delivery_object",
            ),
            models.Index(
                fields=["created_at"], condition=~Q(kind__in=["event", "test"]), name="telephony_delivery_callback"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "delivered", "failed"]), name="telephony_delivery_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(kind="event") | Q(event__isnull=False), name="telephony_delivery_event_required"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["event", "test"]) | Q(params__isnull=False),
                name="telephony_delivery_callback_params_required",
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

    @property
    def is_callback(self) -> bool:
        return self.kind not in (Delivery.Kind.EVENT, Delivery.Kind.TEST)

    @property
    def target_url(self) -> str:
        """Where it is sent: a callback's own URL, else its endpoint's."""
        return self.url or self.endpoint.url


class CallbackSigningSecret(AccountOwnedModel):
    """The account's secret for signing callbacks (status callbacks, hooks), like an endpoint's but one per account.

    Copied (encrypted) onto the account's hidden callback endpoints, so the delivery engine signs callbacks
    exactly as it signs events, with no extra query; a rotation updates them all in the same transaction.
    """

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="+")
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return "callback signing secret"

    @property
    def public_id(self):
        """The account's: there is one secret per account (how audit entries and events name it)."""
        return self.account.public_id


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
    # The body is the same for every attempt of a delivery (it is rebuilt from the event to be shown), but the
    # timestamp and signature headers differ per attempt, so those are kept here; empty for older attempts.
    request_headers = models.JSONField(default=dict, blank=True, help_text="The headers sent (webhook-id, ...).")
    response_headers = models.JSONField(
        default=dict, blank=True, help_text="The response's headers, at most 50, each value cut at 500 characters."
    )
    # Empty when the attempt was a POST to the endpoint's URL, as nearly all are.
    request_url = models.CharField(
        max_length=4000, blank=True, default="", help_text="Where it went, if not the endpoint's URL (a fallback)."
    )
    request_method = models.CharField(max_length=8, blank=True, default="", help_text="The method, if not POST.")

    class Meta:
        ordering = ["delivery_id", "number", "id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error}"

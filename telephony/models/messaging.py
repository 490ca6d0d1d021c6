"""Messaging: profiles, numbers enabled for SMS, 10DLC brands and campaigns, messages and opt-outs.

A message row is the queue too: an outbound message waits as `queued` until its `send_after` (the slot its
sender's throughput limit gave it), a worker claims it by moving it to `sending`, hands it to the carrier
adapter (telephony/carrier/) and records the outcome; delivery receipts and inbound messages come back
through the same adapter.
"""

from __future__ import annotations

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from tenants.models import AccountOwnedModel


class MessagingProfile(AccountOwnedModel):
    """A set of SMS numbers with one callback URL and the rules for choosing a sender among them."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    callback_url = models.CharField(max_length=2000, blank=True, help_text="Receives the message.* events.")
    callback_url2 = models.CharField(
        max_length=2000, blank=True, help_text="Failover: used when an attempt to callback_url fails."
    )
    number_pool_enabled = models.BooleanField(
        default=True, help_text="Messages sent with the profile (no `from`) pick a sender from its numbers."
    )
    sticky_sender = models.BooleanField(
        default=True, help_text="A destination keeps getting messages from the number that last wrote to it."
    )
    long_code_weight = models.PositiveIntegerField(default=1)
    toll_free_weight = models.PositiveIntegerField(default=1)
    skip_unhealthy = models.BooleanField(default=True, help_text="Pool senders whose recent messages failed wait.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="telephony_messagingprofile_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class ReviewStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class Reviewed(AccountOwnedModel):
    """What staff's 10DLC review leaves on a brand or a campaign: the decision, who made it, when, and why not."""

    Status = ReviewStatus

    status = models.CharField(max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    review_note = models.CharField(max_length=500, blank=True, help_text="Why it was rejected, for the customer.")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.CharField(max_length=200, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "rejected"]), name="%(app_label)s_%(class)s_status_valid"
            ),
        ]


class Brand(Reviewed):
    """A 10DLC brand: the business behind US long-code messaging, reviewed by staff."""

    class EntityType(models.TextChoices):
        PRIVATE = "private_profit", "Private company"
        PUBLIC = "public_profit", "Public company"
        NON_PROFIT = "non_profit", "Non-profit"
        GOVERNMENT = "government", "Government"
        SOLE_PROPRIETOR = "sole_proprietor", "Sole proprietor"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    display_name = models.CharField(max_length=100)
    company_name = models.CharField(max_length=200)
    entity_type = models.CharField(max_length=20, choices=EntityType.choices, default=EntityType.PRIVATE)
    ein = models.CharField(max_length=20, blank=True, help_text="Tax id (US EIN).")
    website = models.CharField(max_length=200, blank=True)
    vertical = models.CharField(max_length=64, blank=True, help_text="Industry, e.g. retail, healthcare.")
    email = models.EmailField(blank=True)
    country = models.CharField(max_length=2, default="US")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(Reviewed.Meta):
        pass

    def __str__(self) -> str:
        return self.display_name


class Campaign(Reviewed):
    """A 10DLC campaign: what a brand sends and how people opt in and out; approved by staff before use."""

    class UseCase(models.TextChoices):
        TWO_FACTOR = "2fa", "Two-factor authentication"
        ACCOUNT_NOTIFICATION = "account_notification", "Account notifications"
        CUSTOMER_CARE = "customer_care", "Customer care"
        DELIVERY_NOTIFICATION = "delivery_notification", "Delivery notifications"
        MARKETING = "marketing", "Marketing"
        MIXED = "mixed", "Mixed"
        PUBLIC_SERVICE = "public_service", "Public service announcement"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=100)
    use_case = models.CharField(max_length=32, choices=UseCase.choices)
    description = models.TextField(max_length=2000)
    sample_messages = models.JSONField(default=list, help_text="One to five example messages.")
    message_flow = models.TextField(max_length=2000, help_text="How recipients opt in.")
    opt_in_message = models.CharField(max_length=320, blank=True, help_text="Sent in reply to START.")
    opt_out_message = models.CharField(max_length=320, blank=True, help_text="Sent in reply to STOP.")
    help_message = models.CharField(max_length=320, blank=True, help_text="Sent in reply to HELP.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(Reviewed.Meta):
        pass

    def __str__(self) -> str:
        return self.name


class MessagingNumber(AccountOwnedModel):
    """One of the account's numbers enabled for SMS: its profile, its campaign, its send schedule and health."""

    phone_number = models.OneToOneField("telephony.PhoneNumber", on_delete=models.CASCADE, related_name="messaging")
    profile = models.ForeignKey(MessagingProfile, on_delete=models.PROTECT, related_name="numbers")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="numbers")
    # Copied from the number so the pool is chosen from one table.
    number = models.CharField(max_length=16)
    toll_free = models.BooleanField(default=False)
    # The throughput limit as a schedule: the next free send slot of this sender.
    next_slot_at = models.DateTimeField(null=True, blank=True)
    # Health: consecutive failed messages since the last good one.
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number", "id"]
        indexes = [models.Index(fields=["profile", "toll_free"], name="telephony_msgnumber_pool")]

    def __str__(self) -> str:
        return self.number


class Message(AccountOwnedModel):
    """One SMS, sent by the account or received on one of its numbers."""

    class Direction(models.TextChoices):
        OUTBOUND = "outbound", "Outbound"
        INBOUND = "inbound", "Inbound"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        UNDELIVERED = "undelivered", "Undelivered"
        RECEIVED = "received", "Received"

    class Encoding(models.TextChoices):
        GSM7 = "GSM-7", "GSM-7"
        UCS2 = "UCS-2", "UCS-2"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    from_number = models.CharField(max_length=32)
    to_number = models.CharField(max_length=32)
    text = models.TextField()
    encoding = models.CharField(max_length=8, choices=Encoding.choices)
    segments = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    error_code = models.CharField(max_length=16, blank=True)
    error_text = models.CharField(max_length=200, blank=True)
    # The conversation: the same id for both directions between two numbers (see services.messaging.thread_id).
    thread = models.UUIDField()
    phone_number = models.ForeignKey(
        "telephony.PhoneNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    profile = models.ForeignKey(
        MessagingProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    callback_url = models.CharField(max_length=2000, blank=True, help_text="From the send request; wins the profile's.")
    carrier = models.CharField(max_length=32, blank=True)
    carrier_message_id = models.CharField(max_length=64, blank=True)
    auto_reply = models.CharField(max_length=8, blank=True, help_text="help, stop or start: sent by the platform.")
    send_after = models.DateTimeField(null=True, blank=True, help_text="The sender's throughput slot.")
    # [{"status", "at", "error_code"?, "error_text"?}, ...] in order: the message's own history, which outlives
    # the events it raised (those are purged after EVENT_RETENTION_DAYS).
    history = models.JSONField(default=list, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, help_text="Delivered, failed or undelivered.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], name="telephony_message_log"),
            models.Index(fields=["account", "thread", "created_at"], name="telephony_message_thread"),
            models.Index(fields=["account", "direction", "created_at"], name="telephony_message_daily"),
            models.Index(fields=["profile", "to_number", "-created_at"], name="telephony_message_sticky"),
            models.Index(fields=["carrier", "carrier_message_id"], name="telephony_message_carrier_id"),
            # The send queue: only queued rows, in slot order.
            models.Index(fields=["send_after"], condition=Q(status="queued"), name="telephony_message_due"),
            # The stuck-send sweep runs every second: only rows in `sending`, which are few.
            models.Index(fields=["updated_at"], condition=Q(status="sending"), name="telephony_message_sending"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "sending", "sent", "delivered", "failed", "undelivered", "received"]),
                name="telephony_message_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(direction__in=["outbound", "inbound"]), name="telephony_message_direction_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.from_number} -> {self.to_number}"


class OptOut(AccountOwnedModel):
    """A destination that texted STOP to one of the account's numbers: the account may not write to it.

    Only the destination lifts it (by texting START), or staff in admin: CTIA practice, so an account cannot
    clear opt-outs it finds inconvenient.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.CharField(max_length=32)
    keyword = models.CharField(max_length=16)
    via_number = models.CharField(max_length=32, blank=True, help_text="The account's number it was sent to.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at", "-id"], name="telephony_optout_log")]
        constraints = [
            models.UniqueConstraint(fields=["account", "number"], name="telephony_optout_account_number_unique"),
        ]

    def __str__(self) -> str:
        return self.number


class SimulatedCarrierRule(models.Model):
    """How the simulated carrier treats off-net destinations that match (staff- or test-made; wins the settings)."""

    class Action(models.TextChoices):
        DELIVER = "deliver", "Delivered after a delay"
        FAIL = "fail", "Refused at submit (failed)"
        UNDELIVERED = "undelivered", "Accepted, then undelivered"
        SILENT = "silent", "Accepted, never acknowledged"

    match = models.CharField(
        max_length=32,
        unique=True,
        help_text="An E.164 number, or a prefix ending in * (+1555*): exact wins, then longest.",
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    after_ms = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=16, blank=True)
    error_text = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["match"]

    def __str__(self) -> str:
        return f"{self.match}: {self.action}"

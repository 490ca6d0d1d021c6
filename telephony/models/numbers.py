from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper

from tenants.models import AccountOwnedModel


class NumberType(models.TextChoices):
    LOCAL = "local", "Local"
    TOLL_FREE = "toll_free", "Toll-free"


class StockNumber(models.Model):
    """A phone number the platform holds: free to sell, sold to an account, or resting in quarantine."""

    class Status(models.TextChoices):
        AVAILABLE = "available", "Available"
        ASSIGNED = "assigned", "Assigned"
        QUARANTINED = "quarantined", "Quarantined"

    number = models.CharField(max_length=16, unique=True, help_text="E.164, e.g. +12015550123.")
    # The E.164 digits without "+", the column that `pattern` and `contains` searches run on.
    digits = models.CharField(max_length=15)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2.")
    number_type = models.CharField(max_length=16, choices=NumberType.choices, default=NumberType.LOCAL)
    state = models.CharField(max_length=64, blank=True, help_text="Region or state, e.g. NJ.")
    rate_center = models.CharField(max_length=64, blank=True)
    city = models.CharField(max_length=64, blank=True)
    npa = models.CharField(max_length=6, blank=True, help_text="Area code.")
    nxx = models.CharField(max_length=6, blank=True, help_text="Exchange.")
    voice = models.BooleanField(default=True)
    sms = models.BooleanField(default=False)
    monthly_price = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    setup_price = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.AVAILABLE)
    quarantined_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        indexes = [
            models.Index(fields=["status", "country", "npa", "nxx", "number"], name="telephony_stock_npa_nxx"),
            models.Index(fields=["status", "country", "state", "number"], name="telephony_stock_state"),
            models.Index(fields=["status", "rate_center"], name="telephony_stock_rate_center"),
            models.Index(fields=["status", "city"], name="telephony_stock_city"),
            models.Index(fields=["status", "quarantined_until"], name="telephony_stock_quarantine"),
            # Searches only ever look at available numbers and always order by number: partial indexes in
            # number order let "npa=201" or "state=NJ" stop after `limit` rows without a country and without
            # sorting the whole area code. (`contains` and leading-wildcard patterns use the pg_trgm index of
            # migration numbers_trigram, which exists on PostgreSQL only.)
            models.Index(fields=["npa", "number"], condition=Q(status="available"), name="telephony_stock_avail_npa"),
            models.Index(
                fields=["state", "number"], condition=Q(status="available"), name="telephony_stock_avail_state"
            ),
            # City and rate center are matched case-insensitively (people type "newark" for "Newark").
            models.Index(Upper("city"), "number", condition=Q(status="available"), name="telephony_stock_avail_city"),
            models.Index(
                Upper("rate_center"), "number", condition=Q(status="available"), name="telephony_stock_avail_rc"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["available", "assigned", "quarantined"]), name="telephony_stock_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class NumberOrder(AccountOwnedModel):
    """One request to buy numbers, with a result for each number asked for."""

    class Status(models.TextChoices):
        COMPLETED = "completed", "Completed"  # every number succeeded
        PARTIAL = "partial", "Partially completed"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices)
    voice = models.BooleanField(default=True)
    sms = models.BooleanField(default=False)
    autorenew = models.BooleanField(default=True)
    actor_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Order {self.public_id}"


class NumberOrderItem(models.Model):
    """The outcome of one number in an order."""

    class Result(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILED = "failed", "Failed"

    class Reason(models.TextChoices):
        TAKEN = "taken", "Already taken"
        NOT_FOUND = "not_found", "Not in stock"
        QUOTA = "quota", "Number quota reached"
        INVALID = "invalid", "Not a valid E.164 number"
        # The stock number lacks a feature the order asked for (e.g. sms on a voice-only number).
        FEATURE_UNAVAILABLE = "feature_unavailable", "Feature not available on this number"

    order = models.ForeignKey(NumberOrder, on_delete=models.CASCADE, related_name="items")
    number = models.CharField(max_length=32)
    result = models.CharField(max_length=16, choices=Result.choices)
    reason = models.CharField(max_length=32, choices=Reason.choices, blank=True)
    phone_number = models.ForeignKey("telephony.PhoneNumber", null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.number}: {self.result}"


class PhoneNumber(AccountOwnedModel):
    """A number an account rents (a lease): where its calls go and how they are screened."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RELEASED = "released", "Released"

    class Method(models.TextChoices):
        GET = "GET", "GET"
        POST = "POST", "POST"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    stock = models.ForeignKey(StockNumber, on_delete=models.PROTECT, related_name="leases")
    number = models.CharField(max_length=16, help_text="E.164.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    order = models.ForeignKey(NumberOrder, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    description = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(default=list, blank=True, help_text="A list of short labels.")
    voice_enabled = models.BooleanField(default=True)
    sms_enabled = models.BooleanField(default=False)
    autorenew = models.BooleanField(default=True)
    tn_profile = models.ForeignKey(
        "telephony.TnProfile", null=True, blank=True, on_delete=models.SET_NULL, related_name="numbers"
    )
    # The voice target: at most one of these three is set (a database constraint says so).
    call_control_app = models.ForeignKey(
        "telephony.CallControlApp", null=True, blank=True, on_delete=models.SET_NULL, related_name="numbers"
    )
    sip_connection = models.ForeignKey(
        "telephony.SipConnection", null=True, blank=True, on_delete=models.SET_NULL, related_name="numbers"
    )
    sip_user = models.ForeignKey(
        "telephony.SipUser", null=True, blank=True, on_delete=models.SET_NULL, related_name="numbers"
    )
    status_callback_url = models.URLField(max_length=2000, blank=True)
    status_callback_method = models.CharField(max_length=4, choices=Method.choices, default=Method.POST)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField(help_text="End of the paid period; renewed monthly when autorenew is on.")
    released_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number", "id"]
        indexes = [
            models.Index(fields=["account", "status", "number"], name="telephony_number_account"),
            models.Index(fields=["status", "autorenew", "expires_at"], name="telephony_number_expiry"),
        ]
        constraints = [
            # A number is live in at most one account at a time; released leases stay as history.
            models.UniqueConstraint(
                fields=["number"], condition=Q(status="active"), name="telephony_phonenumber_one_active_lease"
            ),
            models.CheckConstraint(
                condition=(
                    Q(call_control_app__isnull=True, sip_connection__isnull=True)
                    | Q(call_control_app__isnull=True, sip_user__isnull=True)
                    | Q(sip_connection__isnull=True, sip_user__isnull=True)
                ),
                name="telephony_phonenumber_one_voice_target",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def voice_target(self):
        return self.call_control_app or self.sip_connection or self.sip_user

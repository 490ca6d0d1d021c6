"""Extension event hooks (VoipNow's CallAPI Events) and the account's web callback policy (Acrobits)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from tenants.models import AccountOwnedModel


class ExtensionHook(AccountOwnedModel):
    """An HTTP request a SIP user's calls fire on one event: dial-in, dial-out, answer or hangup."""

    class Event(models.TextChoices):
        DIAL_IN = "dial-in", "Dial-in (the user receives a call)"
        DIAL_OUT = "dial-out", "Dial-out (the user places a call)"
        ANSWER = "answer", "Answer"
        HANGUP = "hangup", "Hangup"

    class Method(models.TextChoices):
        GET = "GET", "GET"
        POST = "POST", "POST"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sip_user = models.ForeignKey("telephony.SipUser", on_delete=models.CASCADE, related_name="event_hooks")
    event = models.CharField(max_length=16, choices=Event.choices)
    method = models.CharField(max_length=4, choices=Method.choices, default=Method.POST)
    url = models.CharField(max_length=2000)
    enabled = models.BooleanField(default=True)
    notes = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["sip_user", "event"], name="telephony_exthook_user_event")]
        constraints = [
            models.CheckConstraint(
                condition=Q(event__in=["dial-in", "dial-out", "answer", "hangup"]),
                name="telephony_extensionhook_event_valid",
            ),
            models.CheckConstraint(
                condition=Q(method__in=["GET", "POST"]), name="telephony_extensionhook_method_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.method} {self.url}"


class WebCallbackSettings(AccountOwnedModel):
    """How the account's web callback (Acrobits Cloud Softphone) places its two calls."""

    class Order(models.TextChoices):
        CALLBACK_FIRST = "callback_first", "Call the user's phone first, then the destination"
        TARGET_FIRST = "target_first", "Call the destination first, then the user's phone"

    enabled = models.BooleanField(default=True)
    order = models.CharField(max_length=16, choices=Order.choices, default=Order.CALLBACK_FIRST)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account"], name="telephony_webcallbacksettings_one_per_account"),
            models.CheckConstraint(
                condition=Q(order__in=["callback_first", "target_first"]),
                name="telephony_webcallbacksettings_order_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Web callback: {self.get_order_display()}"

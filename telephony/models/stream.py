"""Event subscriptions: which of the account's events its websocket connections receive (Opentact's wss channel)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import AccountOwnedModel


class EventSubscription(AccountOwnedModel):
    """A standing order to stream some of the account's events to its websocket connections, until it expires."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_types = models.JSONField(default=list, help_text='Types or patterns from the catalogue: "call.*", "*".')
    # Optional narrowing, all of which must hold: an event matches when it is about, or mentions, these.
    filter_number = models.CharField(max_length=32, blank=True, help_text="E.164, e.g. +12015550123.")
    filter_app = models.UUIDField(null=True, blank=True, help_text="A call-control app's id.")
    filter_call = models.UUIDField(null=True, blank=True, help_text="A call's id.")
    expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "is_active"], name="telephony_eventsub_account")]
        constraints = [
            models.CheckConstraint(
                condition=Q(filter_number="") | Q(filter_number__startswith="+"),
                name="telephony_eventsubscription_number_e164",
            ),
        ]

    def __str__(self) -> str:
        return ", ".join(self.event_types) or "(no types)"

    @property
    def state(self) -> str:
        if not self.is_active:
            return "paused"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @property
    def filters(self) -> dict:
        return {
            "number": self.filter_number or None,
            "app": str(self.filter_app) if self.filter_app else None,
            "call": str(self.filter_call) if self.filter_call else None,
        }

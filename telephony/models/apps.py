from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from tenants.models import AccountOwnedModel


class HttpMethod(models.TextChoices):
    GET = "GET", "GET"
    POST = "POST", "POST"


class CallControlApp(AccountOwnedModel):
    """A customer's call-control application (Opentact's SCA): the flow a number's calls run, and where to report.

    In `xml` mode the app holds the flow document itself (every saved version is kept in AppVersion); in
    `url` mode each call fetches its document from `call_flow_url`, falling back to `fallback_url`.
    """

    class Mode(models.TextChoices):
        XML = "xml", "Flow document held by the app"
        URL = "url", "Flow fetched from a URL for each call"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.XML)
    xml = models.TextField(blank=True, help_text="The current flow document (xml mode).")
    xml_version = models.PositiveIntegerField(
        default=0, help_text="The AppVersion number `xml` holds; 0 while the app has no document."
    )
    call_flow_url = models.CharField(max_length=2000, blank=True)
    call_flow_method = models.CharField(max_length=4, choices=HttpMethod.choices, default=HttpMethod.POST)
    call_flow_timeout_ms = models.PositiveIntegerField(default=5000)
    fallback_url = models.CharField(max_length=2000, blank=True)
    webhook_url = models.CharField(max_length=2000, blank=True, help_text="Receives the app's call events.")
    webhook_method = models.CharField(max_length=4, choices=HttpMethod.choices, default=HttpMethod.POST)
    webhook_timeout_ms = models.PositiveIntegerField(default=5000)
    status_callback_url = models.CharField(max_length=2000, blank=True)
    status_callback_method = models.CharField(max_length=4, choices=HttpMethod.choices, default=HttpMethod.POST)
    status_callback_events = models.JSONField(
        default=list, blank=True, help_text='Of initiated, ringing, answered, completed; empty = ["completed"].'
    )
    auto_answer = models.BooleanField(default=True)
    max_call_length_s = models.PositiveIntegerField(default=4 * 3600)
    channel_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Concurrent calls; empty = none.")
    time_zone = models.CharField(max_length=64, default="UTC", help_text="For <Scheduler> windows.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(mode__in=["xml", "url"]), name="telephony_callcontrolapp_mode_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class AppVersion(models.Model):
    """One saved version of an app's flow document, so a customer can diff and restore."""

    app = models.ForeignKey(CallControlApp, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    xml = models.TextField()
    actor_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["app", "number"], name="telephony_appversion_unique")]

    def __str__(self) -> str:
        return f"{self.app} v{self.number}"

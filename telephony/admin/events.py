"""Staff admin for events and webhooks: endpoints across accounts, deliveries stuck or failing (re-queue), events.

Events and delivery attempts are history: read-only. Endpoint changes go through the services, so they are
audited and raise their events like a customer's own changes.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.utils import timezone

from telephony import delivery as engine
from telephony.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from telephony.services import webhooks as services


class ReadOnlyAdmin(admin.ModelAdmin):
    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "type", "account", "object_type", "object_id", "sequence", "occurred_at"]
    list_filter = ["type", "object_type", "created_at"]
    search_fields = ["public_id", "object_id", "account__name", "account__slug"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # counting millions of rows for every page is the slow part

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # retention purges events; staff do not pick and choose


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = [
        "url", "account", "enabled", "disabled_reason", "consecutive_failures", "failing_since", "last_success_at",
        "circuit_open_until",
    ]  # fmt: skip
    list_filter = ["enabled", "payload_format", "disabled_reason"]
    search_fields = ["url", "public_id", "account__name", "account__slug"]
    list_select_related = ["account"]
    # The secrets stay out of the admin altogether, encrypted or not.
    exclude = ["secret_encrypted", "previous_secret_encrypted"]
    actions = ["disable", "enable", "recover_last_day"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.exclude]

    def has_add_permission(self, request) -> bool:
        return False  # customers add endpoints; a secret shown to staff would be a secret leaked

    @admin.action(description="Disable the selected endpoints")
    def disable(self, request, queryset):
        count = sum(
            services.webhook_endpoint_disable(account=e.account, actor=request.user, endpoint=e, reason="staff")
            for e in queryset.filter(enabled=True).select_related("account")
        )
        self.message_user(request, f"{count} endpoints disabled.", messages.SUCCESS)

    @admin.action(description="Enable the selected endpoints (resets their failure streak)")
    def enable(self, request, queryset):
        count = 0
        for endpoint in queryset.filter(enabled=False).select_related("account"):
            services.webhook_endpoint_update(
                account=endpoint.account, actor=request.user, endpoint=endpoint, enabled=True
            )
            count += 1
        self.message_user(request, f"{count} endpoints enabled.", messages.SUCCESS)

    @admin.action(description="Re-send failed deliveries of the last 24 hours")
    def recover_last_day(self, request, queryset):
        since = timezone.now() - timedelta(days=1)
        total = 0
        for endpoint in queryset.filter(enabled=True).select_related("account"):
            total += services.webhook_endpoint_recover(
                account=endpoint.account, actor=request.user, endpoint=endpoint, since=since
            )
        self.message_user(request, f"{total} deliveries queued again.", messages.SUCCESS)


class DeliveryHealthFilter(admin.SimpleListFilter):
    title = "health"
    parameter_name = "health"

    def lookups(self, request, model_admin):
        return [
            ("stuck", "Stuck (claim expired, or overdue > 1 min)"),
            ("retrying", "Retrying (pending after a failed attempt)"),
            ("failed", "Failed (retries used up)"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "stuck":
            return queryset.filter(pk__in=engine.deliveries_stuck().values("pk"))
        if self.value() == "retrying":
            return queryset.filter(status=Delivery.Status.PENDING, attempt_count__gt=0)
        if self.value() == "failed":
            return queryset.filter(status=Delivery.Status.FAILED)
        return queryset


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    fields = ["number", "trigger", "attempted_at", "duration_ms", "status_code", "error", "response_excerpt"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id", "account", "endpoint", "event_type_display", "status", "attempt_count", "last_status_code",
        "next_attempt_at", "last_error", "created_at",
    ]  # fmt: skip
    # No date filters: deliveries carry no created_at index (see the model), and health says what matters.
    list_filter = [DeliveryHealthFilter, "status", "kind"]
    search_fields = ["public_id", "event__public_id", "endpoint__url", "account__name", "account__slug"]
    list_select_related = ["account", "endpoint", "event"]
    inlines = [DeliveryAttemptInline]
    show_full_result_count = False
    actions = ["requeue"]

    @admin.display(description="event type")
    def event_type_display(self, delivery) -> str:
        return delivery.event_type

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Re-queue now (pending or failed, endpoint enabled)")
    def requeue(self, request, queryset):
        count = services.delivery_requeue(deliveries=Delivery.objects.filter(pk__in=queryset.values("pk")))
        self.message_user(request, f"{count} deliveries queued again.", messages.SUCCESS)

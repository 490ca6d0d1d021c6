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


class EndpointHealthFilter(admin.SimpleListFilter):
    title = "health"
    parameter_name = "health"

    def lookups(self, request, model_admin):
        return [
            ("failing", "Failing (no success since the first failure)"),
            ("circuit_open", "Circuit open (deliveries waiting)"),
            ("healthy", "Healthy (enabled, not failing)"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "failing":
            return queryset.filter(failing_since__isnull=False)
        if self.value() == "circuit_open":
            return queryset.filter(circuit_open_until__gt=timezone.now())
        if self.value() == "healthy":
            return queryset.filter(enabled=True, failing_since__isnull=True)
        return queryset


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = [
        "url", "account", "enabled", "disabled_reason", "consecutive_failures", "failing_since", "last_success_at",
        "circuit_open_until",
    ]  # fmt: skip
    list_filter = ["enabled", EndpointHealthFilter, "purpose", "payload_format", "disabled_reason"]
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
            ("failing_endpoint", "Not delivered, to an endpoint that is failing"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "stuck":
            return queryset.filter(pk__in=engine.deliveries_stuck().values("pk"))
        if self.value() == "retrying":
            return queryset.filter(status=Delivery.Status.PENDING, attempt_count__gt=0)
        if self.value() == "failed":
            return queryset.filter(status=Delivery.Status.FAILED)
        if self.value() == "failing_endpoint":
            return queryset.exclude(status=Delivery.Status.DELIVERED).filter(endpoint__failing_since__isnull=False)
        return queryset


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    fields = [
        "number", "trigger", "attempted_at", "duration_ms", "status_code", "error", "request_method", "request_url",
        "request_headers", "response_headers", "response_excerpt",
    ]  # fmt: skip
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
    # Relative date filters ("today", "past 7 days"...) rather than a date_hierarchy, which would read the whole
    # table for its distinct dates on every page (deliveries carry no created_at index, see the model).
    list_filter = [DeliveryHealthFilter, "status", "kind", ("created_at", admin.DateFieldListFilter)]
    search_fields = [
        "public_id", "event__public_id", "endpoint__url", "object_id", "account__name", "account__slug",
    ]  # fmt: skip
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

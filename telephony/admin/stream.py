"""Staff admin for event subscriptions (the websocket stream's). Changes go through the services: audited, and
open connections re-read their subscriptions at once."""

from __future__ import annotations

from django.contrib import admin, messages

from telephony.models import EventSubscription
from telephony.services import stream as services


@admin.register(EventSubscription)
class EventSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["public_id", "account", "event_types", "filter_number", "is_active", "expires_at", "created_at"]
    list_filter = ["is_active", ("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["public_id", "filter_number", "account__name", "account__slug"]
    list_select_related = ["account"]
    actions = ["pause", "resume", "delete_through_service"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # customers subscribe through the API

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the action below deletes through the service

    def _set_active(self, request, queryset, active: bool) -> None:
        for subscription in queryset.select_related("account"):
            services.event_subscription_update(
                account=subscription.account, actor=request.user, subscription=subscription, is_active=active
            )
        self.message_user(request, "Done.", messages.SUCCESS)

    @admin.action(description="Pause the selected subscriptions")
    def pause(self, request, queryset):
        self._set_active(request, queryset, False)

    @admin.action(description="Resume the selected subscriptions")
    def resume(self, request, queryset):
        self._set_active(request, queryset, True)

    @admin.action(description="Delete the selected subscriptions")
    def delete_through_service(self, request, queryset):
        for subscription in queryset.select_related("account"):
            services.event_subscription_delete(
                account=subscription.account, actor=request.user, subscription=subscription
            )
        self.message_user(request, "Deleted.", messages.SUCCESS)

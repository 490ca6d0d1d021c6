"""Staff admin for bulk calls, extension event hooks and web callback settings: read-only views for support.

Changes go through the services (the portal and the API), which validate and record them; staff can see a
campaign's settings and progress, a SIP user's hooks, and an account's web callback order here.
"""

from __future__ import annotations

from django.contrib import admin

from telephony.models import BulkCall, ExtensionHook, WebCallbackSettings


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BulkCall)
class BulkCallAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "account", "name", "status", "from_number", "total", "invalid_count", "created_at"]
    list_filter = ["status"]
    search_fields = ["public_id", "name", "account__name", "account__slug", "from_number"]
    list_select_related = ["account"]
    exclude = ["invalid"]


@admin.register(ExtensionHook)
class ExtensionHookAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "account", "sip_user", "event", "method", "url", "enabled"]
    list_filter = ["event", "method", "enabled"]
    search_fields = ["public_id", "url", "sip_user__login", "account__name", "account__slug"]
    list_select_related = ["account", "sip_user__domain"]


@admin.register(WebCallbackSettings)
class WebCallbackSettingsAdmin(ReadOnlyAdmin):
    list_display = ["account", "enabled", "order", "updated_at"]
    list_filter = ["enabled", "order"]
    search_fields = ["account__name", "account__slug"]
    list_select_related = ["account"]

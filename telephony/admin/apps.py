"""Staff admin for call-control apps. Customers create them; staff inspect, disable or delete them.

Changes go through the app services (validated and audited). The versions of an app's flow document are
shown read-only: history is never edited, only added to.
"""

from __future__ import annotations

from django.contrib import admin

from telephony.admin.sip import _ServiceAdmin
from telephony.models import AppVersion, CallControlApp
from telephony.services import apps as services


class AppVersionInline(admin.TabularInline):
    model = AppVersion
    fields = ["number", "created_at", "actor_label", "xml"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ["-number"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CallControlApp)
class CallControlAppAdmin(_ServiceAdmin):
    list_display = ["name", "account", "mode", "xml_version", "is_active", "channel_limit", "updated_at"]
    list_filter = ["mode", "is_active", "auto_answer", "created_at"]
    search_fields = ["name", "public_id", "call_flow_url", "webhook_url", "account__name", "account__slug"]
    list_select_related = ["account"]
    fields = [
        "account", "public_id", "name", "is_active", "mode", "xml_version", "xml", "call_flow_url", "call_flow_method",
        "call_flow_timeout_ms", "fallback_url", "webhook_url", "webhook_method", "webhook_timeout_ms",
        "status_callback_url", "status_callback_method", "status_callback_events", "auto_answer", "max_call_length_s",
        "channel_limit", "time_zone", "created_at", "updated_at",
    ]  # fmt: skip
    editable_through_service = ("name", "is_active", "channel_limit", "max_call_length_s")
    inlines = [AppVersionInline]

    def save_related(self, request, form, formsets, change):
        # The versions inline is read-only and the service saved the app; the change message still reads
        # what each formset saved, which is nothing.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def service_update(self, request, obj, changes):
        services.app_update(account=obj.account, actor=request.user, app=obj, **changes)

    def service_delete(self, request, obj):
        services.app_delete(account=obj.account, actor=request.user, app=obj)

"""Staff admin for call records across accounts: read-only, since calls are written by the call engine only."""

from __future__ import annotations

from django.contrib import admin

from telephony import q850
from telephony.models import Call, CallHttpRequest


class _ReadOnly:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class CallHttpRequestInline(_ReadOnly, admin.StackedInline):
    model = CallHttpRequest
    fields = [
        "created_at", "purpose", "command_path", "method", "url", "outcome", "response_status", "attempts",
        "request_body", "response_excerpt",
    ]  # fmt: skip
    readonly_fields = fields
    extra = 0
    ordering = ["created_at", "id"]


class LegInline(_ReadOnly, admin.TabularInline):
    model = Call
    fk_name = "parent"
    verbose_name = "leg"
    verbose_name_plural = "legs"
    fields = ["public_id", "direction", "to_number", "status", "q850_cause", "created_at", "ended_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


@admin.register(Call)
class CallAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = [
        "created_at", "account", "direction", "from_number", "to_number", "status", "cause", "app", "source",
    ]  # fmt: skip
    list_filter = ["status", "direction", "source", "created_at"]
    search_fields = ["=public_id", "from_number", "to_number", "=switch_call_id", "account__slug"]
    list_select_related = ["account", "app"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # counting every call for the header costs more than the page
    readonly_fields = [
        "account", "public_id", "parent", "direction", "from_number", "to_number", "status", "q850_cause", "cause",
        "sip_code", "end_reason", "source", "switch_call_id", "tag", "phone_number", "app", "sip_user",
        "sip_connection", "created_at", "initiated_at", "ringing_at", "answered_at", "ended_at", "flow_state",
        "position", "document", "variables", "flow_wait", "engine_claimed_until", "engine_steps",
        "status_callback_url", "status_callback_method", "status_callback_events", "status_callback_sequence",
    ]  # fmt: skip
    fields = readonly_fields
    inlines = [LegInline, CallHttpRequestInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("account", "app", "parent", "phone_number", "sip_user", "sip_connection")
        )

    @admin.display(description="Q.850 cause")
    def cause(self, call: Call) -> str:
        if call.q850_cause is None:
            return "—"
        return f"{call.q850_cause} {q850.cause_name(call.q850_cause) or ''}".strip()

"""Staff admin for the call engine: the simulated switch's rules, and the wake-ups calls are waiting on."""

from __future__ import annotations

from django.contrib import admin

from telephony.models import CallWakeup, SimulatorRule


@admin.register(SimulatorRule)
class SimulatorRuleAdmin(admin.ModelAdmin):
    list_display = ["match", "action", "ring_after_ms", "answer_after_ms", "digits", "hangup_after_ms", "enabled"]
    list_filter = ["action", "enabled"]
    search_fields = ["match", "note"]
    ordering = ["match"]


@admin.register(CallWakeup)
class CallWakeupAdmin(admin.ModelAdmin):
    """Read-only: the engine writes and consumes these; an overdue one here is a call the sweeper should pick up."""

    list_display = ["id", "root", "leg", "kind", "event", "due_at", "created_at"]
    list_filter = ["kind", "event"]
    list_select_related = ["root", "leg"]
    search_fields = ["root__public_id", "leg__public_id"]
    readonly_fields = ["root", "leg", "kind", "event", "data", "due_at", "created_at"]
    raw_id_fields = ["root", "leg"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

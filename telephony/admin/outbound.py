"""Staff admin for accounts' outbound calling policies: pace, concurrent calls, queue wait, destinations.

Saved through telephony.services.outbound.outbound_policy_update (validated and audited); the pacing state
(`next_dispatch_at`) is shown, never edited.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from telephony.models import OutboundPolicy
from telephony.services import outbound


@admin.register(OutboundPolicy)
class OutboundPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "account", "calls_per_second", "max_concurrent_calls", "max_queue_wait_s", "allowed_countries",
        "allow_premium_rate", "updated_at",
    ]  # fmt: skip
    list_filter = ["allow_premium_rate"]
    search_fields = ["account__name", "account__slug"]
    list_select_related = ["account"]
    autocomplete_fields = ["account"]
    fields = [
        "account", "calls_per_second", "max_concurrent_calls", "max_queue_wait_s", "allowed_countries",
        "allow_premium_rate", "next_dispatch_at", "updated_at",
    ]  # fmt: skip
    readonly_fields = ["next_dispatch_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "account"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in outbound.POLICY_FIELDS if name in form.cleaned_data}
        try:
            saved = outbound.outbound_policy_update(account=obj.account, actor=request.user, **changes)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            return
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        pass  # no related objects; the service saved everything

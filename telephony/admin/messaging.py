"""Staff admin for messaging: 10DLC review (approve or reject brands and campaigns), messages across accounts,
messaging profiles, opt-outs, and the simulated carrier's rules. Reviews go through the service (audit, event)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from telephony.models import Brand, Campaign, Message, MessagingProfile, OptOut, SimulatedCarrierRule
from telephony.services import messaging as services


class RejectForm(forms.Form):
    note = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text="Shown to the customer: what to fix."
    )


class ReviewAdmin(admin.ModelAdmin):
    """Brands and campaigns: staff approve or reject them; the account sees the status and gets an event."""

    actions = ["approve", "reject"]
    list_select_related = ["account"]

    def has_add_permission(self, request) -> bool:
        return False  # customers submit them

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # read-only pages; the review is the actions

    def has_review_permission(self, request) -> bool:
        # The model's change permission, which the read-only pages above no longer use: staff who may only view
        # brands and campaigns must not approve or reject them.
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    @admin.action(description="Approve the selected", permissions=["review"])
    def approve(self, request, queryset):
        for obj in queryset:
            services.tendlc_review(staff=request.user, obj=obj, approve=True)
        self.message_user(request, f"Approved {queryset.count()}.", messages.SUCCESS)

    @admin.action(description="Reject the selected (with a note for the customer)", permissions=["review"])
    def reject(self, request, queryset):
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            for obj in queryset:
                services.tendlc_review(staff=request.user, obj=obj, approve=False, note=form.cleaned_data["note"])
            self.message_user(request, f"Rejected {queryset.count()}.", messages.SUCCESS)
            return HttpResponseRedirect(request.get_full_path())
        return TemplateResponse(
            request,
            "admin/telephony/tendlc_reject.html",
            {
                **self.admin_site.each_context(request),
                "title": "Reject with a note",
                "objects": queryset,
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(Brand)
class BrandAdmin(ReviewAdmin):
    list_display = ["display_name", "company_name", "account", "entity_type", "status", "created_at", "reviewed_by"]
    list_filter = ["status", "entity_type"]
    search_fields = ["display_name", "company_name", "ein", "account__name", "account__slug"]


@admin.register(Campaign)
class CampaignAdmin(ReviewAdmin):
    list_display = ["name", "brand", "account", "use_case", "status", "created_at", "reviewed_by"]
    list_filter = ["status", "use_case"]
    search_fields = ["name", "brand__display_name", "account__name", "account__slug"]
    list_select_related = ["account", "brand"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "account",
        "direction",
        "from_number",
        "to_number",
        "status",
        "segments",
        "error_code",
    ]
    list_filter = ["direction", "status", "encoding", ("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=public_id", "=from_number", "=to_number", "=carrier_message_id", "account__slug"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # the message table grows without bound
    readonly_fields = [field.name for field in Message._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MessagingProfile)
class MessagingProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "number_pool_enabled", "sticky_sender", "callback_url", "updated_at"]
    search_fields = ["name", "public_id", "account__slug"]
    list_select_related = ["account"]
    readonly_fields = [field.name for field in MessagingProfile._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    """Opt-outs of every account. Removing one goes through the service (its opt_out.deleted event) and is logged
    in the admin history; accounts themselves cannot (only the destination's START lifts it)."""

    list_display = ["number", "account", "keyword", "via_number", "created_at"]
    list_filter = [("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=number", "=via_number", "=public_id", "account__slug"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    readonly_fields = ["public_id", "account", "number", "keyword", "via_number", "created_at"]
    actions = ["remove"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the plain delete would skip the event: the remove action is the way

    def has_remove_permission(self, request) -> bool:
        # The model's delete permission, which the plain delete above no longer uses: staff who may only view
        # opt-outs must not lift them.
        return request.user.has_perm(f"{OptOut._meta.app_label}.delete_optout")

    @admin.action(
        description="Remove the selected opt-outs (the destinations can be messaged again)", permissions=["remove"]
    )
    def remove(self, request, queryset):
        removed = [opt_out for opt_out in queryset if services.opt_out_remove(staff=request.user, opt_out=opt_out)]
        if removed:
            self.log_deletions(request, removed)  # the instances keep their pk after the delete
        count = len(removed)
        self.message_user(request, f"Removed {count} opt-out{'s' if count != 1 else ''}.", messages.SUCCESS)


@admin.register(SimulatedCarrierRule)
class SimulatedCarrierRuleAdmin(admin.ModelAdmin):
    list_display = ["match", "action", "after_ms", "error_code", "error_text"]
    search_fields = ["match"]

"""Staff admin for TN profiles and caller-list entries. Changes go through the same services as the portal."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from telephony.models import CallerListEntry, TnProfile
from telephony.services import profiles as services


@admin.register(TnProfile)
class TnProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "block_action", "blacklist_count", "whitelist_count", "updated_at"]
    list_filter = ["block_action", ("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "public_id", "account__name", "account__slug"]
    list_select_related = ["account"]
    fields = [
        "account",
        "public_id",
        "name",
        "description",
        "block_action",
        "blacklist_count",
        "whitelist_count",
        "created_at",
        "updated_at",
    ]
    readonly_fields = ["account", "public_id", "blacklist_count", "whitelist_count", "created_at", "updated_at"]
    actions = ["delete_detaching_numbers"]

    def has_add_permission(self, request) -> bool:
        return False  # customers create profiles; staff adjust or remove them

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the bulk action below deletes through the service (audit, numbers detached)

    def save_model(self, request, obj, form, change):
        try:
            services.tn_profile_update(
                account=obj.account,
                actor=request.user,
                profile=obj,
                name=obj.name,
                description=obj.description,
                block_action=obj.block_action,
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)

    @admin.action(description="Delete the selected profiles (numbers using them are left unscreened)")
    def delete_detaching_numbers(self, request, queryset):
        for profile in queryset.select_related("account"):
            services.tn_profile_delete(
                account=profile.account, actor=request.user, profile=profile, detach_numbers=True
            )
        self.message_user(request, "Deleted.", messages.SUCCESS)


@admin.register(CallerListEntry)
class CallerListEntryAdmin(admin.ModelAdmin):
    list_display = ["display", "list_type", "kind", "profile", "account", "note", "hit_count", "last_hit_at"]
    list_filter = ["list_type", "kind"]
    # "^value": starts-with, the way caller IDs are looked for ("+1900"), and it can use the index.
    search_fields = ["^value", "note", "profile__name", "profile__account__slug"]
    list_select_related = ["profile", "profile__account"]
    readonly_fields = ["profile", "list_type", "kind", "value", "note", "hit_count", "last_hit_at", "created_at"]
    show_full_result_count = False  # lists run to 100,000s of rows; an exact total on every page is not worth it
    actions = ["remove_entries"]

    @admin.display(ordering="profile__account__name")
    def account(self, entry: CallerListEntry):
        return entry.profile.account

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # removal goes through the service below, which keeps list counts and the audit log

    @admin.action(description="Remove the selected entries from their lists")
    def remove_entries(self, request, queryset):
        by_list: dict[tuple[TnProfile, str], list[str]] = {}
        for entry in queryset.select_related("profile__account"):
            by_list.setdefault((entry.profile, entry.list_type), []).append(entry.display)
        step = services.MAX_CHANGES_PER_REQUEST
        for (profile, list_type), values in by_list.items():
            for start in range(0, len(values), step):
                services.caller_list_change(
                    account=profile.account,
                    actor=request.user,
                    profile=profile,
                    list_type=list_type,
                    remove=values[start : start + step],
                )
        self.message_user(request, "Removed.", messages.SUCCESS)

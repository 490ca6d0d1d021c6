"""Staff admin for accounts, people and keys. Every change goes through the same services as the portal."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from tenants import services
from tenants.models import Account, ApiKey, AuditEntry, Membership, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "status", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["name", "slug", "public_id"]
    readonly_fields = ["public_id", "created_at", "updated_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]
    actions = ["suspend", "reactivate"]

    @admin.action(description="Suspend the selected accounts (their data is kept)")
    def suspend(self, request, queryset):
        for account in queryset.filter(status=Account.Status.ACTIVE):
            services.account_set_status(
                account=account, actor=request.user, status=Account.Status.SUSPENDED, reason="Suspended by staff"
            )
        self.message_user(request, "Suspended.", messages.SUCCESS)

    @admin.action(description="Reactivate the selected accounts")
    def reactivate(self, request, queryset):
        for account in queryset.filter(status=Account.Status.SUSPENDED):
            services.account_set_status(account=account, actor=request.user, status=Account.Status.ACTIVE)
        self.message_user(request, "Reactivated.", messages.SUCCESS)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "name"]
    readonly_fields = ["public_id", "date_joined", "last_login"]
    fieldsets = [
        (None, {"fields": ["email", "password", "public_id"]}),
        ("Profile", {"fields": ["name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "account", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "account__name", "account__slug"]
    autocomplete_fields = ["user", "account"]
    list_select_related = ["user", "account"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "masked", "account", "state", "read_only", "last_used_at", "expires_at", "created_at"]
    list_filter = ["read_only", ("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["name", "prefix", "account__name", "account__slug"]
    list_select_related = ["account"]
    # The digest is not shown either: it is useless to staff and the secret itself is never stored.
    fields = [
        "account",
        "name",
        "masked",
        "read_only",
        "rate_limit",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "created_by",
        "created_at",
    ]
    readonly_fields = ["account", "masked", "last_used_at", "revoked_at", "created_by", "created_at"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # keys are created by customers, who are the only ones to see the secret

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request, queryset):
        for key in queryset.filter(revoked_at=None).select_related("account"):
            services.api_key_revoke(account=key.account, actor=request.user, api_key=key)
        self.message_user(request, "Revoked.", messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "account", "actor_label", "action", "object_repr"]
    list_filter = ["action", "object_type", "created_at"]
    search_fields = ["account__name", "account__slug", "actor_label", "object_repr", "object_id"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

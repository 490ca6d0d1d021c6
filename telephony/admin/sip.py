"""Staff admin for SIP. Customers create these; staff inspect, disable, reset a SIP user's password, or delete.

Every change goes through the SIP services (so it is validated and audited), and no page shows a digest
hash or an invite token: they are useless to staff and dangerous in a screenshot.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect

from telephony.models import SipConnection, SipDomain, SipInvite, SipUser
from telephony.services import sip as services
from telephony.sipauth import PASSWORD_MIN_LENGTH


class _ServiceAdmin(admin.ModelAdmin):
    """Saves and deletes through a service; a service's ValidationError comes back as an admin error message."""

    list_select_related = ["account"]
    editable_through_service: tuple[str, ...] = ()

    def has_add_permission(self, request) -> bool:
        return False  # created by customers, through the API or the portal

    def get_readonly_fields(self, request, obj=None):
        editable = set(self.editable_through_service)
        return [field for field in self.get_fields(request, obj) if field not in editable]

    def service_update(self, request, obj, changes: dict) -> None:
        raise NotImplementedError

    def service_delete(self, request, obj) -> None:
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in self.editable_through_service}
        if not changes:
            return
        try:
            self.service_update(request, obj, changes)
        except ValidationError as exc:
            request.sip_service_error = exc

    def save_form(self, request, form, change):
        # The instance is saved by the service in save_model, not by the ModelForm.
        return form.instance

    def save_related(self, request, form, formsets, change):
        pass  # no many-to-many fields or inlines; the service saved everything

    def log_change(self, request, obj, message):
        if getattr(request, "sip_service_error", None) is None:
            return super().log_change(request, obj, message)
        return None

    def response_change(self, request, obj):
        error = getattr(request, "sip_service_error", None)
        if error is not None:
            self.message_user(request, f"Not saved: {' '.join(error.messages)}", messages.ERROR)
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def delete_model(self, request, obj):
        self.service_delete(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("account"):
            self.service_delete(request, obj)


@admin.register(SipConnection)
class SipConnectionAdmin(_ServiceAdmin):
    list_display = ["name", "account", "auth_type", "username", "inbound_host", "is_active", "created_at"]
    list_filter = ["auth_type", "is_active", "inbound_transport", "caller_id_policy"]
    search_fields = ["name", "username", "inbound_host", "public_id", "account__name", "account__slug"]
    list_select_related = ["account", "default_caller_id"]
    fields = [
        "account", "public_id", "name", "is_active", "auth_type", "username", "allowed_ips", "inbound_host",
        "inbound_port", "inbound_transport", "codecs", "caller_id_policy", "default_caller_id", "channel_limit",
        "created_at", "updated_at",
    ]  # fmt: skip
    editable_through_service = ("name", "is_active", "channel_limit")

    def service_update(self, request, obj, changes):
        services.sip_connection_update(account=obj.account, actor=request.user, connection=obj, **changes)

    def service_delete(self, request, obj):
        services.sip_connection_delete(account=obj.account, actor=request.user, connection=obj)


@admin.register(SipDomain)
class SipDomainAdmin(_ServiceAdmin):
    list_display = ["domain", "account", "same_domain_calls_only", "created_at"]
    list_filter = ["same_domain_calls_only", "created_at"]
    search_fields = ["domain", "name", "public_id", "account__name", "account__slug"]
    fields = [
        "account", "public_id", "name", "domain", "same_domain_calls_only", "default_call_control_app",
        "default_sip_connection", "created_at", "updated_at",
    ]  # fmt: skip
    editable_through_service = ("same_domain_calls_only",)

    def service_update(self, request, obj, changes):
        services.sip_domain_update(account=obj.account, actor=request.user, domain=obj, **changes)

    def service_delete(self, request, obj):
        services.sip_domain_delete(account=obj.account, actor=request.user, domain=obj)


class SipUserAdminForm(forms.ModelForm):
    new_password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=f"Sets a new SIP password (at least {PASSWORD_MIN_LENGTH} characters, not only digits, not "
        "containing the login). Only its hashes are stored. Leave empty to keep the current one.",
    )

    class Meta:
        model = SipUser
        fields = ["is_active", "same_domain_calls_only", "first_name", "last_name", "email"]


@admin.register(SipUser)
class SipUserAdmin(_ServiceAdmin):
    form = SipUserAdminForm
    list_display = ["login", "domain", "account", "state", "is_active", "last_seen_at", "created_at"]
    list_filter = ["state", "is_active", "same_domain_calls_only"]
    search_fields = ["login", "domain__domain", "email", "public_id", "account__name", "account__slug"]
    list_select_related = ["account", "domain"]
    fields = [
        "account", "public_id", "domain", "login", "new_password", "first_name", "last_name", "email",
        "caller_id_number", "sip_connection", "is_active", "same_domain_calls_only", "state", "last_seen_at",
        "created_at", "updated_at",
    ]  # fmt: skip
    editable_through_service = ("new_password", "first_name", "last_name", "email", "is_active",
                                "same_domain_calls_only")  # fmt: skip

    def service_update(self, request, obj, changes):
        if "new_password" in changes:
            password = changes.pop("new_password")
            if password:
                changes["password"] = password
        services.sip_user_update(account=obj.account, actor=request.user, sip_user=obj, **changes)

    def service_delete(self, request, obj):
        services.sip_user_delete(account=obj.account, actor=request.user, sip_user=obj)


@admin.register(SipInvite)
class SipInviteAdmin(_ServiceAdmin):
    list_display = ["name", "account", "connection", "domain", "state", "expires_at", "used_at", "created_at"]
    list_filter = [("used_at", admin.EmptyFieldListFilter), "expires_at", "created_at"]
    search_fields = ["name", "public_id", "account__name", "account__slug", "connection__name", "domain__domain"]
    list_select_related = ["account", "connection", "domain"]
    # Neither the token prefix nor its digest: the admin has no business with the link.
    fields = ["account", "public_id", "name", "connection", "domain", "state", "expires_at", "used_at", "sip_user",
              "created_at"]  # fmt: skip

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def service_delete(self, request, obj):
        services.sip_invite_revoke(account=obj.account, actor=request.user, invite=obj)

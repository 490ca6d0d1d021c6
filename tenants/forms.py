from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from tenants.models import Role
from tenants.throttling import clear_login_failures, login_retry_after, record_login_failure


class LoginForm(AuthenticationForm):
    """Django's login form with the same failed-login throttle as the API's /auth."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed attempts. Wait a few minutes and try again.",
    }

    def clean(self):
        email = self.cleaned_data.get("username") or ""
        address = self.request.META.get("REMOTE_ADDR", "") if self.request else ""
        if login_retry_after(email, address):
            raise forms.ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            record_login_failure(email, address)
            raise
        clear_login_failures(email)
        return cleaned


class MemberAddForm(forms.Form):
    email = forms.EmailField()
    name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.DEVELOPER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses this key, e.g. “billing server”.")
    read_only = forms.BooleanField(required=False, help_text="The key may only read, never change anything.")
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional. After this moment the key stops working.",
    )
    rate_limit = forms.CharField(
        max_length=20, required=False, help_text="Optional, e.g. 20/s. Default: platform limit."
    )

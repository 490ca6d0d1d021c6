"""The SIP portal forms. Shape only: the rules are the services', shown back through add_service_errors."""

from __future__ import annotations

from django import forms
from django.conf import settings

from telephony.models import CallControlApp, PhoneNumber, SipConnection, SipDomain
from telephony.models.sip import Transport
from telephony.services import sip as services
from telephony.sipauth import PASSWORD_MIN_LENGTH
from telephony.views.sip.common import (
    NumberChoice,
    active_numbers,
    split_list,
)


class _ChosenMethodField(forms.CharField):
    """Needed by one authentication method only: shown without "(optional)", enforced by the service."""

    def __init__(self, **kwargs):
        super().__init__(required=True, **kwargs)

    def validate(self, value):
        pass


class SipConnectionForm(forms.Form):
    # The browser must not demand the fields of the method that was not chosen.
    use_required_attribute = False

    name = forms.CharField(max_length=100, help_text="For you, e.g. “Office PBX”.")
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    auth_type = forms.ChoiceField(
        choices=SipConnection.AuthType.choices,
        initial=SipConnection.AuthType.CREDENTIALS,
        widget=forms.RadioSelect,
        label="Authentication",
    )
    username = _ChosenMethodField(
        max_length=64,
        help_text="Username and password: 3-64 letters, digits, dots, underscores or hyphens; unique on the platform.",
    )  # fmt: skip
    password = _ChosenMethodField(
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=f"At least {PASSWORD_MIN_LENGTH} characters, not only digits, not containing the username.",
    )  # fmt: skip
    allowed_ips = _ChosenMethodField(
        label="Allowed IPs", widget=forms.Textarea(attrs={"rows": 3}),
        help_text="IP address authentication: one address or CIDR network per line (at most 50; no network broader "
        "than a /16, or a /48 for IPv6).",
    )  # fmt: skip
    inbound_host = forms.CharField(
        max_length=255, required=False, label="Inbound host",
        help_text="Where to send inbound calls: your PBX's hostname or IP. Empty with username and password: where "
        "the trunk registered from.",
    )  # fmt: skip
    inbound_port = forms.IntegerField(min_value=1, max_value=65535, initial=5060, label="Inbound port")
    inbound_transport = forms.ChoiceField(choices=Transport.choices, initial=Transport.UDP, label="Inbound transport")
    codecs = forms.CharField(
        initial=", ".join(services.DEFAULT_CODECS),
        help_text=f"In order of preference, separated by commas. Known: {', '.join(services.KNOWN_CODECS)}.",
    )
    caller_id_policy = forms.ChoiceField(choices=SipConnection.CallerIdPolicy.choices, label="Outbound caller ID")
    default_caller_id = NumberChoice(
        queryset=PhoneNumber.objects.none(), required=False, to_field_name="public_id", label="Default caller ID",
        help_text="Required with “Always use the connection's default number”.",
    )  # fmt: skip
    channel_limit = forms.IntegerField(
        min_value=1,
        max_value=services.MAX_CHANNEL_LIMIT,
        required=False,
        help_text="Concurrent calls; empty: no limit.",
    )

    def __init__(self, *args, account, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_caller_id"].queryset = active_numbers(account)
        if editing:
            self.fields["password"].required = False
            self.fields["password"].help_text = (
                "Leave empty to keep the current one; a new username needs a new password. "
                + self.fields["password"].help_text
            )

    def changes(self) -> dict:
        data = dict(self.cleaned_data)
        data["codecs"] = split_list(data["codecs"])
        if data["auth_type"] == SipConnection.AuthType.IP:
            data["allowed_ips"] = split_list(data["allowed_ips"])
            del data["username"], data["password"]
        else:
            del data["allowed_ips"]
            if not data["password"]:
                del data["password"]
        return data


class SipInviteForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Who the invite is for, e.g. “Mary at the front desk”.")
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Default: in 7 days. At most 30 days ahead.",
    )
    domain = forms.ModelChoiceField(
        queryset=SipDomain.objects.none(), to_field_name="public_id", required=False, label="SIP domain",
        help_text="The SIP login is created in this domain.",
    )  # fmt: skip

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        domains = SipDomain.objects.for_account(account).order_by("domain")
        self.fields["domain"].queryset = domains
        if len(domains[:2]) == 1:
            self.fields["domain"].initial = domains[0].public_id


class InviteAcceptForm(forms.Form):
    login = forms.CharField(
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"}),
        help_text="2-64 letters, digits, dots, underscores or hyphens, e.g. mary or mary.smith.",
    )
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=f"At least {PASSWORD_MIN_LENGTH} characters, not only digits, not containing your login. "
        "SIP passwords are attacked by robots all day long: make it long and unique.",
    )
    password_confirm = forms.CharField(
        strip=False, label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("password") != cleaned.get("password_confirm"):
            self.add_error("password_confirm", "The two passwords differ.")
        return cleaned


class SipDomainForm(forms.Form):
    name = forms.CharField(max_length=63, help_text="")
    same_domain_calls_only = forms.BooleanField(
        required=False, label="Same-domain calls only", help_text="Users may only call other users of this domain."
    )
    default_call_control_app = forms.ModelChoiceField(
        queryset=CallControlApp.objects.none(), to_field_name="public_id", required=False,
        label="Default call-control app", help_text="Inbound calls to the domain that match no user go here…",
    )  # fmt: skip
    default_sip_connection = forms.ModelChoiceField(
        queryset=SipConnection.objects.none(), to_field_name="public_id", required=False,
        label="Default SIP connection", help_text="…or here. Choose one of the two at most.",
    )  # fmt: skip

    def __init__(self, *args, account, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_call_control_app"].queryset = CallControlApp.objects.for_account(account)
        self.fields["default_sip_connection"].queryset = SipConnection.objects.for_account(account)
        self.fields["name"].help_text = (
            f"Your SIP domain will be <code>&lt;name&gt;.sip.{settings.PLATFORM_SIP_DOMAIN}</code>: "
            "1-63 letters, digits and hyphens. It cannot be changed later."
        )
        if editing:
            del self.fields["name"]


class SipUserForm(forms.Form):
    login = forms.CharField(
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}),
        help_text="2-64 letters, digits, dots, underscores or hyphens; unique in the domain.",
    )
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=f"At least {PASSWORD_MIN_LENGTH} characters, not only digits, not containing the login. "
        "Only its hashes are kept: it cannot be shown again.",
    )
    password_confirm = forms.CharField(
        strip=False, label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    first_name = forms.CharField(max_length=100, required=False)
    last_name = forms.CharField(max_length=100, required=False)
    email = forms.EmailField(required=False)
    caller_id_number = NumberChoice(
        queryset=PhoneNumber.objects.none(), to_field_name="public_id", required=False, label="Caller ID number",
        help_text="The number shown on this user's outbound calls; one of the account's numbers.",
    )  # fmt: skip
    sip_connection = forms.ModelChoiceField(
        queryset=SipConnection.objects.none(), to_field_name="public_id", required=False, label="SIP connection",
        help_text="The trunk that carries this user's calls to the phone network.",
    )  # fmt: skip
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    same_domain_calls_only = forms.BooleanField(required=False, label="Same-domain calls only")

    def __init__(self, *args, account, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["caller_id_number"].queryset = active_numbers(account)
        self.fields["sip_connection"].queryset = SipConnection.objects.for_account(account)
        if editing:
            for name in ("password", "password_confirm"):
                self.fields[name].required = False
            self.fields["password"].label = "New password"
            self.fields["password"].help_text = "Leave empty to keep the current one; a new login needs a new password."
            self.fields["password_confirm"].label = "New password again"

    def clean(self):
        cleaned = super().clean()
        if (cleaned.get("password") or cleaned.get("password_confirm")) and cleaned.get("password") != cleaned.get(
            "password_confirm"
        ):
            self.add_error("password_confirm", "The two passwords differ.")
        return cleaned

    def changes(self) -> dict:
        data = dict(self.cleaned_data)
        del data["password_confirm"]
        if not data["password"]:
            del data["password"]
        return data

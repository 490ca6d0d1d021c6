"""SIP trunks, domains and users.

The credential columns (username, domain, ha1, ha1b) are kept in the shape a SIP registrar reads
directly: Kamailio's auth_db authenticates REGISTER and INVITE against a database view over these
tables, so the portal never stores a SIP password, only the digest hashes
HA1 = md5(username:realm:password) and HA1B = md5(username@domain:realm:password).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from tenants.models import AccountOwnedModel


class Transport(models.TextChoices):
    UDP = "udp", "UDP"
    TCP = "tcp", "TCP"
    TLS = "tls", "TLS"


class SipConnection(AccountOwnedModel):
    """A SIP trunk between the platform and a customer's PBX or carrier: inbound calls to it, PSTN calls from it."""

    class AuthType(models.TextChoices):
        CREDENTIALS = "credentials", "Username and password"
        IP = "ip", "IP address"

    class CallerIdPolicy(models.TextChoices):
        PASSTHROUGH = "passthrough", "Pass the caller's number through (must be one of the account's numbers)"
        DEFAULT_NUMBER = "default_number", "Always use the connection's default number"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    auth_type = models.CharField(max_length=16, choices=AuthType.choices, default=AuthType.CREDENTIALS)
    # Credential auth: the username is unique platform-wide (the realm is the platform's SIP domain).
    username = models.CharField(max_length=64, null=True, blank=True, unique=True)
    ha1 = models.CharField(max_length=32, blank=True)
    ha1b = models.CharField(max_length=32, blank=True)
    # IP auth: addresses and networks allowed to send traffic as this connection.
    allowed_ips = models.JSONField(default=list, blank=True, help_text='IPs or CIDRs, e.g. ["203.0.113.7"].')
    inbound_host = models.CharField(max_length=255, blank=True, help_text="Where inbound calls are sent.")
    inbound_port = models.PositiveIntegerField(default=5060)
    inbound_transport = models.CharField(max_length=8, choices=Transport.choices, default=Transport.UDP)
    codecs = models.JSONField(default=list, blank=True, help_text='In order of preference, e.g. ["PCMU", "PCMA"].')
    caller_id_policy = models.CharField(
        max_length=20, choices=CallerIdPolicy.choices, default=CallerIdPolicy.PASSTHROUGH
    )
    default_caller_id = models.ForeignKey(
        "telephony.PhoneNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Concurrent calls; empty = none.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(auth_type="ip") | Q(auth_type="credentials", username__isnull=False),
                name="telephony_sipconnection_credentials_have_username",
            ),
            # "Alice" and "alice" would be one login to a person reading a softphone's settings.
            models.UniqueConstraint(Lower("username"), name="telephony_sipconnection_username_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class SipDomain(AccountOwnedModel):
    """An account's SIP domain, `<name>.sip.<platform domain>`, under which its SIP users live."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=63, help_text="The label before .sip.<platform domain>.")
    # The full domain, stored so that the registrar can match it without knowing our settings.
    domain = models.CharField(max_length=255, unique=True)
    same_domain_calls_only = models.BooleanField(default=False)
    default_call_control_app = models.ForeignKey(
        "telephony.CallControlApp", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_sip_connection = models.ForeignKey(
        SipConnection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(fields=["name"], name="telephony_sipdomain_name_unique"),
            models.CheckConstraint(
                condition=Q(default_call_control_app__isnull=True) | Q(default_sip_connection__isnull=True),
                name="telephony_sipdomain_one_default_target",
            ),
        ]

    def __str__(self) -> str:
        return self.domain


class SipUser(AccountOwnedModel):
    """A SIP login (a softphone, a desk phone) under one of the account's SIP domains."""

    class State(models.TextChoices):
        ONLINE = "online", "Online"
        OFFLINE = "offline", "Offline"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    domain = models.ForeignKey(SipDomain, on_delete=models.CASCADE, related_name="users")
    login = models.CharField(max_length=64)
    ha1 = models.CharField(max_length=32)
    ha1b = models.CharField(max_length=32)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    caller_id_number = models.ForeignKey(
        "telephony.PhoneNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The trunk that carries this user's calls to the PSTN (and the one whose invite created it, if any).
    sip_connection = models.ForeignKey(
        SipConnection, null=True, blank=True, on_delete=models.SET_NULL, related_name="sip_users"
    )
    is_active = models.BooleanField(default=True)
    same_domain_calls_only = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OFFLINE)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["login", "id"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "login"], name="telephony_sipuser_login_unique_in_domain"),
            models.UniqueConstraint(F("domain"), Lower("login"), name="telephony_sipuser_login_ci_unique_in_domain"),
        ]

    def __str__(self) -> str:
        return self.sip_uri

    @property
    def sip_uri(self) -> str:
        return f"sip:{self.login}@{self.domain.domain}"


class SipInvite(AccountOwnedModel):
    """A one-time link with which a person creates their own SIP user on a connection."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    connection = models.ForeignKey(SipConnection, on_delete=models.CASCADE, related_name="invites")
    domain = models.ForeignKey(SipDomain, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100, help_text="Who the invite is for.")
    # Like API keys: a lookup prefix in clear, the rest only as a SHA-256 digest.
    token_prefix = models.CharField(max_length=16, unique=True)
    token_digest = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    sip_user = models.ForeignKey(SipUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Invite for {self.name}"

    @property
    def state(self) -> str:
        if self.used_at:
            return "used"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

"""The SIP field rules shared by the services: error collection, ownership checks, and the trunk fields
(IP allow-lists, inbound host, codecs) that need more than a model field's validation."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from telephony.models import PhoneNumber
from telephony.urlpolicy import address_refusal
from tenants.models import Account
from tenants.scoping import parse_public_id


class FieldErrors:
    """Collects every field's errors so that one request learns about all its mistakes at once."""

    def __init__(self) -> None:
        self.errors: dict[str, list[ValidationError]] = {}

    def add(self, field: str, message: str, code: str) -> None:
        self.errors.setdefault(field, []).append(ValidationError(message, code=code))

    def check(self, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ValidationError as exc:
            exc.update_error_dict(self.errors)
            return None

    def passes(self, function, *args, **kwargs) -> bool:
        """Run a check that returns nothing; False (and the error noted) if it failed."""
        try:
            function(*args, **kwargs)
        except ValidationError as exc:
            exc.update_error_dict(self.errors)
            return False
        return True

    def has(self, field: str) -> bool:
        return field in self.errors

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def field_error(field: str, message: str, code: str) -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code)})


def find_account_number(account: Account, ref: Any) -> PhoneNumber:
    """One of the account's active numbers by id or E.164; PhoneNumber.DoesNotExist for anything else."""
    active = PhoneNumber.objects.for_account(account).filter(status=PhoneNumber.Status.ACTIVE)
    if isinstance(ref, PhoneNumber):
        return active.get(pk=ref.pk)
    if isinstance(ref, str) and ref.startswith("+"):
        return active.get(number=ref)
    parsed = parse_public_id(ref)
    if parsed is None:
        raise PhoneNumber.DoesNotExist
    return active.get(public_id=parsed)


def check_account_number(account: Account, number: PhoneNumber | None, field: str) -> None:
    # The API resolves ids within the account already; this is the service's own guarantee for other callers.
    if number is not None and (number.account_id != account.id or number.status != PhoneNumber.Status.ACTIVE):
        raise field_error(field, "Choose one of this account's active numbers.", "not_found")


def check_owned(account: Account, obj, field: str) -> None:
    if obj is not None and obj.account_id != account.id:
        raise field_error(field, "Not found.", "not_found")


def check_name(value: Any, *, max_length: int = 100) -> str:
    if not isinstance(value, str) or not value.strip():
        raise field_error("name", "This field is required.", "required")
    value = value.strip()
    if len(value) > max_length:
        raise field_error("name", f"Use at most {max_length} characters.", "max_length")
    return value


def save_unique(obj, on_conflict: ValidationError, taken) -> None:
    """Save; a unique index lost to a concurrent request becomes the same 400 the early check gives.

    `taken()` asks again once the savepoint is rolled back, so any other integrity error stays a 500.
    """
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        if taken():
            raise on_conflict from exc
        raise


# --- Connection fields ---------------------------------------------------------------------------

MAX_ALLOWED_IPS = 50
# A safety rule, not a protocol limit: an allow-list broader than a /16 (65,536 IPv4 addresses) or a /48
# (one IPv6 site) admits traffic from networks the customer does not control, and whoever sends from
# there places calls billed to this account.
MIN_PREFIX_LENGTH = {4: 16, 6: 48}

KNOWN_CODECS = ("PCMU", "PCMA", "G722", "G729", "OPUS", "GSM", "iLBC", "AMR", "AMR-WB", "telephone-event")
DEFAULT_CODECS = ["PCMU", "PCMA", "telephone-event"]
_CODECS_BY_KEY = {codec.lower(): codec for codec in KNOWN_CODECS}
# RFC 4733 DTMF is signalling, not audio: a trunk also needs at least one codec that carries a voice.
_NON_AUDIO_CODECS = {"telephone-event"}

MAX_CHANNEL_LIMIT = 10_000
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_allowed_ips(values: Any) -> list[str]:
    """IPs and CIDR networks, canonical and de-duplicated; positional errors (`allowed_ips.2`)."""
    if not isinstance(values, (list, tuple)):
        raise field_error("allowed_ips", "Send a list of IP addresses or CIDR networks.", "invalid")
    if len(values) > MAX_ALLOWED_IPS:
        raise field_error("allowed_ips", f"At most {MAX_ALLOWED_IPS} entries.", "too_many")
    errors = FieldErrors()
    normalized: list[str] = []
    for index, raw in enumerate(values):
        field = f"allowed_ips.{index}"
        if not isinstance(raw, str):
            errors.add(field, "Enter an IP address or a CIDR network as a string.", "ip_invalid")
            continue
        try:
            network = ipaddress.ip_network(raw.strip(), strict=False)
        except ValueError:
            errors.add(field, f"“{raw}” is not an IP address or a CIDR network.", "ip_invalid")
            continue
        if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
            errors.add(field, "Write IPv4 addresses in IPv4 form.", "ip_invalid")
            continue
        minimum = MIN_PREFIX_LENGTH[network.version]
        if network.prefixlen < minimum:
            errors.add(
                field,
                f"{network} is too broad: the widest network allowed is a /{minimum} for IPv{network.version}.",
                "ip_network_too_broad",
            )
            continue
        edges = (network.network_address, network.broadcast_address)
        # These can never be a trunk's public source address; loopback in particular would let the
        # account claim traffic that the platform's own components send.
        if any(
            ip.is_loopback or ip.is_unspecified or ip.is_multicast or ip.is_link_local or ip.is_reserved for ip in edges
        ):
            errors.add(field, f"{network} is a loopback, link-local, multicast or reserved network.", "ip_not_allowed")
            continue
        text = str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)
        if text not in normalized:
            normalized.append(text)
    errors.raise_if_any()
    return normalized


def normalize_inbound_host(value: Any) -> str:
    """A hostname or an IP address to send the connection's inbound calls to ("" = none)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise field_error("inbound_host", "Enter a hostname or an IP address.", "invalid")
    text = value.strip().lower()
    if not text:
        return ""
    shape_hint = "Enter a hostname (pbx.example.com) or an IP address, without scheme or port."
    try:
        ip = ipaddress.ip_address(text[1:-1] if text.startswith("[") and text.endswith("]") else text)
    except ValueError:
        ip = None
    if ip is not None:
        # The platform would send INVITEs there: the outbound address policy applies, as to webhook URLs.
        reason = address_refusal(str(ip))
        if reason:
            raise field_error("inbound_host", f"Calls cannot be sent there: {reason}.", "host_forbidden_address")
        return str(ip)
    text = text.rstrip(".")
    labels = text.split(".")
    if (
        len(text) > 253
        or len(labels) < 2
        or not all(_HOST_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise field_error("inbound_host", shape_hint, "host_invalid")
    if labels[-1] in ("localhost", "local", "internal") or text == "localhost":
        raise field_error("inbound_host", "Calls cannot be sent to a local name.", "host_forbidden_address")
    platform = settings.PLATFORM_SIP_DOMAIN.lower()
    if text == platform or text.endswith("." + platform):
        # Our own SIP edge would receive the call again: a routing loop.
        raise field_error("inbound_host", "This is the platform's own SIP domain; use your PBX's address.", "host_loop")
    return text


def normalize_codecs(values: Any) -> list[str]:
    """Known codecs in order of preference, in their canonical spelling; positional errors (`codecs.1`)."""
    if not isinstance(values, (list, tuple)):
        raise field_error("codecs", f"Send a list, e.g. {DEFAULT_CODECS}.", "invalid")
    if not values:
        raise field_error("codecs", f"List at least one codec, e.g. {DEFAULT_CODECS}.", "codec_required")
    errors = FieldErrors()
    normalized: list[str] = []
    for index, raw in enumerate(values):
        field = f"codecs.{index}"
        codec = _CODECS_BY_KEY.get(raw.strip().lower()) if isinstance(raw, str) else None
        if codec is None:
            errors.add(field, f"Unknown codec “{raw}”; known: {', '.join(KNOWN_CODECS)}.", "codec_unknown")
        elif codec in normalized:
            errors.add(field, f"{codec} is listed twice.", "codec_duplicate")
        else:
            normalized.append(codec)
    errors.raise_if_any()
    if not set(normalized) - _NON_AUDIO_CODECS:
        raise field_error("codecs", "Include at least one audio codec, e.g. PCMU.", "codec_audio_required")
    return normalized


def check_port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise field_error("inbound_port", "Enter a port from 1 to 65535.", "invalid")
    return value


def check_choice(field: str, value: Any, choices) -> str:
    if value not in choices.values:
        raise field_error(field, f"Choose one of {', '.join(choices.values)}.", "invalid_choice")
    return value


def check_channel_limit(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CHANNEL_LIMIT:
        raise field_error("channel_limit", f"Enter 1 to {MAX_CHANNEL_LIMIT}, or null for no limit.", "invalid")
    return value


def check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise field_error(field, "Must be true or false.", "invalid")
    return value

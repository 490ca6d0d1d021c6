"""Who is calling, and what they called: the edge's reading of a new INVITE, before any record is written.

Kamailio has already checked a digest (if the INVITE carried one) against the credentials view; the portal
trusts `auth_user@auth_realm` and the source address, never the From header, to say who calls:
- an authenticated SIP user (realm = its SIP domain) or credential trunk (realm = PLATFORM_SIP_DOMAIN);
- else an IP-authenticated SIP connection whose allow-list holds the source address;
- else nobody: challenged when the From domain is one of ours (a phone that has not sent credentials yet),
  refused (403) otherwise, so scanners learn nothing.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from telephony.models import SipConnection, SipDomain, SipUser
from telephony.sipauth import connection_realm

_DIALABLE = re.compile(r"^\+?[0-9]{3,15}$")


@dataclass(frozen=True)
class Caller:
    kind: str  # "sip_user" | "sip_connection"
    sip_user: SipUser | None = None
    connection_id: int | None = None  # trunk traffic is routed by the number it calls, not by the trunk


@dataclass(frozen=True)
class InviteRequest:
    """What Kamailio sends for a new INVITE (POST /internal/sip/route)."""

    call_id: str
    from_tag: str
    from_user: str
    from_domain: str
    to_user: str
    to_domain: str
    source_ip: str
    auth_user: str = ""
    auth_realm: str = ""

    @classmethod
    def from_post(cls, data) -> InviteRequest:
        return cls(**{name: (data.get(name) or "").strip() for name in cls.__dataclass_fields__})


def caller_by_credentials(auth_user: str, auth_realm: str) -> Caller | None:
    if not auth_user:
        return None
    if auth_realm.lower() == connection_realm().lower():
        connection = (
            SipConnection.objects.select_related("account")
            .filter(username=auth_user, auth_type=SipConnection.AuthType.CREDENTIALS, is_active=True)
            .first()
        )
        if connection is not None and connection.account.is_active:
            return Caller("sip_connection", connection_id=connection.pk)
        return None
    user = (
        SipUser.objects.select_related("account", "domain", "caller_id_number", "sip_connection")
        .filter(login=auth_user, domain__domain=auth_realm.lower(), is_active=True)
        .first()
    )
    if user is not None and user.account.is_active:
        return Caller("sip_user", sip_user=user)
    return None


def _allows(allowed: list, address) -> bool:
    for entry in allowed or ():
        try:
            if address in ipaddress.ip_network(str(entry), strict=False):
                return True
        except ValueError:
            continue
    return False


def caller_by_address(source_ip: str) -> Caller | None:
    """The active IP-authenticated connection whose allow-list holds `source_ip` (the first by creation)."""
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return None
    # Only the allow-lists are read for the match (a handful of small rows); the winner is loaded alone.
    candidates = (
        SipConnection.objects.filter(auth_type=SipConnection.AuthType.IP, is_active=True, account__status="active")
        .order_by("id")
        .values_list("id", "allowed_ips")
    )
    for pk, allowed in candidates:
        if _allows(allowed, address):
            return Caller("sip_connection", connection_id=pk)
    return None


def challenge_realm(from_domain: str) -> str | None:
    """The realm to challenge an unauthenticated INVITE in, or None to refuse it."""
    domain = from_domain.lower()
    if domain == connection_realm().lower():
        return connection_realm()
    try:
        ipaddress.ip_address(domain.strip("[]"))
        return None  # trunks put their address there; no SIP domain is an IP address
    except ValueError:
        pass
    if SipDomain.objects.filter(domain=domain).exists():
        return domain
    return None


def dialable_number(user_part: str) -> str | None:
    """The E.164 form of a dialled number ("+12015550123", "12015550123"), or None for a name."""
    text = re.sub(r"[\s().-]", "", user_part or "")
    if not _DIALABLE.match(text):
        return None
    return text if text.startswith("+") else f"+{text}"


def target_sip_user(to_user: str, to_domain: str) -> SipUser | None:
    """The SIP user a request URI names (login@their SIP domain), active or not."""
    if not to_user:
        return None
    return (
        SipUser.objects.select_related("account", "domain")
        .filter(domain__domain=to_domain.lower(), login__iexact=to_user)
        .first()
    )

"""Who is calling, and what they called: the edge's reading of a new INVITE, before any record is written.

Kamailio has already checked a digest (if the INVITE carried one) against the credentials view; the portal
trusts `auth_user@auth_realm` and the source address, never the From header, to say who calls:
- an authenticated SIP user (realm = its SIP domain) or credential trunk (realm = PLATFORM_SIP_DOMAIN);
- else an IP-authenticated SIP connection whose allow-list holds the source address;
- else nobody: challenged when the From domain is one of ours (a phone that has not sent credentials yet),
  refused (403) otherwise, so scanners learn nothing.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections

from telephony.hot_sql import hot_cursor, hot_execute
from telephony.models import SipConnection, SipDomain, SipUser
from telephony.sipauth import connection_realm
from tenants.models import Account

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


@functools.lru_cache(maxsize=4096)
def _network(entry: str):
    # Parsing an allow-list entry costs more than testing an address against it; entries repeat on every INVITE.
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


def _allows(allowed: list, address) -> bool:
    for entry in allowed or ():
        network = _network(str(entry))
        if network is not None and network.version == address.version and address in network:
            return True
    return False


def caller_by_address(source_ip: str) -> Caller | None:
    """The active IP-authenticated connection whose allow-list holds `source_ip` (the first by creation)."""
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return None
    # Only the allow-lists are read for the match (a handful of small rows); the winner is loaded alone.
    for pk, allowed in _ip_allow_lists():
        if _allows(allowed, address):
            return Caller("sip_connection", connection_id=pk)
    return None


def _ip_allow_lists() -> list[tuple[int, list]]:
    """(id, allowed_ips) of the active IP-authenticated connections of active accounts, oldest first.

    Asked for every INVITE from a trunk, so on PostgreSQL the SQL is written once rather than compiled by the
    ORM each time (which cost more than running it); read live, so an edited allow-list applies at once.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        return list(
            SipConnection.objects.filter(auth_type=SipConnection.AuthType.IP, is_active=True, account__status="active")
            .order_by("id")
            .values_list("id", "allowed_ips")
        )
    with hot_cursor(db) as cursor:
        hot_execute(cursor, _ALLOW_LISTS_SQL, [SipConnection.AuthType.IP.value, Account.Status.ACTIVE.value])
        # The portal's connections read jsonb as text (Django's JSONField decodes it).
        return [(pk, json.loads(allowed) if isinstance(allowed, str) else allowed) for pk, allowed in cursor]


_ALLOW_LISTS_SQL = (
    f"SELECT c.id, c.allowed_ips FROM {SipConnection._meta.db_table} c "  # noqa: S608 - our tables
    f"JOIN {Account._meta.db_table} a ON a.id = c.account_id "
    "WHERE c.auth_type = %s AND c.is_active AND a.status = %s ORDER BY c.id"
)


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

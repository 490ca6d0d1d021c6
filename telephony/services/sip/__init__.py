"""Writes for SIP: connections (trunks) and their numbers, invites, SIP domains and SIP users.

Every change records an audit entry in its transaction. SIP passwords are turned into the registrar's digest
hashes (telephony/sipauth.py) on the way in and are never stored, logged, audited or returned; neither are
the hashes, outside the columns the registrar reads. Import from here; the modules are split by sub-domain.
"""

from __future__ import annotations

from telephony.services.sip.connections import (
    CONNECTION_FIELDS,
    sip_connection_change_numbers,
    sip_connection_create,
    sip_connection_delete,
    sip_connection_update,
)
from telephony.services.sip.domains import (
    DOMAIN_FIELDS,
    sip_domain_create,
    sip_domain_delete,
    sip_domain_full_name,
    sip_domain_update,
)
from telephony.services.sip.invites import (
    INVITE_DEFAULT_TTL,
    INVITE_MAX_TTL,
    InviteUnavailable,
    NewSipInvite,
    invite_link,
    sip_invite_accept,
    sip_invite_create,
    sip_invite_find,
    sip_invite_revoke,
)
from telephony.services.sip.rules import (
    DEFAULT_CODECS,
    KNOWN_CODECS,
    MAX_ALLOWED_IPS,
    MAX_CHANNEL_LIMIT,
    MIN_PREFIX_LENGTH,
    find_account_number,
    normalize_allowed_ips,
    normalize_codecs,
    normalize_inbound_host,
)
from telephony.services.sip.users import USER_FIELDS, sip_user_create, sip_user_delete, sip_user_update

__all__ = [
    "CONNECTION_FIELDS",
    "DEFAULT_CODECS",
    "DOMAIN_FIELDS",
    "INVITE_DEFAULT_TTL",
    "INVITE_MAX_TTL",
    "KNOWN_CODECS",
    "MAX_ALLOWED_IPS",
    "MAX_CHANNEL_LIMIT",
    "MIN_PREFIX_LENGTH",
    "USER_FIELDS",
    "InviteUnavailable",
    "NewSipInvite",
    "find_account_number",
    "invite_link",
    "normalize_allowed_ips",
    "normalize_codecs",
    "normalize_inbound_host",
    "sip_connection_change_numbers",
    "sip_connection_create",
    "sip_connection_delete",
    "sip_connection_update",
    "sip_domain_create",
    "sip_domain_delete",
    "sip_domain_full_name",
    "sip_domain_update",
    "sip_invite_accept",
    "sip_invite_create",
    "sip_invite_find",
    "sip_invite_revoke",
    "sip_user_create",
    "sip_user_delete",
    "sip_user_update",
]

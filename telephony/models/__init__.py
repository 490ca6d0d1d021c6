"""Telephony models, one module per sub-domain; import from here."""

from __future__ import annotations

from telephony.models.apps import CallControlApp
from telephony.models.numbers import NumberOrder, NumberOrderItem, PhoneNumber, StockNumber
from telephony.models.profiles import CallerListEntry, TnProfile
from telephony.models.sip import SipConnection, SipDomain, SipInvite, SipUser

__all__ = [
    "CallControlApp",
    "CallerListEntry",
    "NumberOrder",
    "NumberOrderItem",
    "PhoneNumber",
    "SipConnection",
    "SipDomain",
    "SipInvite",
    "SipUser",
    "StockNumber",
    "TnProfile",
]

"""Telephony models, one module per sub-domain; import from here."""

from __future__ import annotations

from telephony.models.apps import AppVersion, CallControlApp
from telephony.models.calls import FINAL_STATUSES, Call, CallHttpRequest, CallStatus
from telephony.models.engine import CallWakeup, SimulatedLeg, SimulatorRule
from telephony.models.events import AttemptTrigger, Delivery, DeliveryAttempt, Event, EventSequence, WebhookEndpoint
from telephony.models.numbers import NumberOrder, NumberOrderItem, PhoneNumber, StockNumber
from telephony.models.profiles import CallerListEntry, TnProfile
from telephony.models.sip import SipConnection, SipDomain, SipInvite, SipUser
from telephony.models.stream import EventSubscription

__all__ = [
    "FINAL_STATUSES",
    "AppVersion",
    "AttemptTrigger",
    "Call",
    "CallControlApp",
    "CallHttpRequest",
    "CallStatus",
    "CallWakeup",
    "CallerListEntry",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "EventSequence",
    "EventSubscription",
    "NumberOrder",
    "NumberOrderItem",
    "PhoneNumber",
    "SimulatedLeg",
    "SimulatorRule",
    "SipConnection",
    "SipDomain",
    "SipInvite",
    "SipUser",
    "StockNumber",
    "TnProfile",
    "WebhookEndpoint",
]

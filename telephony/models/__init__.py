"""Telephony models, one module per sub-domain; import from here."""

from __future__ import annotations

from telephony.models.apps import AppVersion, CallControlApp
from telephony.models.bulk import BulkCall, BulkCallItem
from telephony.models.calls import FINAL_STATUSES, Call, CallHttpRequest, CallStatus
from telephony.models.engine import CallWakeup, SimulatedLeg, SimulatorRule
from telephony.models.events import (
    AttemptTrigger,
    CallbackSigningSecret,
    Delivery,
    DeliveryAttempt,
    Event,
    EventSequence,
    WebhookEndpoint,
)
from telephony.models.hooks import ExtensionHook, WebCallbackSettings
from telephony.models.messaging import (
    Brand,
    Campaign,
    Message,
    MessagingNumber,
    MessagingProfile,
    OptOut,
    SimulatedCarrierRule,
)
from telephony.models.numbers import NumberOrder, NumberOrderItem, PhoneNumber, StockNumber
from telephony.models.outbound import OutboundPolicy
from telephony.models.profiles import CallerListEntry, TnProfile
from telephony.models.sip import SipConnection, SipDomain, SipInvite, SipUser
from telephony.models.stream import EventSubscription

__all__ = [
    "FINAL_STATUSES",
    "AppVersion",
    "AttemptTrigger",
    "Brand",
    "BulkCall",
    "BulkCallItem",
    "Call",
    "CallControlApp",
    "CallHttpRequest",
    "CallStatus",
    "CallWakeup",
    "CallbackSigningSecret",
    "CallerListEntry",
    "Campaign",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "EventSequence",
    "EventSubscription",
    "ExtensionHook",
    "Message",
    "MessagingNumber",
    "MessagingProfile",
    "NumberOrder",
    "NumberOrderItem",
    "OptOut",
    "OutboundPolicy",
    "PhoneNumber",
    "SimulatedCarrierRule",
    "SimulatedLeg",
    "SimulatorRule",
    "SipConnection",
    "SipDomain",
    "SipInvite",
    "SipUser",
    "StockNumber",
    "TnProfile",
    "WebCallbackSettings",
    "WebhookEndpoint",
]

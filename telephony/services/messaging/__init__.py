"""Messaging services: profiles and 10DLC (profiles.py), sending (sending.py), inbound and opt-out (inbound.py),
segment counting (segments.py). Import from here."""

from __future__ import annotations

from telephony.services.messaging.inbound import keyword_of, message_receive
from telephony.services.messaging.profiles import (
    brand_create,
    campaign_create,
    campaign_update,
    messaging_profile_create,
    messaging_profile_delete,
    messaging_profile_update,
    number_needs_campaign,
    number_sms_disable,
    number_sms_enable,
    tendlc_review,
)
from telephony.services.messaging.segments import SegmentInfo, count_segments
from telephony.services.messaging.sending import (
    SEND_BATCH,
    MessagingLimit,
    ReceiptTooEarly,
    SendOutcome,
    clear_kick,
    message_attach_carrier_id,
    message_payload,
    message_receipt,
    message_receipts,
    message_send,
    message_send_step,
    messages_fail_stuck,
    messages_send_due,
    thread_id,
)

__all__ = [
    "SEND_BATCH",
    "MessagingLimit",
    "ReceiptTooEarly",
    "SegmentInfo",
    "SendOutcome",
    "brand_create",
    "campaign_create",
    "campaign_update",
    "clear_kick",
    "count_segments",
    "keyword_of",
    "message_attach_carrier_id",
    "message_payload",
    "message_receipt",
    "message_receipts",
    "message_receive",
    "message_send",
    "message_send_step",
    "messages_fail_stuck",
    "messages_send_due",
    "messaging_profile_create",
    "messaging_profile_delete",
    "messaging_profile_update",
    "number_needs_campaign",
    "number_sms_disable",
    "number_sms_enable",
    "tendlc_review",
    "thread_id",
]

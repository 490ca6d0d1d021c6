"""Inbound messages and the opt-out keywords.

An inbound message to an SMS-enabled number is stored as `received` and raises `message.received` (webhooks,
stream, and the profile's callback URL with its failover). Its text, trimmed and in any case, may be a keyword:
- STOP (STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT, REVOKE): the sender is opted out of every message from
  this account's numbers (sends to it are refused with `opted_out`); the campaign's opt-out text is the reply;
- START (UNSTOP, YES, OPTIN, SUBSCRIBE): the opt-out is lifted; the campaign's opt-in text is the reply;
- HELP (INFO): the campaign's help text is the reply (or a default naming STOP).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from telephony.models import Message, MessagingNumber, OptOut, PhoneNumber
from telephony.services.messaging.segments import count_segments
from telephony.services.messaging.sending import _notify, _record, auto_reply_send, thread_id
from telephony.services.numbers import normalize_e164

logger = logging.getLogger(__name__)

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "UNSTOP", "YES", "OPTIN", "SUBSCRIBE"})
HELP_WORDS = frozenset({"HELP", "INFO"})

DEFAULT_STOP_REPLY = "You have been unsubscribed and will receive no further messages. Reply START to resubscribe."
DEFAULT_START_REPLY = "You have been resubscribed. Reply STOP to unsubscribe, HELP for help."
DEFAULT_HELP_REPLY = "Reply STOP to unsubscribe. Message and data rates may apply."


def keyword_of(text: str) -> str | None:
    word = text.strip().strip(".!").upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


def message_receive(
    *, from_: str, to: str, text: str, carrier: str = "", carrier_message_id: str = ""
) -> Message | None:
    """Store an inbound message to one of the platform's SMS numbers; None if `to` is not one."""
    to_number = normalize_e164(to) or to.strip()
    from_number = normalize_e164(from_) or from_.strip()
    with transaction.atomic():
        enabled = (
            MessagingNumber.objects.select_related("account", "profile", "campaign", "phone_number")
            .filter(number=to_number, phone_number__status=PhoneNumber.Status.ACTIVE)
            .first()
        )
        if enabled is None:
            return None
        now = timezone.now()
        info = count_segments(text)
        message = Message(
            account=enabled.account,
            direction=Message.Direction.INBOUND,
            from_number=from_number[:32],
            to_number=to_number,
            text=text,
            encoding=info.encoding,
            segments=info.segments,
            status=Message.Status.RECEIVED,
            thread=thread_id(from_number, to_number),
            phone_number_id=enabled.phone_number_id,
            profile=enabled.profile,
            campaign_id=enabled.campaign_id,
            carrier=carrier[:32],
            carrier_message_id=carrier_message_id[:64],
            created_at=now,
            history=[],
        )
        _record(message, Message.Status.RECEIVED, now)
        message.save(force_insert=True)
        _notify(message, Message.Status.RECEIVED, now)
        reply = _apply_keyword(enabled, from_number, text)
    if reply:
        try:
            auto_reply_send(enabled=enabled, to=from_number, text=reply[1], keyword=reply[0])
        except Exception:  # a full sender queue must not lose the inbound message itself
            logger.warning("auto-reply to %s from %s not sent", from_number, to_number, exc_info=True)
    return message


def _apply_keyword(enabled: MessagingNumber, sender: str, text: str) -> tuple[str, str] | None:
    keyword = keyword_of(text)
    if keyword is None:
        return None
    campaign = enabled.campaign
    if keyword == "stop":
        OptOut.objects.get_or_create(
            account=enabled.account,
            number=sender,
            defaults={"keyword": text.strip().upper()[:16], "via_number": enabled.number},
        )
        return keyword, (campaign.opt_out_message if campaign and campaign.opt_out_message else DEFAULT_STOP_REPLY)
    if keyword == "start":
        OptOut.objects.filter(account=enabled.account, number=sender).delete()
        return keyword, (campaign.opt_in_message if campaign and campaign.opt_in_message else DEFAULT_START_REPLY)
    return keyword, (campaign.help_message if campaign and campaign.help_message else DEFAULT_HELP_REPLY)

"""Inbound messages and the opt-out keywords.

An inbound message to an SMS-enabled number is stored as `received` and raises `message.received` (webhooks,
stream, and the profile's callback URL with its failover). Its text, trimmed and in any case, may be a keyword:
- STOP (STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT, REVOKE): the sender is opted out of every message from
  this account's numbers (sends to it are refused with `opted_out`); the campaign's opt-out text is the reply;
- START (UNSTOP, YES, OPTIN, SUBSCRIBE): the opt-out is lifted; the campaign's opt-in text is the reply (to a
  YES only when it lifted one: "yes" is also an ordinary answer);
- HELP (INFO): the campaign's help text is the reply (or a default naming STOP).

Opting out and back in raise `opt_out.created` / `opt_out.deleted` (services/messaging/optouts.py). A reply is
an ordinary send (the sender's throughput slot, `message.*` events) and obeys the same sender rules as any: a
US long code without an approved 10DLC campaign does not reply (the keyword still takes effect), and the
inbound message's history says why.
"""

from __future__ import annotations

import logging
import unicodedata

from django.db import transaction
from django.utils import timezone

from telephony.models import Message, MessagingNumber, PhoneNumber
from telephony.services.messaging.optouts import opt_out_lift, opt_out_record
from telephony.services.messaging.segments import count_segments
from telephony.services.messaging.sending import _notify, _record, _sender_problem, auto_reply_send, thread_id
from telephony.services.numbers import normalize_e164

logger = logging.getLogger(__name__)

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "UNSTOP", "YES", "OPTIN", "SUBSCRIBE"})
CONVERSATIONAL_START_WORDS = frozenset({"YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

DEFAULT_STOP_REPLY = "You have been unsubscribed and will receive no further messages. Reply START to resubscribe."
DEFAULT_START_REPLY = "You have been resubscribed. Reply STOP to unsubscribe, HELP for help."
DEFAULT_HELP_REPLY = "Reply STOP to unsubscribe. Message and data rates may apply."


def _bare(text: str) -> str:
    """The text as a keyword is compared: compatibility forms folded (full-width letters), and the spaces,
    punctuation, quotes and invisible characters (a zero-width space a phone appended) around it dropped."""
    if len(text) > 64:  # a keyword is one word: a long text is not one, whatever it starts with
        return text
    text = unicodedata.normalize("NFKC", text)
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or unicodedata.category(text[start])[0] in "PZC"):
        start += 1
    while end > start and (text[end - 1].isspace() or unicodedata.category(text[end - 1])[0] in "PZC"):
        end -= 1
    return text[start:end]


def keyword_of(text: str) -> str | None:
    word = _bare(text).upper()
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
            MessagingNumber.objects.select_related("account", "profile", "campaign", "phone_number__stock")
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
        keyword = keyword_of(text)
        # The reply would be a send from this number: the rules of any send apply (the keyword itself still does).
        no_reply = _sender_problem(enabled) if keyword else None
        if no_reply:
            message.history[-1]["note"] = f"No automatic {keyword.upper()} reply: {no_reply}"
        message.save(force_insert=True)
        _notify(message, Message.Status.RECEIVED, now)
        reply = _apply_keyword(enabled, from_number, text, keyword) if keyword else None
    if no_reply:
        logger.info("no %s auto-reply to %s from %s: %s", keyword, from_number, to_number, no_reply)
    elif reply:
        try:
            auto_reply_send(enabled=enabled, to=from_number, text=reply, keyword=keyword)
        except Exception:  # a full sender queue must not lose the inbound message itself
            logger.warning("auto-reply to %s from %s not sent", from_number, to_number, exc_info=True)
    return message


def _apply_keyword(enabled: MessagingNumber, sender: str, text: str, keyword: str) -> str | None:
    """Opt the sender out or back in; the text of the reply (None: no reply)."""
    campaign = enabled.campaign
    word = _bare(text)
    if keyword == "stop":
        opt_out_record(account=enabled.account, number=sender, keyword=word, via_number=enabled.number)
        return campaign.opt_out_message if campaign and campaign.opt_out_message else DEFAULT_STOP_REPLY
    if keyword == "start":
        lifted = opt_out_lift(account=enabled.account, number=sender, keyword=word, via_number=enabled.number)
        if not lifted and word.upper() in CONVERSATIONAL_START_WORDS:
            # "Yes" is also an ordinary answer in a conversation: it only resubscribes someone who had opted out.
            return None
        return campaign.opt_in_message if campaign and campaign.opt_in_message else DEFAULT_START_REPLY
    return campaign.help_message if campaign and campaign.help_message else DEFAULT_HELP_REPLY

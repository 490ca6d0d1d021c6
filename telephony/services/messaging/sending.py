"""Sending messages: validation, choosing a sender, throughput slots, the send step, receipts, and their events.

A send is accepted in one transaction: the message row (`queued`, with the slot its sender's throughput limit
gives it), its `message.queued` event and its callback. A worker sends it when its slot is due (kicked after the
commit with a countdown, or found by the sweeper): `sending` while the carrier adapter has it, then `sent` or
`failed`; the carrier's delivery receipt makes it `delivered`, `undelivered` or `failed`. Every change is a
`message.*` event (webhooks, the websocket stream) and a callback to the message's callback URL.

Callback URL: the send request's `callback_url`, else the profile's `callback_url`; the profile's
`callback_url2` takes the attempts after a failed one (failover). Inbound messages use the profile's.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from telephony.models import Message, MessagingNumber, MessagingProfile, OptOut, PhoneNumber
from telephony.services.events import event_emit
from telephony.services.messaging.profiles import number_needs_campaign
from telephony.services.messaging.segments import count_segments
from telephony.services.numbers import normalize_e164
from telephony.urlpolicy import validate_customer_url
from tenants.models import Account
from tenants.services import Actor

logger = logging.getLogger(__name__)

THREAD_NAMESPACE = uuid.UUID("6f0c7f55-2f4e-4d8e-9a47-5d7a8b1c0e21")
FINAL = frozenset({Message.Status.DELIVERED, Message.Status.FAILED, Message.Status.UNDELIVERED})


class MessagingLimit(Exception):
    """A send refused by a limit (429 in the API): the account's daily limit or a full sender queue."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def thread_id(a: str, b: str) -> uuid.UUID:
    """The conversation between two numbers: the same id whichever of them wrote."""
    return uuid.uuid5(THREAD_NAMESPACE, "|".join(sorted((a, b))))


def message_payload(message: Message) -> dict:
    return {
        "message_id": str(message.public_id),
        "direction": message.direction,
        "from": message.from_number,
        "to": message.to_number,
        "text": message.text,
        "state": message.status,
        "encoding": message.encoding,
        "segments": message.segments,
        "thread_id": str(message.thread),
        "messaging_profile_id": str(message.profile.public_id) if message.profile_id else None,
        "error_code": message.error_code or None,
        "error_text": message.error_text or None,
        "created_at": message.created_at,
        "sent_at": message.sent_at,
        "finished_at": message.finished_at,
    }


def _callback_urls(message: Message) -> tuple[str, str]:
    profile = message.profile
    url = message.callback_url or (profile.callback_url if profile is not None else "")
    fallback = profile.callback_url2 if profile is not None else ""
    if not url:
        url, fallback = fallback, ""
    return url, ("" if fallback == url else fallback)


def _record(message: Message, status: str, now: datetime, error_code: str = "", error_text: str = "") -> None:
    """Set the status, append it to the history, and raise its event and callback (inside the transaction)."""
    message.status = status
    entry = {"status": status, "at": now}
    if error_code or error_text:
        message.error_code, message.error_text = error_code[:16], error_text[:200]
        entry.update(error_code=message.error_code, error_text=message.error_text)
    message.history = [*message.history, entry]
    if status == Message.Status.SENT:
        message.sent_at = now
    if status in FINAL:
        message.finished_at = now


def _notify(message: Message, status: str, now: datetime) -> None:
    type_ = f"message.{status}"
    payload = message_payload(message)
    event = event_emit(account=message.account, type=type_, payload=payload, obj=message, occurred_at=now)
    url, fallback = _callback_urls(message)
    if url:
        from telephony.services.callbacks import callback_enqueue

        callback_enqueue(
            account=message.account,
            url=url,
            params={"id": str(event.public_id), "type": type_, "occurred_at": now.isoformat(), "data": payload},
            kind="message_callback",
            payload_format="json",
            fallback_url=fallback,
            object_type="message",
            object_id=str(message.public_id),
        )


def _change(message: Message, status: str, now: datetime, error_code: str = "", error_text: str = "") -> None:
    _record(message, status, now, error_code, error_text)
    message.save()
    _notify(message, status, now)


# --- Choosing and checking the sender ------------------------------------------------------------


def _sender_problem(enabled: MessagingNumber) -> str | None:
    number = enabled.phone_number
    if number.status != PhoneNumber.Status.ACTIVE:
        return f"{number.number} is no longer the account's."
    if number_needs_campaign(number):
        campaign = enabled.campaign
        if campaign is None:
            return (
                f"{number.number} is a US long code: it needs an approved 10DLC campaign to send "
                f"(POST /api/v1/numbers/{number.public_id}/sms with a campaign)."
            )
        if campaign.status != campaign.Status.APPROVED:
            return (
                f"{number.number} is a US long code and its 10DLC campaign “{campaign.name}” is {campaign.status}, "
                "not approved: it cannot send until staff approve it."
            )
    return None


def _healthy(enabled: MessagingNumber, now: datetime) -> bool:
    if enabled.consecutive_failures < settings.MESSAGING_UNHEALTHY_FAILURES or enabled.last_failure_at is None:
        return True
    return enabled.last_failure_at < now - timedelta(seconds=settings.MESSAGING_UNHEALTHY_WINDOW_SECONDS)


def _sender_from_number(account: Account, from_: str) -> MessagingNumber:
    value = normalize_e164(from_) or from_.strip()
    number = (
        PhoneNumber.objects.for_account(account)
        .filter(number=value, status=PhoneNumber.Status.ACTIVE)
        .select_related("stock")
        .first()
    )
    if number is None:
        raise ValidationError({"from": ValidationError("Not one of this account's numbers.", "unknown_number")})
    enabled = MessagingNumber.objects.filter(phone_number=number).select_related("profile", "campaign").first()
    if enabled is None:
        raise ValidationError(
            {
                "from": ValidationError(
                    f"SMS is not enabled on {number.number}: put it in a messaging profile first "
                    f"(POST /api/v1/numbers/{number.public_id}/sms).",
                    "sms_not_enabled",
                )
            }
        )
    enabled.phone_number = number
    problem = _sender_problem(enabled)
    if problem:
        raise ValidationError({"from": ValidationError(problem, "campaign_required")})
    return enabled


def _sender_from_pool(profile: MessagingProfile, to: str, now: datetime) -> MessagingNumber:
    if not profile.number_pool_enabled:
        raise ValidationError(
            {
                "messaging_profile": ValidationError(
                    "This profile's number pool is off: send with `from`, or turn the pool on.", "pool_disabled"
                )
            }
        )
    candidates = list(
        MessagingNumber.objects.filter(profile=profile)
        .select_related("phone_number__stock", "campaign", "profile")
        .order_by("id")
    )
    problems = {enabled.pk: _sender_problem(enabled) for enabled in candidates}
    eligible = [enabled for enabled in candidates if problems[enabled.pk] is None]
    if not eligible:
        reason = next(iter(problems.values()), None) or "The profile has no numbers."
        code = "campaign_required" if candidates else "no_numbers"
        raise ValidationError(
            {"messaging_profile": ValidationError(f"No number of this profile can send. {reason}", code)}
        )
    healthy = [enabled for enabled in eligible if _healthy(enabled, now)] if profile.skip_unhealthy else eligible
    if profile.sticky_sender:
        last = (
            Message.objects.filter(profile=profile, to_number=to, direction=Message.Direction.OUTBOUND)
            .order_by("-created_at", "-id")
            .values_list("phone_number_id", flat=True)
            .first()
        )
        for enabled in healthy:
            if enabled.phone_number_id == last:
                return enabled
    pool = healthy or eligible  # every sender unhealthy: sending beats refusing
    groups = {False: [e for e in pool if not e.toll_free], True: [e for e in pool if e.toll_free]}
    weights = {False: profile.long_code_weight, True: profile.toll_free_weight}
    kinds = [kind for kind in (False, True) if groups[kind] and weights[kind]]
    if not kinds:  # the weights exclude every number left: use them all alike
        kinds = [kind for kind in (False, True) if groups[kind]]
        weights = {False: 1, True: 1}
    kind = random.choices(kinds, weights=[weights[k] for k in kinds])[0]  # noqa: S311 - load spreading, not security
    # Within the kind, the least busy sender: its next free slot is the earliest.
    return min(groups[kind], key=lambda e: (e.next_slot_at or now, random.random()))  # noqa: S311


def _rate(enabled: MessagingNumber) -> float:
    rate = settings.MESSAGING_RATE_TOLL_FREE if enabled.toll_free else settings.MESSAGING_RATE_LONG_CODE
    return max(rate, 0.001)


def _take_slot(enabled: MessagingNumber, segments: int, now: datetime) -> datetime:
    """The sender's next free slot for this message; the slot after it is pushed back by its segments."""
    locked = MessagingNumber.objects.select_for_update().only("id", "next_slot_at", "toll_free").get(pk=enabled.pk)
    slot = max(locked.next_slot_at or now, now)
    if (slot - now).total_seconds() > settings.MESSAGING_SENDER_MAX_QUEUE_SECONDS:
        raise MessagingLimit(
            "sender_queue_full",
            f"{enabled.number} already has {int((slot - now).total_seconds())} s of messages queued at its "
            f"throughput limit; send from another number or later.",
        )
    locked.next_slot_at = slot + timedelta(seconds=segments / _rate(locked))
    locked.save(update_fields=["next_slot_at"])
    return slot


def _check_daily_limit(account: Account, now: datetime) -> None:
    limit = settings.MESSAGING_ACCOUNT_DAILY_LIMIT
    if not limit:
        return
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    sent = Message.objects.filter(account=account, direction=Message.Direction.OUTBOUND, created_at__gte=start).count()
    if sent >= limit:
        raise MessagingLimit(
            "daily_limit_reached",
            f"This account has sent its {limit} messages for today (UTC); sending resumes at midnight UTC.",
        )


def _check_text(text: str) -> str:
    if not text:
        raise ValidationError({"text": ValidationError("The message has no text.", "blank")})
    if len(text) > settings.MESSAGING_MAX_LENGTH:
        raise ValidationError(
            {
                "text": ValidationError(
                    f"The text is {len(text)} characters; the most one message may carry is "
                    f"{settings.MESSAGING_MAX_LENGTH}.",
                    "too_long",
                )
            }
        )
    return text


# --- Sending -------------------------------------------------------------------------------------


def message_send(
    *,
    account: Account,
    actor: Actor,
    to: str,
    text: str,
    from_: str = "",
    profile: MessagingProfile | None = None,
    callback_url: str = "",
) -> Message:
    """Accept a message for sending from `from_` (an SMS-enabled number) or from the pool of `profile`.

    Raises ValidationError for what the request got wrong (the field named), MessagingLimit when a limit refuses
    it. Returns the `queued` message; a worker sends it when its sender's slot comes.
    """
    destination = normalize_e164(to or "")
    if destination is None:
        raise ValidationError({"to": ValidationError("Not a valid E.164 number, e.g. +12015550123.", "invalid_number")})
    text = _check_text(text)
    if bool(from_) == bool(profile):
        raise ValidationError(
            {"from": ValidationError("Give either `from` (one of your numbers) or `messaging_profile`.", "invalid")}
        )
    if profile is not None and profile.account_id != account.pk:
        raise ValidationError({"messaging_profile": ValidationError("No such profile in this account.", "not_found")})
    if callback_url:
        try:
            callback_url = validate_customer_url(callback_url)
        except ValidationError as exc:
            raise ValidationError({"callback_url": exc.messages}) from exc
    if OptOut.objects.filter(account=account, number=destination).exists():
        raise ValidationError(
            {
                "to": ValidationError(
                    f"{destination} has opted out (replied STOP) of this account's messages; they can opt back in "
                    "by texting START.",
                    "opted_out",
                )
            }
        )
    now = timezone.now()
    enabled = _sender_from_number(account, from_) if from_ else _sender_from_pool(profile, destination, now)
    return _accept(account=account, enabled=enabled, to=destination, text=text, callback_url=callback_url, now=now)


@transaction.atomic
def _accept(*, account, enabled: MessagingNumber, to: str, text: str, callback_url: str, now, auto_reply="") -> Message:
    if not auto_reply:
        _check_daily_limit(account, now)
    info = count_segments(text)
    slot = _take_slot(enabled, info.segments, now)
    message = Message(
        account=account,
        direction=Message.Direction.OUTBOUND,
        from_number=enabled.number,
        to_number=to,
        text=text,
        encoding=info.encoding,
        segments=info.segments,
        status=Message.Status.QUEUED,
        thread=thread_id(enabled.number, to),
        phone_number_id=enabled.phone_number_id,
        profile=enabled.profile,
        campaign_id=enabled.campaign_id,
        callback_url=callback_url,
        auto_reply=auto_reply,
        send_after=slot,
        created_at=now,
        history=[],
    )
    _record(message, Message.Status.QUEUED, now)
    message.save(force_insert=True)
    _notify(message, Message.Status.QUEUED, now)
    delay = max((slot - now).total_seconds(), 0.0)
    transaction.on_commit(lambda: _kick(message.pk, delay))
    return message


def auto_reply_send(*, enabled: MessagingNumber, to: str, text: str, keyword: str) -> Message:
    """A platform reply to STOP, START or HELP: sent whatever the daily limit or opt-out say."""
    return _accept(
        account=enabled.account, enabled=enabled, to=to, text=text[: settings.MESSAGING_MAX_LENGTH], callback_url="",
        now=timezone.now(), auto_reply=keyword,
    )  # fmt: skip


def _kick(message_pk: int, delay: float) -> None:
    from telephony.messaging_tasks import send_message

    try:
        send_message.apply_async(args=[message_pk], countdown=delay if delay > 0.001 else None)
    except Exception:  # the broker is down: the sweeper finds the message when it is due
        logger.warning("could not queue message %s; the sweeper will send it", message_pk, exc_info=True)


@dataclass(frozen=True)
class SendOutcome:
    status: str  # "sent", "failed", "not_due", "gone"
    retry_in: float = 0.0


def message_send_step(*, message_pk: int, now: datetime | None = None) -> SendOutcome:
    """Send one queued message whose slot is due: claim it, hand it to the carrier, record what happened.

    Safe to run twice and concurrently: only the run that moves it from `queued` to `sending` sends it.
    """
    from telephony.carrier import get_carrier

    now = now or timezone.now()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("account", "profile")
            .filter(pk=message_pk, status=Message.Status.QUEUED)
            .first()
        )
        if message is None:
            return SendOutcome("gone")
        if message.send_after and message.send_after > now:
            return SendOutcome("not_due", (message.send_after - now).total_seconds())
        _change(message, Message.Status.SENDING, now)
    carrier = get_carrier()
    try:
        result = carrier.submit(message)
    except Exception:
        logger.exception("carrier %s failed on message %s", carrier.name, message.public_id)
        from telephony.carrier.base import SubmitResult

        result = SubmitResult(False, error_code="carrier_error", error_text="The carrier adapter failed.")
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("account", "profile")
            .filter(pk=message_pk)
            .first()
        )
        if message is None or message.status != Message.Status.SENDING:
            return SendOutcome("gone")  # a receipt was faster and already counted it sent
        message.carrier = carrier.name[:32]
        message.carrier_message_id = result.carrier_message_id[:64]
        later = timezone.now()
        if result.accepted:
            _change(message, Message.Status.SENT, later)
            return SendOutcome("sent")
        _change(message, Message.Status.FAILED, later, result.error_code or "failed", result.error_text)
        _health(message, ok=False, now=later)
        return SendOutcome("failed")


def _health(message: Message, *, ok: bool, now: datetime) -> None:
    if message.direction != Message.Direction.OUTBOUND or message.phone_number_id is None:
        return
    numbers = MessagingNumber.objects.filter(phone_number_id=message.phone_number_id)
    if ok:
        numbers.filter(consecutive_failures__gt=0).update(consecutive_failures=0)
    else:
        from django.db.models import F

        numbers.update(consecutive_failures=F("consecutive_failures") + 1, last_failure_at=now)


class ReceiptTooEarly(Exception):
    """A receipt for a carrier id no message carries yet: the carrier (or its adapter) should retry shortly."""


@transaction.atomic
def message_receipt(
    *, carrier: str, carrier_message_id: str, status: str, error_code: str = "", error_text: str = ""
) -> Message | None:
    """A delivery receipt from the carrier (see telephony/carrier/base.py). None when it no longer applies."""
    from telephony.carrier.base import RECEIPT_STATUSES

    if status not in RECEIPT_STATUSES:
        raise ValueError(f"unknown receipt status {status!r}")
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("account", "profile")
        .filter(carrier=carrier, carrier_message_id=carrier_message_id, direction=Message.Direction.OUTBOUND)
        .first()
    )
    if message is None:
        raise ReceiptTooEarly(carrier_message_id)
    if message.status not in (Message.Status.SENDING, Message.Status.SENT):
        logger.info("receipt %s for message %s in state %s ignored", status, message.public_id, message.status)
        return None
    now = timezone.now()
    if message.status == Message.Status.SENDING:
        _change(message, Message.Status.SENT, now)
    if status == "delivered":
        _change(message, Message.Status.DELIVERED, now)
        _health(message, ok=True, now=now)
    else:
        _change(message, status, now, error_code or status, error_text)
        _health(message, ok=False, now=now)
    return message


def message_attach_carrier_id(*, message: Message, carrier: str, carrier_message_id: str) -> None:
    """Record the carrier's id while the message is still `sending` (lets an early receipt find it)."""
    Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
        carrier=carrier[:32], carrier_message_id=carrier_message_id[:64]
    )


def messages_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Queued messages whose slot has come (for the sweeper)."""
    now = now or timezone.now()
    return list(
        Message.objects.filter(status=Message.Status.QUEUED, send_after__lte=now)
        .order_by("send_after")
        .values_list("pk", flat=True)[:limit]
    )


@transaction.atomic
def messages_fail_stuck(*, now: datetime | None = None) -> int:
    """Messages a worker claimed and never finished (it died mid-send) fail, rather than hang in `sending`."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.MESSAGING_SENDING_TIMEOUT_SECONDS)
    stuck = list(
        Message.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("account", "profile")
        .filter(status=Message.Status.SENDING, updated_at__lt=cutoff)[:200]
    )
    for message in stuck:
        _change(message, Message.Status.FAILED, now, "send_timeout", "The send did not finish; it was not retried.")
    return len(stuck)

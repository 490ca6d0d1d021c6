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
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from telephony.models import Campaign, Message, MessagingNumber, MessagingProfile, OptOut, PhoneNumber
from telephony.models.numbers import NumberType
from telephony.services.messaging.profiles import number_needs_campaign
from telephony.services.messaging.segments import count_segments
from telephony.services.numbers import normalize_e164
from telephony.urlpolicy import validate_customer_url
from tenants.models import Account
from tenants.services import Actor

logger = logging.getLogger(__name__)

THREAD_NAMESPACE = uuid.UUID("6f0c7f55-2f4e-4d8e-9a47-5d7a8b1c0e21")
# Sends queued further ahead than this are not announced to the broker: the sweeper finds them when due.
KICK_HORIZON_SECONDS = 60.0
# Pool senders tried (locked without waiting) for one send, best first.
POOL_LOCK_CANDIDATES = 8
# The shared "messages are due" kick, and how long it stands if the worker never clears it (a lost message).
KICK_KEY = "messaging:send-kick"
KICK_TTL_SECONDS = 2
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
    _notify_many([(message, status)], now)


def _notify_many(changes: list[tuple], now: datetime) -> None:
    """The events (and callbacks) of several message changes, in a few statements (inside their transaction).

    A change is (message, status), or (message, status, payload) when the message changed again since (its
    payload as it stood then).
    """
    from telephony.services.callbacks import CallbackRequest, callback_enqueue_many
    from telephony.services.events import event_emit, event_emit_many

    payloads = [change[2] if len(change) > 2 else message_payload(change[0]) for change in changes]
    changes = [(change[0], change[1]) for change in changes]
    if len(changes) == 1:  # one statement on PostgreSQL, where emitting several takes three
        message, status = changes[0]
        events = [event_emit(account=message.account, type=f"message.{status}", payload=payloads[0], obj=message,
                             occurred_at=now)]  # fmt: skip
    else:
        events = event_emit_many(
            [
                (message.account, f"message.{status}", payload, "message", str(message.public_id), now)
                for (message, status), payload in zip(changes, payloads, strict=True)
            ]
        )
    callbacks = []
    for (message, status), payload, event in zip(changes, payloads, events, strict=True):
        url, fallback = _callback_urls(message)
        if url:
            callbacks.append(
                CallbackRequest(
                    account=message.account,
                    url=url,
                    params={
                        "id": str(event.public_id), "type": f"message.{status}", "occurred_at": now.isoformat(),
                        "data": payload,
                    },
                    kind="message_callback",
                    payload_format="json",
                    fallback_url=fallback,
                    object_type="message",
                    object_id=str(message.public_id),
                )
            )  # fmt: skip
    callback_enqueue_many(callbacks)


def _change(message: Message, status: str, now: datetime, error_code: str = "", error_text: str = "") -> None:
    _record(message, status, now, error_code, error_text)
    message.save()
    _notify(message, status, now)


# --- Choosing and checking the sender ------------------------------------------------------------


def _campaign_problem(number: str, number_id, needs_campaign: bool, name: str | None, status: str | None):
    if not needs_campaign or status == Campaign.Status.APPROVED:
        return None
    if status is None:
        return (
            f"{number} is a US long code: it needs an approved 10DLC campaign to send "
            f"(POST /api/v1/numbers/{number_id}/sms with a campaign)."
        )
    return (
        f"{number} is a US long code and its 10DLC campaign “{name}” is {status}, not approved: it cannot send "
        "until staff approve it."
    )


def _sender_problem(enabled: MessagingNumber) -> str | None:
    number = enabled.phone_number
    if number.status != PhoneNumber.Status.ACTIVE:
        return f"{number.number} is no longer the account's."
    campaign = enabled.campaign
    return _campaign_problem(
        number.number,
        number.public_id,
        number_needs_campaign(number),
        campaign.name if campaign else None,
        campaign.status if campaign else None,
    )


def _healthy(enabled: MessagingNumber, now: datetime) -> bool:
    if enabled.consecutive_failures < settings.MESSAGING_UNHEALTHY_FAILURES or enabled.last_failure_at is None:
        return True
    return enabled.last_failure_at < now - timedelta(seconds=settings.MESSAGING_UNHEALTHY_WINDOW_SECONDS)


def _sender_from_number(account: Account, from_: str) -> MessagingNumber:
    value = normalize_e164(from_) or from_.strip()
    enabled = (
        MessagingNumber.objects.filter(account=account, number=value, phone_number__status=PhoneNumber.Status.ACTIVE)
        .select_related("phone_number__stock", "profile", "campaign")
        .first()
    )
    if enabled is None:
        number = PhoneNumber.objects.for_account(account).filter(number=value, status=PhoneNumber.Status.ACTIVE).first()
        if number is None:
            raise ValidationError({"from": ValidationError("Not one of this account's numbers.", "unknown_number")})
        raise ValidationError(
            {
                "from": ValidationError(
                    f"SMS is not enabled on {number.number}: put it in a messaging profile first "
                    f"(POST /api/v1/numbers/{number.public_id}/sms).",
                    "sms_not_enabled",
                )
            }
        )
    problem = _sender_problem(enabled)
    if problem:
        raise ValidationError({"from": ValidationError(problem, "campaign_required")})
    return enabled


def _sender_from_pool(profile: MessagingProfile, to: str, now: datetime) -> list[MessagingNumber]:
    """The senders to try, best first (one for a sticky destination)."""
    if not profile.number_pool_enabled:
        raise ValidationError(
            {
                "messaging_profile": ValidationError(
                    "This profile's number pool is off: send with `from`, or turn the pool on.", "pool_disabled"
                )
            }
        )
    # Plain tuples, not model instances: this runs on every pool send, over every number of the profile.
    rows = list(
        MessagingNumber.objects.filter(profile=profile, phone_number__status=PhoneNumber.Status.ACTIVE)
        .order_by("id")
        .values_list(
            "pk", "phone_number_id", "number", "toll_free", "next_slot_at", "consecutive_failures", "last_failure_at",
            "phone_number__public_id", "phone_number__stock__country", "phone_number__stock__number_type",
            "campaign__name", "campaign__status", "campaign_id",
        )
    )  # fmt: skip
    candidates = [_Candidate(*row) for row in rows]
    problems = {
        c.pk: _campaign_problem(
            c.number, c.number_public_id, c.country == "US" and c.number_type == NumberType.LOCAL, c.campaign_name,
            c.campaign_status,
        )
        for c in candidates
    }  # fmt: skip
    eligible = [c for c in candidates if problems[c.pk] is None]
    if not eligible:
        reason = next(iter(problems.values()), None) or "The profile has no numbers."
        code = "campaign_required" if candidates else "no_numbers"
        raise ValidationError(
            {"messaging_profile": ValidationError(f"No number of this profile can send. {reason}", code)}
        )
    healthy = [c for c in eligible if _healthy(c, now)] if profile.skip_unhealthy else eligible
    if profile.sticky_sender:
        last = (
            Message.objects.filter(profile=profile, to_number=to, direction=Message.Direction.OUTBOUND)
            .order_by("-created_at", "-id")
            .values_list("phone_number_id", flat=True)
            .first()
        )
        sticky = next((c for c in healthy if c.phone_number_id == last), None)
        if sticky is not None:
            return [_stub(profile, sticky)]
    pool = healthy or eligible  # every sender unhealthy: sending beats refusing
    groups = {False: [c for c in pool if not c.toll_free], True: [c for c in pool if c.toll_free]}
    weights = {False: profile.long_code_weight, True: profile.toll_free_weight}
    kinds = [kind for kind in (False, True) if groups[kind] and weights[kind]]
    if not kinds:  # the weights exclude every number left: use them all alike
        kinds = [kind for kind in (False, True) if groups[kind]]
        weights = {False: 1, True: 1}
    kind = random.choices(kinds, weights=[weights[k] for k in kinds])[0]  # noqa: S311 - load spreading only
    # Within the kind, the least busy senders first: the earliest next free slot. Every sender free now is equally
    # good: in random order, so concurrent sends do not all pick the same one (and `_lock_sender` skips one that
    # a concurrent send holds).
    ranked = sorted(groups[kind], key=lambda c: (max(c.next_slot_at or now, now), random.random()))  # noqa: S311
    return [_stub(profile, candidate) for candidate in ranked[:POOL_LOCK_CANDIDATES]]


def _stub(profile: MessagingProfile, chosen: _Candidate) -> MessagingNumber:
    """What accepting needs of a sender, without loading it again; read-only here (never saved)."""
    number = PhoneNumber(
        pk=chosen.phone_number_id, account_id=profile.account_id, public_id=chosen.number_public_id,
        number=chosen.number,
    )  # fmt: skip
    return MessagingNumber(
        phone_number=number,
        pk=chosen.pk, account_id=profile.account_id, profile=profile,
        campaign_id=chosen.campaign_id, number=chosen.number, toll_free=chosen.toll_free,
    )  # fmt: skip


def _lock_sender(candidates: list[MessagingNumber]) -> MessagingNumber:
    """The first candidate no concurrent send is using (its row locked for this transaction), else the first.

    Without this, concurrent pool sends that read the same "least busy" sender would queue behind each other
    at its throughput limit while other numbers of the pool stay idle.
    """
    if len(candidates) == 1 or connection.vendor != "postgresql":
        return candidates[0]
    from django.db.models import Case, DateTimeField, IntegerField, Value, When
    from django.db.models.functions import Coalesce, Greatest

    # Re-ranked on the slots as they are now: the ranking's snapshot may predate a send that just committed. LIMIT 1
    # so that only the sender chosen is locked: locking every free candidate would make each concurrent pool send
    # skip them all and queue behind the first one.
    now = timezone.now()
    at_now = Value(now, output_field=DateTimeField())
    rank = Case(
        *[When(pk=candidate.pk, then=Value(index)) for index, candidate in enumerate(candidates)],
        output_field=IntegerField(),
    )
    best = (
        MessagingNumber.objects.select_for_update(skip_locked=True)
        .filter(pk__in=[candidate.pk for candidate in candidates])
        .order_by(Greatest(Coalesce("next_slot_at", at_now), at_now), rank)
        .values_list("pk", flat=True)
        .first()
    )
    if best is None:
        return candidates[0]
    return next(candidate for candidate in candidates if candidate.pk == best)


@dataclass(frozen=True)
class _Candidate:
    pk: int
    phone_number_id: int
    number: str
    toll_free: bool
    next_slot_at: datetime | None
    consecutive_failures: int
    last_failure_at: datetime | None
    number_public_id: uuid.UUID
    country: str
    number_type: str
    campaign_name: str | None
    campaign_status: str | None
    campaign_id: int | None


def _rate(enabled: MessagingNumber) -> float:
    rate = settings.MESSAGING_RATE_TOLL_FREE if enabled.toll_free else settings.MESSAGING_RATE_LONG_CODE
    return max(rate, 0.001)


def _take_slot(enabled: MessagingNumber, segments: int, now: datetime) -> datetime:
    """The sender's next free slot for this message; the slot after it is pushed back by its segments.

    Inside the accept transaction: the row lock serialises concurrent sends from one number, so two messages never
    get the same slot. On PostgreSQL one UPDATE ... RETURNING does it (a round trip per send saved).
    """
    step = timedelta(seconds=segments / _rate(enabled))
    if connection.vendor == "postgresql":
        table = MessagingNumber._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET next_slot_at = GREATEST(COALESCE(next_slot_at, %s), %s) + %s "  # noqa: S608
                "WHERE id = %s RETURNING next_slot_at",
                [now, now, step, enabled.pk],
            )
            slot = cursor.fetchone()[0] - step
    else:
        locked = MessagingNumber.objects.select_for_update().only("id", "next_slot_at").get(pk=enabled.pk)
        slot = max(locked.next_slot_at or now, now)
        locked.next_slot_at = slot + step
        locked.save(update_fields=["next_slot_at"])
    if (slot - now).total_seconds() > settings.MESSAGING_SENDER_MAX_QUEUE_SECONDS:
        # Raised inside the transaction, so the slot just taken is given back by the rollback.
        raise MessagingLimit(
            "sender_queue_full",
            f"{enabled.number} already has {int((slot - now).total_seconds())} s of messages queued at its "
            f"throughput limit; send from another number or later.",
        )
    return slot


def _count_daily(account: Account, now: datetime) -> None:
    """Count one outbound message against the account's daily limit, or refuse it.

    The count lives in the cache (Redis in production: one atomic INCR instead of counting the day's rows on
    every send), seeded from the database when the day's key is missing (a new day, a flushed cache).
    """
    limit = settings.MESSAGING_ACCOUNT_DAILY_LIMIT
    if not limit:
        return
    key = f"messaging:daily:{account.pk}:{now.date().isoformat()}"
    try:
        count = cache.incr(key)
    except ValueError:
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        sent = Message.objects.filter(
            account=account, direction=Message.Direction.OUTBOUND, created_at__gte=start
        ).count()
        cache.add(key, sent, timeout=2 * 86400)
        count = cache.incr(key)
    if count > limit:
        cache.decr(key)
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
    senders = [_sender_from_number(account, from_)] if from_ else _sender_from_pool(profile, destination, now)
    return _accept(account=account, senders=senders, to=destination, text=text, callback_url=callback_url, now=now)


@transaction.atomic
def _accept(
    *, account, senders: list[MessagingNumber], to: str, text: str, callback_url: str, now, auto_reply=""
) -> Message:
    enabled = _lock_sender(senders)
    info = count_segments(text)
    slot = _take_slot(enabled, info.segments, now)
    if not auto_reply:
        _count_daily(account, now)  # after the slot: a refused message must not count
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
        phone_number=enabled.phone_number,
        profile=enabled.profile,
        campaign_id=enabled.campaign_id,
        callback_url=callback_url,
        auto_reply=auto_reply,
        send_after=slot,
        created_at=now,
        history=[],
    )
    _record(message, Message.Status.QUEUED, now)
    # No full_clean(): every value was produced or checked above, and its unique checks would cost a query per
    # message on the hottest path; the database's constraints still hold.
    message.save(force_insert=True)
    _notify(message, Message.Status.QUEUED, now)
    delay = max((slot - now).total_seconds(), 0.0)
    transaction.on_commit(lambda: _kick(message.pk, delay))
    return message


def auto_reply_send(*, enabled: MessagingNumber, to: str, text: str, keyword: str) -> Message:
    """A platform reply to STOP, START or HELP: sent whatever the daily limit or opt-out say."""
    return _accept(
        account=enabled.account, senders=[enabled], to=to, text=text[: settings.MESSAGING_MAX_LENGTH], callback_url="",
        now=timezone.now(), auto_reply=keyword,
    )  # fmt: skip


def _kick(message_pk: int, delay: float) -> None:
    """Wake a worker for a message just accepted: at once for a slot that has come, with a countdown otherwise.

    Messages due now share one kick: the worker clears the flag before it looks for due messages, so a message
    committed after that finds the flag free and kicks again; one committed before is found by that look. A
    publish costs several times a whole accept, so at hundreds of messages a second this matters.
    """
    from telephony.messaging_tasks import send_due, send_message

    if delay > KICK_HORIZON_SECONDS:
        return  # a worker would hold the countdown in memory for long; the sweeper sends it when it is due
    try:
        if delay <= 0.001:
            if cache.add(KICK_KEY, 1, timeout=KICK_TTL_SECONDS):
                send_due.apply_async()
        else:
            send_message.apply_async(args=[message_pk], countdown=delay)
    except Exception:  # the broker is down: the sweeper finds the message when it is due
        logger.warning("could not queue message %s; the sweeper will send it", message_pk, exc_info=True)


def clear_kick() -> None:
    cache.delete(KICK_KEY)


@dataclass(frozen=True)
class SendOutcome:
    status: str  # "sent", "failed", "not_due", "gone"
    retry_in: float = 0.0


SEND_BATCH = 100
_SAVED = ["status", "history", "sent_at", "finished_at", "error_code", "error_text", "carrier", "carrier_message_id",
          "updated_at"]  # fmt: skip


def message_send_step(*, message_pk: int, now: datetime | None = None) -> SendOutcome:
    """Send one queued message if its slot has come (what a kick asks for); see `messages_send_due`."""
    now = now or timezone.now()
    outcomes = _send(Message.objects.filter(pk=message_pk), now)
    if outcomes:
        return SendOutcome(outcomes[0])
    send_after = (
        Message.objects.filter(pk=message_pk, status=Message.Status.QUEUED).values_list("send_after", flat=True).first()
    )
    if send_after is not None and send_after > now:
        return SendOutcome("not_due", (send_after - now).total_seconds())
    return SendOutcome("gone")


def messages_send_due(*, now: datetime | None = None, limit: int = SEND_BATCH) -> int:
    """Send up to `limit` queued messages whose slot has come, oldest slot first. Returns how many were taken."""
    return len(_send(Message.objects.order_by("send_after"), now or timezone.now(), limit))


def _send(queryset, now: datetime, limit: int = SEND_BATCH) -> list[str]:
    """Claim due queued messages (`sending`), hand them to the carrier, record each outcome (`sent` / `failed`).

    Safe to run twice and concurrently: rows are claimed with SKIP LOCKED in the move from `queued` to `sending`,
    so a message is handed to the carrier once. Batched: a busy worker claims, reports and records up to `limit`
    messages in two transactions of a few statements each, instead of two per message.
    """
    from telephony.carrier import get_carrier
    from telephony.carrier.base import SubmitResult

    with transaction.atomic():
        messages = list(
            queryset.select_for_update(skip_locked=True, of=("self",))
            .select_related("account", "profile")
            .filter(status=Message.Status.QUEUED, send_after__lte=now)[:limit]
        )
        if not messages:
            return []
        for message in messages:
            _record(message, Message.Status.SENDING, now)
            message.updated_at = now
        _save_all(messages)
        _notify_many([(message, Message.Status.SENDING) for message in messages], now)
    carrier = get_carrier()
    try:
        results = carrier.submit_many(messages)
    except Exception:
        logger.exception("carrier %s failed on %d messages", carrier.name, len(messages))
        results = [SubmitResult(False, error_code="carrier_error", error_text="The carrier adapter failed.")] * len(
            messages
        )
    by_pk = {message.pk: result for message, result in zip(messages, results, strict=True)}
    outcomes = []
    with transaction.atomic():
        later = timezone.now()
        current = list(
            Message.objects.select_for_update(of=("self",))
            .select_related("account", "profile")
            .filter(pk__in=list(by_pk), status=Message.Status.SENDING)
            .order_by("pk")
        )  # a receipt may have been faster and already counted one sent: it is left as it is
        changes, failed = [], []
        for message in current:
            result = by_pk[message.pk]
            message.carrier = carrier.name[:32]
            message.carrier_message_id = result.carrier_message_id[:64]
            message.updated_at = later
            if result.accepted:
                _record(message, Message.Status.SENT, later)
                changes.append((message, Message.Status.SENT))
            else:
                _record(message, Message.Status.FAILED, later, result.error_code or "failed", result.error_text)
                changes.append((message, Message.Status.FAILED))
                failed.append(message)
            outcomes.append(changes[-1][1])
        _save_all(current)
        _notify_many(changes, later)
        for message in failed:
            _health(message, ok=False, now=later)
    return outcomes or ["gone"]


def _save_all(messages: list[Message]) -> None:
    """Write the state fields of several messages: one UPDATE ... FROM (VALUES ...) on PostgreSQL.

    Django's bulk_update builds a CASE expression per field and row, which costs more CPU than the send itself.
    """
    if not messages:
        return
    if connection.vendor != "postgresql":
        Message.objects.bulk_update(messages, _SAVED)
        return
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    rows, params = [], []
    for message in messages:
        rows.append("(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
        params += [
            message.pk, message.status, json.dumps(message.history, cls=DjangoJSONEncoder), message.sent_at,
            message.finished_at, message.error_code, message.error_text, message.carrier, message.carrier_message_id,
            message.updated_at,
        ]  # fmt: skip
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS m SET status = v.status, history = v.history::jsonb, "  # noqa: S608 - our table
            "sent_at = v.sent_at::timestamptz, finished_at = v.finished_at::timestamptz, error_code = v.error_code, "
            "error_text = v.error_text, carrier = v.carrier, carrier_message_id = v.carrier_message_id, "
            "updated_at = v.updated_at::timestamptz "
            f"FROM (VALUES {', '.join(rows)}) AS v(id, status, history, sent_at, finished_at, error_code, error_text, "
            "carrier, carrier_message_id, updated_at) WHERE m.id = v.id::bigint",
            params,
        )


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


def message_receipt(
    *, carrier: str, carrier_message_id: str, status: str, error_code: str = "", error_text: str = ""
) -> Message | None:
    """A delivery receipt from the carrier (see telephony/carrier/base.py). None when it no longer applies.

    Raises ReceiptTooEarly when no message carries this id yet.
    """
    applied, early = message_receipts(carrier=carrier, receipts=[(carrier_message_id, status, error_code, error_text)])
    if early:
        raise ReceiptTooEarly(carrier_message_id)
    return applied[0] if applied else None


@transaction.atomic
def message_receipts(
    *, carrier: str, receipts: list[tuple[str, str, str, str]]
) -> tuple[list[Message], list[tuple[str, str, str, str]]]:
    """Several receipts, (carrier_message_id, status, error_code, error_text) each, in one transaction of a few
    statements. Returns the messages they changed, and the receipts for ids no message carries yet (to retry)."""
    from telephony.carrier.base import RECEIPT_STATUSES

    for _, status, _, _ in receipts:
        if status not in RECEIPT_STATUSES:
            raise ValueError(f"unknown receipt status {status!r}")
    by_id = {receipt[0]: receipt for receipt in receipts}
    messages = list(
        Message.objects.select_for_update(of=("self",))
        .select_related("account", "profile")
        .filter(carrier=carrier, carrier_message_id__in=list(by_id), direction=Message.Direction.OUTBOUND)
        .order_by("pk")
    )
    found = {message.carrier_message_id for message in messages}
    early = [receipt for receipt in receipts if receipt[0] not in found]
    now = timezone.now()
    changed, changes, good, bad = [], [], [], []
    for message in messages:
        _, status, error_code, error_text = by_id[message.carrier_message_id]
        if message.status not in (Message.Status.SENDING, Message.Status.SENT):
            logger.info("receipt %s for message %s in state %s ignored", status, message.public_id, message.status)
            continue
        if message.status == Message.Status.SENDING:  # the receipt outran the record of the submit
            _record(message, Message.Status.SENT, now)
            changes.append((message, Message.Status.SENT, message_payload(message)))
        if status == "delivered":
            _record(message, Message.Status.DELIVERED, now)
            good.append(message.phone_number_id)
        else:
            _record(message, status, now, error_code or status, error_text)
            bad.append(message)
        message.updated_at = now
        changes.append((message, message.status))
        changed.append(message)
    _save_all(changed)
    _notify_many(changes, now)
    if good:
        MessagingNumber.objects.filter(phone_number_id__in=good, consecutive_failures__gt=0).update(
            consecutive_failures=0
        )
    for message in bad:
        _health(message, ok=False, now=now)
    return changed, early


def message_attach_carrier_id(*, message: Message, carrier: str, carrier_message_id: str) -> None:
    """Record the carrier's id while the message is still `sending` (lets an early receipt find it)."""
    Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
        carrier=carrier[:32], carrier_message_id=carrier_message_id[:64]
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

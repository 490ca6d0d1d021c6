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

import functools
import json
import logging
import math
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from telephony.hot_sql import hot_cursor, hot_execute
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


def _sender_from_pool(account: Account, profile: MessagingProfile, to: str, now: datetime) -> list[_Candidate]:
    """The senders to try, best first (one for a sticky destination). Refuses an opted-out destination first."""
    if not profile.number_pool_enabled:
        _check_opt_out(account, to)
        raise _pool_disabled()
    opted_out, last, candidates = _pool_snapshot(account, profile, to)
    if opted_out:
        raise _opted_out_error(to)
    return _pool_ranked(profile, candidates, last, now)


def _pool_disabled() -> ValidationError:
    return ValidationError(
        {
            "messaging_profile": ValidationError(
                "This profile's number pool is off: send with `from`, or turn the pool on.", "pool_disabled"
            )
        }
    )


@dataclass(frozen=True)
class _Pool:
    """What a pool offers whatever the destination: its healthy senders, and the senders of each kind to pick from."""

    healthy: list[_Candidate]
    groups: dict[bool, list[_Candidate]]
    kinds: list[bool]
    weights: list[int]


def _pool_prepare(profile: MessagingProfile, candidates: list[_Candidate], now: datetime) -> _Pool:
    """Raises ValidationError when no number of the pool can send."""
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
    pool = healthy or eligible  # every sender unhealthy: sending beats refusing
    groups = {False: [c for c in pool if not c.toll_free], True: [c for c in pool if c.toll_free]}
    weights = {False: profile.long_code_weight, True: profile.toll_free_weight}
    kinds = [kind for kind in (False, True) if groups[kind] and weights[kind]]
    if not kinds:  # the weights exclude every number left: use them all alike
        kinds = [kind for kind in (False, True) if groups[kind]]
        weights = {False: 1, True: 1}
    return _Pool(healthy=healthy, groups=groups, kinds=kinds, weights=[weights[k] for k in kinds])


def _pool_ranked(
    profile: MessagingProfile,
    candidates: list[_Candidate],
    last: int | None,
    now: datetime,
    slots: dict[int, datetime | None] | None = None,
    pool: _Pool | None = None,
) -> list[_Candidate]:
    """The pool's senders for one destination, best first: its sticky sender alone when it has one that can send.

    `last` is the phone number that last sent to the destination from this profile; `slots` overrides the
    candidates' next free slots (a batch counts the slots its own earlier messages took); `pool` is
    `_pool_prepare`'s answer when the caller has it (a batch prepares each profile once).
    """
    pool = pool or _pool_prepare(profile, candidates, now)
    if profile.sticky_sender and last is not None:
        sticky = next((c for c in pool.healthy if c.phone_number_id == last), None)
        if sticky is not None:
            return [sticky]
    kind = random.choices(pool.kinds, weights=pool.weights)[0]  # noqa: S311 - load spreading only
    # Within the kind, the least busy senders first: the earliest next free slot. Every sender free now is equally
    # good: in random order, so concurrent sends do not all pick the same one (and `_sender_slot` skips one that
    # a concurrent send holds).
    slots = slots if slots is not None else {}
    ranked = sorted(
        pool.groups[kind],
        key=lambda c: (max(slots.get(c.pk, c.next_slot_at) or now, now), random.random()),  # noqa: S311
    )
    return ranked[:POOL_LOCK_CANDIDATES]


# The pool as one statement on PostgreSQL: the destination's opt-out and its last sender from this profile ride
# along as one-row subqueries (LEFT JOIN ... ON TRUE keeps that row when the profile has no numbers). Every table
# is filtered by the account too, not only through the profile. Raw SQL: the
# ORM spent longer compiling the three queries this replaces than PostgreSQL spent running them.
_POOL_SQL = """
SELECT o.opted_out, s.last_sender, c.*
FROM (SELECT EXISTS (SELECT 1 FROM {optout} WHERE account_id = %(account)s AND number = %(to)s) AS opted_out) AS o
CROSS JOIN (
    SELECT (SELECT m.phone_number_id FROM {message} m
            WHERE %(sticky)s AND m.account_id = %(account)s AND m.profile_id = %(profile)s AND m.to_number = %(to)s
              AND m.direction = 'outbound'
            ORDER BY m.created_at DESC, m.id DESC LIMIT 1) AS last_sender
) AS s
LEFT JOIN (
    SELECT mn.id, mn.phone_number_id, mn.number, mn.toll_free, mn.next_slot_at, mn.consecutive_failures,
           mn.last_failure_at, pn.public_id, st.country, st.number_type, cp.name, cp.status, mn.campaign_id
    FROM {messagingnumber} mn
    JOIN {phonenumber} pn ON pn.id = mn.phone_number_id
    JOIN {stocknumber} st ON st.id = pn.stock_id
    LEFT JOIN {campaign} cp ON cp.id = mn.campaign_id
    WHERE mn.profile_id = %(profile)s AND mn.account_id = %(account)s AND pn.account_id = %(account)s
      AND pn.status = %(active)s
) AS c ON TRUE
ORDER BY c.id
"""


def _pool_sql() -> str:
    from telephony.models import StockNumber

    tables = {
        model.__name__.lower(): model._meta.db_table
        for model in (OptOut, Message, MessagingNumber, PhoneNumber, StockNumber, Campaign)
    }
    return _POOL_SQL.format(**tables)


def _pool_snapshot(account: Account, profile: MessagingProfile, to: str) -> tuple[bool, int | None, list[_Candidate]]:
    """Whether `to` opted out, the number that last sent to it from this profile (when sticky), the pool."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _pool_sql(),
                {
                    "account": account.pk, "to": to, "sticky": bool(profile.sticky_sender), "profile": profile.pk,
                    "active": PhoneNumber.Status.ACTIVE,
                },
            )  # fmt: skip
            rows = cursor.fetchall()
        candidates = [_Candidate(*row[2:]) for row in rows if row[2] is not None]
        return rows[0][0], rows[0][1], candidates
    opted_out = OptOut.objects.filter(account=account, number=to).exists()
    last = _last_senders(profile, [to]).get(to) if profile.sticky_sender else None
    return opted_out, last, _pool_candidates(profile)


def _pool_candidates(profile: MessagingProfile) -> list[_Candidate]:
    # Plain tuples, not model instances: this runs on every pool send, over every number of the profile.
    # The account named as well as the profile (as in _POOL_SQL): a row that ever pointed across accounts is ignored.
    rows = MessagingNumber.objects.filter(
        profile=profile, account_id=profile.account_id, phone_number__account_id=profile.account_id,
        phone_number__status=PhoneNumber.Status.ACTIVE,
    )  # fmt: skip
    rows = rows.order_by("id").values_list(
        "pk", "phone_number_id", "number", "toll_free", "next_slot_at", "consecutive_failures", "last_failure_at",
        "phone_number__public_id", "phone_number__stock__country", "phone_number__stock__number_type",
        "campaign__name", "campaign__status", "campaign_id",
    )  # fmt: skip
    return [_Candidate(*row) for row in rows]


def _last_senders(profile: MessagingProfile, destinations: list[str]) -> dict[str, int]:
    """The phone number that last sent to each destination from this profile (a sticky sender)."""
    rows = Message.objects.filter(
        account_id=profile.account_id, profile=profile, to_number__in=destinations, direction=Message.Direction.OUTBOUND
    ).order_by("to_number", "-created_at", "-id")
    if connection.vendor == "postgresql":
        rows = rows.distinct("to_number")
    last: dict[str, int] = {}
    for to, phone_number_id in rows.values_list("to_number", "phone_number_id"):
        last.setdefault(to, phone_number_id)
    return last


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


def _sender_slot(senders: list, segments: int, now: datetime) -> tuple:
    """The sender this message goes from and its throughput slot (the slot taken, inside the accept transaction).

    Several pool candidates: the first one no concurrent send is using, re-ranked on the slots as they are now (the
    ranking's snapshot may predate a send that just committed); its row is locked for this transaction. Without
    this, concurrent pool sends that read the same "least busy" sender would queue behind each other at its
    throughput limit while other numbers of the pool stay idle.
    """
    if len(senders) > 1 and connection.vendor == "postgresql":
        steps = {toll_free: timedelta(seconds=segments / _rate(toll_free)) for toll_free in (False, True)}
        ids = [sender.pk for sender in senders]
        table = MessagingNumber._meta.db_table
        # One statement picks, locks and advances the sender. LIMIT 1 so that only the sender chosen is locked:
        # locking every free candidate would make each concurrent pool send skip them all and queue behind the first.
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET next_slot_at = GREATEST(COALESCE(next_slot_at, %(now)s), %(now)s) "  # noqa: S608
                "+ CASE WHEN toll_free THEN %(toll_free)s ELSE %(long_code)s END "
                f"WHERE id = (SELECT id FROM {table} WHERE id = ANY(%(ids)s::bigint[]) "
                "ORDER BY GREATEST(COALESCE(next_slot_at, %(now)s), %(now)s), array_position(%(ids)s::bigint[], id) "
                "LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, next_slot_at",
                {"now": now, "toll_free": steps[True], "long_code": steps[False], "ids": ids},
            )
            row = cursor.fetchone()
        if row is not None:
            chosen = next(sender for sender in senders if sender.pk == row[0])
            slot = row[1] - steps[chosen.toll_free]
            _check_queue(chosen, slot, now)
            return chosen, slot
        # Every candidate is held by a concurrent send: queue behind the best one.
    return senders[0], _take_slot(senders[0], segments, now)


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


def _rate(toll_free: bool) -> float:
    rate = settings.MESSAGING_RATE_TOLL_FREE if toll_free else settings.MESSAGING_RATE_LONG_CODE
    return max(rate, 0.001)


def _take_slot(enabled: MessagingNumber, segments: int, now: datetime) -> datetime:
    """The sender's next free slot for this message; the slot after it is pushed back by its segments.

    Inside the accept transaction: the row lock serialises concurrent sends from one number, so two messages never
    get the same slot. On PostgreSQL one UPDATE ... RETURNING does it (a round trip per send saved).
    """
    step = timedelta(seconds=segments / _rate(enabled.toll_free))
    if connection.vendor == "postgresql":
        table = MessagingNumber._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET next_slot_at = GREATEST(COALESCE(next_slot_at, %s), %s) + %s "  # noqa: S608
                "WHERE id = %s RETURNING next_slot_at",
                [now, now, step, enabled.pk],
            )
            row = cursor.fetchone()
        if row is None:
            raise _sender_vanished(enabled)
        slot = row[0] - step
    else:
        locked = MessagingNumber.objects.select_for_update().only("id", "next_slot_at").filter(pk=enabled.pk).first()
        if locked is None:
            raise _sender_vanished(enabled)
        slot = max(locked.next_slot_at or now, now)
        locked.next_slot_at = slot + step
        locked.save(update_fields=["next_slot_at"])
    _check_queue(enabled, slot, now)
    return slot


def _sender_vanished(enabled) -> ValidationError:
    """SMS was turned off on the sender (its row deleted) after this send read it, while it waited for the row."""
    if isinstance(enabled, _Candidate):
        return ValidationError(
            {
                "messaging_profile": ValidationError(
                    f"{enabled.number} left this profile while the send waited for it: send again.", "sms_not_enabled"
                )
            }
        )
    return _sender_gone(enabled.account_id, enabled.number)


def _check_queue(enabled, slot: datetime, now: datetime) -> None:
    # Raised inside the transaction, so the slot just taken is given back by the rollback.
    if (slot - now).total_seconds() > settings.MESSAGING_SENDER_MAX_QUEUE_SECONDS:
        raise _queue_full(enabled, slot, now)


def _queue_full(enabled, slot: datetime, now: datetime) -> MessagingLimit:
    return MessagingLimit(
        "sender_queue_full",
        f"{enabled.number} already has {int((slot - now).total_seconds())} s of messages queued at its "
        f"throughput limit; send from another number or later.",
    )


def _count_daily(account: Account, now: datetime, count: int = 1) -> int:
    """Count `count` outbound messages against the account's daily limit; how many of them it takes (the rest are
    given back). The caller refuses the others (a single send raises, a batch lists them).

    The count lives in the cache (Redis in production: one atomic INCR instead of counting the day's rows on
    every send), seeded from the database when the day's key is missing (a new day, a flushed cache).
    """
    limit = settings.MESSAGING_ACCOUNT_DAILY_LIMIT
    if not limit or not count:
        return count
    key = f"messaging:daily:{account.pk}:{now.date().isoformat()}"
    try:
        total = cache.incr(key, count)
    except ValueError:
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        sent = Message.objects.filter(
            account=account, direction=Message.Direction.OUTBOUND, created_at__gte=start
        ).count()
        cache.add(key, sent, timeout=2 * 86400)
        total = cache.incr(key, count)
    over = min(max(total - limit, 0), count)
    if over:
        cache.decr(key, over)
    return count - over


def _daily_limit_reached() -> MessagingLimit:
    limit = settings.MESSAGING_ACCOUNT_DAILY_LIMIT
    return MessagingLimit(
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
    destination, text, callback_url = _check_request(account, to, text, from_, profile, callback_url)
    now = timezone.now()
    if from_:
        _check_opt_out(account, destination)
        senders: list = [_sender_from_number(account, from_)]
    else:
        senders = _sender_from_pool(account, profile, destination, now)
    return _accept(
        account=account, senders=senders, profile=profile, to=destination, text=text, callback_url=callback_url,
        now=now,
    )  # fmt: skip


def _check_request(account: Account, to: str, text: str, from_: str, profile, callback_url: str) -> tuple:
    """What a send request can get wrong by itself: (the E.164 destination, the text, the checked callback URL)."""
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
    return destination, text, callback_url


def _opted_out_error(destination: str) -> ValidationError:
    return ValidationError(
        {
            "to": ValidationError(
                f"{destination} has opted out (replied STOP) of this account's messages; they can opt back in "
                "by texting START.",
                "opted_out",
            )
        }
    )


def _check_opt_out(account: Account, destination: str) -> None:
    if OptOut.objects.filter(account=account, number=destination).exists():
        raise _opted_out_error(destination)


def _new_message(
    account, enabled: MessagingNumber, to: str, text: str, info, callback_url: str, slot, now, auto_reply=""
):
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
    return message


@transaction.atomic
def _accept(
    *, account, senders: list, to: str, text: str, callback_url: str, now, auto_reply="", profile=None
) -> Message:
    """`senders`: the sender (a MessagingNumber), or the pool's candidates best first (of `profile`)."""
    info = count_segments(text)
    chosen, slot = _sender_slot(senders, info.segments, now)
    enabled = _stub(profile, chosen) if isinstance(chosen, _Candidate) else chosen
    if not auto_reply and not _count_daily(account, now):  # after the slot: a refused message must not count
        raise _daily_limit_reached()
    message = _new_message(account, enabled, to, text, info, callback_url, slot, now, auto_reply)
    _insert([message])
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


@dataclass(frozen=True)
class SendRequest:
    """One message of a batch, as `message_send` takes it."""

    to: str
    text: str
    from_: str = ""
    profile: MessagingProfile | None = None
    callback_url: str = ""


@dataclass
class BatchOutcome:
    """What a batch accepted, (index, message), and what it refused, (index, ValidationError | MessagingLimit)."""

    accepted: list[tuple[int, Message]]
    rejected: list[tuple[int, Exception]]


def messages_send_many(*, account: Account, actor: Actor, requests: list[tuple[int, SendRequest]]) -> BatchOutcome:
    """Accept a batch of messages, each checked as `message_send` checks it, the valid ones in one transaction.

    Every rule of a single send holds, in the batch's order: opt-outs, the 10DLC check, the sticky sender (a
    destination that appears twice keeps the sender its first message got), the throughput slots (a batch's own
    messages queue behind each other) and the daily limit (reached mid-batch, the rest are refused with it).
    A few statements whatever the batch's size: one per distinct `from` and per profile, one INSERT for the
    messages, their events and their callbacks.
    """
    rejected: list[tuple[int, Exception]] = []
    checked: list[tuple[int, SendRequest, str, str, str]] = []
    for index, request in requests:
        try:
            to, text, callback_url = _check_request(
                account, request.to, request.text, request.from_, request.profile, request.callback_url
            )
        except ValidationError as exc:
            rejected.append((index, exc))
            continue
        checked.append((index, request, to, text, callback_url))
    opted_out = set(
        OptOut.objects.filter(account=account, number__in={to for _, _, to, _, _ in checked}).values_list(
            "number", flat=True
        )
    )
    numbers: dict[str, MessagingNumber | ValidationError] = {}
    pools: dict[int, list[_Candidate]] = {}
    profiles: dict[int, MessagingProfile] = {}
    valid = []
    for index, request, to, text, callback_url in checked:
        try:
            if to in opted_out:
                raise _opted_out_error(to)
            if request.from_:
                if request.from_ not in numbers:
                    try:
                        numbers[request.from_] = _sender_from_number(account, request.from_)
                    except ValidationError as exc:
                        numbers[request.from_] = exc
                if isinstance(numbers[request.from_], ValidationError):
                    raise numbers[request.from_]
            else:
                profile = request.profile
                if not profile.number_pool_enabled:
                    raise _pool_disabled()
                if profile.pk not in pools:
                    pools[profile.pk], profiles[profile.pk] = _pool_candidates(profile), profile
        except ValidationError as exc:
            rejected.append((index, exc))
            continue
        valid.append((index, request, to, text, callback_url))
    last: dict[tuple[int, str], int] = {}
    for profile in profiles.values():
        if profile.sticky_sender:
            destinations = [
                to for _, request, to, _, _ in valid if request.profile and request.profile.pk == profile.pk
            ]
            for to, phone_number_id in _last_senders(profile, destinations).items():
                last[(profile.pk, to)] = phone_number_id
    accepted = _accept_many(account, valid, numbers, pools, last, rejected) if valid else []
    rejected.sort(key=lambda pair: pair[0])
    return BatchOutcome(accepted=accepted, rejected=rejected)


@transaction.atomic
def _accept_many(account, valid, numbers, pools, last, rejected) -> list[tuple[int, Message]]:
    now = timezone.now()
    # Every sender the batch may use, locked in primary-key order (two batches never wait on each other in a
    # circle), with its slot as it is now.
    ids = {number.pk for number in numbers.values() if isinstance(number, MessagingNumber)}
    ids.update(candidate.pk for candidates in pools.values() for candidate in candidates)
    slots = dict(
        MessagingNumber.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", "next_slot_at")
    )
    # A sender missing now had SMS turned off (its row deleted) after the batch read it: it sends nothing.
    gone: dict[str, ValidationError] = {}
    for from_, number in numbers.items():
        if isinstance(number, MessagingNumber) and number.pk not in slots:
            gone[from_] = _sender_gone(account, from_)
    prepared: dict[int, _Pool | ValidationError] = {}
    for pk, candidates in pools.items():
        profile = next(request.profile for _, request, *_ in valid if getattr(request.profile, "pk", None) == pk)
        try:
            prepared[pk] = _pool_prepare(profile, [c for c in candidates if c.pk in slots], now)
        except ValidationError as exc:
            prepared[pk] = exc
    taken = []  # (index, request, to, text, callback_url, sender, slot, segment info)
    for index, request, to, text, callback_url in valid:
        try:
            if request.from_:
                if request.from_ in gone:
                    raise gone[request.from_]
                chosen = numbers[request.from_]
            else:
                key = (request.profile.pk, to)
                pool = prepared[request.profile.pk]
                if isinstance(pool, ValidationError):
                    raise pool
                chosen = _pool_ranked(request.profile, [], last.get(key), now, slots, pool)[0]
        except ValidationError as exc:
            rejected.append((index, exc))
            continue
        info = count_segments(text)
        slot = max(slots.get(chosen.pk) or now, now)
        if (slot - now).total_seconds() > settings.MESSAGING_SENDER_MAX_QUEUE_SECONDS:
            rejected.append((index, _queue_full(chosen, slot, now)))
            continue
        slots[chosen.pk] = slot + timedelta(seconds=info.segments / _rate(chosen.toll_free))
        # The destination's sender from now on, in the profile the message records (a `from` number's own profile).
        last[(chosen.profile_id, to) if request.from_ else key] = chosen.phone_number_id
        taken.append((index, request, to, text, callback_url, chosen, slot, info))
    fits = _count_daily(account, now, len(taken))  # after the slots: a refused message must not count
    rejected.extend((item[0], _daily_limit_reached()) for item in taken[fits:])
    taken = taken[:fits]
    # The slots the accepted messages took; a refused message's slot is given back (only a tail is refused).
    ends: dict[int, datetime] = {}
    for *_, chosen, slot, info in taken:
        ends[chosen.pk] = slot + timedelta(seconds=info.segments / _rate(chosen.toll_free))
    _set_slots(ends)
    messages, stubs = [], {}
    for _, request, to, text, callback_url, chosen, slot, info in taken:
        enabled = chosen
        if isinstance(chosen, _Candidate):
            enabled = stubs.get(chosen.pk) or stubs.setdefault(chosen.pk, _stub(request.profile, chosen))
        messages.append(_new_message(account, enabled, to, text, info, callback_url, slot, now))
    _insert(messages)
    _notify_many([(message, Message.Status.QUEUED) for message in messages], now)
    delays = [(message.pk, max((message.send_after - now).total_seconds(), 0.0)) for message in messages]
    transaction.on_commit(lambda: _kick_many(delays))
    return [(item[0], message) for item, message in zip(taken, messages, strict=True)]


def _sender_gone(account: Account | int, from_: str) -> ValidationError:
    """The error a send from `from_` gets now that its SMS was turned off (or on again, anew) meanwhile."""
    try:
        _sender_from_number(account, from_)
    except ValidationError as exc:
        return exc
    return ValidationError(
        {"from": ValidationError(f"SMS on {from_} was changed while this batch waited: send again.", "sms_not_enabled")}
    )


def _insert(messages: list[Message]) -> None:
    """Insert new messages: one INSERT ... SELECT FROM unnest(<a list per column>) RETURNING id on PostgreSQL.

    No full_clean(): every value was produced or checked before, and its unique checks would cost a query per
    message on the hottest path; the database's constraints still hold. Not save() or bulk_create(): compiling
    their INSERT, converting every value and interpolating them into the SQL cost more CPU than the rest of
    accepting a message. Here the statement's text is the same whatever the number of rows (prepared once per
    connection) and each column travels as one array.
    """
    if connection.vendor != "postgresql":
        Message.objects.bulk_create(messages)
        return
    from django.core.serializers.json import DjangoJSONEncoder
    from django.db.models import JSONField

    columns = []
    for field in _insert_fields():
        values = [field.pre_save(message, True) for message in messages]
        if isinstance(field, JSONField):  # every other column of a message is a value psycopg adapts as it is
            values = [None if value is None else json.dumps(value, cls=DjangoJSONEncoder) for value in values]
        columns.append(values)
    with hot_cursor(connection) as cursor:
        hot_execute(cursor, _insert_sql(), columns)
        ids = cursor.fetchall()
    for message, (pk,) in zip(messages, ids, strict=True):  # RETURNING gives the rows in the arrays' order
        message.pk = pk
        message._state.adding = False
        message._state.db = connection.alias


@functools.cache
def _insert_fields() -> list:
    return [field for field in Message._meta.concrete_fields if not field.primary_key]


@functools.cache
def _insert_sql() -> str:
    fields = _insert_fields()
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in fields)
    return f"INSERT INTO {Message._meta.db_table} ({columns}) SELECT * FROM unnest({arrays}) RETURNING id"  # noqa: S608


def _set_slots(slots: dict[int, datetime]) -> None:
    """Write several senders' next free slots: one UPDATE ... FROM (VALUES ...) on PostgreSQL."""
    if not slots:
        return
    if connection.vendor != "postgresql":
        for pk, slot in slots.items():
            MessagingNumber.objects.filter(pk=pk).update(next_slot_at=slot)
        return
    table = MessagingNumber._meta.db_table
    rows = ", ".join(["(%s, %s)"] * len(slots))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS n SET next_slot_at = v.slot::timestamptz "  # noqa: S608 - our table
            f"FROM (VALUES {rows}) AS v(id, slot) WHERE n.id = v.id::bigint",
            [value for pk in sorted(slots) for value in (pk, slots[pk])],
        )


# Batch messages due later share kicks: one per this many seconds of slots (a publish costs more than an accept).
KICK_BUCKET_SECONDS = 0.1


def _kick_many(delays: list[tuple[int, float]]) -> None:
    due = next((pk for pk, delay in delays if delay <= 0.001), None)
    if due is not None:
        _kick(due, 0.0)
    later: dict[int, tuple[float, int]] = {}
    for pk, delay in delays:
        if 0.001 < delay <= KICK_HORIZON_SECONDS:
            bucket = math.ceil(delay / KICK_BUCKET_SECONDS)
            later[bucket] = max(later.get(bucket, (0.0, 0)), (delay, pk))
    for delay, pk in later.values():  # the latest of each bucket: the others are due by then, and sent with it
        _kick(pk, delay)


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
        # A STOP that committed after a message's accept checked for it (and so could not see it to fail it) stops it
        # here. Auto-replies go regardless: the STOP's own confirmation is one of them.
        blocked = _opted_out(messages)
        for message in messages:
            if message.pk in blocked:
                _record(message, Message.Status.FAILED, now, "opted_out", OPTED_OUT_TEXT)
            else:
                _record(message, Message.Status.SENDING, now)
            message.updated_at = now
        _save_all(messages)
        _notify_many([(message, message.status) for message in messages], now)
    outcomes = [Message.Status.FAILED.value] * len(blocked)
    messages = [message for message in messages if message.pk not in blocked]
    if not messages:
        return outcomes
    carrier = get_carrier()
    try:
        results = carrier.submit_many(messages)
    except Exception:
        logger.exception("carrier %s failed on %d messages", carrier.name, len(messages))
        results = [SubmitResult(False, error_code="carrier_error", error_text="The carrier adapter failed.")] * len(
            messages
        )
    by_pk = {message.pk: result for message, result in zip(messages, results, strict=True)}
    with transaction.atomic():
        later = timezone.now()
        # A receipt may have been faster and already counted one sent: it is left as it is. The others are still as
        # this worker wrote them (only it moves a message on from `sending`), so their rows are locked and the
        # objects in hand recorded, rather than loaded again with their account and profile.
        still = set(
            Message.objects.select_for_update()
            .filter(pk__in=list(by_pk), status=Message.Status.SENDING)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        current = sorted((message for message in messages if message.pk in still), key=lambda message: message.pk)
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
        _health(failed=[message.phone_number_id for message in failed], now=later)
    return outcomes or ["gone"]


OPTED_OUT_TEXT = "The destination opted out (texted STOP) before it was sent."


def _opted_out(messages: list[Message]) -> set[int]:
    """The messages (pks) whose destination has opted out of their account's messages, auto-replies aside."""
    wanted = {(message.account_id, message.to_number) for message in messages if not message.auto_reply}
    if not wanted:
        return set()
    found = set(
        OptOut.objects.filter(
            account_id__in={account for account, _ in wanted}, number__in={number for _, number in wanted}
        ).values_list("account_id", "number")
    )
    return {
        message.pk
        for message in messages
        if not message.auto_reply and (message.account_id, message.to_number) in found
    }


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


def _health(*, now: datetime, ok: list[int | None] = (), failed: list[int | None] = ()) -> None:
    """Record how senders (phone number ids) did: a delivered message resets their failure count, a failed one adds
    to it (for `skip_unhealthy`). Messages received, or from a number since released, have none.

    The rows that change are locked first in primary-key order: two workers updating the same senders in different
    orders (receipts and submits for messages of several numbers) would otherwise deadlock.
    """
    from collections import Counter

    from django.db.models import F, Q

    ok = {pk for pk in ok if pk is not None}
    failures = Counter(pk for pk in failed if pk is not None)
    if not ok and not failures:
        return
    changing = Q(phone_number_id__in=list(failures)) | Q(phone_number_id__in=list(ok), consecutive_failures__gt=0)
    locked = list(
        MessagingNumber.objects.select_for_update().filter(changing).order_by("pk").values_list("pk", "phone_number_id")
    )
    if ok:
        reset = [pk for pk, phone_number_id in locked if phone_number_id in ok]
        MessagingNumber.objects.filter(pk__in=reset, consecutive_failures__gt=0).update(consecutive_failures=0)
    by_count: dict[int, list[int]] = {}
    for pk, phone_number_id in locked:
        if failures.get(phone_number_id):
            by_count.setdefault(failures[phone_number_id], []).append(pk)
    for count, pks in by_count.items():
        MessagingNumber.objects.filter(pk__in=pks).update(
            consecutive_failures=F("consecutive_failures") + count, last_failure_at=now
        )


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
    _health(ok=good, failed=[message.phone_number_id for message in bad], now=now)
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

"""The websocket event stream (`/ws/events`): authentication, subscriptions, resume, and waking consumers.

The database is the source of truth and the channel layer only says "look again". After a transaction that
wrote events commits, `notify_stream` sends one message to the account's group; in each web process one Hub
is the group's member and wakes that process's connections of the account in memory. Each connection keeps a
cursor, the integer id of the last event it considered, and when woken (or every STREAM_POLL_SECONDS, which is
what carries events across processes on the in-process channel layer, and covers a lost wake-up on Redis)
reads the next batch of the account's events after the cursor, keeps those its subscriptions match, and sends
them; connections of one account at the same cursor share one read. The next batch is read only once the
previous one was sent, so a connection holds at most one batch in memory; a client that stops reading (a send
does not complete within STREAM_SEND_TIMEOUT_SECONDS) or that falls more than STREAM_MAX_LAG events behind the
live stream is closed with 4008 and resumes from its last event id.

Protocol (JSON text frames):
  client -> {"type": "auth", "payload": "<API key or token>", "last_event_id": "<optional event id>",
             "subscriptions": [<optional subscribe bodies, applied before any event is sent>]}
            {"type": "subscribe", "event_types": ["call.*"], "filters": {"number": "+1...", "app": "<id>",
             "call": "<id>"}}
            {"type": "unsubscribe", "subscription": "<id from subscribed>"}
  server -> {"type": "auth", "message": "WSS connection <id>@<ip> - success auth <who>", "account": {...}}
            {"type": "subscribed", "subscription": "<id>", "event_types": [...], "filters": {...}}
            {"type": "unsubscribed", "subscription": "<id>"}
            {"type": "event", "event": <the same body a JSON webhook receives>}
            {"type": "heartbeat"}
            {"type": "error", "message": "...", "fields": {...}}
Close codes: 4001 authentication failed, timed out or credential no longer valid; 4003 account suspended;
4008 slow consumer; 4400 malformed message; 4410 last_event_id unknown or past retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import os
import secrets
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from asgiref.sync import async_to_sync
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import DEFAULT_CHANNEL_LAYER, InMemoryChannelLayer, channel_layers, get_channel_layer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, connections, transaction
from django.utils import timezone

from telephony import event_types as catalogue
from telephony.models import Event, EventSubscription
from tenants.credentials import find_api_key, looks_like_api_key, read_auth_token
from tenants.models import Account, ApiKey

logger = logging.getLogger(__name__)

CLOSE_AUTH_FAILED = 4001
CLOSE_SUSPENDED = 4003
CLOSE_SLOW_CONSUMER = 4008
CLOSE_BAD_MESSAGE = 4400
CLOSE_RESUME_UNAVAILABLE = 4410
SLOW_CONSUMER_REASON = "slow consumer: reconnect with your last event id"

MAX_MESSAGE_CHARS = 64 * 1024
MAX_SOCKET_SUBSCRIPTIONS = 50
# How often a connection re-reads the account's API subscriptions and re-checks its credential (a revoked key
# or a suspended account ends the stream within this long); a change through the API also wakes it at once.
REFRESH_SECONDS = 15.0
# PostgreSQL hands out ids when rows are inserted, not when they commit, so an event can become visible after
# one with a higher id was already sent. For this long after the cursor passes an id range, a connection also
# looks for ids in it that it has not seen (SQLite commits one writer at a time, in id order, and needs none).
LATE_COMMIT_WINDOW_SECONDS = 10.0
LATE_COMMIT_CHECK_SECONDS = 0.25
LATE_COMMIT_MAX_IDS = 20_000
# How long a close frame may wait behind data the client has not read yet. A client that reads again within this
# long learns why it was closed (4008); one that does not has its TCP connection closed without it.
CLOSE_WAIT_SECONDS = 5.0


def group_name(account_id: int) -> str:
    return f"events.account.{account_id}"


# --- Waking consumers (called by the services, after commit) ---------------------------------------------


async def _group_send(account_id: int, message_type: str, layer=None) -> None:
    layer = layer or get_channel_layer()
    if layer is not None:
        # Bounded: a Redis outage must not hold up the request that committed; the poll fallback delivers.
        message = {"type": message_type, "account": account_id}
        await asyncio.wait_for(layer.group_send(group_name(account_id), message), timeout=2)


class _Waker:
    """Sends wake-ups from one background thread per process, with one event loop that lives as long as it.

    Committing code only drops the account into a set (microseconds); bursts of commits for one account
    become one wake-up. Building an event loop per commit (async_to_sync) cost milliseconds each. A wake-up
    lost with a dying process is covered by the consumers' poll, like any other lost wake-up.
    """

    def __init__(self) -> None:
        self._pending: set[tuple[int, str]] = set()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def wake(self, account_id: int, message_type: str) -> None:
        with self._lock:
            self._pending.add((account_id, message_type))
            # A forked child (Celery prefork) inherits the object but not the thread: start its own.
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="event-stream-waker", daemon=True)
                self._thread.start()
        self._ready.set()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        source = own = None
        while True:
            self._ready.wait()
            self._ready.clear()
            with self._lock:
                batch, self._pending = self._pending, set()
            # A network layer keeps its connections per event loop, so this thread's loop gets an instance of
            # its own, made again whenever the configured layer changes (settings can change in tests).
            configured = get_channel_layer()
            if configured is not source:
                source, own = configured, channel_layers.make_backend(DEFAULT_CHANNEL_LAYER) if configured else None
            for account_id, message_type in batch:
                try:
                    loop.run_until_complete(_group_send(account_id, message_type, own))
                except Exception:  # the stream's poll fallback covers a lost wake-up
                    logger.warning("Could not wake the event stream of account %s", account_id, exc_info=True)


_waker = _Waker()


def notify_stream(account_id: int, message_type: str = "events.available") -> None:
    """Tell the account's websocket connections to look for new events. Never raises, never blocks."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    try:
        if loop is not None:
            # Called from async code (not through sync_to_async): schedule it on that loop.
            loop.create_task(_group_send(account_id, message_type))
        elif isinstance(get_channel_layer(), InMemoryChannelLayer):
            # In-process layer (the embedded default): it must be woken on the consumers' own loop, which
            # async_to_sync finds; no network round trip, so the bridge's cost does not matter here.
            async_to_sync(_group_send)(account_id, message_type)
        else:
            _waker.wake(account_id, message_type)
    except Exception:  # the stream's poll fallback covers a lost wake-up
        logger.warning("Could not wake the event stream of account %s", account_id, exc_info=True)


class _StreamNotice:
    """An on-commit callback waking one account's connections; one per account per transaction."""

    __slots__ = ("account_id", "message_type")

    def __init__(self, account_id: int, message_type: str) -> None:
        self.account_id = account_id
        self.message_type = message_type

    def __call__(self) -> None:
        notify_stream(self.account_id, self.message_type)


def notify_stream_on_commit(account_id: int, message_type: str = "events.available") -> None:
    """Wake the account's connections once the current transaction commits (never from inside it)."""
    if connection.in_atomic_block and any(
        isinstance(callback, _StreamNotice)
        and callback.account_id == account_id
        and callback.message_type == message_type
        for _, callback, _ in connection.run_on_commit
    ):
        return
    transaction.on_commit(_StreamNotice(account_id, message_type))


# --- Which events a subscription matches -------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One subscription as the stream applies it: type patterns, then every filter that is set."""

    event_types: tuple[str, ...]
    number: str = ""
    app: str = ""
    call: str = ""
    expires_at: datetime | None = None

    @classmethod
    def from_subscription(cls, subscription: EventSubscription) -> Rule:
        return cls(
            event_types=tuple(subscription.event_types),
            number=subscription.filter_number,
            app=str(subscription.filter_app or ""),
            call=str(subscription.filter_call or ""),
            expires_at=subscription.expires_at,
        )

    def matches(self, event: Event, refs: References, now: datetime) -> bool:
        if self.expires_at is not None and self.expires_at <= now:
            return False
        if not catalogue.matches_any(self.event_types, event.type):
            return False
        return (
            (not self.number or self.number in refs.numbers)
            and (not self.app or self.app in refs.apps)
            and (not self.call or self.call in refs.calls)
        )


@dataclass
class References:
    """The numbers, apps and calls an event is about or mentions, which is what filters compare against.

    - call: the event's object is the call (`object.type == "call"`), or `data` names it as `call_id`,
      `parent_call_id` or `bridged_call_id` (call, call-flow and recording events).
    - app: the event's object is the call-control app, or `data.call_control_app_id` names it (calls), or a
      provisioning change's `data.before`/`data.after` sets `call_control_app` to it (a number's voice target).
    - number: `data.from`, `data.to` or `data.number` is it (calls, messages), or a provisioning change is
      about that number (`data.object.repr`) or sets `number` in `data.before`/`data.after`.
    """

    numbers: set[str] = field(default_factory=set)
    apps: set[str] = field(default_factory=set)
    calls: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, event: Event) -> References:
        refs = cls()
        data = event.payload if isinstance(event.payload, dict) else {}
        refs._object(event.object_type, event.object_id)
        obj = data.get("object")
        if isinstance(obj, dict):
            refs._object(obj.get("type"), obj.get("id"))
            if obj.get("type") == "number":
                refs._add(refs.numbers, obj.get("repr"))
        for key in ("call_id", "parent_call_id", "bridged_call_id"):
            refs._add(refs.calls, data.get(key))
        refs._add(refs.apps, data.get("call_control_app_id"))
        for key in ("from", "to", "number"):
            refs._add(refs.numbers, data.get(key))
        for side in ("before", "after"):
            change = data.get(side)
            if isinstance(change, dict):
                refs._add(refs.apps, change.get("call_control_app"))
                refs._add(refs.numbers, change.get("number"))
        return refs

    def _object(self, object_type, object_id) -> None:
        if object_type == "call":
            self._add(self.calls, object_id)
        elif object_type == "call_control_app":
            self._add(self.apps, object_id)

    @staticmethod
    def _add(target: set[str], value) -> None:
        if isinstance(value, str) and value:
            target.add(value.lower() if "-" in value else value)


def rules_match(rules, event: Event, now: datetime) -> bool:
    refs: References | None = None
    for rule in rules:
        if rule.expires_at is not None and rule.expires_at <= now:
            continue
        if not catalogue.matches_any(rule.event_types, event.type):
            continue
        if not (rule.number or rule.app or rule.call):
            return True
        if refs is None:
            refs = References.of(event)
        if rule.matches(event, refs, now):
            return True
    return False


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def event_body(event: Event, account: Account) -> dict:
    """The body a JSON webhook receives for this event (telephony/delivery.py envelope), so one parser fits both."""
    return {
        "id": str(event.public_id),
        "type": event.type,
        "occurred_at": _iso(event.occurred_at),
        "account": str(account.public_id),
        "object": {"type": event.object_type, "id": event.object_id},
        "sequence": event.sequence,
        "data": event.payload,
    }


# --- Database work, run in worker threads ------------------------------------------------------------------


class AuthFailed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    account: Account
    label: str
    kind: str  # "api_key" or "token"
    api_key_id: int | None = None
    token: str = ""


def authenticate(secret: str) -> Principal:
    """The account an API key or login token acts for, as the REST API would decide it."""
    if looks_like_api_key(secret):
        key = find_api_key(secret)
        if key is None or not key.is_usable():
            raise AuthFailed(CLOSE_AUTH_FAILED, "authentication failed: unknown, revoked or expired API key")
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        principal = Principal(account=key.account, label=key.name, kind="api_key", api_key_id=key.pk)
    else:
        claims = read_auth_token(secret)
        if claims is None:
            raise AuthFailed(CLOSE_AUTH_FAILED, "authentication failed: invalid or expired token")
        principal = Principal(account=claims.account, label=claims.user.email, kind="token", token=secret)
    if not principal.account.is_active:
        raise AuthFailed(CLOSE_SUSPENDED, "account suspended")
    return principal


def recheck(principal: Principal) -> None:
    """Raise AuthFailed if the credential was revoked or expired, or the account suspended, since the auth."""
    if principal.kind == "api_key":
        key = ApiKey.objects.select_related("account").filter(pk=principal.api_key_id).first()
        if key is None or not key.is_usable():
            raise AuthFailed(CLOSE_AUTH_FAILED, "credential revoked or expired")
        account = key.account
    else:
        claims = read_auth_token(principal.token)
        if claims is None or claims.account.pk != principal.account.pk:
            raise AuthFailed(CLOSE_AUTH_FAILED, "credential revoked or expired")
        account = claims.account
    if not account.is_active:
        raise AuthFailed(CLOSE_SUSPENDED, "account suspended")


def api_rules(account_id: int) -> list[Rule]:
    now = timezone.now()
    subscriptions = EventSubscription.objects.filter(account_id=account_id, is_active=True).exclude(expires_at__lte=now)
    return [Rule.from_subscription(subscription) for subscription in subscriptions]


def head_position(account_id: int) -> int:
    return Event.objects.filter(account_id=account_id).order_by("-id").values_list("id", flat=True).first() or 0


def resume_position(account_id: int, public_id: str) -> int | None:
    from tenants.scoping import parse_public_id

    parsed = parse_public_id(public_id)
    if parsed is None:
        return None
    return Event.objects.filter(account_id=account_id, public_id=parsed).values_list("id", flat=True).first()


def events_after(account_id: int, cursor: int, limit: int) -> list[Event]:
    return list(Event.objects.filter(account_id=account_id, id__gt=cursor).order_by("id")[:limit])


def lag_exceeds(account_id: int, cursor: int, max_lag: int) -> bool:
    return bool(
        Event.objects.filter(account_id=account_id, id__gt=cursor)
        .order_by("id")
        .values_list("id", flat=True)[max_lag : max_lag + 1]
    )


def ids_between(account_id: int, floor: int, cursor: int) -> list[int]:
    """The account's event ids in (floor, cursor]: what the late-commit check compares a connection's view with."""
    ids = Event.objects.filter(account_id=account_id, id__gt=floor, id__lte=cursor).order_by("id")
    return list(ids.values_list("id", flat=True)[:LATE_COMMIT_MAX_IDS])


def events_by_id(account_id: int, ids: list[int]) -> list[Event]:
    return list(Event.objects.filter(account_id=account_id, id__in=ids).order_by("id"))


def socket_rule(account: Account, body: dict) -> tuple[Rule, dict]:
    from telephony.services.stream import clean_rule

    cleaned = clean_rule(account=account, event_types=body.get("event_types"), filters=body.get("filters"))
    rule = Rule(
        event_types=tuple(cleaned["event_types"]),
        number=cleaned["filter_number"],
        app=str(cleaned["filter_app"] or ""),
        call=str(cleaned["filter_call"] or ""),
    )
    filters = {"number": rule.number or None, "app": rule.app or None, "call": rule.call or None}
    return rule, filters


# The stream's database work runs on its own few threads: connections poll independently (funnelling them all
# through the one thread Django's sync code otherwise shares would serialise the stream), and a small pool caps
# the database connections the stream holds per process however many sockets are open.
DB_THREADS = 8
_db_executor = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="event-stream-db")


def _in_thread(function):
    return database_sync_to_async(function, thread_sensitive=False, executor=_db_executor)


# Reads in flight, by what they read: the connections of one account are woken together and mostly stand at the
# same cursor, so one query serves them all instead of one query per connection.
_reads: dict[tuple, tuple[float, asyncio.Future]] = {}


async def shared_read(function, *args, started_after: float):
    """`function(*args)` in a database thread, sharing a call already in flight if it started after `started_after`.

    A read that started before the caller was woken might not see the event that woke it, so it is not shared.
    """
    loop = asyncio.get_running_loop()
    key = (function.__name__, *args)
    entry = _reads.get(key)
    if entry is None or entry[0] < started_after or entry[1].get_loop() is not loop:
        entry = (loop.time(), asyncio.ensure_future(_in_thread(function)(*args)))
        _reads[key] = entry

        def forget(_future, key=key, entry=entry) -> None:
            if _reads.get(key) is entry:
                del _reads[key]

        entry[1].add_done_callback(forget)
    return await asyncio.shield(entry[1])


class LateWindow:
    """One account's late-commit window in this process: how far back its connections look for late events.

    The floor is shared by the account's connections (rather than each keeping its own) so that those at the
    same cursor ask the database the same question, once.
    """

    def __init__(self) -> None:
        self.floor = 0
        self.checkpoints: deque[tuple[float, int]] = deque()

    def advance(self, cursor: int, now: float) -> int:
        if cursor > (self.checkpoints[-1][1] if self.checkpoints else self.floor):
            self.checkpoints.append((now, cursor))
        while self.checkpoints and self.checkpoints[0][0] < now - LATE_COMMIT_WINDOW_SECONDS:
            self.floor = self.checkpoints.popleft()[1]
        if not self.floor and self.checkpoints:
            self.floor = self.checkpoints[0][1]  # a new window starts where the first connection did
        return self.floor


# --- One listener per process -------------------------------------------------------------------------------


class Hub:
    """The process's one member of each account's group: a wake-up costs one channel-layer message per process,
    not one per connection, and is handed to the process's connections of that account in memory."""

    # Channel-layer group memberships expire (channels_redis: after a day); re-joining now and then keeps a
    # long-lived process in its groups.
    REJOIN_SECONDS = 600.0

    def __init__(self, layer) -> None:
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.channel = ""
        self.members: dict[int, set[EventStreamConsumer]] = {}
        self.windows: dict[int, LateWindow] = {}
        self.task: asyncio.Task | None = None
        self.rejoin_task: asyncio.Task | None = None
        self.lock = asyncio.Lock()

    async def join(self, account_id: int, consumer: EventStreamConsumer) -> None:
        async with self.lock:
            if self.task is None:
                self.channel = await self.layer.new_channel("events-hub.")
                self.task = asyncio.create_task(self._listen())
                self.rejoin_task = asyncio.create_task(self._rejoin())
            if account_id not in self.members:
                self.members[account_id] = set()
                self.windows[account_id] = LateWindow()
                try:
                    await asyncio.wait_for(self.layer.group_add(group_name(account_id), self.channel), timeout=2)
                except Exception:
                    # Redis unreachable: the connection streams on its poll alone until the next re-join.
                    logger.warning("Event stream hub could not join account %s", account_id, exc_info=True)
            self.members[account_id].add(consumer)

    async def leave(self, account_id: int, consumer: EventStreamConsumer) -> None:
        async with self.lock:
            members = self.members.get(account_id)
            if members is None:
                return
            members.discard(consumer)
            if not members:
                del self.members[account_id]
                del self.windows[account_id]
                with contextlib.suppress(Exception):  # a stale entry only costs a dropped message later
                    await asyncio.wait_for(self.layer.group_discard(group_name(account_id), self.channel), 2)

    async def _listen(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A Redis outage: the connections' polls carry on meanwhile.
                logger.warning("Event stream hub could not receive; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            now = self.loop.time()
            for consumer in list(self.members.get(message.get("account"), ())):
                consumer.notice(message["type"], now)

    async def _rejoin(self) -> None:
        # Also restores the memberships a restarted Redis lost.
        while True:
            await asyncio.sleep(self.REJOIN_SECONDS)
            for account_id in list(self.members):
                try:
                    await asyncio.wait_for(self.layer.group_add(group_name(account_id), self.channel), timeout=2)
                except Exception:
                    logger.warning("Event stream hub could not re-join account %s", account_id, exc_info=True)


_hubs: dict[int, Hub] = {}


async def close_hub(timeout: float = 5.0) -> list[asyncio.Task]:
    """Stop the running event loop's hub: its listener and re-join tasks. For an event loop about to end (a test's,
    a server shutting down), whose closing would otherwise wait on a channel-layer read; the tasks that did not end
    within `timeout` are returned."""
    hub = _hubs.pop(id(asyncio.get_running_loop()), None)
    tasks = [task for task in (hub.task, hub.rejoin_task) if task is not None] if hub else []
    for task in tasks:
        task.cancel()
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    return list(pending)


def hub_for(layer) -> Hub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(id(loop))
    if hub is None or hub.loop is not loop or hub.layer is not layer:
        hub = _hubs[id(loop)] = Hub(layer)
    return hub


# --- The consumer -------------------------------------------------------------------------------------------


class SlowConsumer(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected; its websocket.disconnect message ends the consumer."""


class EventStreamConsumer(AsyncWebsocketConsumer):
    """One websocket connection: authenticates, then streams the account's subscribed events from a cursor."""

    # No channel of its own: the process's hub receives wake-ups for every connection, so a connection costs
    # the channel layer nothing (on Redis, no blocking read per socket).
    channel_layer_alias = "event-stream: none"

    async def __call__(self, scope, receive, send):
        self.stopped = asyncio.get_running_loop().create_future()

        async def receive_until_stopped():
            # The client's next message, or the end the server decided on (after closing a slow client, whose
            # close handshake may never complete).
            incoming = asyncio.ensure_future(receive())
            await asyncio.wait({incoming, self.stopped}, return_when=asyncio.FIRST_COMPLETED)
            if incoming.done():
                return incoming.result()
            incoming.cancel()
            return {"type": "stream.stop"}

        await super().__call__(scope, receive_until_stopped, send)

    async def connect(self) -> None:
        self.connection_id = secrets.token_hex(4)
        self.principal: Principal | None = None
        self.socket_rules: dict[str, Rule] = {}
        self.api_rules: list[Rule] = []
        self.refresh_due = 0.0
        self.subscription_ids = itertools.count(1)
        self.cursor = 0
        self.start = 0
        self.floor = 0
        self.seen: set[int] = set()
        self.window: LateWindow | None = None
        self.started = False  # a connection with nothing subscribed yet holds its cursor (see _has_rules)
        self.live = False
        self.closing = False
        self.wake = asyncio.Event()
        self.woken_at = 0.0
        self.late_check_due = 0.0
        self.late_check_pending = False
        self.send_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task] = set()
        self.track_late_commits = connections["default"].vendor == "postgresql"
        await self.accept()
        self._spawn(self._auth_deadline())

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def disconnect(self, code) -> None:
        await self._cleanup()

    async def _cleanup(self) -> None:
        self.closing = True  # the pump stops at its next turn even if its cancellation were lost
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()
        if self.principal is not None:
            try:
                await hub_for(get_channel_layer()).leave(self.principal.account.pk, self)
            except Exception:  # the group entry expires by itself
                logger.debug("leaving the hub failed", exc_info=True)

    async def dispatch(self, message) -> None:
        # Channels closes stale database connections before every handler, through the one thread its sync
        # code shares; these handlers touch the database only through _in_thread, which does its own closing,
        # so that hop would only queue every wake-up of every connection behind one thread.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def stream_stop(self, message) -> None:
        """Sent to itself after a server-side close, so the connection ends even if the client never answers."""
        await self._cleanup()
        raise StopConsumer()

    # --- Sending and closing ---

    async def _send_json(self, payload: dict) -> None:
        await self._send_text(json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":")))

    async def _send_text(self, text: str) -> None:
        try:
            async with asyncio.timeout(settings.STREAM_SEND_TIMEOUT_SECONDS), self.send_lock:
                await self.send(text_data=text)
        except TimeoutError as exc:
            raise SlowConsumer from exc
        except OSError as exc:  # the client went away mid-send (uvicorn's ClientDisconnected is one)
            raise ClientGone from exc

    async def _close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        try:
            await asyncio.wait_for(self.close(code=code, reason=reason[:120]), timeout=CLOSE_WAIT_SECONDS)
        except Exception:  # already gone, or not reading: either way we are done
            logger.debug("close did not complete", exc_info=True)
        if not self.stopped.done():
            self.stopped.set_result(None)

    async def _error(self, message: str, fields: dict | None = None) -> None:
        await self._send_json({"type": "error", "message": message, "fields": fields or {}})

    # --- Client messages ---

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.closing:
            return
        try:
            await self._handle(text_data, bytes_data)
        except SlowConsumer:
            await self._close(CLOSE_SLOW_CONSUMER, SLOW_CONSUMER_REASON)
        except ClientGone:
            pass

    async def _handle(self, text_data, bytes_data) -> None:
        if text_data is None or len(text_data) > MAX_MESSAGE_CHARS:
            await self._bad_message("send JSON text frames of at most 64 KB")
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            await self._bad_message("not JSON")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if self.principal is None:
            if kind != "auth":
                await self._close(CLOSE_AUTH_FAILED, 'authenticate first: {"type": "auth", "payload": "<key>"}')
                return
            await self._authenticate(message)
            return
        if kind == "subscribe":
            await self._subscribe(message)
        elif kind == "unsubscribe":
            await self._unsubscribe(message)
        elif kind == "auth":
            await self._error("Already authenticated.")
        elif kind == "heartbeat":
            pass  # clients may keep their side of a proxy warm too
        else:
            await self._bad_message(f"unknown message type {kind!r}")

    async def _bad_message(self, detail: str) -> None:
        try:
            await self._error(f"Malformed message: {detail}.")
        finally:
            await self._close(CLOSE_BAD_MESSAGE, f"bad message: {detail}"[:120])

    async def _authenticate(self, message: dict) -> None:
        secret = message.get("payload")
        last_event_id = message.get("last_event_id")
        initial = message.get("subscriptions") or []
        if not isinstance(secret, str) or not secret:
            await self._close(CLOSE_AUTH_FAILED, "authentication failed: payload must be an API key or token")
            return
        if last_event_id is not None and not isinstance(last_event_id, str):
            await self._bad_message("last_event_id must be an event id")
            return
        if not isinstance(initial, list) or not all(isinstance(item, dict) for item in initial):
            await self._bad_message("subscriptions must be a list of subscribe bodies")
            return
        try:
            principal = await _in_thread(authenticate)(secret)
        except AuthFailed as exc:
            await self._close(exc.code, exc.reason)
            return
        account_id = principal.account.pk
        # Joined before the starting position is read, so no wake-up between the two is missed.
        await hub_for(get_channel_layer()).join(account_id, self)
        self.principal = principal
        if last_event_id:
            position = await _in_thread(resume_position)(account_id, last_event_id)
            if position is None:
                await self._close(
                    CLOSE_RESUME_UNAVAILABLE, "last_event_id is unknown or past retention; reconnect without it"
                )
                return
        else:
            position = await _in_thread(head_position)(account_id)
        self.cursor = self.start = self.floor = position
        self.window = hub_for(get_channel_layer()).windows.get(account_id) or LateWindow()
        self.window.advance(position, asyncio.get_running_loop().time())
        self.api_rules = await _in_thread(api_rules)(account_id)
        self.refresh_due = asyncio.get_running_loop().time() + REFRESH_SECONDS
        client = self.scope.get("client") or ("unknown", 0)
        await self._send_json(
            {
                "type": "auth",
                "message": f"WSS connection {self.connection_id}@{client[0]} - success auth {principal.label}",
                "account": {"id": str(principal.account.public_id), "name": principal.account.name},
                "credential": {"type": principal.kind, "name": principal.label},
            }
        )
        for body in initial[:MAX_SOCKET_SUBSCRIPTIONS]:
            await self._subscribe(body)
        self._spawn(self._pump())

    async def _subscribe(self, message: dict) -> None:
        if len(self.socket_rules) >= MAX_SOCKET_SUBSCRIPTIONS:
            await self._error(f"At most {MAX_SOCKET_SUBSCRIPTIONS} subscriptions per connection.")
            return
        try:
            rule, filters = await _in_thread(socket_rule)(self.principal.account, message)
        except ValidationError as exc:
            fields = {key: [str(m) for m in value] for key, value in exc.message_dict.items()}
            await self._error("Invalid subscription: " + "; ".join(f"{k}: {v[0]}" for k, v in fields.items()), fields)
            return
        subscription_id = f"ws-{next(self.subscription_ids)}"
        self.socket_rules[subscription_id] = rule
        await self._send_json(
            {
                "type": "subscribed",
                "subscription": subscription_id,
                "event_types": list(rule.event_types),
                "filters": filters,
            }
        )
        self.wake.set()

    async def _unsubscribe(self, message: dict) -> None:
        subscription_id = message.get("subscription")
        if not isinstance(subscription_id, str) or self.socket_rules.pop(subscription_id, None) is None:
            await self._error(
                "No such subscription on this connection (API subscriptions are removed through the API).",
                {"subscription": ["Not found."]},
            )
            return
        await self._send_json({"type": "unsubscribed", "subscription": subscription_id})

    # --- Channel-layer messages ---

    def notice(self, message_type: str, at: float) -> None:
        """A wake-up from the hub: new events ("events.available"), or changed API subscriptions."""
        if message_type == "subscriptions.changed":
            self.refresh_due = 0.0
        self.woken_at = at
        self.wake.set()

    # --- Timers ---

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(settings.STREAM_AUTH_TIMEOUT_SECONDS)
        if self.principal is None:
            await self._close(CLOSE_AUTH_FAILED, "authentication timeout: send an auth message first")

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        heartbeat_due = loop.time() + settings.STREAM_HEARTBEAT_SECONDS
        try:
            while not self.closing:
                now = loop.time()
                if now >= self.refresh_due:
                    await _in_thread(recheck)(self.principal)
                    self.api_rules = await _in_thread(api_rules)(self.principal.account.pk)
                    self.refresh_due = now + REFRESH_SECONDS
                if now >= heartbeat_due:
                    await self._send_json({"type": "heartbeat"})
                    heartbeat_due = now + settings.STREAM_HEARTBEAT_SECONDS
                if self._has_rules():
                    await self._drain()
                wait_until = min(loop.time() + settings.STREAM_POLL_SECONDS, heartbeat_due)
                if self.late_check_pending:
                    wait_until = min(wait_until, self.late_check_due)
                timeout = max(0.0, wait_until - loop.time())
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that arrives as
                # the wake-up does, and this loop would then poll for a client long gone (and hold up a closing
                # event loop for ever).
                try:
                    async with asyncio.timeout(timeout):
                        await self.wake.wait()
                except TimeoutError:
                    # A poll: only reads from now on can be shared. A deferred late-commit check: reads from the
                    # grid time on, which every connection of the account shares.
                    self.woken_at = self.late_check_due if self.late_check_pending else loop.time()
                self.wake.clear()
        except ClientGone:
            pass
        except SlowConsumer:
            await self._close(CLOSE_SLOW_CONSUMER, SLOW_CONSUMER_REASON)
        except AuthFailed as exc:
            await self._close(exc.code, exc.reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Event stream %s failed", self.connection_id)
            await self._close(1011, "internal error; reconnect with your last event id")

    def _has_rules(self) -> bool:
        # Until its first subscription a connection keeps its starting position, so a client that resumes
        # and then subscribes (or whose API subscription appears later) still gets what it missed.
        if not self.started and (self.socket_rules or self.api_rules):
            self.started = True
        return self.started

    async def _drain(self) -> None:
        account_id = self.principal.account.pk
        batch_size = settings.STREAM_BATCH_SIZE
        while not self.closing:
            batch = await shared_read(events_after, account_id, self.cursor, batch_size, started_after=self.woken_at)
            if (
                self.live
                and len(batch) == batch_size
                and await _in_thread(lag_exceeds)(account_id, self.cursor, settings.STREAM_MAX_LAG)
            ):
                raise SlowConsumer
            for event in batch:
                await self._offer(event)
                self.cursor = event.id
            if len(batch) < batch_size:
                # Caught up: from now on the client is expected to keep pace with the live stream.
                self.live = True
                break
        if self.track_late_commits and not self.closing:
            await self._catch_late_commits(account_id)

    async def _offer(self, event: Event) -> None:
        if self.track_late_commits:
            self.seen.add(event.id)
        rules = [*self.api_rules, *self.socket_rules.values()]
        if rules_match(rules, event, timezone.now()):
            # Connections of one account share the Event objects of a shared read: serialise once for all.
            text = getattr(event, "_stream_text", None)
            if text is None:
                body = {"type": "event", "event": event_body(event, self.principal.account)}
                text = event._stream_text = json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":"))
            await self._send_text(text)

    async def _catch_late_commits(self, account_id: int) -> None:
        now = asyncio.get_running_loop().time()
        shared_floor = self.window.advance(self.cursor, now)
        # Below its start a connection has considered nothing, so it never looks there; and it remembers at most
        # LATE_COMMIT_MAX_IDS ids (an account raising thousands of events a second narrows its window).
        floor = max(shared_floor, self.start, self.floor)
        if len(self.seen) > LATE_COMMIT_MAX_IDS:
            floor = max(floor, sorted(self.seen)[-LATE_COMMIT_MAX_IDS])
        if floor > self.floor:
            self.floor = floor
            self.seen = {event_id for event_id in self.seen if event_id > floor}
        if floor >= self.cursor:
            self.late_check_pending = False
            return
        if now < self.late_check_due:
            self.late_check_pending = True
            return
        # A late commit wakes the connections like any other, so checking once per wake-up (at most every
        # LATE_COMMIT_CHECK_SECONDS) finds it without a query per event.
        # On a grid shared by every connection, so those of an account check together and share the query.
        self.late_check_due = (math.floor(now / LATE_COMMIT_CHECK_SECONDS) + 1) * LATE_COMMIT_CHECK_SECONDS
        self.late_check_pending = False
        ids = await shared_read(ids_between, account_id, shared_floor, self.cursor, started_after=self.woken_at)
        missing = [event_id for event_id in ids if event_id > floor and event_id not in self.seen]
        if missing:
            for event in await _in_thread(events_by_id)(account_id, missing):
                await self._offer(event)

"""Helpers for the event-stream tests: an in-process websocket client, and a real uvicorn server process.

In-process tests drive portal.asgi's application through Channels' WebsocketCommunicator from sync tests
(pytest-asyncio is not a dependency): `run(scenario)` runs an async scenario to the end. The consumer reads the
database from worker threads, so these tests commit their data (transactional_db).
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection, connections

from telephony import stream

if importlib.util.find_spec("daphne") is None:
    # channels.testing imports daphne for its live-server test case only; the communicator does not need it.
    _live = types.ModuleType("channels.testing.live")
    _live.ChannelsLiveServerTestCase = None
    sys.modules.setdefault("channels.testing.live", _live)

from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from portal.asgi import application
from telephony.services.events import event_emit

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 5.0


_clients: list[Client] = []


def run(scenario, *args, **kwargs):
    """Run an async scenario from a sync test; DB calls it makes through sync_to_async land in this thread.

    Every client the scenario opened is finished before the event loop goes away, so no consumer is cut off
    in the middle of a channel-layer call (on Redis that would hold the test up for the layer's poll timeout).
    """

    async def wrapped():
        try:
            return await scenario(*args, **kwargs)
        finally:
            while _clients:
                await _clients.pop().finish()
            # The loop ends with this call: its hub goes first, so that closing the loop does not wait on a
            # channel-layer read. Anything still running would hold the loop's closing up: say what it is.
            stuck = await stream.close_hub()
            current = asyncio.current_task()
            others = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
            for task in others:
                task.cancel()
            if others:
                _, still = await asyncio.wait(others, timeout=TIMEOUT)
                stuck += list(still)
            if stuck:
                report = io.StringIO()
                for task in stuck:
                    task.print_stack(file=report)
                pytest.fail(f"tasks that outlived the scenario and did not end when cancelled:\n{report.getvalue()}")

    return async_to_sync(wrapped)()


def emit(account, type="call.ringing", *, object_type="call", object_id="call-1", **payload):
    """An event committed in its own transaction, as any service would write it."""
    return event_emit(account=account, type=type, object_type=object_type, object_id=object_id, payload=payload)


aemit = sync_to_async(emit)


class Client:
    """A websocket client of /ws/events with JSON helpers; heartbeats are skipped unless asked for."""

    def __init__(self, path: str = "/ws/events") -> None:
        self.ws = WebsocketCommunicator(application, path)
        self.closed: dict | None = None
        self.finished = False
        _clients.append(self)

    async def open(self) -> Client:
        connected, _ = await self.ws.connect(timeout=TIMEOUT)
        assert connected
        return self

    async def send(self, message: dict) -> None:
        await self.ws.send_to(text_data=json.dumps(message))

    async def auth(self, secret: str, **extra) -> dict:
        await self.send({"type": "auth", "payload": secret, **extra})
        return await self.receive()

    async def receive(self, timeout: float = TIMEOUT, heartbeats: bool = False) -> dict:
        while True:
            output = await self.ws.receive_output(timeout)
            if output["type"] == "websocket.close":
                self.closed = output
                return {"type": "closed", "code": output.get("code"), "reason": output.get("reason", "")}
            message = json.loads(output["text"])
            if heartbeats or message["type"] != "heartbeat":
                return message

    async def receive_event(self, timeout: float = TIMEOUT) -> dict:
        message = await self.receive(timeout)
        assert message["type"] == "event", message
        return message["event"]

    async def receive_nothing(self, timeout: float = 1.0) -> None:
        """Nothing but heartbeats arrives within the timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0 or await self.ws.receive_nothing(timeout=left, interval=0.02):
                return
            message = await self.receive(0.1, heartbeats=True)
            assert message["type"] == "heartbeat", f"expected nothing, got {message}"

    async def subscribe(self, event_types, **filters) -> str:
        await self.send({"type": "subscribe", "event_types": event_types, "filters": filters})
        reply = await self.receive()
        assert reply["type"] == "subscribed", reply
        return reply["subscription"]

    async def close(self) -> None:
        await self.finish()

    async def finish(self) -> None:
        """Disconnect, or after the server closed the socket, let the consumer finish its own shutdown."""
        if self.finished:
            return
        self.finished = True
        if self.closed is None:
            await self.ws.disconnect(timeout=TIMEOUT)
        else:
            await self.ws.wait(timeout=TIMEOUT)


async def connected(secret: str, *, event_types=None, **auth_extra) -> Client:
    """An authenticated client, subscribed to `event_types` through the socket when given."""
    client = await Client().open()
    reply = await client.auth(secret, **auth_extra)
    assert reply["type"] == "auth", reply
    if event_types:
        await client.subscribe(event_types)
    return client


@pytest.fixture
def stream_settings(settings):
    """Short timers, so heartbeats and polls happen within a test's patience."""
    settings.STREAM_POLL_SECONDS = 0.1
    settings.STREAM_HEARTBEAT_SECONDS = 30
    settings.STREAM_AUTH_TIMEOUT_SECONDS = 5
    settings.STREAM_SEND_TIMEOUT_SECONDS = 5
    settings.STREAM_MAX_LAG = 10000
    settings.STREAM_BATCH_SIZE = 500
    yield settings
    close_stream_connections()
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        async_to_sync(layer.flush)()


def close_stream_connections() -> None:
    """Close the database connections of the consumer's threads once their queued work is done.

    They are persistent by design; left open after a test they would hold the test database open.
    """
    barrier = threading.Barrier(stream.DB_THREADS)

    def close() -> None:
        barrier.wait(timeout=10)  # one task per thread: each waits here until all threads hold one
        connections.close_all()

    for future in [stream._db_executor.submit(close) for _ in range(stream.DB_THREADS)]:
        future.result(timeout=15)


# --- A real server -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_name() -> str:
    return str(connection.settings_dict["NAME"])


test_database_name.__test__ = False  # a helper, not a test


class Server:
    """`uvicorn portal.asgi:application` in its own process, on the suite's test database."""

    def __init__(self, env: dict[str, str] | None = None, settings_module: str = "portal.settings.test") -> None:
        from django.conf import settings

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/events"
        self.log_path = settings.VAR_DIR / f"test-uvicorn-{self.port}.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings_module,
            "WORKER_TEST_DATABASE": test_database_name(),
            "VAR_DIR": str(settings.VAR_DIR),
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        return self.start()

    def start(self) -> Server:
        """Start, or start again on the same port (as after a deploy)."""
        with open(self.log_path, "a") as log:  # the child writes through its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--host", "127.0.0.1",
                 "--port", str(self.port), "--no-access-log", "--lifespan", "off"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"uvicorn did not start:\n{self.log()}")
                time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text()[-5000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def __exit__(self, *exc) -> None:
        self.stop()

"""The stream served by a real uvicorn process: events from another process arrive, and a stalled client is cut off.

With REDIS_URL set (CI) the server polls only every 30 s in the cross-process test, so an event arriving within
seconds proves the wake-up travelled through channels_redis; without it the in-process layer cannot cross
processes and the poll (STREAM_POLL_SECONDS) carries the event.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from websockets.sync.client import connect

from telephony.tasks import process_expired_number_leases
from telephony.tests.isolation_sip import make_number
from telephony.tests.stream_support import Server, emit
from tenants.tests.factories import make_api_key

pytestmark = pytest.mark.django_db(transaction=True)


def receive(ws, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if message["type"] != "heartbeat":
            return message


@pytest.mark.worker
def test_an_event_committed_by_a_celery_worker_reaches_a_socket_on_the_web_process(alice, celery_worker):
    secret, _ = make_api_key(alice.account)
    number = make_number(alice.account, "+12015550123", autorenew=True)
    number.__class__.objects.filter(pk=number.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    env = {"STREAM_POLL_SECONDS": "30"} if settings.REDIS_URL else {}

    with Server(env) as server, connect(server.ws_url, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "payload": secret, "subscriptions": [{"event_types": ["number.*"]}]}))
        assert receive(ws, 10)["type"] == "auth"
        assert receive(ws, 5)["type"] == "subscribed"
        time.sleep(0.3)  # the connection's first look at the database is behind it: only a wake-up or poll is left
        started = time.monotonic()

        process_expired_number_leases.delay()
        message = receive(ws, 20)

    assert message["type"] == "event", server.log()
    assert message["event"]["type"] == "number.renewed"
    assert message["event"]["object"]["id"] == str(number.public_id)
    if settings.REDIS_URL:
        assert time.monotonic() - started < 15, "the wake-up did not cross processes through Redis"


# --- A client that never reads --------------------------------------------------------------------------


class RawWebsocket:
    """Just enough of a websocket client to stop reading on purpose (real clients always read)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        # A small receive window: the server's sends back up after little data instead of megabytes.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_json(self, message: dict) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def read_to_the_end(self) -> tuple[int, tuple[int, str] | None]:
        """Events received, and the close code and reason; None when the connection ended without a close frame."""
        events = 0
        try:
            while True:
                opcode, body = self.frame()
                if opcode == 0x8:
                    return events, (struct.unpack("!H", body[:2])[0], body[2:].decode())
                if json.loads(body)["type"] == "event":
                    events += 1
        except (EOFError, ConnectionResetError):
            return events, None
        finally:
            self.sock.close()

    def frame(self) -> tuple[int, bytes]:
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read(8))[0]
        return first & 0x0F, self._read(length)


def test_a_client_that_stops_reading_is_closed_instead_of_buffered(alice):
    """Two stalled clients: one reads again within CLOSE_WAIT_SECONDS and learns why (4008), one never does."""
    secret, _ = make_api_key(alice.account)
    env = {"STREAM_SEND_TIMEOUT_SECONDS": "1", "STREAM_POLL_SECONDS": "0.2"}

    with Server(env) as server:
        paused, dead = RawWebsocket(server.port), RawWebsocket(server.port)
        for client in (paused, dead):
            client.send_json({"type": "auth", "payload": secret, "subscriptions": [{"event_types": ["call.*"]}]})
            assert json.loads(client.frame()[1])["type"] == "auth"
        # 60 events of 128 KB: far more than the socket buffers and the server's one batch can hold.
        with transaction.atomic():
            for n in range(60):
                emit(alice.account, "call.flow", object_id=f"big-{n}", reason="x" * 128 * 1024)
        # The server sends until the buffers fill, gives up after STREAM_SEND_TIMEOUT_SECONDS, and closes.
        time.sleep(3)
        paused_events, paused_close = paused.read_to_the_end()
        time.sleep(4)  # past the close wait: the server has let go of the client that never read
        dead_events, dead_close = dead.read_to_the_end()

    assert paused_close == (4008, "slow consumer: reconnect with your last event id"), server.log()
    assert dead_close is None
    # Neither was sent everything: the server stopped instead of buffering on their behalf.
    assert paused_events < 60 and dead_events < 60

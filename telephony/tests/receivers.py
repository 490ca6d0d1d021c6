"""Real local HTTP servers that stand in for customers' webhook receivers in the tests.

`Receiver` records every request (headers, body, arrival time) and answers from a script: a list of
`Answer`s used in order, then `default`. Use the `receiver` fixture (import `receiver_fixture` into the test module), or
`Receiver(host=...)` directly for a second server.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A client that hangs up mid-answer (a killed worker, a timeout) is part of what the tests do.
        pass


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def text(self) -> str:
        return self.body.decode()


class Receiver:
    def __init__(self, host: str = "127.0.0.1", default: Answer | None = None):
        self.requests: list[Received] = []
        self.script: list[Answer] = []
        self.default = default or Answer()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the pooled client expects

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = receiver._record(
                    Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                             time.time())
                )  # fmt: skip
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format, *args):
                pass

        self.server = _QuietServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def _record(self, received: Received) -> Answer:
        with self._lock:
            self.requests.append(received)
            return self.script.pop(0) if self.script else self.default

    def respond(self, *answers: Answer) -> Receiver:
        with self._lock:
            self.script.extend(answers)
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks"

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def ids(self) -> list[str]:
        with self._lock:
            return [r.headers.get("webhook-id", "") for r in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(name="receiver")
def receiver_fixture():
    """A running Receiver on 127.0.0.1, stopped after the test. Import `receiver_fixture` to use it."""
    server = Receiver()
    yield server
    server.stop()

"""Helpers for the call engine's tests: numbers routed to apps, a customer's server, and driving calls.

`drive(call)` runs the real engine (telephony.engine.runner.process_call, what the Celery task runs) in the
test's process until the call is over, sleeping until each wake-up falls due: the flows run at the test
settings' simulated speed (1000x), so a 30-second call takes milliseconds. Tests that need the worker
process itself (the simulator API end to end, crashes) use the `celery_worker` fixture instead.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from telephony.engine import runner
from telephony.models import Call, CallControlApp, CallWakeup, Event
from telephony.switch.simulated import simulate_inbound_call
from telephony.tests.isolation_sip import make_number

_numbers = itertools.count(1000)


def next_number() -> str:
    return f"+1201555{next(_numbers):04d}"


def make_app(account, xml: str = "", **fields) -> CallControlApp:
    values = {"name": f"App {next(_numbers)}", "mode": "xml" if xml else "url", "xml": xml, **fields}
    return CallControlApp.objects.create(account=account, **values)


def number_for_app(account, xml: str = "", **app_fields):
    """A number whose calls run a new app with this flow."""
    app = make_app(account, xml, **app_fields)
    return make_number(account, next_number(), call_control_app=app), app


def place(number, from_number: str = "+12125550100", **kwargs) -> Call:
    result = simulate_inbound_call(from_number=from_number, to_number=number.number, **kwargs)
    assert result.call is not None, result.decision.reason
    return result.call


def drive(call: Call, timeout: float = 10.0) -> Call:
    """Run the engine on `call` until it is over; the final state of its A-leg."""
    deadline = time.monotonic() + timeout
    while True:
        runner.process_call(call.pk)
        root = Call.objects.get(pk=call.pk)
        pending = CallWakeup.objects.filter(root_id=call.pk).order_by("due_at").first()
        if root.flow_state in (Call.FlowState.DONE, Call.FlowState.NONE) and pending is None:
            return root
        if time.monotonic() > deadline:
            raise AssertionError(f"call still {root.status}/{root.flow_state} at {root.position!r}: {root.flow_wait}")
        if pending is not None:
            from django.utils import timezone

            time.sleep(min(0.2, max(0.0, (pending.due_at - timezone.now()).total_seconds())))
        else:
            time.sleep(0.002)


def flow(call: Call) -> list[dict]:
    """The call.flow events of a call, in order: {command, path, success, reason, ...}."""
    return [
        e.payload for e in Event.objects.filter(type="call.flow", object_id=str(call.public_id)).order_by("sequence")
    ]


def commands(call: Call) -> list[str]:
    return [f"{e['command']}:{'ok' if e['success'] else 'fail'}" for e in flow(call)]


def event_types(call: Call) -> list[str]:
    return list(
        Event.objects.filter(object_type="call", object_id=str(call.public_id))
        .exclude(type="call.flow")
        .order_by("sequence")
        .values_list("type", flat=True)
    )


# --- A customer's server ----------------------------------------------------------------------------------


@dataclass
class Hit:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    at: float

    @property
    def params(self) -> dict[str, str]:
        return {**self.query, **self.form}


@dataclass
class Route:
    status: int = 200
    body: str | Callable[[Hit], str] = "<Response/>"
    delay: float = 0.0
    content_type: str = "application/xml"


@dataclass
class CustomerServer:
    """A real local HTTP server answering by path; every request is kept in `hits`."""

    routes: dict[str, Route] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self):
        server = self
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = -1  # headers and body in one write: no 40 ms Nagle/delayed-ACK stall between them

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                parts = urlsplit(self.path)
                flat = lambda d: {k: v[-1] for k, v in d.items()}  # noqa: E731
                form = (
                    flat(parse_qs(raw, keep_blank_values=True))
                    if "form-urlencoded" in (self.headers.get("Content-Type") or "")
                    else {}
                )
                hit = Hit(
                    self.command,
                    parts.path,
                    flat(parse_qs(parts.query, keep_blank_values=True)),
                    form,
                    {k.lower(): v for k, v in self.headers.items()},
                    time.time(),
                )
                if not form and raw:
                    hit.form = {"_body": raw}
                with server._lock:
                    server.hits.append(hit)
                    route = server.routes.get(parts.path, Route(404, "not found", content_type="text/plain"))
                if route.delay:
                    time.sleep(route.delay)
                body = (route.body(hit) if callable(route.body) else route.body).encode()
                try:
                    self.send_response(route.status)
                    self.send_header("Content-Type", route.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the engine gave up waiting (a timeout test)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format, *args):
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.server = Quiet(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(
        self,
        path: str,
        body="<Response/>",
        *,
        status: int = 200,
        delay: float = 0.0,
        content_type: str = "application/xml",
    ) -> str:
        self.routes[path] = Route(status, body, delay, content_type)
        return self.url(path)

    def to(self, path: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.path == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

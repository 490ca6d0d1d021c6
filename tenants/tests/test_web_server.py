"""The API through a real uvicorn process (portal/asgi.py, portal/wsgi_threads.py): a request's body is read
before it takes a thread, a whole response comes back in one piece and a streamed one chunk by chunk."""

from __future__ import annotations

import asyncio
import socket
import threading

import httpx
import pytest

from portal.wsgi_threads import ThreadedWSGI
from telephony.tests.isolation_messaging import make_message
from telephony.tests.stream_support import Server
from tenants.tests.factories import make_api_key

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_answers_beside_a_client_that_trickles_its_body(alice):
    secret, _ = make_api_key(alice.account)
    with Server(env={"WEB_THREADS": "1"}) as server, socket.create_connection(("127.0.0.1", server.port)) as slow:
        # Authenticated, so that the view would go on to read the body.
        slow.sendall(
            b"POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {secret}\r\nContent-Length: 1000\r\n\r\n{{".encode()
        )
        response = httpx.get(f"{server.url}/api/v1/account", headers={"Authorization": f"Bearer {secret}"}, timeout=5)

    assert response.status_code == 200
    assert response.json()["id"] == str(alice.account.public_id)


def test_it_reads_a_chunked_body(alice):
    secret, _ = make_api_key(alice.account)

    def chunks():
        yield b'{"text": '
        yield b'"hello"}'

    with Server() as server:
        response = httpx.post(
            f"{server.url}/api/v1/messages",
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
            content=chunks(),
            timeout=10,
        )

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert "to" in fields
    assert "text" not in fields  # the text arrived


def test_it_streams_a_csv_export_from_the_thread_that_queries_it(alice):
    secret, _ = make_api_key(alice.account)
    messages = [make_message(alice.account) for _ in range(3)]

    with Server() as server:
        response = httpx.get(
            f"{server.url}/api/v1/messages/export", headers={"Authorization": f"Bearer {secret}"}, timeout=10
        )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "content-length" not in response.headers  # streamed, not buffered whole
    lines = response.text.splitlines()
    assert lines[0].startswith("id,created_at,direction")
    assert {line.split(",")[0] for line in lines[1:]} == {str(message.public_id) for message in messages}


def test_it_answers_a_whole_response_with_its_length(alice):
    secret, _ = make_api_key(alice.account)
    with Server() as server:
        response = httpx.get(f"{server.url}/api/v1/account", headers={"Authorization": f"Bearer {secret}"}, timeout=5)

    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)


async def _serve_once(app, receive, send) -> None:
    """One GET / through the bridge, as uvicorn would hand it over."""
    scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"",
             "headers": [], "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000), "scheme": "http",
             "root_path": "", "http_version": "1.1", "asgi": {"version": "3.0"}}  # fmt: skip
    await asyncio.wait_for(ThreadedWSGI(app, workers=1, max_memory_body=1024, max_body=1024)(scope, receive, send), 10)


class _Endless:
    """A streaming WSGI response that would never end, and says when it was closed."""

    streaming = True

    def __init__(self) -> None:
        self.produced = 0
        self.closed = threading.Event()

    def __iter__(self):
        while True:
            self.produced += 1
            yield b"x" * 100

    def close(self) -> None:
        self.closed.set()


def test_it_stops_producing_a_stream_when_the_client_leaves():
    endless = _Endless()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return endless

    async def scenario() -> list:
        sent, left = [], asyncio.Event()
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive():
            if messages:
                return messages.pop(0)
            await left.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
            if len(sent) == 5:
                left.set()  # the client goes away after the start and four chunks
            await asyncio.sleep(0)

        await _serve_once(app, receive, send)
        return sent

    sent = asyncio.run(scenario())

    assert endless.closed.is_set()
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert endless.produced < 50  # it stopped soon after the client left, not never


def test_it_refuses_a_body_declared_over_the_limit_before_reading_it(alice):
    secret, _ = make_api_key(alice.account)
    with (
        Server(env={"MAX_REQUEST_BODY_BYTES": "1000"}) as server,
        socket.create_connection(("127.0.0.1", server.port)) as client,
    ):
        # Says 10 MB and sends nothing of it: the answer comes anyway, without waiting for the body.
        client.sendall(
            b"POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {secret}\r\nContent-Length: 10000000\r\n\r\n".encode()
        )
        client.settimeout(5)
        answer = b""
        while b"}}" not in answer:
            chunk = client.recv(4096)
            if not chunk:
                break
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"code":"request_too_large"' in answer.replace(b" ", b"")


def test_it_stops_storing_a_chunked_body_past_the_limit(alice):
    secret, _ = make_api_key(alice.account)

    def endless_chunks():
        for _ in range(2000):
            yield b"x" * 1000  # 2 MB in all, no length said

    with Server(env={"MAX_REQUEST_BODY_BYTES": "100000"}) as server:
        response = httpx.post(
            f"{server.url}/api/v1/messages",
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
            content=endless_chunks(),
            timeout=10,
        )
        small = httpx.post(
            f"{server.url}/api/v1/messages",
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
            content=b"{}",
            timeout=10,
        )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert small.status_code == 400  # a body within the limit still reaches the API


def test_a_served_process_settles_at_startup_through_the_lifespan_protocol():
    import gc

    from portal.asgi import lifespan

    async def scenario() -> list:
        incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list = []

        async def receive():
            return incoming.pop(0)

        async def send(message):
            sent.append(message)

        await asyncio.wait_for(lifespan({"type": "lifespan"}, receive, send), 30)
        return sent

    gc.unfreeze()
    try:
        sent = asyncio.run(scenario())
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert gc.get_freeze_count() > 0  # startup's objects are out of the collector's full passes
    finally:
        gc.unfreeze()  # this is the test process, not a server: let it collect as before


def test_a_pool_the_database_cannot_fill_at_startup_is_dropped_not_left_closed():
    import psycopg_pool
    from django.db import connections
    from django.db.backends.postgresql.base import DatabaseWrapper

    from portal.asgi import fill_pool
    from telephony.tests.stream_support import free_port

    # A PostgreSQL pool pointed at a port nobody listens on: it cannot open its connections.
    settings_dict = {
        **connections["default"].settings_dict,
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": free_port(),
        "NAME": "nowhere",
        "USER": "nobody",
        "PASSWORD": "",
        "CONN_MAX_AGE": 0,
        "OPTIONS": {"pool": {"min_size": 1, "max_size": 1, "timeout": 1}},
    }
    wrapper = DatabaseWrapper(settings_dict, alias="settle-test")
    first = wrapper.pool

    assert fill_pool(wrapper, timeout=0.5) is False
    # A pool that timed out opening is closed for good (what Django would have opened again for every query)...
    with pytest.raises(psycopg_pool.PoolClosed):
        first.open()
    # ...so the next query gets a new one, which opens (and connects once the database answers).
    fresh = wrapper.pool
    assert fresh is not first
    fresh.open(wait=False)
    wrapper.close_pool()


def test_it_gives_up_a_stream_whose_client_stopped_reading(monkeypatch):
    from portal import wsgi_threads

    monkeypatch.setattr(wsgi_threads, "STALLED_CLIENT_S", 0.2)
    endless = _Endless()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return endless

    async def scenario() -> None:
        messages = [{"type": "http.request", "body": b"", "more_body": False}]
        stuck = asyncio.Event()  # never set: a client connected but no longer reading
        sent = 0

        async def receive():
            if messages:
                return messages.pop(0)
            await stuck.wait()

        async def send(message):
            nonlocal sent
            sent += 1
            if sent > 3:
                await stuck.wait()

        await _serve_once(app, receive, send)

    asyncio.run(scenario())

    assert endless.closed.is_set()  # the thread, its connection and its cursor are free again
    assert endless.produced < 10

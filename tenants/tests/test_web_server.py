"""The API through a real uvicorn process (portal/asgi.py): a request's body is read before it takes a thread."""

from __future__ import annotations

import socket

import httpx
import pytest

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

"""Websocket authentication: Opentact's first-message auth with an API key or a login token."""

from __future__ import annotations

import pytest

from telephony.tests.stream_support import Client, connected, run, stream_settings  # noqa: F401
from tenants import services as tenant_services
from tenants.credentials import issue_auth_token
from tenants.tests.factories import make_api_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stream_settings")]


def test_it_answers_an_auth_event_naming_the_account_for_an_api_key(alice):
    secret, _ = make_api_key(alice.account, name="dashboard key")

    async def scenario():
        client = await Client().open()
        reply = await client.auth(secret)
        await client.close()
        return reply

    reply = run(scenario)

    assert reply["type"] == "auth"
    assert reply["message"].startswith("WSS connection ")
    assert reply["message"].endswith("success auth dashboard key")
    assert reply["account"] == {"id": str(alice.account.public_id), "name": "Account A"}
    assert reply["credential"] == {"type": "api_key", "name": "dashboard key"}


def test_it_accepts_a_login_token_and_names_the_person(alice):
    token, _ = issue_auth_token(alice.user, alice.account)

    async def scenario():
        client = await connected(token)
        await client.close()

    run(scenario)  # connected() asserts the auth reply

    async def reply_of():
        client = await Client().open()
        reply = await client.auth(token)
        await client.close()
        return reply

    assert run(reply_of)["message"].endswith("success auth alice@example.com")


@pytest.mark.parametrize(
    "secret",
    ["pk_live_not-a-real-key-at-all-000000000000000000", "not-a-token", ""],
    ids=["unknown key", "garbage token", "empty"],
)
def test_it_closes_with_4001_for_a_bad_credential(alice, secret):
    async def scenario():
        client = await Client().open()
        return await client.auth(secret)

    reply = run(scenario)

    assert reply["type"] == "closed"
    assert reply["code"] == 4001
    assert reply["reason"].startswith("authentication failed")


def test_it_closes_with_4001_for_a_revoked_key(alice):
    secret, key = make_api_key(alice.account)
    tenant_services.api_key_revoke(account=alice.account, actor=alice.user, api_key=key)

    async def scenario():
        client = await Client().open()
        return await client.auth(secret)

    reply = run(scenario)

    assert (reply["type"], reply["code"]) == ("closed", 4001)
    assert "revoked" in reply["reason"]


def test_it_closes_with_4003_for_a_suspended_account(alice):
    secret, _ = make_api_key(alice.account)
    tenant_services.account_set_status(account=alice.account, actor=None, status="suspended", reason="unpaid")

    async def scenario():
        client = await Client().open()
        return await client.auth(secret)

    reply = run(scenario)

    assert (reply["type"], reply["code"], reply["reason"]) == ("closed", 4003, "account suspended")


def test_it_closes_an_unauthenticated_connection_after_the_auth_timeout(alice, settings):
    settings.STREAM_AUTH_TIMEOUT_SECONDS = 0.3

    async def scenario():
        client = await Client().open()
        return await client.receive(timeout=3)

    reply = run(scenario)

    assert (reply["type"], reply["code"]) == ("closed", 4001)
    assert reply["reason"].startswith("authentication timeout")


def test_it_refuses_other_messages_before_auth(alice):
    async def scenario():
        client = await Client().open()
        await client.send({"type": "subscribe", "event_types": ["*"]})
        return await client.receive()

    reply = run(scenario)

    assert (reply["type"], reply["code"]) == ("closed", 4001)
    assert reply["reason"].startswith("authenticate first")


@pytest.mark.parametrize("frame", ["not json", "[1, 2]", '{"type": "dance"}'], ids=["text", "array", "unknown type"])
def test_it_closes_with_4400_for_a_malformed_message(alice, frame):
    secret, _ = make_api_key(alice.account)

    async def scenario():
        client = await connected(secret)
        await client.ws.send_to(text_data=frame)
        error = await client.receive()
        closed = await client.receive()
        return error, closed

    error, closed = run(scenario)

    assert error["type"] == "error" and error["message"].startswith("Malformed message")
    assert (closed["type"], closed["code"]) == ("closed", 4400)


def test_it_closes_the_stream_when_its_key_is_revoked_later(alice, monkeypatch):
    from telephony import stream

    monkeypatch.setattr(stream, "REFRESH_SECONDS", 0.2)
    secret, key = make_api_key(alice.account)

    async def scenario():
        from asgiref.sync import sync_to_async

        client = await connected(secret, event_types=["*"])
        await sync_to_async(tenant_services.api_key_revoke)(account=alice.account, actor=alice.user, api_key=key)
        while True:
            message = await client.receive(timeout=3)
            if message["type"] == "closed":
                return message

    closed = run(scenario)

    assert (closed["code"], closed["reason"]) == (4001, "credential revoked or expired")

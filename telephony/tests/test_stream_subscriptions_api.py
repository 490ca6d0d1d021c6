"""/api/v1/event-subscriptions: the account's standing subscriptions, and how they apply to open sockets."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from telephony.models import CallControlApp, EventSubscription
from telephony.services import stream as services
from telephony.tests.stream_support import aemit, connected, run, stream_settings  # noqa: F401
from tenants.models import AuditEntry
from tenants.tests.factories import make_api_key

URL = "/api/v1/event-subscriptions"


@pytest.mark.django_db
class TestTheApi:
    def test_it_creates_lists_gets_and_deletes_a_subscription(self, alice_api, alice):
        app = CallControlApp.objects.create(account=alice.account, name="IVR")
        expires = (timezone.now() + timedelta(days=1)).replace(microsecond=0)

        filters = {"number": "+12015550123", "app": str(app.public_id)}
        created = alice_api.post(
            URL,
            {"event_types": ["call.*", "message.sent"], "filters": filters, "expires_at": expires.isoformat()},
            format="json",
        )

        assert created.status_code == 201, created.json()
        body = created.json()
        assert body["event_types"] == ["call.*", "message.sent"]
        assert body["filters"] == {"number": "+12015550123", "app": str(app.public_id), "call": None}
        assert body["is_active"] is True and body["state"] == "active"
        listed = alice_api.get(URL).json()
        assert [item["id"] for item in listed["results"]] == [body["id"]]
        assert alice_api.get(f"{URL}/{body['id']}").json() == body
        assert AuditEntry.objects.filter(action="event_subscription.created", object_id=body["id"]).exists()

        assert alice_api.delete(f"{URL}/{body['id']}").status_code == 204
        assert not EventSubscription.objects.exists()
        assert AuditEntry.objects.filter(action="event_subscription.deleted", object_id=body["id"]).exists()

    def test_it_pauses_a_subscription_and_replaces_its_filters(self, alice_api):
        created = alice_api.post(URL, {"event_types": ["*"], "filters": {"number": "+12015550123"}}, format="json")
        url = f"{URL}/{created.json()['id']}"

        paused = alice_api.patch(url, {"is_active": False}, format="json").json()
        refiltered = alice_api.patch(url, {"filters": {"call": "6c1f0a64-9a0e-4a3c-9d7a-2f8f5d0d1b11"}}, format="json")

        assert paused["state"] == "paused" and paused["event_types"] == ["*"]
        assert refiltered.json()["filters"] == {
            "number": None,
            "app": None,
            "call": "6c1f0a64-9a0e-4a3c-9d7a-2f8f5d0d1b11",
        }
        assert refiltered.json()["is_active"] is False

    @pytest.mark.parametrize(
        "body,field,code",
        [
            ({}, "event_types", "validation_error"),
            ({"event_types": []}, "event_types", "validation_error"),
            ({"event_types": ["call.exploded"]}, "event_types", "unknown_event_type"),
            ({"event_types": ["*"], "filters": {"number": "555"}}, "filters.number", "validation_error"),
            ({"event_types": ["*"], "filters": {"call": "not-a-uuid"}}, "filters.call", "validation_error"),
            ({"event_types": ["*"], "filters": {"colour": "red"}}, "filters.colour", "validation_error"),
            ({"event_types": ["*"], "expires_at": "2001-01-01T00:00:00Z"}, "expires_at", "in_the_past"),
        ],
    )
    def test_it_names_the_field_of_bad_input(self, alice_api, body, field, code):
        response = alice_api.post(URL, body, format="json")

        assert response.status_code == 400
        error = response.json()["error"]
        assert field in error["fields"], error
        if code != "validation_error":
            assert error["code"] == code

    def test_another_accounts_app_is_not_found(self, alice_api, charlie):
        theirs = CallControlApp.objects.create(account=charlie.account, name="B's app")

        response = alice_api.post(URL, {"event_types": ["*"], "filters": {"app": str(theirs.public_id)}}, format="json")

        assert response.status_code == 400
        assert response.json()["error"]["fields"]["filters.app"] == ["No such call-control app in this account."]

    def test_another_accounts_subscription_is_not_found(self, alice, charlie_api):
        theirs = services.event_subscription_create(account=alice.account, actor=None, event_types=["*"])

        assert charlie_api.get(f"{URL}/{theirs.public_id}").status_code == 404
        assert charlie_api.delete(f"{URL}/{theirs.public_id}").status_code == 404
        assert charlie_api.get(URL).json()["results"] == []
        assert EventSubscription.objects.filter(pk=theirs.pk).exists()

    def test_a_viewer_reads_but_cannot_write(self, alice, bob, token_client):
        existing = services.event_subscription_create(account=alice.account, actor=None, event_types=["*"])
        as_bob = token_client(bob.user, bob.account)

        assert as_bob.get(URL).status_code == 200
        assert as_bob.post(URL, {"event_types": ["*"]}, format="json").status_code == 403
        assert as_bob.delete(f"{URL}/{existing.public_id}").status_code == 403

    def test_a_read_only_key_cannot_write(self, alice, api_client):
        secret, _ = make_api_key(alice.account, read_only=True)
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

        assert api_client.get(URL).status_code == 200
        assert api_client.post(URL, {"event_types": ["*"]}, format="json").status_code == 403

    def test_it_limits_the_subscriptions_of_an_account(self, alice_api, alice, monkeypatch):
        monkeypatch.setattr(services, "MAX_SUBSCRIPTIONS_PER_ACCOUNT", 2)
        for _ in range(2):
            assert alice_api.post(URL, {"event_types": ["*"]}, format="json").status_code == 201

        response = alice_api.post(URL, {"event_types": ["*"]}, format="json")

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "too_many_subscriptions"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("stream_settings")
class TestOnTheSocket:
    def test_an_api_subscription_applies_to_a_socket_with_no_subscriptions_of_its_own(self, alice):
        secret, _ = make_api_key(alice.account)
        services.event_subscription_create(
            account=alice.account, actor=None, event_types=["message.*"], filters={"number": "+12015550123"}
        )

        async def scenario():
            client = await connected(secret)
            await aemit(alice.account, "message.sent", object_type="message", object_id="m-1", to="+12015559999")
            wanted = await aemit(
                alice.account, "message.received", object_type="message", object_id="m-2", to="+12015550123"
            )
            received = await client.receive_event()
            await client.receive_nothing(0.3)
            await client.close()
            return wanted, received

        wanted, received = run(scenario)

        assert received["id"] == str(wanted.public_id)

    def test_a_subscription_made_through_the_api_reaches_an_open_socket_at_once(self, alice, settings):
        # A long poll: only the change notification can make the new subscription apply within the test.
        settings.STREAM_POLL_SECONDS = 30
        secret, _ = make_api_key(alice.account)

        async def scenario():
            client = await connected(secret)
            await sync_to_async(services.event_subscription_create)(
                account=alice.account, actor=None, event_types=["call.*"]
            )
            event = await aemit(alice.account, "call.ringing")
            received = await client.receive_event()
            await client.close()
            return event, received

        event, received = run(scenario)

        assert received["id"] == str(event.public_id)

    def test_a_paused_or_expired_api_subscription_delivers_nothing(self, alice):
        secret, _ = make_api_key(alice.account)
        services.event_subscription_create(account=alice.account, actor=None, event_types=["*"], is_active=False)
        expiring = services.event_subscription_create(
            account=alice.account, actor=None, event_types=["*"], expires_at=timezone.now() + timedelta(seconds=0.5)
        )

        async def scenario():
            client = await connected(secret)
            # Expiry is applied at the instant, not at the next re-read of the subscriptions.
            await asyncio.sleep(max(0.0, (expiring.expires_at - timezone.now()).total_seconds()) + 0.05)
            await aemit(alice.account, "call.ringing")
            await client.receive_nothing(0.5)
            await client.close()

        run(scenario)

    def test_the_socket_gets_the_union_of_api_and_socket_subscriptions_once_each(self, alice):
        secret, _ = make_api_key(alice.account)
        services.event_subscription_create(account=alice.account, actor=None, event_types=["call.*"])

        async def scenario():
            client = await connected(secret, event_types=["call.ringing", "message.*"])
            await aemit(alice.account, "call.ringing")
            await aemit(alice.account, "message.sent", object_type="message", object_id="m-1")
            await aemit(alice.account, "call.hangup")
            received = [(await client.receive_event())["type"] for _ in range(3)]
            await client.receive_nothing(0.3)
            await client.close()
            return received

        assert run(scenario) == ["call.ringing", "message.sent", "call.hangup"]

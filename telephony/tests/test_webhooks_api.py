"""The webhooks API: /webhooks (CRUD, secret, rotate, test, recover, deliveries) and /deliveries (replay)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from telephony import delivery as engine
from telephony.models import Delivery, WebhookEndpoint
from telephony.services.events import event_emit
from telephony.tests.receivers import Answer, receiver_fixture  # noqa: F401 - the receiver fixture
from tenants.models import AuditEntry
from tenants.tests.factories import make_api_key

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://93.184.216.34/hooks"


@pytest.fixture
def strict(settings):
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = False
    settings.OUTBOUND_URL_ALLOWED_NETWORKS = []


def create(client, **body):
    return client.post("/api/v1/webhooks", {"url": PUBLIC_URL, **body}, format="json")


def test_it_creates_an_endpoint_and_shows_the_secret_once(alice_api):
    response = create(alice_api, description="prod", event_types=["call.*", "number.ordered"])

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["event_types"] == ["call.*", "number.ordered"]
    assert body["enabled"] is True and body["payload_format"] == "json"
    Webhook(body["secret"])  # a secret the standard library accepts
    shown = alice_api.get(f"/api/v1/webhooks/{body['id']}").json()
    assert "secret" not in shown and body["secret"] not in str(alice_api.get("/api/v1/webhooks").json())
    endpoint = WebhookEndpoint.objects.get(public_id=body["id"])
    assert body["secret"] not in endpoint.secret_encrypted  # stored encrypted
    assert AuditEntry.objects.filter(action="endpoint.created", object_id=body["id"]).exists()


def test_event_types_default_to_everything(alice_api):
    assert create(alice_api).json()["event_types"] == ["*"]


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/hook", "http://169.254.169.254/latest", "http://[::1]/hook", "ftp://example.com/x",
     "http://user:pw@93.184.216.34/x", "http://localhost:8000/hook"],
)  # fmt: skip
def test_it_refuses_urls_the_platform_will_not_call(alice_api, strict, url):
    response = create(alice_api, url=url)

    assert response.status_code == 400
    assert "url" in response.json()["error"]["fields"]


def test_a_name_resolving_to_a_private_address_is_refused_on_save(alice_api, strict, monkeypatch):
    import socket

    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: (
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 80))]
            if host == "internal.example.test"
            else real(host, port, *a, **k)
        ),
    )

    response = create(alice_api, url="http://internal.example.test/hook")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_forbidden_address"


@pytest.mark.parametrize("types", [[], ["call.teleported"], ["nope.*"], ["CALL.*"], "call.*"])
def test_it_refuses_unknown_event_types(alice_api, types):
    response = create(alice_api, event_types=types)

    assert response.status_code == 400
    assert "event_types" in response.json()["error"]["fields"]


def test_it_validates_rate_limit_and_format(alice_api):
    assert create(alice_api, rate_limit=0).status_code == 400
    assert create(alice_api, payload_format="xml").status_code == 400
    assert create(alice_api, rate_limit=50, payload_format="form").status_code == 201


def test_it_updates_an_endpoint(alice_api):
    endpoint = create(alice_api).json()

    response = alice_api.patch(
        f"/api/v1/webhooks/{endpoint['id']}", {"event_types": ["message.*"], "enabled": False}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["event_types"] == ["message.*"]
    assert response.json()["enabled"] is False and response.json()["disabled_reason"] == "manual"
    entry = AuditEntry.objects.get(action="endpoint.updated")
    assert entry.before == {"event_types": ["*"], "enabled": True}


def test_re_enabling_clears_the_failure_streak(alice_api):
    endpoint = create(alice_api).json()
    WebhookEndpoint.objects.filter(public_id=endpoint["id"]).update(
        enabled=False, consecutive_failures=9, failing_since=timezone.now(), circuit_open_until=timezone.now()
    )

    body = alice_api.patch(f"/api/v1/webhooks/{endpoint['id']}", {"enabled": True}, format="json").json()

    assert body["enabled"] is True and body["consecutive_failures"] == 0 and body["failing_since"] is None


def test_it_deletes_an_endpoint(alice_api):
    endpoint = create(alice_api).json()

    assert alice_api.delete(f"/api/v1/webhooks/{endpoint['id']}").status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_rotating_returns_a_new_secret_once(alice_api):
    endpoint = create(alice_api).json()

    response = alice_api.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret")

    assert response.status_code == 200
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != endpoint["secret"]
    expires = body["previous_secret_expires_at"]
    assert timezone.now() + timedelta(hours=23) < timezone.datetime.fromisoformat(expires.replace("Z", "+00:00"))


def test_viewers_and_read_only_keys_can_read_but_not_write(alice, alice_api, bob, token_client):
    endpoint = create(alice_api).json()
    read_only_secret, _ = make_api_key(alice.account, read_only=True)
    from rest_framework.test import APIClient

    read_only = APIClient()
    read_only.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only_secret}")
    viewer = token_client(bob.user, bob.account)

    for client in (viewer, read_only):
        assert client.get("/api/v1/webhooks").status_code == 200
        assert client.get(f"/api/v1/webhooks/{endpoint['id']}").status_code == 200
        assert create(client).status_code == 403
        assert client.patch(f"/api/v1/webhooks/{endpoint['id']}", {"enabled": False}, format="json").status_code == 403
        assert client.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret").status_code == 403
        assert client.delete(f"/api/v1/webhooks/{endpoint['id']}").status_code == 403


def test_another_accounts_endpoint_and_deliveries_are_not_found(alice_api, charlie_api):
    endpoint = create(alice_api).json()
    event_emit(account=WebhookEndpoint.objects.get().account, type="call.ringing", object_id="c", payload={})
    delivery = Delivery.objects.get(event__type="call.ringing")

    paths = (f"webhooks/{endpoint['id']}", f"webhooks/{endpoint['id']}/deliveries", f"deliveries/{delivery.public_id}")
    for path in paths:
        assert charlie_api.get(f"/api/v1/{path}").status_code == 404
    assert charlie_api.post(f"/api/v1/webhooks/{endpoint['id']}/test").status_code == 404
    assert charlie_api.post(f"/api/v1/deliveries/{delivery.public_id}/replay").status_code == 404
    assert charlie_api.post(f"/api/v1/webhooks/{endpoint['id']}/recover", {"since": "2020-01-01T00:00:00Z"},
                            format="json").status_code == 404  # fmt: skip


def test_a_test_send_reaches_the_receiver_and_shows_its_attempt(alice_api, receiver):
    endpoint = create(alice_api, url=receiver.url).json()

    response = alice_api.post(f"/api/v1/webhooks/{endpoint['id']}/test", {"event_type": "call.ringing"}, format="json")
    engine.drain()

    assert response.status_code == 202
    delivery = response.json()
    assert delivery["kind"] == "test" and delivery["event"] is None and delivery["event_type"] == "call.ringing"
    body = Webhook(endpoint["secret"]).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert body["type"] == "call.ringing" and body["id"] == delivery["id"] == delivery["message_id"]
    detail = alice_api.get(f"/api/v1/deliveries/{delivery['id']}").json()
    assert detail["status"] == "delivered"
    assert [(a["number"], a["status_code"], a["trigger"]) for a in detail["attempts"]] == [(1, 200, "test")]


def test_a_test_send_of_an_unknown_type_is_refused(alice_api):
    endpoint = create(alice_api).json()

    response = alice_api.post(f"/api/v1/webhooks/{endpoint['id']}/test", {"event_type": "sip_user.*"}, format="json")

    assert response.status_code == 400 and "event_type" in response.json()["error"]["fields"]


def test_deliveries_are_listed_with_their_attempts_and_can_be_replayed(alice, alice_api, receiver):
    receiver.respond(Answer(500, b"broken"))
    endpoint = create(alice_api, url=receiver.url, event_types=["call.*"]).json()
    event = event_emit(account=alice.account, type="call.answered", object_id="c9", payload={"state": "in-progress"})
    engine.drain()

    listed = alice_api.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries").json()["results"]
    assert len(listed) == 1 and listed[0]["status"] == "pending" and listed[0]["event"] == str(event.public_id)
    detail = alice_api.get(f"/api/v1/deliveries/{listed[0]['id']}").json()
    assert detail["payload"]["data"] == {"state": "in-progress"}
    assert [(a["status_code"], a["response_excerpt"]) for a in detail["attempts"]] == [(500, "broken")]
    assert alice_api.get("/api/v1/deliveries", {"status": "pending"}).json()["results"][0]["id"] == detail["id"]
    assert alice_api.get("/api/v1/deliveries", {"event_type": "message.*"}).json()["results"] == []

    replayed = alice_api.post(f"/api/v1/deliveries/{detail['id']}/replay")
    engine.drain()

    assert replayed.status_code == 202
    detail = alice_api.get(f"/api/v1/deliveries/{detail['id']}").json()
    assert detail["status"] == "delivered"
    assert [a["trigger"] for a in detail["attempts"]] == ["scheduled", "replay"]
    assert receiver.ids() == [str(event.public_id)] * 2


def test_recover_requeues_failed_deliveries(alice, alice_api, receiver):
    receiver.respond(Answer(404), Answer(404))
    endpoint = create(alice_api, url=receiver.url, event_types=["call.*"]).json()
    for n in range(2):
        event_emit(account=alice.account, type="call.hangup", object_id=f"h{n}", payload={})
    engine.drain()
    assert Delivery.objects.filter(status="failed").count() == 2

    response = alice_api.post(
        f"/api/v1/webhooks/{endpoint['id']}/recover",
        {"since": (timezone.now() - timedelta(hours=1)).isoformat()},
        format="json",
    )
    engine.drain()

    assert response.status_code == 202 and response.json() == {"requeued": 2}
    assert Delivery.objects.filter(status="delivered").count() == 2


def test_recover_needs_a_valid_time_and_an_enabled_endpoint(alice_api):
    endpoint = create(alice_api, enabled=False).json()
    url = f"/api/v1/webhooks/{endpoint['id']}/recover"

    assert "since" in alice_api.post(url, {}, format="json").json()["error"]["fields"]
    response = alice_api.post(url, {"since": "2020-01-01T00:00:00Z"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "endpoint_disabled"


def test_the_openapi_document_describes_webhooks_and_event_data(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/v1/schema/").content)

    assert {"/api/v1/webhooks", "/api/v1/webhooks/{id}/rotate-secret", "/api/v1/webhooks/{id}/recover",
            "/api/v1/webhooks/{id}/test", "/api/v1/webhooks/{id}/deliveries", "/api/v1/deliveries/{id}/replay",
            "/api/v1/events", "/api/v1/event-types"} <= set(schema["paths"])  # fmt: skip
    data = schema["components"]["schemas"]["Event"]["properties"]["data"]
    titles = {variant["title"] for variant in data["oneOf"]}
    assert {"call.ringing", "message.delivered", "number.ordered", "sip_user.*"} <= titles


def test_an_attempt_carries_the_headers_it_sent_and_the_ones_it_got(alice_api, receiver):
    receiver.respond(Answer(200, b"ok", headers={"X-Request-Id": "r-42"}))
    endpoint = create(alice_api, url=receiver.url).json()
    delivery = alice_api.post(f"/api/v1/webhooks/{endpoint['id']}/test", {}, format="json").json()
    engine.drain()

    (attempt,) = alice_api.get(f"/api/v1/deliveries/{delivery['id']}").json()["attempts"]

    sent = receiver.requests[0].headers
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type"):
        assert attempt["request_headers"][name] == sent[name]
    assert attempt["response_headers"]["x-request-id"] == "r-42"
    assert (attempt["request_method"], attempt["request_url"]) == ("", "")  # a POST to the endpoint's own URL

"""API keys: what authenticates, what does not, and the /api-keys resource."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.credentials import api_key_digest
from tenants.models import ApiKey, AuditEntry
from tenants.tests.factories import make_api_key

pytestmark = pytest.mark.django_db


def client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_it_authenticates_a_valid_key_and_records_its_use(alice):
    secret, key = make_api_key(alice.account)

    response = client_for(secret).get("/api/v1/account")

    assert response.status_code == 200
    assert response.json()["slug"] == "account-a"
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_it_stores_only_a_digest_of_the_key(alice):
    secret, key = make_api_key(alice.account)

    row = ApiKey.objects.values().get(pk=key.pk)

    assert secret not in str(row)
    assert row["digest"] == api_key_digest(secret)
    assert secret.startswith("pk_live_") and len(secret) >= 40


def test_it_refuses_a_wrong_key(alice):
    secret, _ = make_api_key(alice.account)

    response = client_for(secret[:-4] + "abcd").get("/api/v1/account")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_a_revoked_key(alice_api, alice, token_client):
    key_id = alice_api.get("/api/v1/api-keys").json()["results"][0]["id"]
    assert token_client(alice.user, alice.account).delete(f"/api/v1/api-keys/{key_id}").status_code == 204

    response = alice_api.get("/api/v1/account")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_revoked"


def test_it_refuses_an_expired_key(alice):
    secret, key = make_api_key(alice.account, expires_at=timezone.now() + timedelta(minutes=5))
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client_for(secret).get("/api/v1/account")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_expired"


def test_it_lets_a_read_only_key_read_but_not_write(alice):
    secret, _ = make_api_key(alice.account, read_only=True)
    client = client_for(secret)

    assert client.get("/api/v1/members").status_code == 200
    response = client.post("/api/v1/members", {"email": "x@example.com", "role": "viewer"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "read_only_credential"


def test_it_answers_401_when_no_credential_is_sent(api_client, alice):
    response = api_client.get("/api/v1/account")

    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "not_authenticated", "message": "Authentication credentials were not provided.", "fields": {}}
    }


def test_an_owner_creates_a_key_and_sees_the_secret_once(alice, token_client):
    client = token_client(alice.user, alice.account)

    response = client.post("/api/v1/api-keys", {"name": "billing server"}, format="json")

    assert response.status_code == 201
    secret = response.json()["key"]
    assert client_for(secret).get("/api/v1/account").status_code == 200
    listed = client.get("/api/v1/api-keys").json()["results"]
    assert secret not in str(listed)
    shown = client.get(f"/api/v1/api-keys/{response.json()['id']}").json()
    assert "key" not in shown and shown["prefix"] == secret[: len(shown["prefix"])]
    assert AuditEntry.objects.filter(account=alice.account, action="api_key.created").count() == 1


def test_a_key_cannot_mint_keys(alice_api):
    response = alice_api.post("/api/v1/api-keys", {"name": "sneaky"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "manage_permission_required"


def test_a_viewer_cannot_create_keys(bob, token_client):
    response = token_client(bob.user, bob.account).post("/api/v1/api-keys", {"name": "x"}, format="json")

    assert response.status_code == 403


def test_it_names_the_field_when_a_key_is_created_badly(alice, token_client):
    client = token_client(alice.user, alice.account)

    response = client.post(
        "/api/v1/api-keys", {"name": "x", "expires_at": "2001-01-01T00:00:00Z", "rate_limit": "fast"}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"expires_at", "rate_limit"}


def test_it_filters_keys_by_state(alice, token_client):
    make_api_key(alice.account, name="live")
    _, revoked = make_api_key(alice.account, name="gone")
    revoked.revoked_at = timezone.now()
    revoked.save()
    client = token_client(alice.user, alice.account)

    names = [k["name"] for k in client.get("/api/v1/api-keys?state=revoked").json()["results"]]

    assert names == ["gone"]

"""Idempotency-Key: a retried POST is answered, not redone."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tenants.idempotency import purge_expired
from tenants.models import ApiKey, IdempotencyKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(alice, token_client):
    return token_client(alice.user, alice.account)


def test_the_same_key_and_body_replays_the_first_response(owner, alice):
    first = owner.post("/api/v1/api-keys", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    second = owner.post("/api/v1/api-keys", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert ApiKey.objects.for_account(alice.account).count() == 1


def test_the_same_key_with_another_body_is_a_409(owner, alice):
    owner.post("/api/v1/api-keys", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-2")

    response = owner.post("/api/v1/api-keys", {"name": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-2")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert ApiKey.objects.for_account(alice.account).count() == 1


def test_a_key_still_in_flight_is_a_409_asking_to_retry(owner, alice):
    IdempotencyKey.objects.create(account=alice.account, key="abc-3", fingerprint="x" * 64)

    response = owner.post("/api/v1/api-keys", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="abc-3")

    assert response.status_code == 409


def test_keys_belong_to_one_account(owner, charlie, token_client):
    owner.post("/api/v1/api-keys", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="shared")

    response = token_client(charlie.user, charlie.account).post(
        "/api/v1/api-keys", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="shared"
    )

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response


def test_a_key_older_than_24_hours_starts_afresh(owner, alice, token_client):
    owner.post("/api/v1/api-keys", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="old")

    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        response = token_client(alice.user, alice.account).post(
            "/api/v1/api-keys", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="old"
        )

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert ApiKey.objects.for_account(alice.account).count() == 2


def test_a_validation_error_is_remembered_too(owner):
    first = owner.post("/api/v1/api-keys", {}, format="json", HTTP_IDEMPOTENCY_KEY="bad")
    second = owner.post("/api/v1/api-keys", {}, format="json", HTTP_IDEMPOTENCY_KEY="bad")

    assert first.status_code == second.status_code == 400
    assert second["Idempotent-Replayed"] == "true"


def test_purging_removes_only_expired_keys(alice):
    IdempotencyKey.objects.create(account=alice.account, key="new", fingerprint="x")
    IdempotencyKey.objects.create(
        account=alice.account, key="stale", fingerprint="x", created_at=timezone.now() - timedelta(hours=25)
    )

    assert purge_expired() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


def test_a_remembered_response_is_stored_encrypted_because_it_may_hold_a_secret(owner, alice):
    created = owner.post("/api/v1/api-keys", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="secret-1")
    secret = created.json()["key"]

    stored = IdempotencyKey.objects.get(account=alice.account, key="secret-1")

    assert secret not in str(stored.response_body)
    replayed = owner.post("/api/v1/api-keys", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="secret-1")
    assert replayed.json()["key"] == secret

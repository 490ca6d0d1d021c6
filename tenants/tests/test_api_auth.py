"""GET /api/v1/auth (Basic → token), token use, and the failed-login throttle."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone

from tenants.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def basic(email: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()


def test_it_exchanges_email_and_password_for_a_token_that_acts_for_the_account(api_client, alice):
    response = api_client.get("/api/v1/auth", HTTP_AUTHORIZATION=basic("alice@example.com", alice.password))

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == "alice@example.com"
    assert body["account"]["id"] == str(alice.account.public_id)
    assert body["account"]["role"] == "owner"
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert api_client.get("/api/v1/account").json()["name"] == "Account A"


def test_it_accepts_the_token_in_x_auth_token(api_client, alice):
    token = api_client.get("/api/v1/auth", HTTP_AUTHORIZATION=basic("alice@example.com", alice.password)).json()[
        "token"
    ]

    response = api_client.get("/api/v1/account", HTTP_X_AUTH_TOKEN=token)

    assert response.status_code == 200
    assert response.json()["slug"] == "account-a"


def test_it_lets_a_user_in_several_accounts_pick_one(api_client, alice, charlie):
    MembershipFactory(user=alice.user, account=charlie.account, role="viewer")

    response = api_client.get(
        f"/api/v1/auth?account={charlie.account.public_id}",
        HTTP_AUTHORIZATION=basic("alice@example.com", alice.password),
    )

    assert response.status_code == 200
    assert response.json()["account"]["slug"] == "account-b"
    assert response.json()["account"]["role"] == "viewer"
    assert {a["slug"] for a in response.json()["accounts"]} == {"account-a", "account-b"}


def test_it_will_not_issue_a_token_for_an_account_the_user_is_not_in(api_client, alice, charlie):
    response = api_client.get(
        f"/api/v1/auth?account={charlie.account.public_id}",
        HTTP_AUTHORIZATION=basic("alice@example.com", alice.password),
    )

    assert response.status_code == 404


def test_it_answers_401_with_the_error_body_for_a_wrong_password(api_client, alice):
    response = api_client.get("/api/v1/auth", HTTP_AUTHORIZATION=basic("alice@example.com", "wrong"))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


def test_it_answers_401_without_basic_credentials(api_client, alice):
    response = api_client.get("/api/v1/auth")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@override_settings(LOGIN_FAILURE_LIMIT=3)
def test_it_throttles_repeated_failures_even_with_the_right_password_afterwards(api_client, alice):
    for _ in range(3):
        assert api_client.get("/api/v1/auth", HTTP_AUTHORIZATION=basic("alice@example.com", "nope")).status_code == 401

    response = api_client.get("/api/v1/auth", HTTP_AUTHORIZATION=basic("alice@example.com", alice.password))

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) > 0


def test_it_rejects_a_tampered_token(api_client, alice, token_client):
    client = token_client(alice.user, alice.account)
    token = client._credentials["HTTP_AUTHORIZATION"].split(" ", 1)[1]

    response = api_client.get("/api/v1/account", HTTP_X_AUTH_TOKEN=token[:-2] + "xx")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


def test_it_signs_out_every_token_when_the_password_changes(alice, token_client):
    client = token_client(alice.user, alice.account)
    assert client.get("/api/v1/account").status_code == 200

    alice.user.set_password("a whole new password")
    alice.user.save()

    assert client.get("/api/v1/account").status_code == 401


def test_it_refuses_an_expired_token(alice, token_client, settings):
    client = token_client(alice.user, alice.account)

    with time_machine.travel(timezone.now() + settings.AUTH_TOKEN_TTL + timedelta(minutes=1)):
        response = client.get("/api/v1/account")

    assert response.status_code == 401


def test_it_refuses_a_token_once_the_user_left_the_account(alice, token_client):
    client = token_client(alice.user, alice.account)
    alice.membership.delete()

    assert client.get("/api/v1/account").status_code == 401

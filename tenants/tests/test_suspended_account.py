"""A suspended account keeps its data but every call is refused with a clear 403."""

from __future__ import annotations

import pytest

from tenants import services
from tenants.models import Account, ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def suspended(alice):
    services.account_set_status(account=alice.account, actor=None, status=Account.Status.SUSPENDED, reason="unpaid")
    return alice


def test_it_refuses_every_api_call_with_a_clear_403(alice_api, suspended):
    for url in ("/api/v1/account", "/api/v1/members", "/api/v1/api-keys", "/api/v1/audit-log"):
        response = alice_api.get(url)
        assert response.status_code == 403, url
        assert response.json()["error"]["code"] == "account_suspended"
        assert "suspended" in response.json()["error"]["message"]


def test_it_refuses_a_login_token_for_the_account(api_client, suspended):
    import base64

    basic = base64.b64encode(f"alice@example.com:{suspended.password}".encode()).decode()
    response = api_client.get("/api/v1/auth", HTTP_AUTHORIZATION=f"Basic {basic}")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "account_suspended"


def test_it_keeps_the_data_and_works_again_after_reactivation(alice_api, suspended):
    assert ApiKey.objects.for_account(suspended.account).count() == 1

    services.account_set_status(account=suspended.account, actor=None, status=Account.Status.ACTIVE)

    assert alice_api.get("/api/v1/account").status_code == 200


def test_it_answers_403_on_every_portal_page(client, suspended):
    client.force_login(suspended.user)

    response = client.get(f"/a/{suspended.account.slug}/")

    assert response.status_code == 403
    assert b"suspended" in response.content

"""Every API failure has the one body: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import path
from rest_framework.response import Response
from rest_framework.test import APIClient

from tenants.scoping import AccountScopedViewSet
from tenants.tests.factories import make_api_key

pytestmark = pytest.mark.django_db


def assert_error_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_a_validation_error_names_each_offending_field(alice, token_client):
    client = token_client(alice.user, alice.account)

    error = assert_error_shape(
        client.post("/api/v1/members", {"role": "emperor"}, format="json"), 400, "validation_error"
    )

    assert set(error["fields"]) == {"email", "role"}
    assert error["message"].startswith(("email:", "role:"))


def test_a_service_rule_is_reported_like_a_serializer_error(alice, token_client):
    client = token_client(alice.user, alice.account)

    error = assert_error_shape(
        client.patch(f"/api/v1/members/{alice.membership.public_id}", {"role": "viewer"}, format="json"),
        400,
        "last_owner",
    )

    assert error["fields"] == {"role": ["An account needs at least one owner."]}


def test_malformed_json_is_a_parse_error(alice, token_client):
    client = token_client(alice.user, alice.account)

    response = client.generic("POST", "/api/v1/api-keys", "{not json", content_type="application/json")

    assert_error_shape(response, 400, "parse_error")


def test_an_unknown_object_is_a_404(alice_api):
    assert_error_shape(alice_api.get("/api/v1/members/00000000-0000-0000-0000-000000000000"), 404, "not_found")


def test_an_unknown_api_path_is_a_404_with_the_same_body(alice_api):
    assert_error_shape(alice_api.get("/api/v1/no-such-thing"), 404, "not_found")


def test_a_missing_credential_is_a_401(api_client):
    assert_error_shape(api_client.get("/api/v1/members"), 401, "not_authenticated")


def test_a_method_the_resource_lacks_is_a_405(alice_api):
    assert_error_shape(alice_api.put("/api/v1/account", {}), 405, "method_not_allowed")


@override_settings(API_RATE_LIMIT="3/m")
def test_too_many_requests_is_a_429_with_retry_after(alice_api):
    for _ in range(3):
        assert alice_api.get("/api/v1/account").status_code == 200

    response = alice_api.get("/api/v1/account")

    assert_error_shape(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60


class Crashes(AccountScopedViewSet):
    def list(self, request):
        raise RuntimeError("boom")


class Fine(AccountScopedViewSet):
    def list(self, request):
        return Response({"ok": True})


urlpatterns = [
    path("api/v1/crash", Crashes.as_view({"get": "list"})),
    path("api/v1/fine", Fine.as_view({"get": "list"})),
]


def test_a_crash_is_a_500_with_the_same_body_and_no_details(alice_api, settings):
    settings.ROOT_URLCONF = __name__
    error = assert_error_shape(alice_api.get("/api/v1/crash"), 500, "server_error")

    assert "boom" not in error["message"]


def test_rate_limits_are_counted_per_key(alice, alice_api, settings):
    settings.ROOT_URLCONF = __name__
    settings.API_RATE_LIMIT = "2/m"
    other_secret, _ = make_api_key(alice.account, name="other")
    for _ in range(2):
        alice_api.get("/api/v1/fine")
    assert alice_api.get("/api/v1/fine").status_code == 429

    alice_api.credentials(HTTP_AUTHORIZATION=f"Bearer {other_secret}")

    assert alice_api.get("/api/v1/fine").status_code == 200


def test_a_key_can_carry_its_own_rate_limit(alice):
    secret, _ = make_api_key(alice.account, rate_limit="1/m")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert client.get("/api/v1/account").status_code == 200
    assert client.get("/api/v1/account").status_code == 429

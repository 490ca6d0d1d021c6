from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_the_openapi_document_is_public_and_lists_the_account_routes(client):
    response = client.get("/api/v1/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert {"/api/v1/auth", "/api/v1/account", "/api/v1/members", "/api/v1/api-keys/{id}"} <= set(schema["paths"])
    assert {"ApiKey", "AuthToken"} <= set(schema["components"]["securitySchemes"])
    assert "Error" in schema["components"]["schemas"]


def test_the_swagger_ui_is_served(client):
    response = client.get("/api/v1/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()

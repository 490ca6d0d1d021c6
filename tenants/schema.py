"""How our authentication classes appear in the OpenAPI document."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer pk_live_...`."}


class AuthTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.AuthTokenAuthentication"
    name = "AuthToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Auth-Token",
            "description": "A token from `GET /api/v1/auth`; also accepted as `Authorization: Bearer <token>`.",
        }

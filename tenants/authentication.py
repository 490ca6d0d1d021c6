"""DRF authentication: `Authorization: Bearer <api key | token>` or `X-Auth-Token: <token>` (Opentact's header)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from tenants.credentials import AccountCredential, find_api_key, looks_like_api_key, read_auth_token
from tenants.models import ApiKey, Role

# last_used_at is a hint, not a log: writing it at most this often keeps authentication read-only.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def bearer_value(request) -> str | None:
    header = authentication.get_authorization_header(request).decode("latin-1")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        secret = bearer_value(request)
        if secret is None or not looks_like_api_key(secret):
            return None
        key = find_api_key(secret)
        now = timezone.now()
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown API key.", code="invalid_api_key")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key was revoked.", code="api_key_revoked")
        if key.expires_at is not None and key.expires_at <= now:
            raise exceptions.AuthenticationFailed("This API key has expired.", code="api_key_expired")
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        role = Role.VIEWER if key.read_only else Role.DEVELOPER
        return key, AccountCredential(account=key.account, role=role, api_key=key)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class AuthTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        token = request.headers.get("X-Auth-Token") or bearer_value(request)
        if not token or looks_like_api_key(token):
            return None
        claims = read_auth_token(token)
        if claims is None:
            raise exceptions.AuthenticationFailed(
                "The token is invalid or has expired; get a new one from GET /api/v1/auth.", code="invalid_token"
            )
        credential = AccountCredential(account=claims.account, role=claims.membership.role, user=claims.user)
        return claims.user, credential

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'

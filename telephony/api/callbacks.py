"""API for the account's callback signing secret: /callback-signing-secret (masked) and .../rotate (shown once).

Status callbacks, extension event hooks and message callbacks are signed per Standard Webhooks with this one
account-level secret (webhook endpoints each have their own). See telephony/services/callbacks.py.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from portal.api import COMMON_ERRORS
from telephony.services import callbacks as services
from tenants.scoping import AccountScopedViewSet


class CallbackSigningSecretSerializer(serializers.Serializer):
    exists = serializers.BooleanField(help_text="False until the first callback is queued or the secret is rotated.")
    masked = serializers.CharField(allow_null=True, help_text="whsec_... and the last four characters.")
    created_at = serializers.DateTimeField(allow_null=True)
    secret_rotated_at = serializers.DateTimeField(allow_null=True)
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="Until then callbacks are signed with the new and the previous secret."
    )


class RotatedCallbackSecretSerializer(CallbackSigningSecretSerializer):
    secret = serializers.CharField(help_text="The new signing secret (whsec_...). Shown only in this response.")


def _data(info: services.SigningSecretInfo | None) -> dict:
    if info is None:
        return {"exists": False, "masked": None, "created_at": None, "secret_rotated_at": None,
                "previous_secret_expires_at": None}  # fmt: skip
    return {
        "exists": True,
        "masked": info.masked,
        "created_at": info.created_at,
        "secret_rotated_at": info.secret_rotated_at,
        "previous_secret_expires_at": info.previous_secret_expires_at,
    }


class CallbackSigningSecretViewSet(AccountScopedViewSet):
    """One per account, so no id in the path (and nothing for the isolation walk over object routes)."""

    serializer_class = CallbackSigningSecretSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        summary="The callback signing secret, masked",
        description="Status callbacks, extension event hooks and message callbacks carry Standard Webhooks "
        "headers (webhook-id, webhook-timestamp, webhook-signature) signed with this account-level secret. "
        "It is never shown again in clear: POST .../rotate to get a new one.",
        responses={200: CallbackSigningSecretSerializer, **COMMON_ERRORS},
    )
    def retrieve(self, request):
        return Response(CallbackSigningSecretSerializer(_data(services.callback_signing_secret_get(
            account=self.account))).data)  # fmt: skip

    @extend_schema(
        summary="Rotate the callback signing secret; the old one keeps signing beside the new one for 24 hours",
        request=None,
        responses={200: RotatedCallbackSecretSerializer, **COMMON_ERRORS},
    )
    def rotate(self, request):
        info = services.callback_signing_secret_rotate(account=self.account, actor=self.credential.actor)
        return Response(RotatedCallbackSecretSerializer({**_data(info), "secret": info.secret}).data)


urlpatterns = [
    path(
        "callback-signing-secret",
        CallbackSigningSecretViewSet.as_view({"get": "retrieve"}),
        name="callback-signing-secret",
    ),
    path(
        "callback-signing-secret/rotate",
        CallbackSigningSecretViewSet.as_view({"post": "rotate"}),
        name="callback-signing-secret-rotate",
    ),
]

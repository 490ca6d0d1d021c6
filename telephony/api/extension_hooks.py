"""API for a SIP user's event hooks (VoipNow CallAPI Events), nested under the user:

    GET/POST          /sip-users/{id}/event-hooks               (ListAll, Add)
    GET/PATCH/DELETE  /sip-users/{id}/event-hooks/{hook_id}     (Edit, Remove)

A mixin of the SIP user viewset, so the user is looked up within the account first: another account's user, or
a hook of another user, is a 404.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from portal.api import COMMON_ERRORS
from telephony.models import ExtensionHook
from telephony.services import extension_hooks as services
from tenants.scoping import parse_public_id


class ExtensionHookSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    sip_user = serializers.UUIDField(source="sip_user.public_id", read_only=True)

    class Meta:
        model = ExtensionHook
        fields = ["id", "sip_user", "event", "method", "url", "enabled", "notes", "created_at", "updated_at"]
        read_only_fields = fields


class ExtensionHookWriteSerializer(serializers.Serializer):
    event = serializers.ChoiceField(choices=ExtensionHook.Event.choices)
    method = serializers.ChoiceField(choices=ExtensionHook.Method.choices, default="POST")
    url = serializers.CharField(max_length=2000, help_text="Checked against the outbound URL policy.")
    enabled = serializers.BooleanField(default=True)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


HOOK_ID = OpenApiParameter("hook_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class ExtensionHookActions:
    """Mixed into SipUserViewSet (telephony/api/sip.py)."""

    def _hook(self, user, hook_id) -> ExtensionHook:
        parsed = parse_public_id(hook_id)
        hook = (
            ExtensionHook.objects.for_account(self.account).filter(sip_user=user, public_id=parsed).first()
            if parsed
            else None
        )
        if hook is None:
            raise NotFound
        return hook

    @extend_schema(
        methods=["GET"],
        summary="The SIP user's event hooks (VoipNow CallAPI Events: ListAll)",
        responses={200: ExtensionHookSerializer(many=True), **COMMON_ERRORS},
    )
    @extend_schema(
        methods=["POST"],
        summary="Add an event hook: an HTTP request on dial-in, dial-out, answer or hangup",
        description="Each request carries CallID, CallerIDNum, CallerIDName (and CallerIDNam), CalledDID, "
        "CalledExtension, CallStatus, CallFlow, CallerExtension and CalledNumber: in the query string for GET, "
        "form-encoded in the body for POST. Delivered, signed and retried like webhooks.",
        request=ExtensionHookWriteSerializer,
        responses={201: ExtensionHookSerializer, **COMMON_ERRORS},
    )
    @action(detail=True, methods=["get", "post"], url_path="event-hooks", url_name="event-hooks")
    def event_hooks(self, request, id=None):
        user = self.get_object()
        if request.method == "POST":
            data = ExtensionHookWriteSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            hook = services.extension_hook_create(
                account=self.account, actor=self.credential.actor, sip_user=user, **data.validated_data
            )
            return Response(ExtensionHookSerializer(hook).data, status=status.HTTP_201_CREATED)
        hooks = ExtensionHook.objects.for_account(self.account).filter(sip_user=user).select_related("sip_user")
        page = self.paginate_queryset(hooks)
        return self.get_paginated_response(ExtensionHookSerializer(page, many=True).data)

    @extend_schema(
        methods=["GET"],
        summary="Get an event hook",
        parameters=[HOOK_ID],
        responses={200: ExtensionHookSerializer, **COMMON_ERRORS},
    )
    @extend_schema(
        methods=["PATCH"],
        summary="Edit an event hook",
        parameters=[HOOK_ID],
        request=ExtensionHookWriteSerializer,
        responses={200: ExtensionHookSerializer, **COMMON_ERRORS},
    )
    @extend_schema(
        methods=["DELETE"], summary="Remove an event hook", parameters=[HOOK_ID], responses={204: None, **COMMON_ERRORS}
    )
    @action(
        detail=True,
        methods=["get", "patch", "delete"],
        url_path=r"event-hooks/(?P<hook_id>[^/.]+)",
        url_name="event-hook-detail",
    )
    def event_hook(self, request, id=None, hook_id=None):
        hook = self._hook(self.get_object(), hook_id)
        if request.method == "DELETE":
            services.extension_hook_delete(account=self.account, actor=self.credential.actor, hook=hook)
            return Response(status=status.HTTP_204_NO_CONTENT)
        if request.method == "PATCH":
            data = ExtensionHookWriteSerializer(data=request.data, partial=True)
            data.is_valid(raise_exception=True)
            hook = services.extension_hook_update(
                account=self.account, actor=self.credential.actor, hook=hook, **data.validated_data
            )
        return Response(ExtensionHookSerializer(hook).data)

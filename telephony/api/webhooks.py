"""API for webhooks: /webhooks (endpoints, their secret, test sends, recovery) and /deliveries (with attempts, replay).

A signing secret appears in exactly two responses: the endpoint's creation and a rotation. No serializer
here reads the stored (encrypted) secret.
"""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.api import COMMON_ERRORS, CursorPagination, router
from telephony import delivery as engine
from telephony.filtersets.events import DeliveryFilterSet, WebhookEndpointFilterSet
from telephony.models import Delivery, DeliveryAttempt, WebhookEndpoint
from telephony.services import webhooks as services
from tenants.scoping import AccountScopedViewSet

# --- Endpoints -----------------------------------------------------------------------------------------


class WebhookEndpointSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    event_types = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id", "url", "description", "event_types", "enabled", "rate_limit", "payload_format", "disabled_at",
            "disabled_reason", "failing_since", "last_success_at", "last_failure_at", "consecutive_failures",
            "circuit_open_until", "secret_rotated_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret (whsec_...). Shown only in this response: store it now."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointWriteSerializer(serializers.Serializer):
    """Shape only; the URL policy and the event-type catalogue are checked by the service."""

    url = serializers.CharField(max_length=2000, help_text="http(s) URL on a public address.")
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=100,
        help_text='Event types to send: names from GET /api/v1/event-types, families like "call.*", or "*" '
        '(the default).',
    )  # fmt: skip
    enabled = serializers.BooleanField(required=False)
    rate_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=100_000, help_text="Most deliveries per second."
    )
    payload_format = serializers.ChoiceField(
        choices=WebhookEndpoint.PayloadFormat.choices, required=False,
        help_text="json (default), or form: Restcomm/Twilio-style form fields for status-callback receivers.",
    )  # fmt: skip


class RotatedSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new signing secret. Shown only in this response.")
    previous_secret_expires_at = serializers.DateTimeField(
        help_text="Until then every request is signed with both the new and the previous secret."
    )


class RecoverSerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Re-send every failed delivery created since this time.")


class TestSendSerializer(serializers.Serializer):
    event_type = serializers.CharField(
        required=False, default="webhook.test", max_length=64, help_text="Which sample to send; default webhook.test."
    )


# --- Deliveries ----------------------------------------------------------------------------------------


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = [
            "number", "trigger", "attempted_at", "duration_ms", "status_code", "response_excerpt", "error",
            "request_method", "request_url", "request_headers", "response_headers",
        ]  # fmt: skip
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    event = serializers.UUIDField(source="event.public_id", read_only=True, allow_null=True, default=None)
    event_type = serializers.CharField(read_only=True)
    message_id = serializers.CharField(
        read_only=True, help_text="The webhook-id header: the event's id (a callback's: the delivery's id)."
    )
    webhook = serializers.SerializerMethodField(help_text="The webhook endpoint; null for a callback.")
    url = serializers.CharField(source="target_url", read_only=True, help_text="Where it is sent.")
    call = serializers.UUIDField(
        source="call.public_id", read_only=True, allow_null=True, default=None, help_text="A call's callback: the call."
    )

    class Meta:
        model = Delivery
        fields = [
            "id", "event", "event_type", "message_id", "webhook", "kind", "url", "method", "fallback_url", "call",
            "object_type", "object_id", "status", "attempt_count", "next_attempt_at", "last_attempt_at",
            "last_status_code", "last_error", "delivered_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.UUID)
    def get_webhook(self, delivery) -> str | None:
        if delivery.endpoint.purpose != WebhookEndpoint.Purpose.WEBHOOK:
            return None
        return str(delivery.endpoint.public_id)


class DeliveryDetailSerializer(DeliverySerializer):
    attempts = DeliveryAttemptSerializer(many=True, read_only=True)
    payload = serializers.SerializerMethodField(
        help_text="The JSON body this delivery sends (a callback: its fields, sent as a form, query or JSON)."
    )

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "payload", "attempts"]
        read_only_fields = fields

    def get_payload(self, delivery) -> dict:
        return engine.envelope(delivery)


class DeliveryPagination(CursorPagination):
    ordering = ("-id",)


_DELIVERIES = Delivery.objects.select_related("event", "endpoint", "account", "call")


@extend_schema_view(
    list=extend_schema(summary="List webhook endpoints", responses={
        200: WebhookEndpointSerializer(many=True), **COMMON_ERRORS}),
    retrieve=extend_schema(summary="Get a webhook endpoint (never its secret)",
                           responses={200: WebhookEndpointSerializer, **COMMON_ERRORS}),
    create=extend_schema(
        summary="Add a webhook endpoint; the response carries its signing secret, once",
        description="Requests are signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature). "
        "The URL must be http(s) on a public address: loopback, private, link-local and similar addresses are "
        "refused, now and again when each request is made.",
        request=WebhookEndpointWriteSerializer, responses={201: WebhookEndpointCreatedSerializer, **COMMON_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a webhook endpoint; enabling it again resets its failure streak",
        request=WebhookEndpointWriteSerializer, responses={200: WebhookEndpointSerializer, **COMMON_ERRORS},
    ),
    destroy=extend_schema(summary="Delete a webhook endpoint and its delivery history",
                          responses={204: None, **COMMON_ERRORS}),
)  # fmt: skip
class WebhookEndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = WebhookEndpoint.objects.webhooks()  # callback URLs' hidden endpoints are not the customer's to manage
    serializer_class = WebhookEndpointSerializer
    filterset_class = WebhookEndpointFilterSet
    ordering_fields = ["created_at", "url"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request):
        data = WebhookEndpointWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = services.webhook_endpoint_create(
            account=self.account, actor=self.credential.actor, **data.validated_data
        )
        created.endpoint.secret = created.secret
        return Response(WebhookEndpointCreatedSerializer(created.endpoint).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, id=None):
        endpoint = self.get_object()
        data = WebhookEndpointWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(
            account=self.account, actor=self.credential.actor, endpoint=endpoint, **data.validated_data
        )
        return Response(WebhookEndpointSerializer(endpoint).data)

    def destroy(self, request, id=None):
        services.webhook_endpoint_delete(account=self.account, actor=self.credential.actor, endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rotate the signing secret; the old one keeps signing beside the new one for 24 hours",
        request=None,
        responses={200: RotatedSecretSerializer, **COMMON_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, id=None):
        rotated = services.webhook_endpoint_rotate_secret(
            account=self.account, actor=self.credential.actor, endpoint=self.get_object()
        )
        return Response(
            RotatedSecretSerializer(
                {"secret": rotated.secret, "previous_secret_expires_at": rotated.endpoint.previous_secret_expires_at}
            ).data
        )

    @extend_schema(
        summary="Re-send every failed delivery to this endpoint since a time",
        request=RecoverSerializer,
        responses={
            202: inline_serializer("RecoverResult", {"requeued": serializers.IntegerField()}),
            **COMMON_ERRORS,
        },
    )
    @action(detail=True, methods=["post"])
    def recover(self, request, id=None):
        data = RecoverSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        requeued = services.webhook_endpoint_recover(
            account=self.account, actor=self.credential.actor, endpoint=self.get_object(), **data.validated_data
        )
        return Response({"requeued": requeued}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Send a sample event to this endpoint (once, no retries); follow it at GET /deliveries/{id}",
        request=TestSendSerializer,
        responses={202: DeliverySerializer, **COMMON_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, id=None):
        data = TestSendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        delivery = services.webhook_endpoint_send_test(
            account=self.account, actor=self.credential.actor, endpoint=self.get_object(), **data.validated_data
        )
        delivery = _DELIVERIES.get(pk=delivery.pk)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="This endpoint's deliveries, newest first",
        parameters=[
            OpenApiParameter("status", str, enum=Delivery.Status.values),
            OpenApiParameter("event_type", str, description='An event type or a family like "call.*".'),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME),
        ],
        responses={200: DeliverySerializer(many=True), **COMMON_ERRORS},
    )
    @action(detail=True, methods=["get"], pagination_class=DeliveryPagination)
    def deliveries(self, request, id=None):
        endpoint = self.get_object()
        filters = DeliveryFilterSet(
            request.query_params, queryset=_DELIVERIES.for_account(self.account).filter(endpoint=endpoint)
        )
        if not filters.is_valid():
            raise serializers.ValidationError(filters.errors)
        page = self.paginate_queryset(filters.qs)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)


@extend_schema_view(
    list=extend_schema(summary="List deliveries, newest first",
                       description="Events sent to webhook endpoints (kind `event`, `test`) and callbacks sent to "
                       "URLs given for one object (kind `status_callback`, `extension_hook`, `message_callback`, "
                       "`dial_action`: "
                       "`url`, `method`, and the `call` or `object_type`/`object_id` they report on).",
                       responses={200: DeliverySerializer(many=True), **COMMON_ERRORS}),
    retrieve=extend_schema(summary="Get a delivery with its payload and every attempt",
                           responses={200: DeliveryDetailSerializer, **COMMON_ERRORS}),
)  # fmt: skip
class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = _DELIVERIES
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilterSet
    pagination_class = DeliveryPagination
    filter_backends = [DjangoFilterBackend]

    def get_serializer_class(self):
        return DeliveryDetailSerializer if self.action == "retrieve" else DeliverySerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("attempts")
        return queryset

    @extend_schema(
        summary="Send this delivery again now, with the same webhook-id; retries start over",
        request=None,
        responses={202: DeliverySerializer, **COMMON_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def replay(self, request, id=None):
        delivery = services.delivery_replay(
            account=self.account, actor=self.credential.actor, delivery=self.get_object()
        )
        return Response(DeliverySerializer(_DELIVERIES.get(pk=delivery.pk)).data, status=status.HTTP_202_ACCEPTED)


router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("deliveries", DeliveryViewSet, basename="delivery")

urlpatterns: list = []

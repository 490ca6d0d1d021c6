"""API for event subscriptions: /event-subscriptions, what the account's websocket connections (/ws/events) receive."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from portal.api import COMMON_ERRORS, router
from telephony.models import EventSubscription
from telephony.services import stream as services
from tenants.scoping import AccountScopedViewSet

STREAM_DESCRIPTION = (
    "A websocket connection to `/ws/events` receives the account's events that match any of the account's "
    "active, unexpired subscriptions, or any subscription it made on the socket itself. Within a subscription, "
    "the type must match one of `event_types` and the event must reference every filter that is set: `number` "
    "(the event's `data.from`, `data.to` or `data.number`, or a number's own provisioning change), `app` (a "
    "call-control app: the object, or `data.call_control_app_id`) and `call` (the object, or `data.call_id`, "
    "`parent_call_id`, `bridged_call_id`). Changes apply to open connections at once."
)


class FiltersSerializer(serializers.Serializer):
    number = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=32,
                                   help_text="E.164, e.g. +12015550123.")  # fmt: skip
    app = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=64,
                                help_text="A call-control app id of this account.")  # fmt: skip
    call = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=64,
                                 help_text="A call id.")  # fmt: skip

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {unknown[0]: [f"Unknown filter; filters are {', '.join(self.fields)}."]}, code="unknown_filter"
                )
        return super().to_internal_value(data)


class EventSubscriptionSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    filters = FiltersSerializer(read_only=True)
    state = serializers.ChoiceField(
        choices=["active", "paused", "expired"], read_only=True, help_text="paused: is_active is false."
    )

    class Meta:
        model = EventSubscription
        fields = ["id", "event_types", "filters", "expires_at", "is_active", "state", "created_at", "updated_at"]
        read_only_fields = fields


class EventSubscriptionWriteSerializer(serializers.Serializer):
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64),
        max_length=100,
        help_text='Types or patterns from GET /api/v1/event-types: "call.ringing", "call.*", "*".',
    )
    filters = FiltersSerializer(required=False, allow_null=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Empty: never expires.")
    is_active = serializers.BooleanField(required=False, default=True)


@extend_schema_view(
    list=extend_schema(
        summary="List event subscriptions",
        description=STREAM_DESCRIPTION,
        responses={200: EventSubscriptionSerializer(many=True), **COMMON_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Get an event subscription", responses={200: EventSubscriptionSerializer, **COMMON_ERRORS}
    ),
    create=extend_schema(
        summary="Subscribe the account's websocket connections to events",
        description=STREAM_DESCRIPTION,
        request=EventSubscriptionWriteSerializer,
        responses={201: EventSubscriptionSerializer, **COMMON_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change an event subscription (pause it with is_active=false); filters replace all three",
        request=EventSubscriptionWriteSerializer,
        responses={200: EventSubscriptionSerializer, **COMMON_ERRORS},
    ),
    destroy=extend_schema(summary="Delete an event subscription", responses={204: None, **COMMON_ERRORS}),
)
class EventSubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = EventSubscription.objects.all()
    serializer_class = EventSubscriptionSerializer
    ordering_fields = ["created_at", "expires_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request):
        data = EventSubscriptionWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = services.event_subscription_create(
            account=self.account, actor=self.credential.actor, **data.validated_data
        )
        return Response(EventSubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, id=None):
        subscription = self.get_object()
        data = EventSubscriptionWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        subscription = services.event_subscription_update(
            account=self.account, actor=self.credential.actor, subscription=subscription, **data.validated_data
        )
        return Response(EventSubscriptionSerializer(subscription).data)

    def destroy(self, request, id=None):
        services.event_subscription_delete(
            account=self.account, actor=self.credential.actor, subscription=self.get_object()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


router.register("event-subscriptions", EventSubscriptionViewSet, basename="event-subscription")
# Everything is on the router; kept so telephony/api/urls.py treats every area alike.
urlpatterns: list = []

"""API for events: /events (the account's event log, filterable and resumable) and /event-types (the catalogue)."""

from __future__ import annotations

from django.http import Http404
from django.urls import path
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.response import Response

from portal.api import COMMON_ERRORS, CursorPagination, router
from telephony import event_types
from telephony.filtersets.events import EventFilterSet
from telephony.models import Event
from tenants.scoping import AccountScopedViewSet


@extend_schema_field(event_types.data_schema_for_openapi())
class EventDataField(serializers.JSONField):
    """The event's `data`, documented as one of the catalogue's schemas."""


class EventObjectSerializer(serializers.Serializer):
    type = serializers.CharField(source="object_type", help_text="e.g. call, message, number, sip_user.")
    id = serializers.CharField(source="object_id")


class EventSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    object = EventObjectSerializer(source="*", read_only=True)
    data = EventDataField(source="payload", read_only=True)
    sequence = serializers.IntegerField(
        read_only=True, help_text="1, 2, 3... per object, in the order the changes were made."
    )

    class Meta:
        model = Event
        fields = ["id", "type", "occurred_at", "created_at", "object", "sequence", "data"]
        read_only_fields = fields


class EventTypeSerializer(serializers.Serializer):
    name = serializers.CharField(help_text='The type, or a family such as "sip_user.*" whose members share a schema.')
    family = serializers.BooleanField(source="is_family")
    description = serializers.CharField()
    schema = serializers.JSONField(help_text="JSON schema of the event's `data`.")
    example = serializers.JSONField(help_text="An example `data`.")


class EventPagination(CursorPagination):
    """Newest first; with `after`, oldest first from that event on, which is how a consumer catches up."""

    ordering = ("-id",)

    def get_ordering(self, request, queryset, view):
        return ("id",) if request.query_params.get("after") else ("-id",)


@extend_schema_view(
    list=extend_schema(
        summary="List the account's events",
        description="Events are kept for EVENT_RETENTION_DAYS (default 30). Without `after` the newest come first; "
        "with `after=<event id>` the events recorded after it come oldest first, so a consumer resumes a feed "
        "from the last id it processed. Each type's `data` schema is listed at GET /api/v1/event-types.",
        responses={200: EventSerializer(many=True), **COMMON_ERRORS},
    ),
    retrieve=extend_schema(summary="Get an event", responses={200: EventSerializer, **COMMON_ERRORS}),
)
class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = Event.objects.all()
    serializer_class = EventSerializer
    filterset_class = EventFilterSet
    pagination_class = EventPagination
    filter_backends = [DjangoFilterBackend]


@extend_schema_view(
    list=extend_schema(
        summary="The event catalogue: every event type, its description and the JSON schema of its data",
        description="Webhook endpoints subscribe to these names, to families such as `call.*`, or to `*`. "
        "Every delivery's body is `{id, type, occurred_at, account, object: {type, id}, sequence, data}`.",
        parameters=[OpenApiParameter("family", str, description='Only types starting with this, e.g. "call".')],
        responses={200: EventTypeSerializer(many=True), **COMMON_ERRORS},
    ),
    retrieve=extend_schema(summary="One event type", responses={200: EventTypeSerializer, **COMMON_ERRORS}),
)
class EventTypeViewSet(AccountScopedViewSet):
    """The catalogue is the same for every account; it sits behind a credential like the rest of the API."""

    serializer_class = EventTypeSerializer
    pagination_class = None
    filter_backends: list = []

    def list(self, request):
        entries = event_types.CATALOGUE
        family = request.query_params.get("family")
        if family:
            entries = [entry for entry in entries if entry.prefix == family]
        return Response(EventTypeSerializer(entries, many=True).data)

    def retrieve(self, request, name=None):
        entry = next((entry for entry in event_types.CATALOGUE if entry.name == name), None)
        if entry is None:
            raise Http404
        return Response(EventTypeSerializer(entry).data)


router.register("events", EventViewSet, basename="event")

# Not on the router: the catalogue is not a model (the isolation walk over the router is for account rows),
# and a plain path lets the name hold a dot and a star, e.g. /event-types/sip_user.*.
urlpatterns = [
    path("event-types", EventTypeViewSet.as_view({"get": "list"}), name="event-type-list"),
    path("event-types/<str:name>", EventTypeViewSet.as_view({"get": "retrieve"}), name="event-type-detail"),
]

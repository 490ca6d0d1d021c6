"""API for call records: /calls (each leg one record, newest first, cursor-paginated) and /calls/{id}.

A call's detail carries its legs (the legs it placed, e.g. a Dial's B-legs) and its timeline: the events of
the call and its legs, the flow commands they ran, every HTTP request made to the customer's servers with
each attempt, and the webhook deliveries of those events, in one list ordered by time. Calls are written
by the call engine, never through this API.
"""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.response import Response

from portal.api import COMMON_ERRORS, CursorPagination, router
from telephony import q850
from telephony.filtersets.calls import CallFilterSet
from telephony.models import Call
from telephony.selectors import call_durations, call_timeline
from tenants.scoping import AccountScopedViewSet


class CallNumberSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    number = serializers.CharField()


class CallSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    parent = serializers.UUIDField(
        source="parent.public_id", read_only=True, allow_null=True, default=None, help_text="The A-leg, on a B-leg."
    )
    from_ = serializers.CharField(source="from_number", read_only=True, help_text="E.164, a SIP URI or anonymous.")
    to = serializers.CharField(source="to_number", read_only=True)
    q850_cause_string = serializers.SerializerMethodField(help_text="e.g. NORMAL_CLEARING for 16.")
    phone_number = CallNumberSerializer(read_only=True, allow_null=True, help_text="The account's number it used.")
    call_control_app = serializers.UUIDField(source="app.public_id", read_only=True, allow_null=True, default=None)
    sip_user = serializers.UUIDField(source="sip_user.public_id", read_only=True, allow_null=True, default=None)
    sip_connection = serializers.UUIDField(
        source="sip_connection.public_id", read_only=True, allow_null=True, default=None
    )
    ring_time = serializers.SerializerMethodField(
        help_text="Seconds from ringing to answer (or to the end if unanswered); null if it never rang."
    )
    talk_time = serializers.SerializerMethodField(help_text="Seconds from answer to end; 0 if never answered.")

    class Meta:
        model = Call
        fields = [
            "id", "parent", "direction", "from_", "to", "status", "q850_cause", "q850_cause_string", "sip_code",
            "end_reason", "tag", "source", "switch_call_id", "phone_number", "call_control_app", "sip_user",
            "sip_connection", "created_at", "initiated_at", "ringing_at", "answered_at", "ended_at", "ring_time",
            "talk_time",
        ]  # fmt: skip
        read_only_fields = fields

    def get_fields(self):
        # `from` is a Python keyword, so the field is declared as `from_` and renamed here, in order.
        return {("from" if name == "from_" else name): field for name, field in super().get_fields().items()}

    def get_q850_cause_string(self, call) -> str | None:
        return q850.cause_name(call.q850_cause)

    def get_ring_time(self, call) -> int | None:
        return call_durations(call)["ring_time"]

    def get_talk_time(self, call) -> int:
        return call_durations(call)["talk_time"]


class TimelineAttemptSerializer(serializers.Serializer):
    at = serializers.DateTimeField(allow_null=True, required=False)
    duration_ms = serializers.IntegerField(allow_null=True, required=False)
    status_code = serializers.IntegerField(allow_null=True, required=False)
    error = serializers.CharField(allow_null=True, allow_blank=True, required=False)


class TimelineEventSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.CharField(help_text="e.g. call.ringing; see GET /api/v1/event-types.")
    sequence = serializers.IntegerField()
    data = serializers.JSONField()


class TimelineCommandSerializer(serializers.Serializer):
    event_id = serializers.UUIDField(help_text="The call.flow event that reported it.")
    name = serializers.CharField(help_text="The XML command, e.g. Answer, Gather.")
    path = serializers.CharField(help_text="Where in the document, e.g. Response/Gather[0].")
    tag = serializers.CharField(allow_null=True)
    success = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_null=True)
    line = serializers.IntegerField(allow_null=True, help_text="The command's line in the flow document.")


class TimelineHttpRequestSerializer(serializers.Serializer):
    purpose = serializers.CharField(help_text="call_flow_url, fallback_url, callback, dial_action, status_callback...")
    command_path = serializers.CharField(allow_blank=True)
    method = serializers.CharField()
    url = serializers.CharField()
    request_body = serializers.CharField(allow_blank=True)
    outcome = serializers.CharField(help_text="ok, http_error, timeout, refused, invalid_xml...")
    response_status = serializers.IntegerField(allow_null=True)
    response_excerpt = serializers.CharField(allow_blank=True)
    duration_ms = serializers.IntegerField(help_text="All attempts together.")
    attempts = TimelineAttemptSerializer(many=True)


class TimelineDeliveryAttemptSerializer(TimelineAttemptSerializer):
    number = serializers.IntegerField()
    trigger = serializers.CharField()
    response_excerpt = serializers.CharField(allow_blank=True)


class TimelineDeliverySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    event_id = serializers.UUIDField()
    event_type = serializers.CharField()
    url = serializers.CharField(help_text="The webhook endpoint's URL.")
    status = serializers.CharField(help_text="pending, delivered or failed.")
    attempt_count = serializers.IntegerField()
    attempts = TimelineDeliveryAttemptSerializer(many=True)


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(
        choices=["event", "command", "http_request", "webhook_delivery"],
        help_text="Which one of event, command, http_request and webhook_delivery the entry carries.",
    )
    call_id = serializers.UUIDField(help_text="The leg it happened on: this call or one of its legs.")
    event = TimelineEventSerializer(required=False)
    command = TimelineCommandSerializer(required=False)
    http_request = TimelineHttpRequestSerializer(required=False)
    webhook_delivery = TimelineDeliverySerializer(required=False)


class CallDetailSerializer(CallSerializer):
    """The call with its legs and timeline; the view sets `legs` and `timeline` on the call before serializing."""

    legs = CallSerializer(many=True, read_only=True, help_text="The legs this call placed (e.g. a Dial's B-legs).")
    timeline = TimelineEntrySerializer(many=True, read_only=True, source="timeline.entries")
    timeline_truncated = serializers.BooleanField(
        read_only=True, source="timeline.truncated", help_text="True when a very long call's oldest rows were cut."
    )

    class Meta(CallSerializer.Meta):
        fields = [*CallSerializer.Meta.fields, "legs", "timeline", "timeline_truncated"]
        read_only_fields = fields


_RELATED = ("parent", "phone_number", "app", "sip_user", "sip_connection")


@extend_schema_view(
    list=extend_schema(
        summary="List calls, newest first",
        description="Every leg is a call record; a B-leg names its A-leg in `parent`. Paginated with opaque cursors "
        "(`next`, `previous`). `status` takes several values, repeated or separated by commas. `number` (E.164 or a "
        "number id) finds calls from or to that number, or that used it.",
        responses={200: CallSerializer(many=True), **COMMON_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Get a call with its legs and its timeline",
        description="The timeline merges, in time order, the events of the call and its legs (`call.flow` events "
        "appear as `command` entries: the flow's executed commands), each HTTP request made to your servers for "
        "them with every attempt, and the webhook deliveries of those events.",
        responses={200: CallDetailSerializer, **COMMON_ERRORS},
    ),
)
class CallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = Call.objects.select_related(*_RELATED)
    serializer_class = CallSerializer
    filterset_class = CallFilterSet
    pagination_class = CursorPagination  # newest first: -created_at, -id
    filter_backends = [DjangoFilterBackend]

    def retrieve(self, request, id=None):
        call = self.get_object()
        call.legs = list(call.children.select_related(*_RELATED).order_by("created_at", "id"))
        call.timeline = call_timeline(call, legs=call.legs)
        return Response(CallDetailSerializer(call, context=self.get_serializer_context()).data)


router.register("calls", CallViewSet, basename="call")

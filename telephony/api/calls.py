"""API for calls: the call log (/calls, /calls/{id}, /calls/export), placing calls and controlling live ones.

A call's detail carries its legs (the legs it placed, e.g. a Dial's B-legs) and its timeline: the events of
the call and its legs, the flow commands they ran, every HTTP request made to the customer's servers with
each attempt, and the webhook deliveries of those events, in one list ordered by time. POST /calls places an
outbound call (telephony/services/outbound.py); hangup, redirect, play, send-digits and bridge ask the engine
to act on a live call. Call records are written by the call engine only.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import StreamingHttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.api import COMMON_ERRORS, CursorPagination, ErrorResponse, router
from telephony import q850
from telephony.exports import HEADER as EXPORT_HEADER
from telephony.exports import call_csv_chunks
from telephony.filtersets.calls import CallFilterSet
from telephony.models import Call, CallControlApp
from telephony.selectors import call_durations, call_timeline
from telephony.services import outbound
from telephony.services.calls import STATUS_CALLBACK_EVENTS
from tenants.scoping import AccountScopedViewSet, get_for_account


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


class TimelineCallbackAttemptSerializer(TimelineDeliveryAttemptSerializer):
    url = serializers.CharField(help_text="Where this attempt went: the URL, its fallback, with a GET's query.")


class TimelineCallbackSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The delivery (GET /api/v1/deliveries/{id}); also the webhook-id header.")
    kind = serializers.CharField(help_text="status_callback or extension_hook.")
    method = serializers.CharField()
    url = serializers.CharField()
    fallback_url = serializers.CharField(allow_blank=True)
    params = serializers.JSONField(help_text="The fields sent (an object).")
    status = serializers.CharField(help_text="pending, delivered or failed.")
    attempt_count = serializers.IntegerField()
    attempts = TimelineCallbackAttemptSerializer(many=True)


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(
        choices=["event", "command", "http_request", "webhook_delivery", "callback"],
        help_text="Which one of event, command, http_request, webhook_delivery and callback the entry carries.",
    )
    call_id = serializers.UUIDField(help_text="The leg it happened on: this call or one of its legs.")
    event = TimelineEventSerializer(required=False)
    command = TimelineCommandSerializer(required=False)
    http_request = TimelineHttpRequestSerializer(required=False)
    webhook_delivery = TimelineDeliverySerializer(required=False)
    callback = TimelineCallbackSerializer(required=False, help_text="A status callback or extension hook, sent.")


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


class CallbackEventsField(serializers.ListField):
    """A list of event names, or one string separated by commas or spaces (Restcomm's form)."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = data.replace(",", " ").split()
        return super().to_internal_value(data)


class CallCreateSerializer(serializers.Serializer):
    from_ = serializers.CharField(
        max_length=255,
        help_text="One of your voice-enabled numbers (E.164), or a SIP user of yours (sip:login@domain).",
    )
    to = serializers.CharField(max_length=255, help_text="E.164 number or SIP URI.")
    app = serializers.UUIDField(required=False, allow_null=True, help_text="Run this call-control app on answer.")
    xml = serializers.CharField(required=False, allow_blank=True, help_text="Or run this flow document on answer.")
    url = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Or fetch the flow from this URL on answer."
    )
    method = serializers.ChoiceField(choices=["GET", "POST"], default="POST", help_text="For `url`.")
    timeout = serializers.IntegerField(
        default=30, min_value=1, max_value=outbound.MAX_TIMEOUT_S, help_text="Ring time, seconds."
    )
    time_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="Longest the call may last once answered, seconds."
    )
    status_callback = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    status_callback_method = serializers.ChoiceField(choices=["GET", "POST"], default="POST")
    status_callback_events = CallbackEventsField(
        child=serializers.ChoiceField(choices=list(STATUS_CALLBACK_EVENTS)),
        required=False,
        help_text="Of initiated, ringing, answered, completed (a list, or one string with commas); "
        "none: completed only.",
    )
    tag = serializers.CharField(required=False, allow_blank=True, max_length=255)

    def get_fields(self):
        return {("from" if name == "from_" else name): field for name, field in super().get_fields().items()}


class RedirectSerializer(serializers.Serializer):
    xml = serializers.CharField(required=False, allow_blank=True, help_text="The flow that replaces the rest.")
    url = serializers.CharField(required=False, allow_blank=True, max_length=2000, help_text="Or fetch it now.")
    method = serializers.ChoiceField(choices=["GET", "POST"], default="POST")


class PlaySerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, help_text="An mp3 or wav file.")
    loop = serializers.IntegerField(default=1, min_value=1, max_value=100)


class SendDigitsSerializer(serializers.Serializer):
    digits = serializers.RegexField(
        r"^[0-9*#A-DwW]{1,64}$", help_text="0-9, *, #, A-D; w waits half a second, W a second."
    )


class BridgeSerializer(serializers.Serializer):
    call_a = serializers.UUIDField(help_text="An answered call of yours (an A-leg); call.bridged is raised on it.")
    call_b = serializers.UUIDField(help_text="Another answered call of yours.")


class BridgeResultSerializer(serializers.Serializer):
    call_a = CallSerializer()
    call_b = CallSerializer()


class CallConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "call_finished"
    default_detail = "The call has already ended."


CONTROL_ERRORS = {
    **COMMON_ERRORS,
    409: OpenApiResponse(
        ErrorResponse,
        description="`call_finished`: the call has ended; `call_not_controllable`: not now (e.g. not answered yet).",
    ),
}


def _conflict(exc: Exception) -> CallConflict:
    if isinstance(exc, outbound.CallFinished):
        return CallConflict(detail=str(exc), code="call_finished")
    return CallConflict(detail=str(exc), code="call_not_controllable")


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
        "them with every attempt, the webhook deliveries of those events, and the legs' callbacks (status "
        "callbacks, extension hooks) with every attempt.",
        responses={200: CallDetailSerializer, **COMMON_ERRORS},
    ),
    create=extend_schema(
        summary="Place an outbound call",
        description="Answers the call in status `queued`; it is dispatched at your account's pace (calls per "
        "second, concurrent calls) and moves through initiated, ringing, in-progress to its end, with its events "
        "and status callbacks. What runs on answer: one of `app`, `xml`, `url`. Validation errors name the field: "
        "an unknown or not voice-enabled `from`, a `to` that is not E.164 / a SIP URI or that your destination "
        "policy refuses (country, premium rate), XML errors with their line, a URL the outbound URL policy refuses. "
        "A call that would wait longer than your maximum queue wait is answered `failed` with the reason.",
        request=CallCreateSerializer,
        responses={201: CallSerializer, **COMMON_ERRORS},
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

    def create(self, request):
        data = CallCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        app = None
        if values.get("app"):
            try:
                app = get_for_account(CallControlApp, self.account, values["app"])
            except CallControlApp.DoesNotExist:
                raise DjangoValidationError({"app": ["No such call-control app."]}, code="not_found") from None
        call = outbound.call_place(
            account=self.account,
            actor=self.credential.actor,
            from_=values["from"],
            to=values["to"],
            app=app,
            xml=values.get("xml", ""),
            url=values.get("url", ""),
            method=values["method"],
            timeout_s=values["timeout"],
            time_limit_s=values.get("time_limit"),
            status_callback=values.get("status_callback", ""),
            status_callback_method=values["status_callback_method"],
            status_callback_events=values.get("status_callback_events"),
            tag=values.get("tag", ""),
        )
        # Not read back: the placed call carries its related rows (number, app, SIP user) as the service found them.
        return Response(CallSerializer(call).data, status=status.HTTP_201_CREATED)

    def _control(self, action_name: str, **params):
        call = self.get_object()
        try:
            call = outbound.call_control(
                account=self.account, actor=self.credential.actor, call=call, action=action_name, **params
            )
        except (outbound.CallFinished, outbound.CallNotControllable) as exc:
            raise _conflict(exc) from exc
        call = Call.objects.select_related(*_RELATED).get(pk=call.pk)
        return Response(CallSerializer(call).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Hang up a live call",
        description="An A-leg ends the whole call (a queued or ringing one is canceled); a Dial's leg ends alone "
        "and the Dial goes on. Accepted (202): the engine applies it within moments. 409 on an ended call.",
        request=None,
        responses={202: CallSerializer, **CONTROL_ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def hangup(self, request, id=None):
        return self._control("hangup")

    @extend_schema(
        summary="Replace the rest of a live call's flow",
        description="`xml` (validated now) or `url` (fetched when applied) replaces whatever the flow is doing: "
        "its prompt stops, its Dial's legs hang up. Before the answer it replaces what runs on answer.",
        request=RedirectSerializer,
        responses={202: CallSerializer, **CONTROL_ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def redirect(self, request, id=None):
        data = RedirectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._control("redirect", **data.validated_data)

    @extend_schema(
        summary="Play an audio file to an answered call",
        description="Over whatever the flow is doing. 409 if the call has not been answered or has ended.",
        request=PlaySerializer,
        responses={202: CallSerializer, **CONTROL_ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def play(self, request, id=None):
        data = PlaySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._control("play", **data.validated_data)

    @extend_schema(
        summary="Send DTMF digits to the far end of an answered call",
        request=SendDigitsSerializer,
        responses={202: CallSerializer, **CONTROL_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="send-digits", url_name="send-digits", filter_backends=[])
    def send_digits(self, request, id=None):
        data = SendDigitsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._control("send_digits", **data.validated_data)

    @extend_schema(
        summary="Bridge two live calls",
        description="Both must be answered A-legs of your account. Each stops its flow; the engine joins them and "
        "raises `call.bridged` on `call_a`. When either ends, the other is hung up.",
        request=BridgeSerializer,
        responses={202: BridgeResultSerializer, **CONTROL_ERRORS},
    )
    @action(detail=False, methods=["post"], filter_backends=[])
    def bridge(self, request):
        data = BridgeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        legs = {}
        for name in ("call_a", "call_b"):
            try:
                legs[name] = get_for_account(Call, self.account, data.validated_data[name])
            except Call.DoesNotExist:
                raise DjangoValidationError({name: ["No such call."]}, code="not_found") from None
        try:
            call_a, call_b = outbound.call_bridge(
                account=self.account, actor=self.credential.actor, call_a=legs["call_a"], call_b=legs["call_b"]
            )
        except (outbound.CallFinished, outbound.CallNotControllable) as exc:
            raise _conflict(exc) from exc
        fresh = {c.pk: c for c in Call.objects.select_related(*_RELATED).filter(pk__in=[call_a.pk, call_b.pk])}
        body = BridgeResultSerializer({"call_a": fresh[call_a.pk], "call_b": fresh[call_b.pk]}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Export the call log as CSV",
        description="The list's filters; every matching call, newest first, streamed (constant memory, no time "
        "limit). Columns: " + ", ".join(EXPORT_HEADER) + ".",
        responses={(200, "text/csv"): OpenApiTypes.STR, **COMMON_ERRORS},
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        response = StreamingHttpResponse(call_csv_chunks(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="calls.csv"'
        return response


router.register("calls", CallViewSet, basename="call")

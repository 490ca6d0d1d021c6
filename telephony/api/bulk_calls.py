"""API for bulk calls (campaigns): /bulk-calls, with pause, resume, cancel and the results as CSV."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, mixins, renderers, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.api import COMMON_ERRORS, ErrorResponse, router
from telephony.api.sip import AccountObjectField
from telephony.filtersets.bulk import BulkCallFilterSet
from telephony.models import BulkCall, CallControlApp
from telephony.services import bulk_calls as services
from tenants.scoping import AccountScopedViewSet


class BulkCallSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    # `from` is a Python keyword: declared in the field map below.
    app = serializers.UUIDField(source="app.public_id", read_only=True, allow_null=True, default=None)
    counts = serializers.SerializerMethodField()
    window = serializers.SerializerMethodField()

    class Meta:
        model = BulkCall
        fields = [
            "id", "name", "status", "from_number", "app", "xml", "url", "method", "timeout_s", "time_limit_s",
            "calls_per_second", "max_concurrent", "window", "retry_rules", "tag", "total", "invalid_count",
            "counts", "created_at", "completed_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_number")
        return fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_counts(self, bulk) -> dict:
        if self.context.get("live_counts"):
            return services.bulk_call_counts(bulk)
        return bulk.last_progress or {}

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_window(self, bulk) -> dict:
        return {
            "days": bulk.window_days,
            "start": bulk.window_start.strftime("%H:%M") if bulk.window_start else None,
            "end": bulk.window_end.strftime("%H:%M") if bulk.window_end else None,
            "time_zone": bulk.time_zone,
        }


class BulkCallDetailSerializer(BulkCallSerializer):
    invalid = serializers.JSONField(read_only=True, help_text="Refused destinations: position, destination, reason.")

    class Meta(BulkCallSerializer.Meta):
        fields = [*BulkCallSerializer.Meta.fields, "invalid"]
        read_only_fields = fields


class RetryRuleSerializer(serializers.Serializer):
    attempts = serializers.IntegerField(help_text="Calls in all to a destination whose last call ended this way.")
    delay_s = serializers.IntegerField(required=False, default=60, help_text="Seconds before the next call.")


class RetryRulesSerializer(serializers.Serializer):
    busy = RetryRuleSerializer(required=False)
    no_answer = RetryRuleSerializer(required=False)
    failed = RetryRuleSerializer(required=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["no-answer"] = fields.pop("no_answer")
        return fields


class BulkCallCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    destinations = serializers.JSONField(
        help_text="Up to 100,000 E.164 numbers. Bad ones are reported with their position; the rest are called."
    )
    app = AccountObjectField(CallControlApp, required=False, allow_null=True, default=None)
    xml = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    url = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    method = serializers.ChoiceField(choices=["GET", "POST"], required=False, default="POST")
    timeout = serializers.IntegerField(required=False, default=30, min_value=1, max_value=600)
    time_limit = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    calls_per_second = serializers.FloatField(required=False, default=1.0)
    max_concurrent = serializers.IntegerField(required=False, default=10)
    window_days = serializers.ListField(
        child=serializers.CharField(), required=False, default=None, help_text="Of mon..sun; default: every day."
    )
    window_start = serializers.CharField(required=False, allow_blank=True, default="", help_text="HH:MM")
    window_end = serializers.CharField(required=False, allow_blank=True, default="", help_text="HH:MM")
    time_zone = serializers.CharField(required=False, default="UTC", help_text="e.g. America/New_York")
    retry_rules = RetryRulesSerializer(required=False, default=None)
    do_not_call = serializers.JSONField(required=False, default=None, help_text="Numbers never to call.")
    tag = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.CharField(help_text="The caller ID: one of the account's voice numbers.")
        return fields

    def validate_retry_rules(self, value):
        return {key: dict(rule) for key, rule in (value or {}).items()}


class CsvRenderer(renderers.BaseRenderer):
    """Lets a client ask for the results with `Accept: text/csv`; the CSV itself is streamed by the view."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode() if data is not None else b""  # an error body: still the JSON shape


class BulkCallConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "bulk_call_state"
    default_detail = "Not possible in the bulk call's current state."


STATE_ERRORS = {**COMMON_ERRORS, 409: OpenApiResponse(ErrorResponse, description="Not in this state.")}


@extend_schema_view(
    list=extend_schema(summary="List bulk calls", responses={200: BulkCallSerializer(many=True), **COMMON_ERRORS}),
    retrieve=extend_schema(
        summary="Get a bulk call with its live counts per outcome",
        responses={200: BulkCallDetailSerializer, **COMMON_ERRORS},
    ),
    create=extend_schema(
        summary="Start a bulk call",
        description="Accepts up to 100,000 destinations at once. Each is checked: the bad ones are returned in "
        "`invalid` with their position and reason, the good ones are queued. Calls start in the calling window, "
        "at `calls_per_second` and at most `max_concurrent` at a time, within the account's own pacing. A retry "
        "rule per outcome (busy, no-answer, failed) calls again after `delay_s`, with the same caller ID.",
        request=BulkCallCreateSerializer,
        responses={201: BulkCallDetailSerializer, **COMMON_ERRORS},
    ),
)
class BulkCallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = BulkCall.objects.select_related("app")
    serializer_class = BulkCallSerializer
    filterset_class = BulkCallFilterSet
    ordering_fields = ["created_at"]

    def get_serializer_class(self):
        return BulkCallDetailSerializer if self.action == "retrieve" else BulkCallSerializer

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "live_counts": self.action != "list"}

    def create(self, request):
        data = BulkCallCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        bulk = services.bulk_call_create(
            account=self.account,
            actor=self.credential.actor,
            from_=values.pop("from"),
            timeout_s=values.pop("timeout"),
            time_limit_s=values.pop("time_limit"),
            **values,
        )
        body = BulkCallDetailSerializer(bulk, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    def _change(self, service):
        try:
            bulk = service(account=self.account, actor=self.credential.actor, bulk_call=self.get_object())
        except DjangoValidationError as exc:
            raise BulkCallConflict(exc.messages[0]) from exc
        return Response(BulkCallSerializer(bulk, context=self.get_serializer_context()).data)

    @extend_schema(summary="Pause: no new calls; calls in flight finish", request=None,
                   responses={200: BulkCallSerializer, **STATE_ERRORS})  # fmt: skip
    @action(detail=True, methods=["post"])
    def pause(self, request, id=None):
        return self._change(services.bulk_call_pause)

    @extend_schema(summary="Resume a paused bulk call", request=None,
                   responses={200: BulkCallSerializer, **STATE_ERRORS})  # fmt: skip
    @action(detail=True, methods=["post"])
    def resume(self, request, id=None):
        return self._change(services.bulk_call_resume)

    @extend_schema(summary="Cancel: destinations not called yet never will be", request=None,
                   responses={200: BulkCallSerializer, **STATE_ERRORS})  # fmt: skip
    @action(detail=True, methods=["post"])
    def cancel(self, request, id=None):
        return self._change(services.bulk_call_cancel)

    @extend_schema(
        summary="The results as CSV: position, destination, attempts, status, duration, last_call_id, reason",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR), **COMMON_ERRORS},
    )
    @action(detail=True, methods=["get"], pagination_class=None, renderer_classes=[renderers.JSONRenderer, CsvRenderer])
    def results(self, request, id=None):
        bulk = self.get_object()
        response = StreamingHttpResponse(services.bulk_call_results_csv(bulk), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="bulk-call-{bulk.public_id}.csv"'
        return response


router.register("bulk-calls", BulkCallViewSet, basename="bulk-call")

urlpatterns: list = []

"""API for call-control apps: /call-control-apps, with their numbers and the versions of their flow document.

A flow document that does not validate is a 400 naming `xml`, each message with its line and column; its
warnings do not block the save and come back as `xml_warnings`. The rules are the service's
(telephony/services/apps.py); the serializers here only check the shape of the request.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from portal.api import COMMON_ERRORS, router
from telephony.api.callflows import CallFlowIssueSerializer, StrictStringField
from telephony.api.sip import NumberChangeSerializer, NumberSummarySerializer
from telephony.filtersets.apps import CallControlAppFilterSet
from telephony.models import AppVersion, CallControlApp, PhoneNumber
from telephony.models.apps import HttpMethod
from telephony.services import apps as services
from tenants.scoping import AccountScopedViewSet

_READ_FIELDS = [
    "id", "name", "is_active", "mode", "xml", "xml_version", "call_flow_url", "call_flow_method",
    "call_flow_timeout_ms", "fallback_url", "webhook_url", "webhook_method", "webhook_timeout_ms",
    "status_callback_url", "status_callback_method", "status_callback_events", "auto_answer", "max_call_length_s",
    "channel_limit", "time_zone", "created_at", "updated_at",
]  # fmt: skip


class CallControlAppSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    xml_version = serializers.IntegerField(
        read_only=True, help_text="The version number of the current `xml` (0: the app holds no document)."
    )
    status_callback_events = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text='Empty means ["completed"].'
    )

    class Meta:
        model = CallControlApp
        fields = _READ_FIELDS
        read_only_fields = fields


class CallControlAppListSerializer(CallControlAppSerializer):
    """The list leaves the documents out (each may be 256 KB); GET the app for its `xml`."""

    class Meta(CallControlAppSerializer.Meta):
        fields = [name for name in _READ_FIELDS if name != "xml"]
        read_only_fields = fields


class CallControlAppSavedSerializer(CallControlAppSerializer):
    xml_warnings = CallFlowIssueSerializer(
        many=True,
        read_only=True,
        help_text="What the flow document probably does not do as meant (unreachable commands...); not blocking.",
    )

    class Meta(CallControlAppSerializer.Meta):
        fields = [*_READ_FIELDS, "xml_warnings"]
        read_only_fields = fields


class CallControlAppWriteSerializer(serializers.Serializer):
    """Shape only; the rules (a valid document, URL policy, ranges, time zone) are the service's."""

    name = serializers.CharField(max_length=100)
    is_active = serializers.BooleanField(required=False)
    mode = serializers.ChoiceField(
        choices=CallControlApp.Mode.choices,
        required=False,
        help_text="xml: the app holds the flow document; url: each call fetches it from call_flow_url.",
    )
    xml = StrictStringField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="The flow document, <Response>...</Response>.",
    )
    call_flow_url = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    call_flow_method = serializers.ChoiceField(choices=HttpMethod.choices, required=False)
    call_flow_timeout_ms = serializers.IntegerField(required=False, help_text="100 to 30000.")
    fallback_url = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Used when call_flow_url fails or times out."
    )
    webhook_url = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Receives the app's call events."
    )
    webhook_method = serializers.ChoiceField(choices=HttpMethod.choices, required=False)
    webhook_timeout_ms = serializers.IntegerField(required=False, help_text="100 to 30000.")
    status_callback_url = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    status_callback_method = serializers.ChoiceField(choices=HttpMethod.choices, required=False)
    status_callback_events = serializers.ListField(
        child=serializers.CharField(max_length=20),
        required=False,
        max_length=10,
        help_text="Of initiated, ringing, answered, completed; empty means completed only.",
    )
    auto_answer = serializers.BooleanField(required=False)
    max_call_length_s = serializers.IntegerField(required=False, help_text="1 to 86400 seconds.")
    channel_limit = serializers.IntegerField(required=False, allow_null=True, help_text="Concurrent calls; null: none.")
    time_zone = serializers.CharField(
        required=False, max_length=64, help_text="IANA name, e.g. America/New_York; <Scheduler> windows use it."
    )


class AppVersionSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True, help_text="Who saved it.")
    current = serializers.SerializerMethodField(help_text="Whether the app holds this version now.")

    class Meta:
        model = AppVersion
        fields = ["number", "created_at", "actor", "current"]
        read_only_fields = fields

    def get_current(self, version) -> bool:
        return version.number == self.context["app"].xml_version


class AppVersionDetailSerializer(AppVersionSerializer):
    class Meta(AppVersionSerializer.Meta):
        fields = [*AppVersionSerializer.Meta.fields, "xml"]
        read_only_fields = fields


def _saved(saved: services.SavedApp, code: int = status.HTTP_200_OK) -> Response:
    saved.app.xml_warnings = [issue.as_dict() for issue in saved.xml_warnings]
    return Response(CallControlAppSavedSerializer(saved.app).data, status=code)


def _paginated(view, queryset, serializer_class, **context):
    page = view.paginate_queryset(queryset)
    data = serializer_class(page, many=True, context={**view.get_serializer_context(), **context}).data
    return view.get_paginated_response(data)


VERSION_PARAMETER = OpenApiParameter("number", OpenApiTypes.INT, OpenApiParameter.PATH, description="1, 2, 3...")


@extend_schema_view(
    list=extend_schema(
        summary="List call-control apps (without their documents)",
        responses={200: CallControlAppListSerializer(many=True), **COMMON_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Get a call-control app", responses={200: CallControlAppSerializer, **COMMON_ERRORS}
    ),
    create=extend_schema(
        summary="Create a call-control app",
        description="mode xml needs `xml`, a flow document that validates (POST /call-flows/validate checks one "
        "without saving); it becomes version 1. mode url needs `call_flow_url`. Every URL must pass the outbound "
        "URL policy. Errors in the document are a 400 on `xml`, each with its line and column; its warnings come "
        "back as `xml_warnings`.",
        request=CallControlAppWriteSerializer,
        responses={201: CallControlAppSavedSerializer, **COMMON_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a call-control app; a changed document is saved as a new version",
        request=CallControlAppWriteSerializer,
        responses={200: CallControlAppSavedSerializer, **COMMON_ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a call-control app (its numbers lose it as their voice target; call records stay)",
        responses={204: None, **COMMON_ERRORS},
    ),
)
class CallControlAppViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = CallControlApp.objects.all()
    serializer_class = CallControlAppSerializer
    filterset_class = CallControlAppFilterSet
    ordering_fields = ["name", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_serializer_class(self):
        return CallControlAppListSerializer if self.action == "list" else super().get_serializer_class()

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.defer("xml") if self.action == "list" else queryset

    def create(self, request):
        data = CallControlAppWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        saved = services.app_create(account=self.account, actor=self.credential.actor, **data.validated_data)
        return _saved(saved, status.HTTP_201_CREATED)

    def partial_update(self, request, id=None):
        app = self.get_object()
        data = CallControlAppWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        saved = services.app_update(account=self.account, actor=self.credential.actor, app=app, **data.validated_data)
        return _saved(saved)

    def destroy(self, request, id=None):
        services.app_delete(account=self.account, actor=self.credential.actor, app=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["GET"],
        summary="The numbers whose voice calls run this app",
        responses={200: NumberSummarySerializer(many=True), **COMMON_ERRORS},
    )
    @extend_schema(
        methods=["POST"],
        summary="Assign and unassign numbers; answers the app's numbers as they now stand",
        description="Assigning a number here takes it off its SIP connection or SIP user: a number has one voice "
        "target. Items are number ids or E.164 numbers of this account. All or nothing; errors are positional: "
        "`add.2` is the third item of `add`.",
        request=NumberChangeSerializer,
        responses={200: NumberSummarySerializer(many=True), **COMMON_ERRORS},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def numbers(self, request, id=None):
        app = self.get_object()
        if request.method == "POST":
            data = NumberChangeSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            services.app_numbers_change(
                account=self.account, actor=self.credential.actor, app=app, **data.validated_data
            )
        numbers = PhoneNumber.objects.for_account(self.account).filter(call_control_app=app).order_by("number")
        return _paginated(self, numbers, NumberSummarySerializer)

    @extend_schema(
        summary="The saved versions of the app's flow document, newest first (without their text)",
        responses={200: AppVersionSerializer(many=True), **COMMON_ERRORS},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def versions(self, request, id=None):
        app = self.get_object()
        return _paginated(self, app.versions.defer("xml").order_by("-number"), AppVersionSerializer, app=app)

    def _version(self, app: CallControlApp, number: str) -> AppVersion:
        version = app.versions.filter(number=int(number)).first()
        if version is None:
            raise NotFound
        return version

    @extend_schema(
        summary="One version of the app's flow document, with its text",
        parameters=[VERSION_PARAMETER],
        responses={200: AppVersionDetailSerializer, **COMMON_ERRORS},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"versions/(?P<number>[0-9]{1,9})",
        url_name="version-detail",
        filter_backends=[],
    )
    def version_detail(self, request, id=None, number=None):
        app = self.get_object()
        return Response(AppVersionDetailSerializer(self._version(app, number), context={"app": app}).data)

    @extend_schema(
        summary="Make an old version the app's document again (saved as the newest version)",
        description="The text is validated again; restoring the version the app holds changes nothing.",
        parameters=[VERSION_PARAMETER],
        request=None,
        responses={200: CallControlAppSavedSerializer, **COMMON_ERRORS},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"versions/(?P<number>[0-9]{1,9})/restore",
        url_name="version-restore",
        filter_backends=[],
    )
    def restore_version(self, request, id=None, number=None):
        app = self.get_object()
        version = self._version(app, number)
        saved = services.app_version_restore(
            account=self.account, actor=self.credential.actor, app=app, number=version.number
        )
        return _saved(saved)


router.register("call-control-apps", CallControlAppViewSet, basename="call-control-app")

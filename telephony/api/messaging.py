"""API for messaging: /messaging-profiles, /numbers/{id}/sms, /brands and /campaigns (10DLC), /messages (send,
log, detail, CSV export), and /simulator/inbound-messages (simulated carrier only).
"""

from __future__ import annotations

import csv

from django.conf import settings
from django.db.models import Prefetch
from django.http import StreamingHttpResponse
from django.urls import path
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.api import COMMON_ERRORS, CursorPagination, ErrorResponse, router
from telephony.api.numbers import AccountObjectField
from telephony.filtersets.messaging import MessageFilterSet, MessagingProfileFilterSet
from telephony.models import (
    Brand,
    Campaign,
    Delivery,
    Message,
    MessagingNumber,
    MessagingProfile,
    PhoneNumber,
)
from telephony.services import messaging as services
from telephony.services.numbers import normalize_e164
from tenants.scoping import AccountScopedViewSet

SENDING_RULES = """
**Sending.** Give `to`, `text`, and either `from` (one of your SMS-enabled numbers) or `messaging_profile` (a
sender is picked from its numbers: with `sticky_sender` a destination keeps its last sender; otherwise, or when
that one cannot send, long codes and toll-free numbers are chosen by the profile's weights, the least busy
first, skipping numbers whose recent messages failed when `skip_unhealthy` is on). US long codes need an
approved 10DLC campaign. The answer is the `queued` message; `message.*` events and callbacks follow it through
`sending`, `sent`, then `delivered` or `failed` / `undelivered` (with `error_code` and `error_text`).

**Segments.** A text of GSM-7 characters takes 160 per segment, 153 per segment when split (`^{}[~]|\\€` count
twice); any other character (an emoji, Cyrillic...) makes it UCS-2: 70, or 67 when split.

**Limits.** Each sender sends at most its throughput (segments per second: long codes about 1, toll-free more);
faster sends are queued behind each other. A sender queue longer than the limit, or the account's daily limit,
answers 429 (`sender_queue_full`, `daily_limit_reached`). A destination that texted STOP is refused with
`opted_out` until it texts START.

**Callbacks.** Each event goes, as a signed JSON POST, to the request's `callback_url`, else the profile's
`callback_url`; after a failed attempt the next goes to the profile's `callback_url2`.
""".strip()


class LimitReached(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "rate_limited"


class InUseConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "profile_in_use"


def _public(obj) -> str | None:
    return str(obj.public_id) if obj is not None else None


# --- Messaging profiles ------------------------------------------------------------------------------


class ProfileNumberSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="phone_number.public_id", help_text="The number's id.")
    number = serializers.CharField()
    toll_free = serializers.BooleanField()
    campaign = serializers.UUIDField(source="campaign.public_id", allow_null=True, default=None)


class MessagingProfileSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    numbers = ProfileNumberSerializer(many=True, read_only=True, help_text="The numbers that send with it.")

    class Meta:
        model = MessagingProfile
        fields = [
            "id", "name", "description", "callback_url", "callback_url2", "number_pool_enabled", "sticky_sender",
            "long_code_weight", "toll_free_weight", "skip_unhealthy", "numbers", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class MessagingProfileWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    callback_url = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    callback_url2 = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, help_text="Failover for callback_url."
    )
    number_pool_enabled = serializers.BooleanField(required=False)
    sticky_sender = serializers.BooleanField(required=False)
    long_code_weight = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    toll_free_weight = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    skip_unhealthy = serializers.BooleanField(required=False)


_NUMBERS = Prefetch(
    "numbers",
    queryset=MessagingNumber.objects.filter(phone_number__status=PhoneNumber.Status.ACTIVE)
    .select_related("phone_number", "campaign")
    .order_by("number"),
)


@extend_schema_view(
    list=extend_schema(summary="List messaging profiles", responses={200: MessagingProfileSerializer(many=True)}),
    retrieve=extend_schema(summary="Get a messaging profile", responses={200: MessagingProfileSerializer}),
    create=extend_schema(
        summary="Create a messaging profile",
        request=MessagingProfileWriteSerializer,
        responses={201: MessagingProfileSerializer, **COMMON_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a messaging profile",
        request=MessagingProfileWriteSerializer,
        responses={200: MessagingProfileSerializer, **COMMON_ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a messaging profile",
        description="Refused with 409 `profile_in_use` while numbers send with it.",
        responses={204: None, 409: OpenApiResponse(ErrorResponse), **COMMON_ERRORS},
    ),
)
class MessagingProfileViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = MessagingProfile.objects.prefetch_related(_NUMBERS)
    serializer_class = MessagingProfileSerializer
    filterset_class = MessagingProfileFilterSet
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def _fresh(self, profile):
        return self.get_queryset().get(pk=profile.pk)

    def create(self, request):
        data = MessagingProfileWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = services.messaging_profile_create(
            account=self.account, actor=self.credential.actor, **data.validated_data
        )
        return Response(MessagingProfileSerializer(self._fresh(profile)).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, id=None):
        data = MessagingProfileWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        profile = services.messaging_profile_update(
            account=self.account, actor=self.credential.actor, profile=self.get_object(), **data.validated_data
        )
        return Response(MessagingProfileSerializer(self._fresh(profile)).data)

    def destroy(self, request, id=None):
        from django.core.exceptions import ValidationError

        try:
            services.messaging_profile_delete(
                account=self.account, actor=self.credential.actor, profile=self.get_object()
            )
        except ValidationError as exc:
            raise InUseConflict(detail=exc.messages[0]) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- SMS on a number ---------------------------------------------------------------------------------


class NumberSmsWriteSerializer(serializers.Serializer):
    messaging_profile = AccountObjectField(MessagingProfile)
    campaign = AccountObjectField(
        Campaign, required=False, allow_null=True, help_text="A 10DLC campaign: US long codes need an approved one."
    )


class NumberSmsSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    number = serializers.CharField()
    sms_enabled = serializers.BooleanField()
    messaging_profile = serializers.UUIDField(allow_null=True)
    campaign = serializers.UUIDField(allow_null=True)
    needs_campaign = serializers.BooleanField(help_text="A US long code: sends only under an approved campaign.")


def _number_sms(number: PhoneNumber) -> dict:
    enabled = MessagingNumber.objects.filter(phone_number=number).select_related("profile", "campaign").first()
    return {
        "public_id": number.public_id,
        "number": number.number,
        "sms_enabled": enabled is not None,
        "messaging_profile": _public(enabled.profile) if enabled else None,
        "campaign": _public(enabled.campaign) if enabled else None,
        "needs_campaign": services.number_needs_campaign(number),
    }


class NumberSmsViewSet(AccountScopedViewSet):
    queryset = PhoneNumber.objects.filter(status=PhoneNumber.Status.ACTIVE).select_related("stock")
    serializer_class = NumberSmsSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        operation_id="numbers_sms_enable",
        summary="Enable SMS on a number (or move it to another profile or campaign)",
        description="Puts the number in a messaging profile, and a US long code in a 10DLC campaign. Only numbers "
        "whose features include SMS can be enabled (400 `no_sms`).",
        request=NumberSmsWriteSerializer,
        responses={200: NumberSmsSerializer, **COMMON_ERRORS},
        tags=["numbers"],
    )
    def enable(self, request, id=None):
        number = self.get_object()
        data = NumberSmsWriteSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        services.number_sms_enable(
            account=self.account,
            actor=self.credential.actor,
            number=number,
            profile=data.validated_data["messaging_profile"],
            campaign=data.validated_data.get("campaign"),
        )
        return Response(NumberSmsSerializer(_number_sms(number)).data)

    @extend_schema(
        operation_id="numbers_sms_status",
        summary="A number's SMS settings",
        responses={200: NumberSmsSerializer, **COMMON_ERRORS},
        tags=["numbers"],
    )
    def show(self, request, id=None):
        return Response(NumberSmsSerializer(_number_sms(self.get_object())).data)

    @extend_schema(
        operation_id="numbers_sms_disable",
        summary="Disable SMS on a number",
        responses={200: NumberSmsSerializer, **COMMON_ERRORS},
        tags=["numbers"],
    )
    def disable(self, request, id=None):
        number = self.get_object()
        services.number_sms_disable(account=self.account, actor=self.credential.actor, number=number)
        return Response(NumberSmsSerializer(_number_sms(number)).data)


# --- 10DLC -------------------------------------------------------------------------------------------


class BrandSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Brand
        fields = [
            "id", "display_name", "company_name", "entity_type", "ein", "website", "vertical", "email", "country",
            "status", "review_note", "reviewed_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "status", "review_note", "reviewed_at", "created_at", "updated_at"]


class CampaignSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    brand = AccountObjectField(Brand)
    sample_messages = serializers.ListField(
        child=serializers.CharField(max_length=1000), min_length=1, max_length=5, help_text="One to five examples."
    )

    class Meta:
        model = Campaign
        fields = [
            "id", "brand", "name", "use_case", "description", "sample_messages", "message_flow", "opt_in_message",
            "opt_out_message", "help_message", "status", "review_note", "reviewed_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "status", "review_note", "reviewed_at", "created_at", "updated_at"]


@extend_schema_view(
    list=extend_schema(summary="List 10DLC brands"),
    retrieve=extend_schema(summary="Get a 10DLC brand with its review status"),
    create=extend_schema(
        summary="Submit a 10DLC brand",
        description="Staff review it: `status` is pending, then approved or rejected (with `review_note`).",
        responses={201: BrandSerializer, **COMMON_ERRORS},
    ),
)
class BrandViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = Brand.objects.all()
    serializer_class = BrandSerializer

    def create(self, request):
        data = BrandSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        brand = services.brand_create(account=self.account, actor=self.credential.actor, **data.validated_data)
        return Response(BrandSerializer(brand).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="List 10DLC campaigns"),
    retrieve=extend_schema(summary="Get a 10DLC campaign with its review status"),
    create=extend_schema(
        summary="Submit a 10DLC campaign",
        description="Staff review it; US long codes in it send only once it is approved. Its help, opt-in and "
        "opt-out texts are the automatic replies to HELP, START and STOP.",
        responses={201: CampaignSerializer, **COMMON_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a 10DLC campaign",
        description="Changing anything but the reply texts sends it back to review (pending).",
        responses={200: CampaignSerializer, **COMMON_ERRORS},
    ),
)
class CampaignViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = Campaign.objects.select_related("brand")
    serializer_class = CampaignSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def create(self, request):
        data = CampaignSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        campaign = services.campaign_create(account=self.account, actor=self.credential.actor, **data.validated_data)
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, id=None):
        data = CampaignSerializer(data=request.data, partial=True, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        values = {key: value for key, value in data.validated_data.items() if key != "brand"}
        campaign = services.campaign_update(
            account=self.account, actor=self.credential.actor, campaign=self.get_object(), **values
        )
        return Response(CampaignSerializer(campaign).data)


# --- Messages ----------------------------------------------------------------------------------------


class MessageSendSerializer(serializers.Serializer):
    from_ = serializers.CharField(max_length=32, required=False, allow_blank=True, help_text="One of your numbers.")
    messaging_profile = AccountObjectField(
        MessagingProfile, required=False, allow_null=True, help_text="Send from this profile's number pool."
    )
    to = serializers.CharField(max_length=32, help_text="E.164.")
    text = serializers.CharField(trim_whitespace=False, allow_blank=True)
    callback_url = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, help_text="Overrides the profile's callback_url."
    )

    def get_fields(self):
        return {("from" if name == "from_" else name): field for name, field in super().get_fields().items()}


class MessageSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    from_ = serializers.CharField(source="from_number", read_only=True)
    to = serializers.CharField(source="to_number", read_only=True)
    thread_id = serializers.UUIDField(source="thread", read_only=True)
    messaging_profile = serializers.UUIDField(source="profile.public_id", read_only=True, allow_null=True, default=None)
    number = serializers.UUIDField(
        source="phone_number.public_id", read_only=True, allow_null=True, default=None, help_text="Your number's id."
    )
    campaign = serializers.UUIDField(source="campaign.public_id", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Message
        fields = [
            "id", "direction", "from_", "to", "text", "status", "encoding", "segments", "error_code", "error_text",
            "thread_id", "messaging_profile", "number", "campaign", "callback_url", "auto_reply", "send_after",
            "created_at", "sent_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_fields(self):
        return {("from" if name == "from_" else name): field for name, field in super().get_fields().items()}


class HistoryEntrySerializer(serializers.Serializer):
    status = serializers.CharField()
    at = serializers.DateTimeField()
    error_code = serializers.CharField(required=False)
    error_text = serializers.CharField(required=False)


class MessageDeliveryAttemptSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    attempted_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class MessageDeliverySerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    kind = serializers.CharField(help_text="message_callback (the callback URL) or event (a webhook endpoint).")
    event_type = serializers.CharField(source="message_event_type", help_text="e.g. message.delivered.")
    url = serializers.CharField(source="endpoint.url")
    fallback_url = serializers.CharField(allow_blank=True)
    status = serializers.CharField()
    attempt_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    attempts = MessageDeliveryAttemptSerializer(many=True, source="attempts.all")


class MessageDetailSerializer(MessageSerializer):
    history = HistoryEntrySerializer(many=True, read_only=True, help_text="Every state it went through, in order.")
    deliveries = MessageDeliverySerializer(many=True, read_only=True, source="delivery_list")

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "history", "deliveries"]
        read_only_fields = fields


def message_deliveries(message: Message) -> list[Delivery]:
    """The callbacks of a message and the webhook deliveries of its events, oldest first."""
    from django.db.models import Q

    object_id = str(message.public_id)
    deliveries = list(
        Delivery.objects.filter(account_id=message.account_id)
        .filter(
            Q(object_type="message", object_id=object_id)
            | Q(event__account_id=message.account_id, event__object_type="message", event__object_id=object_id)
        )
        .select_related("endpoint", "event")
        .prefetch_related("attempts")
        .order_by("created_at", "id")[:200]
    )
    for delivery in deliveries:
        delivery.message_event_type = (
            delivery.event.type if delivery.event_id else (delivery.params or {}).get("type", "")
        )
    return deliveries


CSV_COLUMNS = [
    "id", "created_at", "direction", "from", "to", "status", "encoding", "segments", "error_code", "error_text",
    "thread_id", "text",
]  # fmt: skip


class _Echo:
    def write(self, value):
        return value


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(value: str) -> str:
    """Free text (anyone may text the account's numbers) that a spreadsheet shows and never runs as a formula."""
    return f"'{value}" if value.startswith(FORMULA_START) else value


def _csv_rows(queryset):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for message in queryset.iterator(chunk_size=2000):
        yield writer.writerow(
            [
                message.public_id, message.created_at.isoformat(), message.direction, message.from_number,
                message.to_number, message.status, message.encoding, message.segments, message.error_code,
                _text_cell(message.error_text), message.thread, _text_cell(message.text),
            ]
        )  # fmt: skip


@extend_schema_view(
    list=extend_schema(
        summary="List messages, newest first",
        description="Cursor-paginated (`next`, `previous`). Filters: direction, status (several, comma-separated), "
        "from, to, number (from or to it), text (contains), thread (one conversation), messaging_profile, "
        "created_after / created_before.",
        responses={200: MessageSerializer(many=True), **COMMON_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Get a message with its state history and its deliveries",
        responses={200: MessageDetailSerializer, **COMMON_ERRORS},
    ),
)
class MessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = Message.objects.select_related("profile", "phone_number", "campaign")
    serializer_class = MessageSerializer
    filterset_class = MessageFilterSet
    pagination_class = CursorPagination
    filter_backends = [DjangoFilterBackend]

    @extend_schema(
        summary="Send a message",
        description=SENDING_RULES,
        request=MessageSendSerializer,
        responses={201: MessageSerializer, **COMMON_ERRORS},
        examples=[
            OpenApiExample("From a number", value={"from": "+12015550123", "to": "+12125550100", "text": "Hi!"},
                           request_only=True),
            OpenApiExample("From a profile's pool", request_only=True, value={
                "messaging_profile": "3f1e2d4c-5b6a-4789-8abc-def012345678", "to": "+12125550100", "text": "Hi!"}),
        ],
    )  # fmt: skip
    def create(self, request):
        data = MessageSendSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            message = services.message_send(
                account=self.account,
                actor=self.credential.actor,
                to=values["to"],
                text=values["text"],
                from_=values.get("from") or "",
                profile=values.get("messaging_profile"),
                callback_url=values.get("callback_url") or "",
            )
        except services.MessagingLimit as exc:
            raise LimitReached(detail=exceptions.ErrorDetail(exc.message, code=exc.code)) from exc
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, id=None):
        message = self.get_object()
        message.delivery_list = message_deliveries(message)
        return Response(MessageDetailSerializer(message).data)

    @extend_schema(
        summary="Export messages as CSV",
        description="The same filters as the list; every matching message, newest first, streamed. Columns: "
        + ", ".join(CSV_COLUMNS)
        + ".",
        responses={(200, "text/csv"): OpenApiTypes.STR, **COMMON_ERRORS},
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request):
        queryset = self.filter_queryset(self.get_queryset()).order_by("-created_at", "-id")
        response = StreamingHttpResponse(_csv_rows(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="messages.csv"'
        return response


# --- Simulator ---------------------------------------------------------------------------------------


class SimulatedInboundMessageSerializer(serializers.Serializer):
    from_ = serializers.CharField(max_length=32, help_text="The sender, E.164.")
    to = serializers.CharField(max_length=32, help_text="One of the account's SMS-enabled numbers.")
    text = serializers.CharField(trim_whitespace=False)

    def get_fields(self):
        return {("from" if name == "from_" else name): field for name, field in super().get_fields().items()}

    def validate_to(self, value: str) -> str:
        number = normalize_e164(value) or value.strip()
        if (
            not MessagingNumber.objects.for_account(self.context["account"])
            .filter(number=number, phone_number__status=PhoneNumber.Status.ACTIVE)
            .exists()
        ):
            raise serializers.ValidationError("Not one of this account's SMS-enabled numbers.", code="unknown_number")
        return number

    def validate_text(self, value: str) -> str:
        if len(value) > settings.MESSAGING_MAX_LENGTH:
            raise serializers.ValidationError("Too long.", code="too_long")
        return value


class MessagingSimulatorViewSet(AccountScopedViewSet):
    serializer_class = SimulatedInboundMessageSerializer
    pagination_class = None
    filter_backends: list = []

    def initial(self, request, *args, **kwargs):
        if not settings.SIMULATOR_ENABLED:
            raise exceptions.NotFound()
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="simulator_inbound_messages_create",
        summary="Inject a simulated inbound message",
        description="Only where the simulator is enabled (development, tests). The message from `from` to `to` "
        "(one of the account's SMS-enabled numbers) takes the real inbound path: it is stored, raises "
        "`message.received` and its callback, and STOP/START/HELP apply.",
        tags=["simulator"],
        request=SimulatedInboundMessageSerializer,
        responses={201: MessageSerializer, **COMMON_ERRORS},
    )
    def inbound_messages(self, request):
        data = SimulatedInboundMessageSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        values = data.validated_data
        message = services.message_receive(
            from_=values["from"], to=values["to"], text=values["text"], carrier="simulator"
        )
        if message is None:  # SMS was turned off on it a moment ago
            raise serializers.ValidationError({"to": ["Not one of this account's SMS-enabled numbers."]})
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


router.register("messaging-profiles", MessagingProfileViewSet, basename="messaging-profile")
router.register("brands", BrandViewSet, basename="brand")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("messages", MessageViewSet, basename="message")

urlpatterns: list = [
    path(
        "numbers/<str:id>/sms",
        NumberSmsViewSet.as_view({"get": "show", "post": "enable", "delete": "disable"}),
        name="number-sms",
    ),
    path(
        "simulator/inbound-messages",
        MessagingSimulatorViewSet.as_view({"post": "inbound_messages"}),
        name="simulator-inbound-messages",
    ),
]

"""API for messaging: /messaging-profiles, /numbers/{id}/sms, /brands and /campaigns (10DLC), /messages (send,
log, detail, CSV export), /opt-outs (read-only), and /simulator/inbound-messages (simulated carrier only).
"""

from __future__ import annotations

import copy
import csv
import threading

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import Prefetch
from django.http import Http404, StreamingHttpResponse
from django.urls import path
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.api import COMMON_ERRORS, CursorPagination, ErrorResponse, error_summary, router
from telephony.api.numbers import AccountObjectField
from telephony.filtersets.messaging import MessageFilterSet, MessagingProfileFilterSet, OptOutFilterSet
from telephony.models import (
    Brand,
    Campaign,
    Delivery,
    Message,
    MessagingNumber,
    MessagingProfile,
    OptOut,
    PhoneNumber,
)
from telephony.services import messaging as services
from telephony.services.numbers import normalize_e164
from tenants.scoping import AccountScopedViewSet, parse_public_id

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

BATCH_RULES = """
Up to `MESSAGING_BATCH_MAX` (1000 by default) messages in one request, each as the body of `POST /api/v1/messages`
(`to`, `text`, `from` or `messaging_profile`, `callback_url`). Each is checked as a single send is, in the order
given, and every rule holds across the batch: opt-outs, 10DLC campaigns, the sticky sender (a destination named
twice keeps the sender its first message got), each sender's throughput (the batch's messages queue behind each
other) and the daily limit (reached mid-batch, the rest are refused with `daily_limit_reached`).

The valid messages are accepted together; the others are listed in `rejected` with their `index`, the `code` a
single send would answer (`opted_out`, `does_not_exist`, `sender_queue_full`...), the `field` at fault and a
`detail`. 201 when at least one message was accepted, 200 when none was. A batch that is not a list of 1 to
`MESSAGING_BATCH_MAX` messages is refused whole (400; `too_many_items` when too long), and so is a body over
`DATA_UPLOAD_MAX_MEMORY_SIZE` (8 MiB by default; 413 `request_too_large`): long texts outside ASCII, escaped in
JSON, may need smaller batches. `Idempotency-Key` works as for a single send: the same key and body answer with
the first answer.
""".strip()


class LimitReached(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "rate_limited"


class InUseConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "profile_in_use"


def _in_use(exc) -> InUseConflict:
    """A refused delete as 409 with the service's code (profile_in_use, brand_in_use, campaign_in_use)."""
    return InUseConflict(detail=exceptions.ErrorDetail(exc.messages[0], code=exc.code or InUseConflict.default_code))


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
    destroy=extend_schema(
        summary="Delete a 10DLC brand",
        description="Refused with 409 `brand_in_use` while it has campaigns (delete those first).",
        responses={204: None, 409: OpenApiResponse(ErrorResponse), **COMMON_ERRORS},
    ),
)
class BrandViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = Brand.objects.all()
    serializer_class = BrandSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]

    def create(self, request):
        data = BrandSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        brand = services.brand_create(account=self.account, actor=self.credential.actor, **data.validated_data)
        return Response(BrandSerializer(brand).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, id=None):
        try:
            services.brand_delete(account=self.account, actor=self.credential.actor, brand=self.get_object())
        except ValidationError as exc:
            raise _in_use(exc) from exc
        except ObjectDoesNotExist as exc:  # deleted by a concurrent request while this one waited for its lock
            raise Http404 from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


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
    destroy=extend_schema(
        summary="Delete a 10DLC campaign",
        description="Refused with 409 `campaign_in_use` while numbers send under it (move them or turn SMS off "
        "first). Its old messages keep their records.",
        responses={204: None, 409: OpenApiResponse(ErrorResponse), **COMMON_ERRORS},
    ),
)
class CampaignViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = Campaign.objects.select_related("brand")
    serializer_class = CampaignSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

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

    def destroy(self, request, id=None):
        try:
            services.campaign_delete(account=self.account, actor=self.credential.actor, campaign=self.get_object())
        except ValidationError as exc:
            raise _in_use(exc) from exc
        except ObjectDoesNotExist as exc:  # deleted by a concurrent request while this one waited for its lock
            raise Http404 from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


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


class _PrefetchedProfileField(AccountObjectField):
    """A messaging profile id of a batch item, resolved from the batch's profiles (one query for the batch)."""

    def to_internal_value(self, data):
        profile = self.context["profiles"].get(parse_public_id(data))
        if profile is None:
            self.fail("does_not_exist")
        return profile


class MessageBatchItemSerializer(MessageSendSerializer):
    messaging_profile = _PrefetchedProfileField(
        MessagingProfile, required=False, allow_null=True, help_text="Send from this profile's number pool."
    )


class MessageBatchSerializer(serializers.Serializer):
    messages = MessageSendSerializer(
        many=True, min_length=1, max_length=settings.MESSAGING_BATCH_MAX, help_text="Each as for POST /api/v1/messages."
    )


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
        # Built from the model once per class, then copied as a plain Serializer copies its declared fields: the
        # model introspection cost more than the rest of serialising the answer to a send.
        built = type(self).__dict__.get("_built_fields")
        if built is None:
            built = {("from" if name == "from_" else name): field for name, field in super().get_fields().items()}
            type(self)._built_fields = built
        return copy.deepcopy(built)


_representers = threading.local()


def message_data(message: Message) -> dict:
    """`MessageSerializer(message).data`, from one serializer per thread: building a serializer's twenty fields
    cost more than the rest of answering a send. Its fields hold no state of the message they represent."""
    serializer = getattr(_representers, "message", None)
    if serializer is None:
        serializer = _representers.message = MessageSerializer()
    return serializer.to_representation(message)


class HistoryEntrySerializer(serializers.Serializer):
    status = serializers.CharField()
    at = serializers.DateTimeField()
    error_code = serializers.CharField(required=False)
    error_text = serializers.CharField(required=False)
    note = serializers.CharField(
        required=False, help_text="e.g. why a STOP, START or HELP got no automatic reply (the sender may not send)."
    )


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


class MessageBatchAcceptedSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The message's place in the request's `messages`, from 0.")
    message = MessageSerializer()


class MessageBatchRejectedSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The message's place in the request's `messages`, from 0.")
    code = serializers.CharField(help_text="The `code` a single send would answer, e.g. opted_out.")
    field = serializers.CharField(allow_null=True, help_text="The field at fault; null for a limit.")
    detail = serializers.CharField()


class MessageBatchResultSerializer(serializers.Serializer):
    accepted = MessageBatchAcceptedSerializer(many=True)
    rejected = MessageBatchRejectedSerializer(many=True)


def _rejection(index: int, exc: Exception) -> dict:
    """A refused batch item in the words a single send's error body would use."""
    if isinstance(exc, services.MessagingLimit):
        return {"index": index, "code": exc.code, "field": None, "detail": exc.message}
    detail = exc.detail if isinstance(exc, exceptions.ValidationError) else serializers.as_serializer_error(exc)
    code, field, message = error_summary(detail)
    return {"index": index, "code": code, "field": field, "detail": message}


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
        return Response(message_data(message), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Send a batch of messages",
        description=BATCH_RULES,
        request=MessageBatchSerializer,
        responses={201: MessageBatchResultSerializer, 200: MessageBatchResultSerializer, **COMMON_ERRORS},
    )
    @action(detail=False, methods=["post"], pagination_class=None)
    def batch(self, request):
        items = request.data.get("messages") if isinstance(request.data, dict) else None
        most = settings.MESSAGING_BATCH_MAX
        if not isinstance(items, list) or not items:
            raise exceptions.ValidationError(
                {"messages": [exceptions.ErrorDetail(f"A list of 1 to {most} messages.", code="invalid")]}
            )
        if len(items) > most:
            raise exceptions.ValidationError(
                {
                    "messages": [
                        exceptions.ErrorDetail(
                            f"A batch carries at most {most} messages; this one has {len(items)}.",
                            code="too_many_items",
                        )
                    ]
                }
            )
        wanted = {parse_public_id(item.get("messaging_profile")) for item in items if isinstance(item, dict)} - {None}
        profiles = {
            p.public_id: p for p in MessagingProfile.objects.for_account(self.account).filter(public_id__in=wanted)
        }
        # One item serializer for the whole batch (its fields built once), as DRF's many=True does.
        item_serializer = MessageBatchItemSerializer(context={**self.get_serializer_context(), "profiles": profiles})
        requests, rejected = [], []
        for index, item in enumerate(items):
            try:
                values = item_serializer.run_validation(item)
            except exceptions.ValidationError as exc:
                rejected.append(_rejection(index, exc))
                continue
            requests.append(
                (
                    index,
                    services.SendRequest(
                        to=values["to"],
                        text=values["text"],
                        from_=values.get("from") or "",
                        profile=values.get("messaging_profile"),
                        callback_url=values.get("callback_url") or "",
                    ),
                )
            )
        outcome = services.messages_send_many(account=self.account, actor=self.credential.actor, requests=requests)
        rejected.extend(_rejection(index, exc) for index, exc in outcome.rejected)
        rejected.sort(key=lambda entry: entry["index"])
        body = MessageBatchResultSerializer(
            {
                "accepted": [{"index": index, "message": message} for index, message in outcome.accepted],
                "rejected": rejected,
            }
        ).data
        return Response(body, status=status.HTTP_201_CREATED if outcome.accepted else status.HTTP_200_OK)

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


# --- Opt-outs ----------------------------------------------------------------------------------------


class OptOutSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    number = serializers.CharField(help_text="The destination that texted STOP: sends to it are refused.")
    keyword = serializers.CharField(help_text="What it texted, e.g. STOP or UNSUBSCRIBE.")
    via_number = serializers.CharField(help_text="The account's number it texted.")

    class Meta:
        model = OptOut
        fields = ["id", "number", "keyword", "via_number", "created_at"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(
        summary="List opt-outs",
        description="Destinations that texted STOP (or a synonym) to one of the account's numbers, newest first: "
        "messages to them are refused with `opted_out` (those still queued when the STOP came fail with it). "
        "Filters: `number`, `created_after`, `created_before`. "
        "There is no delete: only the destination lifts its opt-out, by texting START (CTIA); staff can remove "
        "one recorded by mistake. `opt_out.created` and `opt_out.deleted` events follow the changes.",
    ),
    retrieve=extend_schema(summary="Get an opt-out"),
)
class OptOutViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = OptOut.objects.all()
    serializer_class = OptOutSerializer
    filterset_class = OptOutFilterSet
    pagination_class = CursorPagination
    filter_backends = [DjangoFilterBackend]


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
router.register("opt-outs", OptOutViewSet, basename="opt-out")

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

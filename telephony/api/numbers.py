"""API for numbers: search the stock, order, and manage the account's numbers.

`available-numbers` is a plain path (not on the router): stock rows are platform data without a public
id, so there is no object route to register, only the search.
"""

from __future__ import annotations

import re

from django.db.models import Prefetch
from django.http import Http404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from portal.api import COMMON_ERRORS, CursorPagination, router
from telephony import selectors
from telephony.filtersets.numbers import NumberOrderFilterSet, PhoneNumberFilterSet
from telephony.models import (
    CallControlApp,
    NumberOrder,
    NumberOrderItem,
    PhoneNumber,
    SipConnection,
    SipUser,
    StockNumber,
    TnProfile,
)
from telephony.models.numbers import NumberType
from telephony.services import numbers as services
from tenants.scoping import AccountScopedViewSet, get_for_account, parse_public_id

# --- Fields ------------------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.UUID)
class AccountObjectField(serializers.Field):
    """An id in a request body, resolved within the caller's account: another account's id is not found."""

    default_error_messages = {"does_not_exist": "No such object in this account."}

    def __init__(self, model, **kwargs):
        self.model = model
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return get_for_account(self.model, self.context["account"], data)
        except self.model.DoesNotExist:
            self.fail("does_not_exist")

    def to_representation(self, value):
        return str(value.public_id)


def _id_field(source: str) -> serializers.UUIDField:
    return serializers.UUIDField(source=f"{source}.public_id", read_only=True, default=None, allow_null=True)


def _features(obj) -> list[str]:
    return [name for name in ("voice", "sms") if getattr(obj, name)]


# --- Available numbers -------------------------------------------------------------------------------


class AvailableNumberQuerySerializer(serializers.Serializer):
    country = serializers.CharField(required=False, allow_blank=True, max_length=2, help_text="ISO code, e.g. US.")
    state = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text="e.g. NJ.")
    npa = serializers.CharField(required=False, allow_blank=True, max_length=6, help_text="Area code, e.g. 201.")
    nxx = serializers.CharField(required=False, allow_blank=True, max_length=6, help_text="Exchange, e.g. 555.")
    city = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text="Case-insensitive.")
    rate_center = serializers.CharField(required=False, allow_blank=True, max_length=64)
    type = serializers.ChoiceField(choices=NumberType.choices, required=False, allow_blank=True)
    features = serializers.CharField(
        required=False, allow_blank=True, max_length=20, help_text="Comma-separated: voice, sms. All must be present."
    )
    pattern = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        help_text=(
            "A mask over the whole number without '+': `*` any run of digits, `%` exactly one digit, e.g. "
            "`1201555%%%%` or `*1234`. Any other character is a 400."
        ),
    )
    contains = serializers.CharField(
        required=False, allow_blank=True, max_length=15, help_text="Digits anywhere in the number."
    )
    limit = serializers.IntegerField(
        required=False,
        default=selectors.SEARCH_LIMIT_DEFAULT,
        min_value=1,
        max_value=selectors.SEARCH_LIMIT_MAX,
    )


class AvailableNumberSerializer(serializers.ModelSerializer):
    type = serializers.ChoiceField(choices=NumberType.choices, source="number_type", read_only=True)
    features = serializers.SerializerMethodField()

    class Meta:
        model = StockNumber
        fields = [
            "number", "country", "type", "state", "rate_center", "city", "npa", "nxx", "features", "monthly_price",
            "setup_price",
        ]  # fmt: skip
        read_only_fields = fields

    def get_features(self, obj) -> list[str]:
        return _features(obj)

    def to_representation(self, stock):
        # The search's hot path (up to 100 rows per request): one dict literal is several times faster than
        # DRF's field-by-field walk. The declared fields above still describe it in the schema, and a test
        # holds the two to the same shape.
        return {
            "number": stock.number,
            "country": stock.country,
            "type": stock.number_type,
            "state": stock.state,
            "rate_center": stock.rate_center,
            "city": stock.city,
            "npa": stock.npa,
            "nxx": stock.nxx,
            "features": _features(stock),
            "monthly_price": f"{stock.monthly_price:.4f}",
            "setup_price": f"{stock.setup_price:.4f}",
        }


@extend_schema_view(
    list=extend_schema(
        summary="Search numbers available to order",
        description=(
            "Numbers free to sell that match every filter, in number order. The answer is a plain list of at "
            "most `limit` numbers, without a total: counting every match over millions of numbers would be slow. "
            "Narrow the filters (or use `pattern`) to see others."
        ),
        parameters=[AvailableNumberQuerySerializer],
        responses={200: AvailableNumberSerializer(many=True), **COMMON_ERRORS},
    )
)
class AvailableNumberViewSet(AccountScopedViewSet):
    queryset = StockNumber.objects.all()
    serializer_class = AvailableNumberSerializer
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):
        # Stock is the platform's, not an account's: any authenticated account may search all of it, so this
        # deliberately skips the account scoping of super().get_queryset(). Only numbers on sale are visible.
        return StockNumber.objects.filter(status=StockNumber.Status.AVAILABLE)

    def list(self, request):
        query = AvailableNumberQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        found = selectors.stock_search(
            country=data.get("country", ""),
            state=data.get("state", ""),
            npa=data.get("npa", ""),
            nxx=data.get("nxx", ""),
            city=data.get("city", ""),
            rate_center=data.get("rate_center", ""),
            number_type=data.get("type", ""),
            features=selectors.parse_features(data.get("features", "")),
            pattern=data.get("pattern", ""),
            contains=data.get("contains", ""),
            limit=data["limit"],
        )
        return Response(AvailableNumberSerializer(found, many=True).data)


# --- Orders ------------------------------------------------------------------------------------------


class NumberOrderItemSerializer(serializers.ModelSerializer):
    phone_number = _id_field("phone_number")

    class Meta:
        model = NumberOrderItem
        fields = ["number", "result", "reason", "phone_number"]
        read_only_fields = fields


class NumberOrderSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    features = serializers.SerializerMethodField()
    actor = serializers.CharField(source="actor_label", read_only=True)
    items = NumberOrderItemSerializer(many=True, read_only=True)

    class Meta:
        model = NumberOrder
        fields = ["id", "status", "features", "autorenew", "actor", "created_at", "items"]
        read_only_fields = fields

    def get_features(self, obj) -> list[str]:
        return _features(obj)


class NumberOrderCreateSerializer(serializers.Serializer):
    numbers = serializers.ListField(
        child=serializers.CharField(max_length=32),
        min_length=1,
        max_length=services.ORDER_MAX_NUMBERS,
        help_text='E.164 numbers from a search, e.g. ["+12015550123"].',
    )
    features = serializers.ListField(
        child=serializers.ChoiceField(choices=["voice", "sms"]), default=["voice"], help_text="voice and/or sms."
    )
    autorenew = serializers.BooleanField(default=True)
    tn_profile = AccountObjectField(TnProfile, required=False, allow_null=True, default=None)
    call_control_app = AccountObjectField(CallControlApp, required=False, allow_null=True, default=None)
    sip_connection = AccountObjectField(SipConnection, required=False, allow_null=True, default=None)
    sip_user = AccountObjectField(SipUser, required=False, allow_null=True, default=None)


def _orders_queryset():
    return NumberOrder.objects.prefetch_related(
        Prefetch("items", queryset=NumberOrderItem.objects.select_related("phone_number"))
    )


@extend_schema_view(
    list=extend_schema(
        summary="List number orders, newest first", responses={200: NumberOrderSerializer(many=True), **COMMON_ERRORS}
    ),
    retrieve=extend_schema(
        summary="Get a number order with its results", responses={200: NumberOrderSerializer, **COMMON_ERRORS}
    ),
    create=extend_schema(
        summary="Order numbers",
        description=(
            "Each number succeeds or fails on its own; the answer is 201 with a result per number. Reasons: "
            "`taken` (sold to someone else or resting after release), `not_found` (not in stock), `quota` (the "
            "account holds as many numbers as it may), `invalid` (not a valid E.164 number), "
            "`feature_unavailable` (the number lacks a requested feature, e.g. sms). The order's status is "
            "`completed` (all succeeded), `partial` or `failed`. At most one voice target may be given."
        ),
        request=NumberOrderCreateSerializer,
        responses={201: NumberOrderSerializer, **COMMON_ERRORS},
    ),
)
class NumberOrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = _orders_queryset()
    serializer_class = NumberOrderSerializer
    filterset_class = NumberOrderFilterSet
    pagination_class = CursorPagination
    ordering_fields: list[str] = []

    def create(self, request):
        data = NumberOrderCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        features = fields.pop("features")
        order = services.number_order_create(
            account=self.account,
            actor=self.credential.actor,
            voice="voice" in features,
            sms="sms" in features,
            **fields,
        )
        return Response(NumberOrderSerializer(_orders_queryset().get(pk=order.pk)).data, status=status.HTTP_201_CREATED)


# --- Owned numbers -----------------------------------------------------------------------------------


class PhoneNumberSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    country = serializers.CharField(source="stock.country", read_only=True)
    type = serializers.ChoiceField(choices=NumberType.choices, source="stock.number_type", read_only=True)
    features = serializers.SerializerMethodField(help_text="What the number supports (voice, sms).")
    tn_profile = _id_field("tn_profile")
    call_control_app = _id_field("call_control_app")
    sip_connection = _id_field("sip_connection")
    sip_user = _id_field("sip_user")
    order = _id_field("order")

    class Meta:
        model = PhoneNumber
        fields = [
            "id", "number", "status", "country", "type", "features", "description", "tags", "voice_enabled",
            "sms_enabled", "autorenew", "tn_profile", "call_control_app", "sip_connection", "sip_user",
            "status_callback_url", "status_callback_method", "order", "leased_at", "expires_at", "released_at",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_features(self, obj) -> list[str]:
        return _features(obj.stock)


class PhoneNumberUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=200)
    tags = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        help_text="At most 20 labels of 1-32 letters, digits, _ or -.",
    )
    voice_enabled = serializers.BooleanField(required=False)
    sms_enabled = serializers.BooleanField(required=False)
    autorenew = serializers.BooleanField(required=False)
    tn_profile = AccountObjectField(TnProfile, required=False, allow_null=True)
    call_control_app = AccountObjectField(
        CallControlApp,
        required=False,
        allow_null=True,
        help_text="Voice target; at most one of call_control_app, sip_connection, sip_user. To switch, null the "
        "current one in the same request, or the answer is a 400 `voice_target_conflict`.",
    )
    sip_connection = AccountObjectField(SipConnection, required=False, allow_null=True, help_text="Voice target.")
    sip_user = AccountObjectField(SipUser, required=False, allow_null=True, help_text="Voice target.")
    status_callback_url = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Called on every status change of every call."
    )
    status_callback_method = serializers.ChoiceField(choices=PhoneNumber.Method.choices, required=False)


_E164_IN_PATH = re.compile(r"^\+?([1-9][0-9]{5,14})$")


@extend_schema_view(
    list=extend_schema(
        summary="List the account's numbers (active only, unless filtered by status)",
        responses={200: PhoneNumberSerializer(many=True), **COMMON_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Get a number, by id or by E.164 (e.g. /numbers/+12015550123)",
        responses={200: PhoneNumberSerializer, **COMMON_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a number",
        request=PhoneNumberUpdateSerializer,
        responses={200: PhoneNumberSerializer, **COMMON_ERRORS},
    ),
    destroy=extend_schema(
        summary="Release a number",
        description="The lease ends now; the number rests in quarantine before anyone can order it again.",
        responses={204: None, **COMMON_ERRORS},
    ),
)
class PhoneNumberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = PhoneNumber.objects.select_related(
        "stock", "tn_profile", "call_control_app", "sip_connection", "sip_user", "order"
    )
    serializer_class = PhoneNumberSerializer
    filterset_class = PhoneNumberFilterSet
    ordering_fields = ["number", "expires_at", "created_at"]
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_object(self):
        # By public id, or by the number itself: "+12015550123", "%2B12015550123" (decoded by Django) or
        # "12015550123". A number resolves to the account's active lease, else its latest released one.
        # Filters of the list do not apply here, so a released lease stays reachable by its id.
        value = self.kwargs[self.lookup_url_kwarg]
        queryset = self.get_queryset()
        public_id = parse_public_id(value)
        match = _E164_IN_PATH.match(value)
        if public_id is not None:
            obj = queryset.filter(public_id=public_id).first()
        elif match:
            leases = queryset.filter(number=f"+{match.group(1)}")
            obj = leases.filter(status=PhoneNumber.Status.ACTIVE).first() or leases.order_by("-released_at").first()
        else:
            obj = None
        if obj is None:
            raise Http404
        self.check_object_permissions(self.request, obj)
        return obj

    def partial_update(self, request, id=None):
        number = self.get_object()
        data = PhoneNumberUpdateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        services.number_update(
            account=self.account, actor=self.credential.actor, number=number, changes=dict(data.validated_data)
        )
        return Response(PhoneNumberSerializer(self.get_queryset().get(pk=number.pk)).data)

    def destroy(self, request, id=None):
        services.number_release(account=self.account, actor=self.credential.actor, number=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


router.register("number-orders", NumberOrderViewSet, basename="number-order")
router.register("numbers", PhoneNumberViewSet, basename="phone-number")

urlpatterns: list = [
    path("available-numbers", AvailableNumberViewSet.as_view({"get": "list"}), name="available-numbers"),
]

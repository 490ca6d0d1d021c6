"""API for SIP: /sip-connections (with their numbers and invites), /sip-domains (with their users), /sip-users.

SIP passwords are write-only and their digest hashes are never serialized: no serializer here names them.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from portal.api import COMMON_ERRORS, router
from telephony.api.extension_hooks import ExtensionHookActions
from telephony.edge.registrations import mark_online, sip_user_online
from telephony.filtersets.sip import SipConnectionFilterSet, SipDomainFilterSet, SipUserFilterSet
from telephony.models import CallControlApp, PhoneNumber, SipConnection, SipDomain, SipInvite, SipUser
from telephony.models.sip import Transport
from telephony.services import sip as services
from tenants.scoping import AccountScopedViewSet, get_for_account

# --- Fields --------------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.UUID)
class AccountObjectField(serializers.Field):
    """An id in a request body, resolved within the caller's account; another account's id is not found."""

    default_error_messages = {"not_found": "Not found in this account."}

    def __init__(self, model, **kwargs):
        self.model = model
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return get_for_account(self.model, self.context["account"], data)
        except ObjectDoesNotExist:
            self.fail("not_found")

    def to_representation(self, value):
        return str(value.public_id)


@extend_schema_field({"type": "string", "description": "A number id (UUID) or an E.164 number."})
class AccountNumberField(serializers.Field):
    """One of the account's active numbers, by id or E.164."""

    default_error_messages = {"not_found": "No such active number in this account."}

    def to_internal_value(self, data):
        try:
            return services.find_account_number(self.context["account"], data)
        except PhoneNumber.DoesNotExist:
            self.fail("not_found")

    def to_representation(self, value):
        return value.number


class NumberSummarySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = PhoneNumber
        fields = ["id", "number", "description", "voice_enabled"]
        read_only_fields = fields


# --- Connections ---------------------------------------------------------------------------------


class SipConnectionSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    default_caller_id = NumberSummarySerializer(read_only=True, allow_null=True)
    registrar = serializers.SerializerMethodField(
        help_text="Where a credential-authenticated trunk registers; also its digest realm. Null for IP auth."
    )

    class Meta:
        model = SipConnection
        fields = [
            "id", "name", "is_active", "auth_type", "username", "registrar", "allowed_ips", "inbound_host",
            "inbound_port", "inbound_transport", "codecs", "caller_id_policy", "default_caller_id", "channel_limit",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_registrar(self, connection) -> str | None:
        return settings.PLATFORM_SIP_DOMAIN if connection.auth_type == SipConnection.AuthType.CREDENTIALS else None


class SipConnectionWriteSerializer(serializers.Serializer):
    """Shape only; the rules (IP networks, codecs, username and password) are the service's."""

    name = serializers.CharField(max_length=100)
    is_active = serializers.BooleanField(default=True)
    auth_type = serializers.ChoiceField(choices=SipConnection.AuthType.choices, default="credentials")
    username = serializers.CharField(required=False, allow_null=True, max_length=200)
    password = serializers.CharField(
        required=False, write_only=True, max_length=1000, trim_whitespace=False,
        help_text="Write-only. At least 10 characters, not only digits, not containing the username.",
    )  # fmt: skip
    allowed_ips = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=1000,
        help_text="IP auth: addresses or CIDR networks (at most 50; no network broader than /16 or IPv6 /48).",
    )  # fmt: skip
    inbound_host = serializers.CharField(required=False, allow_blank=True, max_length=255)
    inbound_port = serializers.IntegerField(required=False)
    inbound_transport = serializers.ChoiceField(choices=Transport.choices, required=False)
    codecs = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, max_length=100,
        help_text=f"In order of preference, from {', '.join(services.KNOWN_CODECS)}.",
    )  # fmt: skip
    caller_id_policy = serializers.ChoiceField(choices=SipConnection.CallerIdPolicy.choices, required=False)
    default_caller_id = AccountNumberField(
        required=False, allow_null=True, help_text="An id or E.164 number of one of the account's active numbers."
    )
    channel_limit = serializers.IntegerField(required=False, allow_null=True)


class NumberChangeSerializer(serializers.Serializer):
    add = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        default=list,
        help_text="Number ids or E.164 numbers of this account.",
    )
    remove = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)

    def validate(self, data):
        if not data["add"] and not data["remove"]:
            raise serializers.ValidationError("Send the numbers to add, to remove, or both.", code="required")
        return data


class SipInviteSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    connection = serializers.UUIDField(source="connection.public_id", read_only=True)
    domain = serializers.UUIDField(source="domain.public_id", read_only=True)
    domain_name = serializers.CharField(source="domain.domain", read_only=True)
    # A plain string, not an enum: a second "state" enum would collide with SipUser's in the schema.
    state = serializers.CharField(read_only=True, help_text="pending, used or expired.")
    sip_user = serializers.UUIDField(source="sip_user.public_id", read_only=True, allow_null=True, default=None)

    class Meta:
        model = SipInvite
        fields = [
            "id", "name", "connection", "domain", "domain_name", "state", "expires_at", "used_at", "sip_user",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class SipInviteCreatedSerializer(SipInviteSerializer):
    token = serializers.CharField(read_only=True, help_text="The one-time token. Shown only in this response.")
    url = serializers.CharField(read_only=True, help_text="The link to send to the invited person.")

    class Meta(SipInviteSerializer.Meta):
        fields = [*SipInviteSerializer.Meta.fields, "token", "url"]
        read_only_fields = fields


class SipInviteCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="Who the invite is for.")
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="Default: in 7 days; at most 30 days ahead."
    )
    domain = AccountObjectField(
        SipDomain,
        required=False,
        allow_null=True,
        default=None,
        help_text="The SIP domain the user is created in; default: the account's only one.",
    )


def _paginated(view, queryset, serializer_class):
    page = view.paginate_queryset(queryset)
    return view.get_paginated_response(serializer_class(page, many=True, context=view.get_serializer_context()).data)


@extend_schema_view(
    list=extend_schema(
        summary="List SIP connections", responses={200: SipConnectionSerializer(many=True), **COMMON_ERRORS}
    ),
    retrieve=extend_schema(summary="Get a SIP connection", responses={200: SipConnectionSerializer, **COMMON_ERRORS}),
    create=extend_schema(
        summary="Create a SIP connection (credentials: username + password; ip: allowed_ips)",
        request=SipConnectionWriteSerializer,
        responses={201: SipConnectionSerializer, **COMMON_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a SIP connection; a new username needs the password too",
        request=SipConnectionWriteSerializer,
        responses={200: SipConnectionSerializer, **COMMON_ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a SIP connection (its numbers lose it as their voice target)",
        responses={204: None, **COMMON_ERRORS},
    ),
)
class SipConnectionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = SipConnection.objects.select_related("default_caller_id")
    serializer_class = SipConnectionSerializer
    filterset_class = SipConnectionFilterSet
    ordering_fields = ["name", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request):
        data = SipConnectionWriteSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        connection = services.sip_connection_create(
            account=self.account, actor=self.credential.actor, **data.validated_data
        )
        return Response(SipConnectionSerializer(connection).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, id=None):
        connection = self.get_object()
        data = SipConnectionWriteSerializer(data=request.data, partial=True, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        connection = services.sip_connection_update(
            account=self.account, actor=self.credential.actor, connection=connection, **data.validated_data
        )
        return Response(SipConnectionSerializer(connection).data)

    def destroy(self, request, id=None):
        services.sip_connection_delete(account=self.account, actor=self.credential.actor, connection=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["GET"],
        summary="The numbers whose voice calls go to this connection",
        responses={200: NumberSummarySerializer(many=True), **COMMON_ERRORS},
    )
    @extend_schema(
        methods=["POST"],
        summary="Assign and unassign numbers; answers the connection's numbers as they now stand",
        description="Assigning a number here takes it off its call-control app or SIP user: a number has one "
        "voice target. Errors are positional: `add.2` is the third item of `add`.",
        request=NumberChangeSerializer,
        responses={200: NumberSummarySerializer(many=True), **COMMON_ERRORS},
    )
    @action(detail=True, methods=["get", "post"])
    def numbers(self, request, id=None):
        connection = self.get_object()
        if request.method == "POST":
            data = NumberChangeSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            services.sip_connection_change_numbers(
                account=self.account, actor=self.credential.actor, connection=connection, **data.validated_data
            )
        numbers = PhoneNumber.objects.for_account(self.account).filter(sip_connection=connection).order_by("number")
        return _paginated(self, numbers, NumberSummarySerializer)

    @extend_schema(
        methods=["GET"],
        summary="The connection's invites (never their tokens)",
        responses={200: SipInviteSerializer(many=True), **COMMON_ERRORS},
    )
    @extend_schema(
        methods=["POST"],
        summary="Invite a person to create their own SIP user; the response carries the token and link, once",
        request=SipInviteCreateSerializer,
        responses={201: SipInviteCreatedSerializer, **COMMON_ERRORS},
    )
    @action(detail=True, methods=["get", "post"])
    def invites(self, request, id=None):
        connection = self.get_object()
        if request.method == "POST":
            data = SipInviteCreateSerializer(data=request.data, context=self.get_serializer_context())
            data.is_valid(raise_exception=True)
            created = services.sip_invite_create(
                account=self.account, actor=self.credential.actor, connection=connection, **data.validated_data
            )
            created.invite.token = created.token
            created.invite.url = services.invite_link(created.token, request)
            response = Response(SipInviteCreatedSerializer(created.invite).data, status=status.HTTP_201_CREATED)
            response["Cache-Control"] = "no-store"
            return response
        invites = connection.invites.select_related("connection", "domain", "sip_user")
        return _paginated(self, invites, SipInviteSerializer)

    @extend_schema(
        summary="Revoke an invite: its link stops working",
        parameters=[OpenApiParameter("invite_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={204: None, **COMMON_ERRORS},
    )
    @action(detail=True, methods=["delete"], url_path=r"invites/(?P<invite_id>[^/.]+)", url_name="invite-detail")
    def revoke_invite(self, request, id=None, invite_id=None):
        connection = self.get_object()
        try:
            invite = get_for_account(SipInvite, self.account, invite_id)
        except SipInvite.DoesNotExist as exc:
            raise NotFound from exc
        if invite.connection_id != connection.pk:
            raise NotFound
        services.sip_invite_revoke(account=self.account, actor=self.credential.actor, invite=invite)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Domains and users ---------------------------------------------------------------------------


class SipDomainSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    default_call_control_app = serializers.UUIDField(
        source="default_call_control_app.public_id", read_only=True, allow_null=True, default=None
    )
    default_sip_connection = serializers.UUIDField(
        source="default_sip_connection.public_id", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = SipDomain
        fields = [
            "id", "name", "domain", "same_domain_calls_only", "default_call_control_app", "default_sip_connection",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class SipDomainWriteSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=100, help_text="A DNS label; the domain is <name>.sip.<platform domain>. Cannot be changed later."
    )
    same_domain_calls_only = serializers.BooleanField(default=False)
    default_call_control_app = AccountObjectField(CallControlApp, required=False, allow_null=True)
    default_sip_connection = AccountObjectField(SipConnection, required=False, allow_null=True)


class SipUserSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    domain = serializers.UUIDField(source="domain.public_id", read_only=True)
    domain_name = serializers.CharField(source="domain.domain", read_only=True)
    sip_uri = serializers.CharField(read_only=True)
    caller_id_number = NumberSummarySerializer(read_only=True, allow_null=True)
    sip_connection = serializers.UUIDField(
        source="sip_connection.public_id", read_only=True, allow_null=True, default=None
    )
    state = serializers.SerializerMethodField()

    class Meta:
        model = SipUser
        fields = [
            "id", "login", "domain", "domain_name", "sip_uri", "first_name", "last_name", "email",
            "caller_id_number", "sip_connection", "is_active", "same_domain_calls_only", "state", "last_seen_at",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(
        serializers.ChoiceField(
            choices=SipUser.State.choices,
            help_text="online while the user has a registration with the SIP edge that has not expired.",
        )
    )
    def get_state(self, user: SipUser) -> str:
        return SipUser.State.ONLINE if sip_user_online(user) else SipUser.State.OFFLINE


class SipUserWriteSerializer(serializers.Serializer):
    login = serializers.CharField(max_length=200, help_text="2-64 of A-Z a-z 0-9 . _ -; unique in the domain.")
    password = serializers.CharField(
        write_only=True, max_length=1000, trim_whitespace=False,
        help_text="Write-only. At least 10 characters, not only digits, not containing the login.",
    )  # fmt: skip
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    caller_id_number = AccountNumberField(
        required=False, allow_null=True, default=None,
        help_text="An id or E.164 number of one of the account's active numbers.",
    )  # fmt: skip
    sip_connection = AccountObjectField(
        SipConnection,
        required=False,
        allow_null=True,
        default=None,
        help_text="The trunk that carries this user's PSTN calls.",
    )
    is_active = serializers.BooleanField(default=True)
    same_domain_calls_only = serializers.BooleanField(default=False)


_SIP_USERS = SipUser.objects.select_related("domain", "caller_id_number", "sip_connection")


@extend_schema_view(
    list=extend_schema(summary="List SIP domains", responses={200: SipDomainSerializer(many=True), **COMMON_ERRORS}),
    retrieve=extend_schema(summary="Get a SIP domain", responses={200: SipDomainSerializer, **COMMON_ERRORS}),
    create=extend_schema(
        summary="Create a SIP domain <name>.sip.<platform domain>",
        request=SipDomainWriteSerializer,
        responses={201: SipDomainSerializer, **COMMON_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a SIP domain's options (its name cannot change)",
        request=SipDomainWriteSerializer,
        responses={200: SipDomainSerializer, **COMMON_ERRORS},
    ),
    destroy=extend_schema(summary="Delete a SIP domain with its SIP users", responses={204: None, **COMMON_ERRORS}),
)
class SipDomainViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = SipDomain.objects.select_related("default_call_control_app", "default_sip_connection")
    serializer_class = SipDomainSerializer
    filterset_class = SipDomainFilterSet
    ordering_fields = ["name", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request):
        data = SipDomainWriteSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        domain = services.sip_domain_create(account=self.account, actor=self.credential.actor, **data.validated_data)
        return Response(SipDomainSerializer(domain).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, id=None):
        domain = self.get_object()
        data = SipDomainWriteSerializer(data=request.data, partial=True, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        domain = services.sip_domain_update(
            account=self.account, actor=self.credential.actor, domain=domain, **data.validated_data
        )
        return Response(SipDomainSerializer(domain).data)

    def destroy(self, request, id=None):
        services.sip_domain_delete(account=self.account, actor=self.credential.actor, domain=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["GET"],
        summary="The domain's SIP users",
        responses={200: SipUserSerializer(many=True), **COMMON_ERRORS},
    )
    @extend_schema(
        methods=["POST"],
        summary="Create a SIP user in the domain (only the password's hashes are kept)",
        request=SipUserWriteSerializer,
        responses={201: SipUserSerializer, **COMMON_ERRORS},
    )
    @action(detail=True, methods=["get", "post"])
    def users(self, request, id=None):
        domain = self.get_object()
        if request.method == "POST":
            data = SipUserWriteSerializer(data=request.data, context=self.get_serializer_context())
            data.is_valid(raise_exception=True)
            user = services.sip_user_create(
                account=self.account, actor=self.credential.actor, domain=domain, **data.validated_data
            )
            return Response(SipUserSerializer(user).data, status=status.HTTP_201_CREATED)
        page = self.paginate_queryset(_SIP_USERS.for_account(self.account).filter(domain=domain))
        mark_online(page or [])
        return self.get_paginated_response(
            SipUserSerializer(page, many=True, context=self.get_serializer_context()).data
        )


@extend_schema_view(
    list=extend_schema(
        summary="List SIP users across domains", responses={200: SipUserSerializer(many=True), **COMMON_ERRORS}
    ),
    retrieve=extend_schema(summary="Get a SIP user", responses={200: SipUserSerializer, **COMMON_ERRORS}),
    partial_update=extend_schema(
        summary="Change a SIP user; a new password replaces its hashes, a new login needs the password",
        request=SipUserWriteSerializer,
        responses={200: SipUserSerializer, **COMMON_ERRORS},
    ),
    destroy=extend_schema(summary="Delete a SIP user", responses={204: None, **COMMON_ERRORS}),
)
class SipUserViewSet(ExtensionHookActions, mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = _SIP_USERS
    serializer_class = SipUserSerializer
    filterset_class = SipUserFilterSet
    ordering_fields = ["login", "created_at", "last_seen_at"]
    # Users are created under their domain: POST /sip-domains/{id}/users (POST here: their event hooks).
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        # The page's registrations in one query, for `state`; the event-hook actions page hooks, not users.
        if queryset.model is SipUser:
            mark_online(page or [])
        return page

    def partial_update(self, request, id=None):
        user = self.get_object()
        data = SipUserWriteSerializer(data=request.data, partial=True, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        user = services.sip_user_update(
            account=self.account, actor=self.credential.actor, sip_user=user, **data.validated_data
        )
        return Response(SipUserSerializer(user).data)

    def destroy(self, request, id=None):
        services.sip_user_delete(account=self.account, actor=self.credential.actor, sip_user=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


router.register("sip-connections", SipConnectionViewSet, basename="sip-connection")
router.register("sip-domains", SipDomainViewSet, basename="sip-domain")
router.register("sip-users", SipUserViewSet, basename="sip-user")

urlpatterns: list = []

from __future__ import annotations

import base64
import binascii

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api import COMMON_ERRORS, CursorPagination
from tenants import services
from tenants.api.serializers import (
    AccountSerializer,
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    AuditEntrySerializer,
    AuthResponseSerializer,
    MembershipCreateSerializer,
    MembershipSerializer,
    MembershipUpdateSerializer,
)
from tenants.credentials import AccountCredential, issue_auth_token
from tenants.filtersets import ApiKeyFilterSet, AuditEntryFilterSet, MembershipFilterSet
from tenants.models import ApiKey, AuditEntry, Membership
from tenants.permissions import AccountSuspended, CanManageAccess
from tenants.scoping import AccountScopedViewSet, memberships_for, parse_public_id
from tenants.throttling import clear_login_failures, login_retry_after, record_login_failure


class LoginThrottled(exceptions.Throttled):
    default_detail = "Too many failed logins."


def _basic_credentials(request) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise exceptions.NotAuthenticated("Send your email and password with HTTP Basic authentication.")
    try:
        email, sep, password = base64.b64decode(encoded.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise exceptions.AuthenticationFailed("Malformed Basic credentials.") from exc
    if not sep:
        raise exceptions.AuthenticationFailed("Malformed Basic credentials.")
    return email, password


class AuthView(APIView):
    """Opentact-style login: email and password in, a short-lived token for one account out."""

    # Deliberately public: this is where a person without a token gets one.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get_authenticate_header(self, request) -> str:
        return 'Basic realm="api"'

    @extend_schema(
        operation_id="auth_login",
        summary="Exchange email and password (HTTP Basic) for a token",
        parameters=[OpenApiParameter("account", str, description="Account id to act for; default: the first.")],
        responses={200: AuthResponseSerializer, **COMMON_ERRORS},
        auth=[{"basicAuth": []}],
    )
    def get(self, request):
        email, password = _basic_credentials(request)
        address = request.META.get("REMOTE_ADDR", "")
        wait = login_retry_after(email, address)
        if wait:
            raise LoginThrottled(wait=wait)
        user = authenticate(request, username=email, password=password)
        if user is None:
            record_login_failure(email, address)
            raise exceptions.AuthenticationFailed("Wrong email or password.", code="invalid_credentials")
        clear_login_failures(email)
        memberships = list(memberships_for(user))
        if not memberships:
            raise exceptions.PermissionDenied("This user is not a member of any account.", code="no_account")
        chosen = memberships[0]
        wanted = request.query_params.get("account")
        if wanted:
            parsed = parse_public_id(wanted)
            chosen = next((m for m in memberships if m.account.public_id == parsed or m.account.slug == wanted), None)
            if chosen is None:
                raise exceptions.NotFound()
        if not chosen.account.is_active:
            raise AccountSuspended()
        token, expires_at = issue_auth_token(user, chosen.account)
        credential = AccountCredential(account=chosen.account, role=chosen.role, user=user)
        body = {
            "token": token,
            "expires_at": expires_at,
            "user": user,
            "account": chosen.account,
            "accounts": [
                {"id": str(m.account.public_id), "name": m.account.name, "slug": m.account.slug, "role": m.role}
                for m in memberships
            ],
        }
        return Response(AuthResponseSerializer(body, context={"credential": credential}).data)


@extend_schema_view(
    retrieve=extend_schema(
        summary="The account this credential acts for", responses={200: AccountSerializer, **COMMON_ERRORS}
    )
)
class AccountViewSet(AccountScopedViewSet):
    serializer_class = AccountSerializer
    pagination_class = None

    def retrieve(self, request):
        return Response(self.get_serializer(self.account).data)


@extend_schema_view(
    list=extend_schema(summary="List members", responses={200: MembershipSerializer(many=True), **COMMON_ERRORS}),
    retrieve=extend_schema(summary="Get a member", responses={200: MembershipSerializer, **COMMON_ERRORS}),
    create=extend_schema(
        summary="Add a member (a new person is emailed a link to choose a password)",
        request=MembershipCreateSerializer,
        responses={201: MembershipSerializer, **COMMON_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a member's role",
        request=MembershipUpdateSerializer,
        responses={200: MembershipSerializer, **COMMON_ERRORS},
    ),
    destroy=extend_schema(summary="Remove a member", responses={204: None, **COMMON_ERRORS}),
)
class MembershipViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = Membership.objects.select_related("user")
    serializer_class = MembershipSerializer
    permission_classes = [CanManageAccess]
    filterset_class = MembershipFilterSet
    ordering_fields = ["created_at", "role"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request):
        data = MembershipCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership, _ = services.membership_add(
            account=self.account, actor=self.credential.actor, acting_role=self.credential.role, **data.validated_data
        )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, id=None):
        data = MembershipUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_change_role(
            account=self.account,
            actor=self.credential.actor,
            acting_role=self.credential.role,
            membership=self.get_object(),
            role=data.validated_data["role"],
        )
        return Response(MembershipSerializer(membership).data)

    def destroy(self, request, id=None):
        services.membership_remove(
            account=self.account,
            actor=self.credential.actor,
            acting_role=self.credential.role,
            membership=self.get_object(),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="List API keys", responses={200: ApiKeySerializer(many=True), **COMMON_ERRORS}),
    retrieve=extend_schema(
        summary="Get an API key (never its secret)", responses={200: ApiKeySerializer, **COMMON_ERRORS}
    ),
    create=extend_schema(
        summary="Create an API key; the response carries the secret in `key`, once",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer, **COMMON_ERRORS},
    ),
    destroy=extend_schema(summary="Revoke an API key", responses={204: None, **COMMON_ERRORS}),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = ApiKey.objects.select_related("created_by")
    serializer_class = ApiKeySerializer
    permission_classes = [CanManageAccess]
    filterset_class = ApiKeyFilterSet
    ordering_fields = ["created_at", "name", "last_used_at"]

    def create(self, request):
        data = ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = services.api_key_create(account=self.account, actor=self.credential.actor, **data.validated_data)
        created.api_key.key = created.secret
        return Response(ApiKeyCreatedSerializer(created.api_key).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, id=None):
        services.api_key_revoke(account=self.account, actor=self.credential.actor, api_key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="The account's audit log, newest first",
        responses={200: AuditEntrySerializer(many=True), **COMMON_ERRORS},
    ),
    retrieve=extend_schema(summary="One audit entry", responses={200: AuditEntrySerializer, **COMMON_ERRORS}),
)
class AuditEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilterSet
    pagination_class = CursorPagination
    ordering_fields: list[str] = []

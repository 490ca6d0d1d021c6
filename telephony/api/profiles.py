"""API for TN profiles: the screening policy of numbers, its blacklist and whitelist, and a dry-run test.

Routes: /tn-profiles (list, create), /tn-profiles/{id} (get, patch, delete), /tn-profiles/{id}/blacklist
and /whitelist (GET lists, POST `{"add": [...], "remove": [...]}`), /tn-profiles/{id}/test.
"""

from __future__ import annotations

from django.db.models import Count, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.api import COMMON_ERRORS, ErrorResponse, router
from telephony.filtersets.profiles import CallerListEntryFilterSet, TnProfileFilterSet
from telephony.models import CallerListEntry, PhoneNumber, TnProfile
from telephony.screening import ScreeningDecision, screen_caller_for_profile
from telephony.services import profiles as services
from tenants.credentials import AccountCredential
from tenants.permissions import AccountSuspended, HasAccountCredential
from tenants.scoping import AccountScopedViewSet

SCREENING_RULES = """
**How a TN profile screens calls.** A number with a TN profile checks every inbound caller ID against the
profile's two lists:

- a caller on the **blacklist** is blocked;
- if the **whitelist** is not empty, only callers on it pass (everyone else is blocked as "not on whitelist");
- when a caller is on both lists, the blacklist wins;
- a number without a profile lets every caller through.

A list entry is an E.164 number (`+12015550123`, matched exactly), a prefix (`+1900*`, matching every number
that starts with `+1900`), or `anonymous` (a withheld caller ID). When several entries match, the most specific
is reported: the exact number, then the longest prefix.

The incoming caller ID is normalised first: a number without `+` is read as E.164 digits (`12015550123` is
`+12015550123`; spaces, dashes, dots and parentheses are ignored); an empty caller ID, `anonymous`, `restricted`,
`unknown`, `private`, `unavailable` (any case) and anything that is not a number count as `anonymous`.

A blocked call gets the profile's `block_action`: `reject` (SIP 603 Decline), `busy` (SIP 486 Busy Here) or
`hangup` (answered, then hung up at once).

Each block by a blacklist entry adds one to that entry's `hit_count` and sets its `last_hit_at`. Whitelist passes
and "not on whitelist" blocks are not counted on entries.
""".strip()


# --- Serializers -------------------------------------------------------------------------------------


class TnProfileSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    numbers_count = serializers.IntegerField(read_only=True, default=0, help_text="Active numbers using it.")

    class Meta:
        model = TnProfile
        fields = [
            "id",
            "name",
            "description",
            "block_action",
            "blacklist_count",
            "whitelist_count",
            "numbers_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class TnProfileWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    block_action = serializers.ChoiceField(choices=TnProfile.BlockAction.choices, required=False)


class CallerListEntrySerializer(serializers.ModelSerializer):
    caller_id = serializers.CharField(source="display", read_only=True, help_text='As written: "+1900*" for a prefix.')

    class Meta:
        model = CallerListEntry
        fields = ["caller_id", "kind", "note", "hit_count", "last_hit_at", "created_at"]
        read_only_fields = fields


class CallerListChangeSerializer(serializers.Serializer):
    add = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        default=list,
        help_text='Caller IDs to add: strings ("+12015550123", "+1900*", "anonymous") or {"caller_id": "...", '
        '"note": "..."} objects. Adding an existing entry updates its note if one is given.',
    )
    remove = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        default=list,
        help_text="Caller IDs to remove, written as when added. Removing an absent entry is not an error.",
    )


class CallerListPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Entries on the list (that match the filters).")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CallerListEntrySerializer(many=True)


class CallerListChangedSerializer(CallerListPageSerializer):
    added = serializers.IntegerField()
    updated = serializers.IntegerField(help_text="Existing entries whose note changed.")
    removed = serializers.IntegerField()


class DeleteOptionsSerializer(serializers.Serializer):
    detach_numbers = serializers.BooleanField(default=False)


class ScreeningTestSerializer(serializers.Serializer):
    caller_id = serializers.CharField(
        max_length=100,
        allow_blank=True,
        trim_whitespace=False,
        help_text="As the network would send it; empty means withheld.",
    )


class MatchedEntrySerializer(serializers.Serializer):
    list = serializers.CharField(source="list_type")
    caller_id = serializers.CharField()
    kind = serializers.CharField()
    note = serializers.CharField()


class ScreeningDecisionSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    outcome = serializers.ChoiceField(
        choices=["no_profile", "no_match", "whitelisted", "blacklisted", "not_whitelisted"]
    )
    action = serializers.CharField(allow_null=True, help_text="reject | busy | hangup when blocked.")
    sip_code = serializers.IntegerField(allow_null=True, help_text="603 for reject, 486 for busy; null otherwise.")
    reason = serializers.CharField()
    caller_id = serializers.CharField(help_text='The caller ID as screening read it: "+<digits>" or "anonymous".')
    rule = serializers.SerializerMethodField(
        help_text='The rule that decided, e.g. "blacklist: +1900*" or "not on whitelist"; null when nothing matched.'
    )
    matched_entry = MatchedEntrySerializer(source="entry", allow_null=True)

    def get_rule(self, decision: ScreeningDecision) -> str | None:
        return str(decision.rule) if decision.rule is not None else None


# --- Permissions and errors --------------------------------------------------------------------------


class CanRunDryRun(HasAccountCredential):
    """The test endpoint is a POST that writes nothing, so viewers and read-only keys may use it too."""

    def has_permission(self, request, view) -> bool:
        credential = request.auth
        if not isinstance(credential, AccountCredential):
            raise exceptions.NotAuthenticated()
        if not credential.account.is_active:
            raise AccountSuspended()
        return True


class ProfileInUseConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "profile_in_use"
    default_detail = "This profile is used by numbers."


# --- Views -------------------------------------------------------------------------------------------

LIST_DESCRIPTION = (
    "GET lists the entries (paginated, ordered by caller ID; filter with `caller_id` (starts with, e.g. `+1900`), "
    '`kind`, `note`). POST changes the list with `{"add": [...], "remove": [...]}`: up to 10,000 items in all, '
    "all or nothing (one bad item answers 400 naming it by position, e.g. `add.3`, and nothing changes), and "
    "answers with the counts of the change and the first page of the list as it now stands.\n\n" + SCREENING_RULES
)


def _list_schema(list_name: str):
    return extend_schema_view(
        **{
            list_name: extend_schema(
                methods=["GET"],
                summary=f"List the profile's {list_name}",
                description=LIST_DESCRIPTION,
                parameters=[
                    OpenApiParameter("caller_id", str, description="Caller ID starts with (a trailing * is ignored)."),
                    OpenApiParameter("kind", str, enum=CallerListEntry.Kind.values),
                    OpenApiParameter("note", str, description="Note contains."),
                    OpenApiParameter("page", int),
                    OpenApiParameter("limit", int),
                ],
                responses={200: CallerListPageSerializer, **COMMON_ERRORS},
            ),
        }
    )


@extend_schema_view(
    list=extend_schema(
        summary="List TN profiles",
        description=SCREENING_RULES,
        responses={200: TnProfileSerializer(many=True), **COMMON_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Get a TN profile", description=SCREENING_RULES, responses={200: TnProfileSerializer, **COMMON_ERRORS}
    ),
    create=extend_schema(
        summary="Create a TN profile",
        description=SCREENING_RULES,
        request=TnProfileWriteSerializer,
        responses={201: TnProfileSerializer, **COMMON_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a TN profile's name, description or block action",
        request=TnProfileWriteSerializer,
        responses={200: TnProfileSerializer, **COMMON_ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a TN profile and its lists",
        description="A profile that active numbers use is refused with 409 `profile_in_use` (the message says how "
        "many numbers), so that numbers are never unscreened by accident. Pass `detach_numbers=true` "
        "to take the profile off those numbers and delete it in one step.",
        parameters=[OpenApiParameter("detach_numbers", bool, description="Take the profile off its numbers first.")],
        responses={
            204: None,
            409: OpenApiResponse(ErrorResponse, description="Numbers use this profile."),
            **COMMON_ERRORS,
        },
    ),
)
@_list_schema("blacklist")
@_list_schema("whitelist")
class TnProfileViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    queryset = TnProfile.objects.all()
    serializer_class = TnProfileSerializer
    filterset_class = TnProfileFilterSet
    ordering_fields = ["name", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        active = Q(numbers__status=PhoneNumber.Status.ACTIVE)
        # Meta.ordering does not reach an aggregating query: without order_by its pages could overlap.
        return super().get_queryset().annotate(numbers_count=Count("numbers", filter=active)).order_by("name", "id")

    def _fresh(self, profile: TnProfile) -> TnProfile:
        return self.get_queryset().get(pk=profile.pk)

    def create(self, request):
        data = TnProfileWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = services.tn_profile_create(account=self.account, actor=self.credential.actor, **data.validated_data)
        return Response(TnProfileSerializer(self._fresh(profile)).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, id=None):
        data = TnProfileWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        profile = services.tn_profile_update(
            account=self.account, actor=self.credential.actor, profile=self.get_object(), **data.validated_data
        )
        return Response(TnProfileSerializer(self._fresh(profile)).data)

    def destroy(self, request, id=None):
        options = DeleteOptionsSerializer(data=request.query_params)
        options.is_valid(raise_exception=True)
        detach = options.validated_data["detach_numbers"]
        try:
            services.tn_profile_delete(
                account=self.account, actor=self.credential.actor, profile=self.get_object(), detach_numbers=detach
            )
        except services.ProfileInUse as exc:
            raise ProfileInUseConflict(detail=exc.messages[0]) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)

    # The two lists share one implementation; the URL names the list. Their filters are the entries' own
    # (applied below), not the profile list's, hence no filter backends on these actions.

    @extend_schema(
        methods=["POST"],
        summary="Add and remove blacklist entries",
        description=LIST_DESCRIPTION,
        request=CallerListChangeSerializer,
        responses={200: CallerListChangedSerializer, **COMMON_ERRORS},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def blacklist(self, request, id=None):
        return self._caller_list(request, CallerListEntry.List.BLACKLIST)

    @extend_schema(
        methods=["POST"],
        summary="Add and remove whitelist entries",
        description=LIST_DESCRIPTION,
        request=CallerListChangeSerializer,
        responses={200: CallerListChangedSerializer, **COMMON_ERRORS},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def whitelist(self, request, id=None):
        return self._caller_list(request, CallerListEntry.List.WHITELIST)

    def _caller_list(self, request, list_type: str) -> Response:
        profile = self.get_object()
        change = None
        if request.method == "POST":
            data = CallerListChangeSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            change = services.caller_list_change(
                account=self.account,
                actor=self.credential.actor,
                profile=profile,
                list_type=list_type,
                **data.validated_data,
            )
        entries = CallerListEntry.objects.filter(profile=profile, list_type=list_type)
        if request.method == "GET":
            entries = CallerListEntryFilterSet(request.query_params, queryset=entries, request=request).qs
        page = self.paginate_queryset(entries.order_by("value", "id"))
        response = self.get_paginated_response(CallerListEntrySerializer(page, many=True).data)
        if change is not None:
            response.data = {
                "added": change.added,
                "updated": change.updated,
                "removed": change.removed,
                **response.data,
            }
        return response

    @extend_schema(
        summary="Test a caller against the profile, without a call",
        description="Returns the decision a call from this caller ID would get. Nothing is written: hit counters "
        "do not move. Read-only credentials may use it.\n\n" + SCREENING_RULES,
        request=ScreeningTestSerializer,
        responses={200: ScreeningDecisionSerializer, **COMMON_ERRORS},
        parameters=[OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
    )
    @action(detail=True, methods=["post"], permission_classes=[CanRunDryRun], filter_backends=[])
    def test(self, request, id=None):
        profile = self.get_object()
        data = ScreeningTestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decision = screen_caller_for_profile(profile, data.validated_data["caller_id"], record_hit=False)
        return Response(ScreeningDecisionSerializer(decision).data)


router.register("tn-profiles", TnProfileViewSet, basename="tn-profile")

urlpatterns: list = []

"""One FilterSet per model, shared by the API and the portal's list pages."""

from __future__ import annotations

import django_filters
from django.db.models import Q
from django.utils import timezone

from tenants.models import ApiKey, AuditEntry, Membership, Role


class MembershipFilterSet(django_filters.FilterSet):
    email = django_filters.CharFilter(field_name="user__email", lookup_expr="icontains", label="Email contains")
    role = django_filters.ChoiceFilter(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["email", "role"]


class ApiKeyFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains")
    state = django_filters.ChoiceFilter(
        choices=[("active", "Active"), ("revoked", "Revoked"), ("expired", "Expired")],
        method="filter_state",
        label="State",
    )
    read_only = django_filters.BooleanFilter()

    class Meta:
        model = ApiKey
        fields = ["name", "state", "read_only"]

    def filter_state(self, queryset, name, value):
        now = timezone.now()
        if value == "revoked":
            return queryset.exclude(revoked_at=None)
        if value == "expired":
            return queryset.filter(revoked_at=None, expires_at__lte=now)
        return queryset.filter(Q(expires_at=None) | Q(expires_at__gt=now), revoked_at=None)


class AuditEntryFilterSet(django_filters.FilterSet):
    action = django_filters.CharFilter(lookup_expr="startswith", label="Action starts with")
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte", label="After")
    before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt", label="Before")

    class Meta:
        model = AuditEntry
        fields = ["action", "object_type", "object_id", "after", "before"]

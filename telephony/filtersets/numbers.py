"""FilterSets for numbers, shared by the API and the portal."""

from __future__ import annotations

import re

import django_filters
from django.core.validators import RegexValidator

from telephony.models import NumberOrder, PhoneNumber

_TAG = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class PhoneNumberFilterSet(django_filters.FilterSet):
    """The account's numbers. Without a `status` filter only active numbers are listed; released leases
    stay as history and show with status=released."""

    number = django_filters.CharFilter(
        method="filter_number",
        label="Number contains",
        max_length=20,
        validators=[RegexValidator(r"^[+\d\s().-]*\d[+\d\s().-]*$", "Use digits, e.g. 201555.")],
    )
    status = django_filters.ChoiceFilter(choices=PhoneNumber.Status.choices, method="filter_status", label="Status")
    voice_enabled = django_filters.BooleanFilter()
    sms_enabled = django_filters.BooleanFilter(label="SMS enabled")
    autorenew = django_filters.BooleanFilter()
    tag = django_filters.CharFilter(
        method="filter_tag", label="Tag", validators=[RegexValidator(_TAG, "1-32 letters, digits, _ or -.")]
    )
    tn_profile = django_filters.UUIDFilter(field_name="tn_profile__public_id", label="TN profile id")
    call_control_app = django_filters.UUIDFilter(field_name="call_control_app__public_id", label="Call-control app id")
    sip_connection = django_filters.UUIDFilter(field_name="sip_connection__public_id", label="SIP connection id")
    sip_user = django_filters.UUIDFilter(field_name="sip_user__public_id", label="SIP user id")

    class Meta:
        model = PhoneNumber
        fields = [
            "number", "status", "voice_enabled", "sms_enabled", "autorenew", "tag", "tn_profile",
            "call_control_app", "sip_connection", "sip_user",
        ]  # fmt: skip

    @property
    def qs(self):
        # An unbound FilterSet (a portal list opened without parameters) skips filter_queryset entirely.
        if not self.is_bound and not hasattr(self, "_qs"):
            self._qs = self.queryset.filter(status=PhoneNumber.Status.ACTIVE)
        return super().qs

    def filter_queryset(self, queryset):
        if not self.form.cleaned_data.get("status"):
            queryset = queryset.filter(status=PhoneNumber.Status.ACTIVE)
        return super().filter_queryset(queryset)

    def filter_status(self, queryset, name, value):
        return queryset.filter(status=value)

    def filter_number(self, queryset, name, value):
        # "+1 (201) 555" and "201555" both find +12015550123: compare digits only.
        return queryset.filter(number__contains=re.sub(r"\D", "", value))

    def filter_tag(self, queryset, name, value):
        # Tags are a JSON list; matching the quoted tag inside its JSON text works the same on SQLite and
        # PostgreSQL, and the tag alphabet (no quotes, no backslashes) keeps the match exact.
        return queryset.filter(tags__icontains=f'"{value}"')


class NumberOrderFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=NumberOrder.Status.choices)
    number = django_filters.CharFilter(
        field_name="items__number", lookup_expr="contains", label="Has number", distinct=True
    )
    after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte", label="After")
    before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt", label="Before")

    class Meta:
        model = NumberOrder
        fields = ["status", "number", "after", "before"]

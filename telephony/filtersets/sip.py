"""FilterSets for SIP, shared by the API and the portal."""

from __future__ import annotations

import django_filters

from telephony.edge.registrations import online_q
from telephony.models import SipConnection, SipDomain, SipUser


class SipConnectionFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains")
    auth_type = django_filters.ChoiceFilter(choices=SipConnection.AuthType.choices, label="Authentication")
    is_active = django_filters.BooleanFilter(label="Active")

    class Meta:
        model = SipConnection
        fields = ["name", "auth_type", "is_active"]


class SipDomainFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains")

    class Meta:
        model = SipDomain
        fields = ["name"]


class SipUserFilterSet(django_filters.FilterSet):
    domain = django_filters.UUIDFilter(field_name="domain__public_id", label="Domain id")
    login = django_filters.CharFilter(lookup_expr="icontains", label="Login contains")
    is_active = django_filters.BooleanFilter(label="Active")
    # Online follows the SIP edge's registrar (unexpired contacts), as the user's `state` in the API does.
    state = django_filters.ChoiceFilter(choices=SipUser.State.choices, method="filter_state")
    connection = django_filters.UUIDFilter(field_name="sip_connection__public_id", label="Connection id")

    def filter_state(self, queryset, name, value):
        return queryset.filter(online_q()) if value == SipUser.State.ONLINE else queryset.exclude(online_q())

    class Meta:
        model = SipUser
        fields = ["domain", "login", "is_active", "state", "connection"]

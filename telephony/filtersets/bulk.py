"""FilterSets for bulk calls, shared by the API and the portal."""

from __future__ import annotations

import django_filters

from telephony.models import BulkCall


class BulkCallFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=BulkCall.Status.choices)
    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains")
    tag = django_filters.CharFilter(label="Tag")

    class Meta:
        model = BulkCall
        fields = ["status", "name", "tag"]

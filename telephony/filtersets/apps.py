"""FilterSets for call-control apps, shared by the API and the portal."""

from __future__ import annotations

import django_filters

from telephony.models import CallControlApp


class CallControlAppFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains")
    mode = django_filters.ChoiceFilter(choices=CallControlApp.Mode.choices)
    is_active = django_filters.BooleanFilter(label="Active")

    class Meta:
        model = CallControlApp
        fields = ["name", "mode", "is_active"]

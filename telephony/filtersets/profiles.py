"""FilterSets for TN profiles and their caller lists, shared by the API and the portal."""

from __future__ import annotations

import django_filters

from telephony.models import CallerListEntry, TnProfile


class TnProfileFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains")
    block_action = django_filters.ChoiceFilter(choices=TnProfile.BlockAction.choices, label="Block action")

    class Meta:
        model = TnProfile
        fields = ["name", "block_action"]


class CallerListEntryFilterSet(django_filters.FilterSet):
    caller_id = django_filters.CharFilter(method="filter_caller_id", label="Caller ID starts with")
    kind = django_filters.ChoiceFilter(choices=CallerListEntry.Kind.choices, label="Kind")
    note = django_filters.CharFilter(lookup_expr="icontains", label="Note contains")

    class Meta:
        model = CallerListEntry
        fields = ["caller_id", "kind", "note"]

    def filter_caller_id(self, queryset, name, value):
        # Prefixes are stored without their "*", and people type them with it ("+1900*").
        value = value.strip().rstrip("*")
        return queryset.filter(value__startswith=value) if value else queryset

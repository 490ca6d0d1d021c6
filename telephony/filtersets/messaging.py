"""FilterSets for messaging: the message log (API and portal), the messaging profile list and the opt-outs."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from telephony.models import Message, MessagingProfile, OptOut
from telephony.services.numbers import normalize_e164


class MessageFilterSet(django_filters.FilterSet):
    direction = django_filters.ChoiceFilter(choices=Message.Direction.choices)
    status = django_filters.MultipleChoiceFilter(
        choices=Message.Status.choices, label="Status (repeat, or separate with commas, for several)"
    )
    from_ = django_filters.CharFilter(method="filter_from", label="From (E.164, exact)", max_length=32)
    to = django_filters.CharFilter(method="filter_to", label="To (E.164, exact)", max_length=32)
    number = django_filters.CharFilter(
        method="filter_number", label="Number (E.164): messages from or to it", max_length=32
    )
    text = django_filters.CharFilter(field_name="text", lookup_expr="icontains", label="Text contains", max_length=200)
    thread = django_filters.UUIDFilter(field_name="thread", label="Thread id (one conversation)")
    messaging_profile = django_filters.UUIDFilter(field_name="profile__public_id", label="Messaging profile id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Message
        fields = [
            "direction", "status", "from_", "to", "number", "text", "thread", "messaging_profile", "created_after",
            "created_before",
        ]  # fmt: skip

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and hasattr(data, "getlist") and data.getlist("status"):
            data = data.copy()
            data.setlist("status", [part for raw in data.getlist("status") for part in raw.split(",") if part])
        super().__init__(data, *args, **kwargs)

    @staticmethod
    def _number(value: str) -> str:
        return normalize_e164(value) or value.strip()

    def filter_from(self, queryset, name, value):
        return queryset.filter(from_number=self._number(value))

    def filter_to(self, queryset, name, value):
        return queryset.filter(to_number=self._number(value))

    def filter_number(self, queryset, name, value):
        value = self._number(value)
        return queryset.filter(Q(from_number=value) | Q(to_number=value))


# `from` is a Python keyword: declared as `from_`, exposed to the API and the query string as `from`.
MessageFilterSet.base_filters = {
    ("from" if key == "from_" else key): value for key, value in MessageFilterSet.base_filters.items()
}


class MessagingProfileFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", label="Name contains")

    class Meta:
        model = MessagingProfile
        fields = ["name"]


class OptOutFilterSet(django_filters.FilterSet):
    number = django_filters.CharFilter(method="filter_number", label="Number (E.164, exact)", max_length=32)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = OptOut
        fields = ["number", "created_after", "created_before"]

    def filter_number(self, queryset, name, value):
        return queryset.filter(number=normalize_e164(value) or value.strip())

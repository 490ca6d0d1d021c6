"""FilterSets for call records, shared by the API and the portal's call log."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from telephony.models import Call, CallStatus, PhoneNumber
from telephony.services.numbers import normalize_e164
from tenants.scoping import parse_public_id


class CallFilterSet(django_filters.FilterSet):
    direction = django_filters.ChoiceFilter(choices=Call.Direction.choices)
    status = django_filters.MultipleChoiceFilter(
        choices=CallStatus.choices, label="Status (repeat, or separate with commas, for several)"
    )
    from_ = django_filters.CharFilter(
        field_name="from_number", lookup_expr="contains", label="From contains", max_length=255
    )
    to = django_filters.CharFilter(field_name="to_number", lookup_expr="contains", label="To contains", max_length=255)
    number = django_filters.CharFilter(
        method="filter_number", label="Number (E.164 or number id): calls from or to it", max_length=64
    )
    app = django_filters.UUIDFilter(field_name="app__public_id", label="Call-control app id")
    parent = django_filters.UUIDFilter(field_name="parent__public_id", label="Parent call id (its legs)")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Call
        fields = ["direction", "status", "from_", "to", "number", "app", "parent", "created_after", "created_before"]

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and hasattr(data, "getlist") and data.getlist("status"):
            # `status=completed,busy` and `status=completed&status=busy` mean the same.
            data = data.copy()
            data.setlist("status", [part for raw in data.getlist("status") for part in raw.split(",") if part])
        super().__init__(data, *args, **kwargs)

    def filter_number(self, queryset, name, value):
        value = value.strip()
        parsed = parse_public_id(value)
        if parsed is not None:
            numbers = PhoneNumber.objects.filter(public_id=parsed)
            query = Q()
        else:
            value = normalize_e164(value) or value
            numbers = PhoneNumber.objects.filter(number=value)
            query = Q(from_number=value) | Q(to_number=value)
        # Resolved to plain values first, so the planner can OR index scans instead of running a semi-join.
        for pk, number, account_id in numbers.values_list("pk", "number", "account_id")[:50]:
            # Tied to the number's account: another account's number id matches nothing, since the queryset
            # is already scoped to the caller's account.
            query |= Q(account_id=account_id) & (Q(phone_number_id=pk) | Q(from_number=number) | Q(to_number=number))
        return queryset.filter(query) if query else queryset.none()


# `from` is a Python keyword: declared as `from_`, exposed to the API and the query string as `from`.
CallFilterSet.base_filters = {
    ("from" if key == "from_" else key): value for key, value in CallFilterSet.base_filters.items()
}

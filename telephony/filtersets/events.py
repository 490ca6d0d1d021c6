"""FilterSets for events, webhook endpoints and deliveries, shared by the API and (later) the portal."""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Q

from telephony.models import Delivery, Event, WebhookEndpoint
from tenants.scoping import parse_public_id


def _type_filter(queryset, field: str, value: str):
    """`call.ringing`, a family `call.*`, or several separated by commas."""
    query = Q()
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if item == "*":
            return queryset
        if item.endswith(".*"):
            query |= Q(**{f"{field}__startswith": item[:-1]})
        else:
            query |= Q(**{field: item})
    return queryset.filter(query) if query else queryset


class EventFilterSet(django_filters.FilterSet):
    type = django_filters.CharFilter(
        method="filter_type", label='Type, a family like "call.*", or several separated by commas'
    )
    object = django_filters.CharFilter(field_name="object_id", label="Object id (e.g. a call's or number's id)")
    object_type = django_filters.CharFilter(label="Object type, e.g. call, number, sip_user")
    after = django_filters.CharFilter(
        method="filter_after",
        label="An event id: only events recorded after it, oldest first (resume a feed from the last id seen)",
    )
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Event
        fields = ["type", "object", "object_type", "after", "occurred_after", "occurred_before"]

    def filter_type(self, queryset, name, value):
        return _type_filter(queryset, "type", value)

    def filter_after(self, queryset, name, value):
        parsed = parse_public_id(value)
        # Resolved within the already account-scoped queryset: another account's id is as unknown as none.
        position = queryset.filter(public_id=parsed).values_list("id", flat=True).first() if parsed else None
        if position is None:
            raise ValidationError({"after": ValidationError("No such event in this account.", code="not_found")})
        return queryset.filter(id__gt=position)


class WebhookEndpointFilterSet(django_filters.FilterSet):
    enabled = django_filters.BooleanFilter()
    url = django_filters.CharFilter(lookup_expr="icontains", label="URL contains")

    class Meta:
        model = WebhookEndpoint
        fields = ["enabled", "url"]


class DeliveryFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Delivery.Status.choices)
    # Choices read when the filter is built, so kinds added later (status callbacks...) are filterable too.
    kind = django_filters.ChoiceFilter(choices=lambda: Delivery.Kind.choices, label="Kind")
    webhook = django_filters.UUIDFilter(field_name="endpoint__public_id", label="Webhook endpoint id")
    event = django_filters.UUIDFilter(field_name="event__public_id", label="Event id")
    event_type = django_filters.CharFilter(method="filter_event_type", label='Event type, or a family like "call.*"')
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Delivery
        fields = ["status", "kind", "webhook", "event", "event_type", "created_after", "created_before"]

    def filter_event_type(self, queryset, name, value):
        return _type_filter(queryset, "event__type", value)

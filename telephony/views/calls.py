"""Portal pages for call records: the call log (the API's filters, keyset pages) and the call with its timeline.

The log pages with "older than this call" rather than page numbers: the call table only grows, and counting
it for "page 3 of 4,000" would cost more than the page itself.
"""

from __future__ import annotations

import json

from django import forms
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.urls import path
from django.utils.dateparse import parse_datetime
from django.views.generic import TemplateView

from telephony import q850
from telephony.filtersets.calls import CallFilterSet
from telephony.models import Call, CallControlApp
from telephony.selectors import call_durations, call_timeline
from tenants.scoping import AccountPortalMixin, parse_public_id

PAGE_SIZE = 50
_RELATED = ("parent", "phone_number", "app", "sip_user__domain", "sip_connection")


def _portal_filterset(account):
    """The API's call filters with the portal's widgets: an app menu instead of an id box, status checkboxes."""

    class PortalCallFilterSet(CallFilterSet):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.filters.pop("parent", None)
            self.filters["status"].extra["widget"] = forms.SelectMultiple(attrs={"size": 3})
            self.filters["status"].label = "Status"
            self.filters["number"].label = "Number (from, to or used)"
            self.filters["direction"].extra["empty_label"] = "Any"
            self.filters["app"].label = "App"
            apps = CallControlApp.objects.for_account(account).order_by("name").values_list("public_id", "name")
            self.filters["app"].extra["widget"] = forms.Select(
                choices=[("", "Any"), *((str(public_id), name) for public_id, name in apps)]
            )
            self.filters["created_after"].label = "From (UTC, e.g. 2025-01-31 14:00)"
            self.filters["created_before"].label = "Until (UTC)"

    return PortalCallFilterSet


def with_durations(calls):
    for call in calls:
        call.durations = call_durations(call)
        call.q850_cause_string = q850.cause_name(call.q850_cause)
    return calls


class CallListView(AccountPortalMixin, TemplateView):
    template_name = "telephony/call_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET.copy()
        before = params.pop("before", [None])[-1]
        queryset = self.scoped(Call).select_related(*_RELATED).order_by("-created_at", "-id")
        filterset = _portal_filterset(self.account)(params, queryset=queryset)
        calls: list[Call] = []
        if filterset.is_valid():
            queryset = filterset.qs
            position = self._position(before)
            if position is not None:
                created_at, pk = position
                queryset = queryset.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk))
            calls = list(queryset[: PAGE_SIZE + 1])
        has_older = len(calls) > PAGE_SIZE
        calls = with_durations(calls[:PAGE_SIZE])
        older = params.copy()
        if has_older:
            older["before"] = str(calls[-1].public_id)
        context.update(
            filter=filterset,
            calls=calls,
            paged=bool(before),
            older_query=older.urlencode() if has_older else "",
            newest_query=params.urlencode(),
        )
        return context

    def _position(self, before: str | None):
        parsed = parse_public_id(before) if before else None
        if parsed is None:
            return None
        return self.scoped(Call).filter(public_id=parsed).values_list("created_at", "pk").first()


class CallDetailView(AccountPortalMixin, TemplateView):
    template_name = "telephony/call_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        call = self.get_object_or_404(Call.objects.select_related(*_RELATED), self.kwargs["id"])
        legs = list(call.children.select_related(*_RELATED).order_by("created_at", "id"))
        timeline = call_timeline(call, legs=legs)
        leg_names = {str(call.public_id): "A"}
        leg_names.update({str(leg.public_id): f"B{index}" for index, leg in enumerate(legs, start=1)})
        for entry in timeline["entries"]:
            entry["leg"] = leg_names.get(entry["call_id"], "")
            if entry["kind"] == "event":
                entry["event"]["json"] = json.dumps(entry["event"]["data"], indent=2, cls=DjangoJSONEncoder)
            elif entry["kind"] == "http_request":
                # The engine stores each attempt's time as ISO text in JSON; shown like every other time here.
                for attempt in entry["http_request"]["attempts"]:
                    if isinstance(attempt.get("at"), str):
                        attempt["at"] = parse_datetime(attempt["at"]) or attempt["at"]
        context.update(
            call=with_durations([call])[0],
            legs=with_durations(legs),
            timeline=timeline["entries"],
            timeline_truncated=timeline["truncated"],
            has_legs=bool(legs),
        )
        return context


def _route(suffix: str, view, name: str):
    return path(f"a/<slug:account>/{suffix}", view.as_view(), name=name)


urlpatterns = [
    _route("calls/", CallListView, "call-list"),
    _route("calls/<str:id>/", CallDetailView, "call-detail"),
]

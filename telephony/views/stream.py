"""Portal pages for events, under /a/<account>/events/: the event browser, one event, and the live pane's token.

The browser pages read through keyset pagination ("older than this event") rather than page numbers: the
event table is the largest in the product, and counting it for "page 3 of 4,000" would cost more than the page.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import JsonResponse
from django.urls import path
from django.views import View
from django.views.generic import TemplateView

from telephony.filtersets.events import EventFilterSet
from telephony.models import Delivery, Event
from telephony.stream import event_body
from tenants.credentials import issue_auth_token
from tenants.scoping import AccountPortalMixin, parse_public_id

PAGE_SIZE = 50


class EventBrowserFilterSet(EventFilterSet):
    """The API's event filters; `after` (a feed's resume point) is the API's, the browser pages with `before`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.filters.pop("after", None)
        self.filters["type"].label = "Type (e.g. call.ringing or call.*)"
        self.filters["object"].label = "Object id"
        self.filters["occurred_after"].label = "From (UTC, e.g. 2025-01-31 14:00)"
        self.filters["occurred_before"].label = "Until (UTC)"


class EventListView(AccountPortalMixin, TemplateView):
    template_name = "telephony/event_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET.copy()
        before = params.pop("before", [None])[-1]
        filterset = EventBrowserFilterSet(params, queryset=self.scoped(Event).order_by("-id"))
        events: list[Event] = []
        if filterset.is_valid():
            queryset = filterset.qs
            start = self._position(before)
            if start is not None:
                queryset = queryset.filter(id__lt=start)
            events = list(queryset[: PAGE_SIZE + 1])
        has_older = len(events) > PAGE_SIZE
        events = events[:PAGE_SIZE]
        older = params.copy()
        if has_older:
            older["before"] = str(events[-1].public_id)
        context.update(
            filter=filterset,
            events=events,
            paged=bool(before),
            older_query=older.urlencode() if has_older else "",
            newest_query=params.urlencode(),
            retention_days=settings.EVENT_RETENTION_DAYS,
        )
        return context

    def _position(self, before: str | None) -> int | None:
        parsed = parse_public_id(before) if before else None
        if parsed is None:
            return None
        return self.scoped(Event).filter(public_id=parsed).values_list("id", flat=True).first()


class EventDetailView(AccountPortalMixin, TemplateView):
    template_name = "telephony/event_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        event = self.get_object_or_404(Event, self.kwargs["id"])
        context["event"] = event
        context["body"] = json.dumps(event_body(event, self.account), indent=2, cls=DjangoJSONEncoder)
        context["deliveries"] = (
            Delivery.objects.for_account(self.account).filter(event=event).select_related("endpoint").order_by("id")
        )
        return context


class StreamTokenView(AccountPortalMixin, View):
    """A login token for the dashboard's live pane to authenticate its websocket with (POST, CSRF-checked).

    It is the token GET /api/v1/auth gives this person for this account, so it grants nothing the session does
    not; the page asks for a fresh one for every connection and keeps none.
    """

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        token, expires_at = issue_auth_token(request.user, self.account)
        response = JsonResponse({"token": token, "expires_at": expires_at.isoformat()})
        response["Cache-Control"] = "no-store"
        return response


def _route(route: str, view, name: str):
    return path(f"a/<slug:account>/{route}", view.as_view(), name=name)


urlpatterns = [
    _route("events/", EventListView, "event-list"),
    _route("events/stream-token/", StreamTokenView, "event-stream-token"),
    _route("events/<str:id>/", EventDetailView, "event-detail"),
]

"""The portal's event pages: the event browser, one event with its deliveries, and the live pane's token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from telephony.models import Delivery
from telephony.tests.isolation_events import make_endpoint
from telephony.tests.stream_support import emit
from tenants.credentials import read_auth_token

pytestmark = pytest.mark.django_db


def list_url(account, **params) -> str:
    from urllib.parse import urlencode

    url = reverse("event-list", kwargs={"account": account.slug})
    return f"{url}?{urlencode(params)}" if params else url


def test_it_lists_the_accounts_events_newest_first_with_links(client, alice, charlie):
    client.force_login(alice.user)
    older = emit(alice.account, "call.ringing", object_id="c-1")
    newer = emit(alice.account, "call.answered", object_id="c-1")
    emit(charlie.account, "call.ringing", object_id="charlies-call")

    response = client.get(list_url(alice.account))

    assert response.status_code == 200
    events = list(response.context["events"])
    assert events[:2] == [newer, older]
    assert all(event.account_id == alice.account.id for event in events)
    assert "charlies-call" not in response.content.decode()
    assert reverse("event-detail", kwargs={"account": alice.account.slug, "id": newer.public_id}) in (
        response.content.decode()
    )


def test_it_filters_by_type_object_and_time(client, alice):
    client.force_login(alice.user)
    ringing = emit(alice.account, "call.ringing", object_id="c-1")
    emit(alice.account, "call.ringing", object_id="c-2")
    emit(alice.account, "message.sent", object_type="message", object_id="m-1")
    emit(alice.account, "call.hangup", object_id="c-1")

    by_family = client.get(list_url(alice.account, type="call.*", object="c-1")).context["events"]
    by_time = client.get(
        list_url(
            alice.account,
            type="call.ringing",
            occurred_before=(ringing.occurred_at + timedelta(microseconds=1)).isoformat(),
        )
    ).context["events"]
    future = client.get(list_url(alice.account, occurred_after=(timezone.now() + timedelta(hours=1)).isoformat()))

    assert [event.type for event in by_family] == ["call.hangup", "call.ringing"]
    assert [event.pk for event in by_time] == [ringing.pk]
    assert list(future.context["events"]) == []
    assert "Nothing matches these filters" in future.content.decode()


def test_a_bad_filter_value_is_shown_on_the_form_not_a_crash(client, alice):
    client.force_login(alice.user)

    response = client.get(list_url(alice.account, occurred_after="yesterday-ish"))

    assert response.status_code == 200
    assert response.context["filter"].errors


def test_it_pages_back_through_older_events(client, alice, monkeypatch):
    from telephony.views import stream as views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    client.force_login(alice.user)
    events = [emit(alice.account, "call.ringing", object_id=f"c-{n}") for n in range(5)]

    first = client.get(list_url(alice.account, type="call.ringing"))
    second = client.get(f"{list_url(alice.account)}?{first.context['older_query']}")
    third = client.get(f"{list_url(alice.account)}?{second.context['older_query']}")

    assert [e.pk for e in first.context["events"]] == [events[4].pk, events[3].pk]
    assert [e.pk for e in second.context["events"]] == [events[2].pk, events[1].pk]
    assert [e.pk for e in third.context["events"]] == [events[0].pk]
    assert third.context["older_query"] == ""
    assert "type=call.ringing" in second.context["older_query"]


def test_the_detail_page_shows_the_payload_and_its_deliveries(client, bob, alice):
    client.force_login(bob.user)  # a viewer reads events too
    make_endpoint(alice.account, url="https://93.184.216.34/hooks", event_types=["call.*"])
    event = emit(alice.account, "call.ringing", object_id="c-1", to="+12015550123")

    response = client.get(reverse("event-detail", kwargs={"account": alice.account.slug, "id": event.public_id}))

    assert response.status_code == 200
    page = response.content.decode()
    assert str(event.public_id) in page
    assert "&quot;to&quot;: &quot;+12015550123&quot;" in page
    assert "https://93.184.216.34/hooks" in page
    assert Delivery.objects.filter(event=event).count() == 1


def test_another_accounts_event_is_not_found(client, alice, charlie):
    client.force_login(charlie.user)
    theirs = emit(alice.account, "call.ringing")

    response = client.get(reverse("event-detail", kwargs={"account": charlie.account.slug, "id": theirs.public_id}))

    assert response.status_code == 404


def test_the_stream_token_is_a_login_token_for_this_person_and_account(client, bob):
    client.force_login(bob.user)
    url = reverse("event-stream-token", kwargs={"account": bob.account.slug})

    response = client.post(url)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    claims = read_auth_token(response.json()["token"])
    assert (claims.user, claims.account) == (bob.user, bob.account)
    assert client.get(url).status_code == 405


def test_the_stream_token_needs_the_csrf_token(alice):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice.user)

    response = strict.post(reverse("event-stream-token", kwargs={"account": alice.account.slug}))

    assert response.status_code == 403


def test_the_dashboard_carries_the_live_pane(client, alice):
    client.force_login(alice.user)

    page = client.get(reverse("dashboard", kwargs={"account": alice.account.slug})).content.decode()

    assert "data-live-events" in page
    assert reverse("event-stream-token", kwargs={"account": alice.account.slug}) in page
    assert "portal/events.js" in page
    assert 'data-testid="nav-event-list"' in page

"""The portal's call log (filters, "older" pages) and the call page with its legs and timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from telephony.models import CallHttpRequest
from telephony.services.events import event_emit
from telephony.tests.isolation_apps import make_app, make_call

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice.user)
    return client


def log_url(account) -> str:
    return reverse("call-list", kwargs={"account": account.slug})


def call_url(call) -> str:
    return reverse("call-detail", kwargs={"account": call.account.slug, "id": call.public_id})


def test_the_log_lists_the_accounts_calls_newest_first(as_alice, alice, charlie):
    older = make_call(alice.account, created_at=at(0), from_number="+14155550100")
    newer = make_call(alice.account, created_at=at(10), from_number="+14155550111", status="busy", q850_cause=17)
    make_call(charlie.account, from_number="+19995550000")

    page = as_alice.get(log_url(alice.account)).content.decode()

    assert page.count('data-testid="call-row"') == 2
    assert page.index(call_url(newer)) < page.index(call_url(older))
    assert "USER_BUSY" in page
    assert "+19995550000" not in page
    assert 'data-testid="nav-call-list"' in page


def test_the_log_filters_by_status_number_and_app(as_alice, alice):
    app = make_app(alice.account)
    busy = make_call(alice.account, created_at=at(0), status="busy", to_number="+12125550100")
    with_app = make_call(alice.account, created_at=at(10), app=app)

    by_status = as_alice.get(log_url(alice.account), {"status": "busy"}).content.decode()
    by_number = as_alice.get(log_url(alice.account), {"number": "+12125550100"}).content.decode()
    by_app = as_alice.get(log_url(alice.account), {"app": str(app.public_id)}).content.decode()

    assert by_status.count('data-testid="call-row"') == 1 and call_url(busy) in by_status
    assert by_number.count('data-testid="call-row"') == 1 and call_url(busy) in by_number
    assert by_app.count('data-testid="call-row"') == 1 and call_url(with_app) in by_app
    assert f'<option value="{app.public_id}" selected>' in by_app


def test_the_log_pages_to_older_calls_keeping_the_filters(as_alice, alice, monkeypatch):
    monkeypatch.setattr("telephony.views.calls.PAGE_SIZE", 2)
    calls = [make_call(alice.account, created_at=at(i), status="completed") for i in range(5)]
    make_call(alice.account, created_at=at(20), status="failed")

    seen = []
    url = log_url(alice.account) + "?status=completed"
    while url:
        response = as_alice.get(url)
        page = response.content.decode()
        seen += sorted((c for c in calls if call_url(c) in page), key=lambda c: page.index(call_url(c)))
        older = response.context["older_query"]
        url = log_url(alice.account) + "?" + older if older else None
        if older:
            assert "status=completed" in older

    assert [c.pk for c in seen] == [c.pk for c in reversed(calls)]


def test_the_call_page_shows_summary_legs_and_a_timeline_with_each_attempt(as_alice, alice):
    call = make_call(
        alice.account, created_at=at(0), ringing_at=at(1), answered_at=at(3), ended_at=at(13), q850_cause=16
    )
    leg = make_call(alice.account, parent=call, direction="outbound-dial", to_number="+12125550100", created_at=at(4))
    event_emit(account=alice.account, type="call.initiated", obj=call, occurred_at=at(0), payload={"state": "x"})
    event_emit(
        account=alice.account,
        type="call.flow",
        obj=call,
        occurred_at=at(3),
        payload={"command": "Say", "path": "Response/Say[0]", "success": True, "reason": "Said <b>hi</b>"},
    )
    event_emit(account=alice.account, type="call.ringing", obj=leg, occurred_at=at(5), payload={})
    CallHttpRequest.objects.create(
        account=alice.account,
        call=call,
        purpose="call_flow_url",
        method="POST",
        url="https://example.com/flow",
        request_body='{"from": "+12015550100"}',
        attempts=[
            {"at": at(2).isoformat(), "duration_ms": 5000, "status_code": None, "error": "timeout"},
            {"at": at(2.5).isoformat(), "duration_ms": 90, "status_code": 200, "error": ""},
        ],
        response_status=200,
        response_excerpt="<Response><Say>hi</Say></Response>",
        outcome="ok",
        created_at=at(2),
    )

    page = as_alice.get(call_url(call)).content.decode()

    assert "16 NORMAL_CLEARING" in page
    assert 'data-testid="call-ring-time">2 s<' in page
    assert 'data-testid="call-talk-time">10 s<' in page
    assert page.count('data-testid="call-leg-row"') == 1
    kinds = [chunk.split('"', 1)[0] for chunk in page.split('data-testid="timeline-entry" data-kind="')[1:]]
    assert kinds == ["event", "http_request", "command", "event"]
    assert page.count('data-testid="http-attempt-row"') == 2
    assert "timeout" in page
    assert "&lt;Response&gt;&lt;Say&gt;hi&lt;/Say&gt;&lt;/Response&gt;" in page
    assert "Said &lt;b&gt;hi&lt;/b&gt;" in page
    assert "&lt;Say&gt;" in page


def test_a_b_leg_links_back_to_its_call(as_alice, alice):
    call = make_call(alice.account)
    leg = make_call(alice.account, parent=call, direction="outbound-dial")

    page = as_alice.get(call_url(leg)).content.decode()

    assert call_url(call) in page
    assert 'data-testid="call-legs"' not in page


def test_another_accounts_call_is_not_found_and_a_viewer_reads(client, alice, bob, charlie):
    call = make_call(alice.account)

    client.force_login(charlie.user)
    assert (
        client.get(reverse("call-detail", kwargs={"account": charlie.account.slug, "id": call.public_id})).status_code
        == 404
    )
    client.force_login(bob.user)
    assert client.get(call_url(call)).status_code == 200

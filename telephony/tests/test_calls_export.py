"""GET /api/v1/calls/export and the portal's Export button: the call log's filters, as streamed CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from telephony import exports
from telephony.models import Call
from telephony.tests.isolation_apps import make_app, make_call

pytestmark = pytest.mark.django_db


def rows(response) -> list[dict]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_it_streams_every_call_of_the_account_newest_first_with_its_columns(alice_api, alice, charlie):
    start = timezone.now() - timedelta(hours=1)
    app = make_app(alice.account)
    older = make_call(
        alice.account,
        created_at=start,
        app=app,
        status="completed",
        ringing_at=start + timedelta(seconds=1),
        answered_at=start + timedelta(seconds=4),
        ended_at=start + timedelta(seconds=64),
        q850_cause=16,
        tag='sales, "east"',
        end_reason="two\nlines",
    )
    newer = make_call(alice.account, created_at=start + timedelta(minutes=1), status="busy", q850_cause=17)
    make_call(charlie.account, created_at=start)

    response = alice_api.get("/api/v1/calls/export")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    exported = rows(response)
    assert [r["call_id"] for r in exported] == [str(newer.public_id), str(older.public_id)]
    first = exported[1]
    assert list(first) == exports.HEADER
    assert first["call_control_app_id"] == str(app.public_id) and first["tag"] == 'sales, "east"'
    assert first["q850_cause_string"] == "NORMAL_CLEARING" and first["ring_time"] == "3" and first["talk_time"] == "60"
    assert first["answered_at"].endswith("Z") and exported[0]["answered_at"] == ""
    assert first["end_reason"] == "two lines" and first["created_at"] == older.created_at.isoformat(
        timespec="microseconds"
    ).replace("+00:00", "Z")


def test_it_applies_the_call_logs_filters(alice_api, alice):
    start = timezone.now() - timedelta(hours=2)
    busy = make_call(alice.account, created_at=start, status="busy", to_number="+13105550001")
    make_call(alice.account, created_at=start, status="completed", to_number="+13105550001")
    make_call(alice.account, created_at=start + timedelta(hours=1), status="busy", to_number="+13105550001")
    make_call(alice.account, created_at=start, status="busy", to_number="+13105559999")

    response = alice_api.get(
        "/api/v1/calls/export",
        {"status": "busy", "to": "+13105550001", "created_before": (start + timedelta(minutes=30)).isoformat()},
    )

    assert [r["call_id"] for r in rows(response)] == [str(busy.public_id)]


def test_it_pages_through_many_calls_in_keyset_batches_without_losing_ties(alice_api, alice, monkeypatch):
    monkeypatch.setattr(exports, "BATCH_SIZE", 3)
    moment = timezone.now()
    calls = [make_call(alice.account, created_at=moment if i < 5 else moment - timedelta(seconds=i)) for i in range(8)]

    exported = rows(alice_api.get("/api/v1/calls/export"))

    assert len(exported) == 8 and {r["call_id"] for r in exported} == {str(c.public_id) for c in calls}
    ordered = Call.objects.filter(account=alice.account).order_by("-created_at", "-public_id")
    assert [r["call_id"] for r in exported] == [str(c.public_id) for c in ordered]


def test_a_bad_filter_is_a_validation_error_naming_it(alice_api):
    response = alice_api.get("/api/v1/calls/export", {"created_after": "yesterday"})

    assert response.status_code == 400 and "created_after" in response.json()["error"]["fields"]


def test_the_portal_exports_the_filtered_call_log(client, alice, charlie):
    mine = make_call(alice.account, status="busy")
    make_call(alice.account, status="completed")
    make_call(charlie.account, status="busy")
    client.force_login(alice.user)

    page = client.get(reverse("call-list", kwargs={"account": alice.account.slug}), {"status": "busy"})
    export_url = reverse("call-export", kwargs={"account": alice.account.slug})
    assert f'href="{export_url}?status=busy"' in page.content.decode()

    response = client.get(export_url, {"status": "busy"})
    assert response.status_code == 200 and [r["call_id"] for r in rows(response)] == [str(mine.public_id)]

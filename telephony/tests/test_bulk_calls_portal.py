"""The portal pages of bulk calls, event hooks and web callback, through Django's test client."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from telephony.models import BulkCall, BulkCallItem, ExtensionHook, WebCallbackSettings
from telephony.services import bulk_calls, extension_hooks
from telephony.tests.isolation_sip import make_number, make_user
from telephony.views.bulk import destinations_from_csv

pytestmark = pytest.mark.django_db


def url(name: str, account, **kwargs) -> str:
    return reverse(name, kwargs={"account": account.slug, **kwargs})


@pytest.fixture
def bulk(alice):
    number = make_number(alice.account, "+12015550150")
    return bulk_calls.bulk_call_create(
        account=alice.account, actor=None, from_=number.number, destinations=["+12025550101", "oops"],
        xml="<Response><Hangup/></Response>",
    )  # fmt: skip


def test_it_reads_the_destination_column_of_a_csv_with_or_without_a_header():
    assert destinations_from_csv(b"name,phone\nAnn,+12025550101\nBob,+12025550102\n") == [
        "+12025550101",
        "+12025550102",
    ]
    assert destinations_from_csv(b"\xef\xbb\xbf+12025550101\n\n12025550102,x\n") == ["+12025550101", "12025550102"]
    assert destinations_from_csv(b"who\n+12025550101\n") == ["+12025550101"]


def test_it_starts_a_bulk_call_from_an_uploaded_csv(client, alice):
    make_number(alice.account, "+12015550150")
    client.force_login(alice.user)
    upload = SimpleUploadedFile("list.csv", b"number\n+12025550101\nnot-a-number\n+12025550102\n", "text/csv")

    response = client.post(
        url("bulkcalls-create", alice.account),
        {
            "from_number": "+12015550150", "destinations_file": upload, "xml": "<Response><Hangup/></Response>",
            "calls_per_second": "2", "max_concurrent": "5", "timeout": "30", "window_days": ["mon", "tue"],
            "window_start": "09:00", "window_end": "17:00", "time_zone": "Europe/Paris", "busy_attempts": "3",
            "busy_delay": "120", "do_not_call": "+12025550102",
        },
    )  # fmt: skip

    bulk = BulkCall.objects.get()
    assert response.status_code == 302 and response["Location"] == url(
        "bulkcalls-detail", alice.account, id=bulk.public_id
    )
    assert (bulk.total, bulk.invalid_count, bulk.calls_per_second, bulk.time_zone) == (2, 1, 2.0, "Europe/Paris")
    assert bulk.retry_rules == {"busy": {"attempts": 3, "delay_s": 120}} and bulk.window_days == ["mon", "tue"]
    assert list(BulkCallItem.objects.values_list("destination", "state")) == [
        ("+12025550101", "pending"),
        ("+12025550102", "skipped"),
    ]
    with time_machine.travel(datetime(2026, 11, 22, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))):  # a Sunday
        page = client.get(response["Location"]).content.decode()
    assert "not-a-number" in page and 'data-testid="bulk-bar"' in page
    assert 'data-testid="bulk-outside-window"' in page
    with time_machine.travel(datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))):  # Monday noon
        assert b"bulk-outside-window" not in client.get(response["Location"]).content


def test_the_form_shows_service_errors_under_their_fields(client, alice):
    make_number(alice.account, "+12015550150")
    client.force_login(alice.user)

    response = client.post(
        url("bulkcalls-create", alice.account),
        {"from_number": "+12015550150", "destinations_text": "+12025550101", "calls_per_second": "1",
         "max_concurrent": "5", "timeout": "30", "window_days": ["mon"], "time_zone": "UTC"},
    )  # fmt: skip

    assert response.status_code == 200
    assert "Give exactly one of app, xml or url" in response.content.decode()
    assert not BulkCall.objects.exists()


def test_progress_json_pause_resume_cancel_and_results(client, alice, bulk):
    client.force_login(alice.user)
    progress = client.get(url("bulkcalls-progress", alice.account, id=bulk.public_id)).json()
    assert progress["counts"]["pending"] == 1 and progress["percent"] == 0 and progress["status"] == "running"

    client.post(url("bulkcalls-pause", alice.account, id=bulk.public_id))
    assert BulkCall.objects.get().status == "paused"
    client.post(url("bulkcalls-resume", alice.account, id=bulk.public_id))
    assert BulkCall.objects.get().status == "running"
    confirm = client.get(url("bulkcalls-cancel", alice.account, id=bulk.public_id))
    assert confirm.status_code == 200 and b"confirm-button" in confirm.content
    client.post(url("bulkcalls-cancel", alice.account, id=bulk.public_id))
    assert BulkCall.objects.get().status == "canceled"

    response = client.get(url("bulkcalls-results", alice.account, id=bulk.public_id))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][:4] == ["0", "+12025550101", "0", "canceled"]


def test_a_viewer_sees_progress_but_no_controls_and_cannot_act(client, alice, bob, bulk):
    client.force_login(bob.user)
    page = client.get(url("bulkcalls-detail", alice.account, id=bulk.public_id)).content.decode()
    listing = client.get(url("bulkcalls-list", alice.account)).content.decode()

    assert 'data-testid="bulk-bar"' in page and "bulk-pause" not in page and "bulk-cancel" not in page
    assert "create-bulk-call" not in listing
    assert client.post(url("bulkcalls-pause", alice.account, id=bulk.public_id)).status_code == 403
    assert client.get(url("bulkcalls-create", alice.account)).status_code == 403
    assert BulkCall.objects.get().status == "running"


def test_the_sip_user_page_shows_hooks_and_the_softphone_values_and_manages_hooks(client, alice):
    user = make_user(alice.account)
    client.force_login(alice.user)

    page = client.get(url("sipuser-detail", alice.account, id=user.public_id)).content.decode()
    assert "/api/v1/web-callback" in page and "%account[password]%" in page
    assert f"{user.login}@{user.domain.domain}" in page

    response = client.post(
        url("extensionhook-create", alice.account, id=user.public_id),
        {"event": "hangup", "method": "GET", "url": "http://127.0.0.1:9/hook", "enabled": "on", "notes": "CRM"},
    )
    assert response.status_code == 302
    hook = ExtensionHook.objects.get()
    assert (hook.event, hook.method, hook.enabled, hook.sip_user) == ("hangup", "GET", True, user)
    assert (
        "http://127.0.0.1:9/hook"
        in client.get(url("sipuser-detail", alice.account, id=user.public_id)).content.decode()
    )

    client.post(url("extensionhook-edit", alice.account, id=hook.public_id),
                {"event": "hangup", "method": "POST", "url": "http://127.0.0.1:9/hook"})  # fmt: skip
    hook.refresh_from_db()
    assert (hook.method, hook.enabled) == ("POST", False)
    bad = client.post(url("extensionhook-edit", alice.account, id=hook.public_id),
                      {"event": "hangup", "method": "POST", "url": "ftp://example.com/x"})  # fmt: skip
    assert bad.status_code == 200 and b"field-error" in bad.content

    client.post(url("extensionhook-delete", alice.account, id=hook.public_id))
    assert not ExtensionHook.objects.exists()


def test_a_viewer_sees_hooks_without_controls(client, alice, bob):
    user = make_user(alice.account)
    hook = extension_hooks.extension_hook_create(
        account=alice.account, actor=None, sip_user=user, event="dial-in", url="http://127.0.0.1:9/hook"
    )
    client.force_login(bob.user)

    page = client.get(url("sipuser-detail", alice.account, id=user.public_id)).content.decode()

    assert "http://127.0.0.1:9/hook" in page and "add-event-hook" not in page
    assert client.post(url("extensionhook-delete", alice.account, id=hook.public_id)).status_code == 403


def test_the_web_callback_settings_page_changes_the_order(client, alice):
    client.force_login(alice.user)

    response = client.post(url("webcallback-settings", alice.account), {"enabled": "on", "order": "target_first"})

    assert response.status_code == 302
    assert WebCallbackSettings.objects.get(account=alice.account).order == "target_first"


def test_staff_see_bulk_calls_hooks_and_web_callback_settings_in_the_admin(admin_client, alice, bulk):
    user = make_user(alice.account)
    extension_hooks.extension_hook_create(
        account=alice.account, actor=None, sip_user=user, event="dial-in", url="http://127.0.0.1:9/hook"
    )
    WebCallbackSettings.objects.create(account=alice.account)

    for model in ("bulkcall", "extensionhook", "webcallbacksettings"):
        response = admin_client.get(reverse(f"admin:telephony_{model}_changelist"))
        assert response.status_code == 200, model
    detail = admin_client.get(reverse("admin:telephony_bulkcall_change", args=[bulk.pk]))
    assert detail.status_code == 200 and bulk.from_number in detail.content.decode()


def test_a_viewer_reads_the_web_callback_settings_but_cannot_change_them(client, alice, bob):
    client.force_login(bob.user)

    page = client.get(url("webcallback-settings", alice.account))
    refused = client.post(url("webcallback-settings", alice.account), {"enabled": "on", "order": "target_first"})

    assert page.status_code == 200 and b"webcallback-submit" not in page.content
    assert refused.status_code == 403
    assert not WebCallbackSettings.objects.exists()

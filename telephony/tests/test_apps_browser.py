"""The app editor in a real browser: Chromium through Playwright against pytest-django's live server."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from telephony.models import CallControlApp
from tenants.tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser


INVALID = '<Response>\n  <Answer/>\n  <Pause length="5s"/>\n  <Say>Hello</Say>\n</Response>'
VALID = '<Response>\n  <Answer/>\n  <Pause length="500"/>\n  <Say>Hello</Say>\n</Response>'
EDITED = '<Response>\n  <Answer/>\n  <Pause length="500"/>\n  <Say>Welcome to Acme</Say>\n  <Hangup/>\n</Response>'


def test_alice_writes_a_flow_fixes_the_inline_error_saves_edits_and_compares_versions(
    transactional_db, live_server, alice, page
):
    log_in(page, live_server.url, alice)
    page.get_by_test_id("account-nav").get_by_role("link", name="Apps").click()
    page.get_by_test_id("create-app").click()
    page.get_by_label("Name").fill("Main IVR")
    # Only the chosen mode's settings are shown.
    expect(page.get_by_label("Flow URL", exact=True)).to_be_hidden()

    editor = page.get_by_test_id("callflow-editor")
    editor.fill(INVALID)
    issue = page.get_by_test_id("callflow-issue").filter(has_text="milliseconds")
    expect(issue).to_be_visible()
    expect(issue.get_by_test_id("callflow-issue-place")).to_have_text("Line 3, column 3")
    expect(page.get_by_test_id("callflow-status")).to_contain_text("Not valid: 1 error")
    screenshot(page, "app_editor_error")

    # The issue moves the cursor to its line, so the mistake is where one starts typing.
    issue.get_by_test_id("callflow-issue-place").click()
    cursor = editor.evaluate("el => el.value.slice(0, el.selectionStart).split('\\n').length")
    assert cursor == 3

    editor.fill(VALID)
    expect(page.get_by_test_id("callflow-status")).to_have_text("Valid.")
    expect(page.get_by_test_id("callflow-issue")).to_have_count(0)
    page.get_by_test_id("app-submit").click()

    expect(page.get_by_test_id("messages")).to_contain_text("was created")
    expect(page.get_by_test_id("app-version")).to_have_text("1")
    expect(page.get_by_test_id("app-xml")).to_contain_text('<Pause length="500"/>')

    page.get_by_test_id("edit-app").click()
    page.get_by_test_id("callflow-editor").fill(EDITED)
    expect(page.get_by_test_id("callflow-status")).to_have_text("Valid.")
    page.get_by_test_id("app-submit").click()
    expect(page.get_by_test_id("app-version")).to_have_text("2")

    page.get_by_test_id("app-versions-link").click()
    diff = page.get_by_test_id("app-diff-lines")
    expect(page.get_by_test_id("app-diff")).to_contain_text("Version 1 → current (version 2)")
    expect(diff.locator('[data-kind="removed"]')).to_have_text(["-  <Say>Hello</Say>"])
    expect(diff.locator('[data-kind="added"]')).to_have_text(["+  <Say>Welcome to Acme</Say>", "+  <Hangup/>"])
    expect(page.get_by_test_id("app-version-row")).to_have_count(2)
    screenshot(page, "app_versions_diff")

    app = CallControlApp.objects.get()
    assert (app.xml, app.xml_version) == (EDITED, 2)


def test_the_call_page_shows_the_timeline_and_expands_a_requests_attempts(transactional_db, live_server, alice, page):
    from datetime import timedelta

    from django.utils import timezone

    from telephony.models import CallHttpRequest
    from telephony.services.events import event_emit
    from telephony.tests.isolation_apps import make_app, make_call

    start = timezone.now() - timedelta(minutes=5)
    app = make_app(alice.account, name="Main IVR")
    call = make_call(
        alice.account, app=app, created_at=start, answered_at=start + timedelta(seconds=2),
        ended_at=start + timedelta(seconds=32), q850_cause=16,
    )  # fmt: skip
    event_emit(account=alice.account, type="call.initiated", obj=call, occurred_at=start, payload={})
    CallHttpRequest.objects.create(
        account=alice.account, call=call, purpose="callback", command_path="Response/Callback[0]", method="POST",
        url="https://example.com/next", outcome="ok", response_status=200, created_at=start + timedelta(seconds=1),
        attempts=[
            {"at": start.isoformat(), "duration_ms": 3000, "status_code": None, "error": "timeout"},
            {"at": start.isoformat(), "duration_ms": 80, "status_code": 200, "error": ""},
        ],
        response_excerpt="<Response><Hangup/></Response>",
    )  # fmt: skip
    event_emit(
        account=alice.account, type="call.flow", obj=call, occurred_at=start + timedelta(seconds=2),
        payload={"command": "Answer", "path": "Response/Answer[0]", "success": True, "reason": "Call answered"},
    )  # fmt: skip

    log_in(page, live_server.url, alice)
    page.get_by_test_id("account-nav").get_by_role("link", name="Calls", exact=True).click()
    page.get_by_test_id("call-row").get_by_role("link").first.click()

    entries = page.get_by_test_id("timeline-entry")
    expect(entries).to_have_count(3)
    expect(entries.nth(2)).to_contain_text("<Answer>")
    expect(page.get_by_test_id("call-cause")).to_contain_text("16 NORMAL_CLEARING")
    attempts = page.get_by_test_id("http-attempt-row")
    expect(attempts.first).to_be_hidden()
    page.get_by_test_id("http-request-details").locator("summary").click()
    expect(attempts).to_have_count(2)
    expect(attempts.first).to_contain_text("timeout")
    screenshot(page, "call_timeline")

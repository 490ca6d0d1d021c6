"""A bulk call in a real browser: upload a CSV, start it, and watch the progress bar fill without reloading.

A real Celery worker with its beat runs the dispatcher tick and the calls (simulated switch) meanwhile.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from telephony.models import BulkCall, BulkCallItem, SimulatorRule
from telephony.tests.isolation_sip import make_number
from tenants.tests.browser import log_in, screenshot
from tenants.tests.fixtures import start_celery_worker, stop_celery_worker

pytestmark = [pytest.mark.browser, pytest.mark.worker]

CSV = b"name,number\nAnn,+13105550101\nBob,+13105550102\nCy,not-a-number\nDee,+13105550103\nEve,+13105550104\n"


@pytest.fixture
def worker_with_beat(transactional_db):
    # At 100x (not the suite's 1000x) a call's maximum length is 144 s of wall-clock time, not 14 s: a loaded
    # machine must not end the calls before they are answered.
    process = start_celery_worker(beat=True, log_name="test-bulk-worker.log", env={"SIMULATED_SWITCH_SPEED": "100"})
    yield process
    stop_celery_worker(process)


def test_it_starts_a_bulk_call_from_a_csv_and_shows_its_progress_live(live_server, alice, page, worker_with_beat):
    make_number(alice.account, "+12015550150")
    SimulatorRule.objects.create(match="+1310555*", action="answer", answer_after_ms=500)
    log_in(page, live_server.url, alice)

    page.get_by_test_id("account-nav").get_by_role("link", name="Bulk calls").click()
    page.get_by_test_id("create-bulk-call").click()
    page.get_by_label("Name").fill("Reminders")
    page.get_by_label("Caller ID").select_option("+12015550150")
    page.get_by_label("Destinations (CSV file)").set_input_files(
        files=[{"name": "list.csv", "mimeType": "text/csv", "buffer": CSV}]
    )
    page.get_by_label("Or a flow document (XML)").fill("<Response><Say>Your appointment is tomorrow.</Say></Response>")
    page.get_by_label("Calls per second").fill("2")
    for day in ("Sat", "Sun"):
        page.get_by_label(day, exact=True).check()
    page.get_by_label("From (HH:MM)").fill("")  # all day: the test runs at any hour
    page.get_by_label("Until (HH:MM)").fill("")
    page.get_by_test_id("bulkcall-submit").click()

    expect(page.get_by_test_id("messages")).to_contain_text("4 destination(s) was started")
    expect(page.get_by_test_id("bulk-invalid")).to_contain_text("not-a-number")
    page.evaluate("window.__stillTheSamePage = true")  # gone if the page reloads
    screenshot(page, "bulkcall_detail_started")

    expect(page.get_by_test_id("bulk-done")).to_have_text("4", timeout=60_000)
    outcomes = list(BulkCallItem.objects.values_list("destination", "outcome", "reason"))
    assert [outcome for _, outcome, _ in outcomes] == ["completed"] * 4, outcomes
    expect(page.get_by_test_id("count-completed")).to_have_text("4")
    expect(page.get_by_test_id("bulk-status")).to_have_text("Completed", timeout=10_000)
    assert page.get_by_test_id("bulk-bar").evaluate("bar => bar.value") == 100
    assert page.evaluate("window.__stillTheSamePage") is True
    expect(page.get_by_test_id("bulk-pause")).to_be_hidden()  # over: no more controls
    screenshot(page, "bulkcall_detail_completed")
    assert BulkCall.objects.get().status == "completed"

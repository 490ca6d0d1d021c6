"""Placing a test call from the call log and hanging it up from the call's page, in a real browser.

A real worker runs the call through the simulated switch at real-time speed, so the call stays up (its flow
pauses for ten minutes) until the Hang up button ends it.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from telephony.models import Call
from telephony.tests.engine_support import next_number
from telephony.tests.isolation_sip import make_number
from tenants.tests.browser import log_in, screenshot
from tenants.tests.fixtures import start_celery_worker, stop_celery_worker, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.worker]


@pytest.fixture
def real_time_worker(transactional_db):
    # With beat, as deployed: the sweeper also runs the simulated far end's later reports (its answer).
    process = start_celery_worker(env={"SIMULATED_SWITCH_SPEED": "1"}, beat=True, log_name="test-worker-outbound.log")
    yield process
    stop_celery_worker(process)


def test_alice_places_a_test_call_and_hangs_it_up_from_the_call_page(real_time_worker, live_server, alice, page):
    number = make_number(alice.account, next_number())
    log_in(page, live_server.url, alice)
    page.get_by_test_id("nav-call-list").click()

    page.get_by_test_id("place-call-open").click()
    form = page.get_by_test_id("place-call-form")
    form.get_by_label("From").select_option(number.number)
    form.get_by_label("To").fill("+13105550100")
    expect(form.get_by_label("Flow when answered")).to_contain_text('<Pause length="600000"/>')
    screenshot(page, "call_log_place_call")
    form.get_by_test_id("place-call-submit").click()

    expect(page.get_by_test_id("messages")).to_contain_text("placed")
    call = Call.objects.get(account=alice.account)
    wait_for(lambda: Call.objects.get(pk=call.pk).status == "in-progress", message="the callee to answer")
    page.reload()
    expect(page.get_by_test_id("call-status")).to_have_text("In progress")
    screenshot(page, "call_live_with_hangup")

    page.get_by_test_id("call-hangup").click()
    expect(page.get_by_test_id("confirm")).to_contain_text("every leg of it ends")
    page.get_by_test_id("confirm-button").click()

    expect(page.get_by_test_id("messages")).to_contain_text("Hanging up")
    wait_for(lambda: Call.objects.get(pk=call.pk).is_final, message="the call to end")
    page.reload()
    expect(page.get_by_test_id("call-status")).to_have_text("Completed")
    expect(page.get_by_test_id("call-summary")).to_contain_text("Hung up from the portal by alice@")
    expect(page.get_by_test_id("call-hangup")).to_have_count(0)

"""A call's status callbacks on its page, in a real browser: each one sent, its fields and its attempts."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from telephony import delivery as engine
from telephony.tests.engine_support import CustomerServer, drive, number_for_app, place
from tenants.tests.browser import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_alice_sees_each_status_callback_with_its_fields_and_attempts_on_the_call_page(live_server, alice, page):
    server = CustomerServer()
    try:
        url = server.route("/status", "ok")
        number, _ = number_for_app(
            alice.account,
            "<Response><Answer/><Hangup/></Response>",
            status_callback_url=url,
            status_callback_events=["initiated", "answered", "completed"],
        )
        call = drive(place(number))
        engine.drain()
    finally:
        server.stop()

    log_in(page, live_server.url, alice)
    page.goto(live_server.url + reverse("call-detail", kwargs={"account": alice.account.slug, "id": call.public_id}))

    callbacks = page.locator('[data-testid="timeline-entry"][data-kind="callback"]')
    expect(callbacks).to_have_count(3)
    expect(callbacks.first).to_contain_text("Status callback")
    expect(callbacks.first).to_contain_text("initiated")
    expect(callbacks.last).to_contain_text("completed")
    callbacks.last.get_by_test_id("callback-details").locator("summary").click()
    expect(callbacks.last.get_by_test_id("callback-details")).to_contain_text("CallDuration")
    expect(callbacks.last.get_by_test_id("callback-attempt-row")).to_contain_text("200")
    screenshot(page, "call_status_callbacks")

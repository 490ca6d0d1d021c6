"""Messaging in a real browser: send a test message to one of the account's own numbers, see it arrive."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from telephony.tests.isolation_messaging import make_profile, make_sender
from tenants.tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser


def test_a_test_message_to_an_own_number_arrives_in_the_thread(celery_worker, live_server, alice, page):
    profile = make_profile(alice.account, name="Notifications")
    sender = make_sender(alice.account, profile)
    own = make_sender(alice.account, profile)
    log_in(page, live_server.url, alice)

    page.get_by_test_id("account-nav").get_by_role("link", name="Messages").click()
    page.get_by_test_id("send-message").locator("summary").click()
    form = page.get_by_test_id("send-message-form")
    form.get_by_label("From").select_option(sender.number)
    form.get_by_label("To").fill(own.number)
    form.get_by_label("Text").fill("Hello from the portal ✓")
    page.get_by_test_id("send-message-submit").click()

    thread = page.get_by_test_id("thread")
    expect(thread.get_by_test_id("thread-message")).to_have_count(1)
    # The worker sends it on the simulated carrier, which delivers it on-net: reload until it has arrived.
    for _ in range(60):
        if page.locator("[data-testid=thread-message][data-direction=inbound]").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    inbound = page.locator("[data-testid=thread-message][data-direction=inbound]")
    expect(inbound).to_contain_text("Hello from the portal ✓")
    expect(inbound).to_contain_text("Received")
    screenshot(page, "message_thread")

    page.get_by_test_id("account-nav").get_by_role("link", name="Messaging profiles").click()
    page.get_by_role("link", name="Notifications").click()
    expect(page.get_by_test_id("profile-number-row")).to_have_count(2)

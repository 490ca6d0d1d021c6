"""Webhooks in a real browser: add an endpoint pointing at a real local receiver, send a test event through a
real Celery worker, and read the delivered attempt's headers on the delivery page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from standardwebhooks import Webhook

from telephony.models import Delivery, WebhookEndpoint
from telephony.tests.receivers import Answer, receiver_fixture  # noqa: F401 - the receiver fixture
from tenants.tests.browser import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_alice_adds_an_endpoint_sends_a_test_event_and_sees_the_signed_attempt(
    celery_worker, live_server, alice, page, receiver
):
    receiver.respond(Answer(200, b'{"received": true}', headers={"X-Receiver": "local-test"}))
    log_in(page, live_server.url, alice)
    page.get_by_test_id("account-nav").get_by_role("link", name="Webhooks").click()
    page.get_by_test_id("create-webhook").click()
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Event types").fill("call.*\nnumber.ordered")
    page.get_by_test_id("webhook-submit").click()

    # The secret, once.
    secret = page.get_by_test_id("webhook-secret").input_value()
    assert secret.startswith("whsec_")
    screenshot(page, "webhook_secret_once")
    page.get_by_test_id("back-to-webhook").click()
    expect(page.get_by_test_id("webhook-url")).to_have_text(receiver.url)
    expect(page.get_by_test_id("webhook-state")).to_contain_text("Enabled")
    screenshot(page, "webhook_endpoint")
    assert secret not in page.content()

    page.get_by_label("Event type").select_option("webhook.test")
    page.get_by_test_id("send-test").click()

    # The delivery page refreshes itself while the attempt is due; the worker sends it meanwhile.
    expect(page).to_have_url(re.compile(r"/a/account-a/deliveries/[0-9a-f-]+/$"))
    expect(page.get_by_test_id("delivery-status")).to_have_text("Delivered", timeout=60_000)
    attempt = page.get_by_test_id("attempt")
    expect(attempt).to_have_count(1)
    expect(attempt.get_by_test_id("attempt-status")).to_have_text("HTTP 200")
    delivery = Delivery.objects.get(endpoint=WebhookEndpoint.objects.get(account=alice.account))
    request_headers = attempt.get_by_test_id("attempt-request-headers")
    expect(request_headers.locator('[data-header="webhook-id"]')).to_contain_text(str(delivery.public_id))
    sent = receiver.requests[0]
    expect(request_headers.locator('[data-header="webhook-timestamp"]')).to_contain_text(
        sent.headers["webhook-timestamp"]
    )
    signature = sent.headers["webhook-signature"]
    expect(request_headers.locator('[data-header="webhook-signature"]')).to_contain_text(signature[:15])
    expect(request_headers.locator('[data-header="webhook-signature"]')).not_to_contain_text(signature)
    expect(attempt.get_by_test_id("attempt-response-headers").locator('[data-header="x-receiver"]')).to_contain_text(
        "local-test"
    )
    expect(attempt.get_by_test_id("attempt-response-body")).to_contain_text('{"received": true}')
    expect(page.get_by_test_id("delivery-body")).to_contain_text('"type": "webhook.test"')
    screenshot(page, "webhook_delivery_attempt")

    # What the receiver got verifies with the secret the page showed once.
    assert Webhook(secret).verify(sent.body, sent.headers)["type"] == "webhook.test"

    # The log lists it, labelled as a test send.
    page.get_by_test_id("account-nav").get_by_role("link", name="Deliveries").click()
    row = page.get_by_test_id("delivery-row")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("delivery-kind")).to_have_text("Test send")
    expect(row.get_by_test_id("delivery-status")).to_have_text("Delivered")
    screenshot(page, "webhook_delivery_log")
    page.get_by_test_id("account-nav").get_by_role("link", name="Webhooks").click()
    expect(page.get_by_test_id("webhook-row")).to_have_count(1)
    expect(page.get_by_test_id("webhook-circuit")).to_have_text("Closed")
    screenshot(page, "webhook_list")

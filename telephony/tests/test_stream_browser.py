"""The dashboard's live event pane in Chromium, against a real uvicorn process (the websocket needs ASGI).

pytest-django's live server speaks WSGI only, so these tests start uvicorn on the test database instead.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from telephony.tests.stream_support import Server, emit
from tenants.tests.browser import log_in, screenshot
from tenants.tests.factories import make_api_key

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server():
    with Server(settings_module="telephony.tests.stream_server_settings") as server:
        yield server


def test_the_dashboard_shows_events_as_they_happen_and_catches_up_after_a_drop(alice, server, page):
    log_in(page, server.url, alice)
    pane = page.get_by_test_id("live-events")
    expect(pane.get_by_test_id("live-status")).to_have_text("Live")

    # A configuration change made elsewhere (here, a key created through the service) appears without a reload.
    make_api_key(alice.account, actor=alice.user, name="billing server")
    expect(pane.get_by_test_id("live-list")).to_contain_text("api_key.created")
    expect(pane.get_by_test_id("live-list")).to_contain_text("billing server")
    screenshot(page, "dashboard_live_events")

    # The server goes away; an event happens meanwhile; the pane reconnects with its last event id and shows it.
    server.stop()
    expect(pane.get_by_test_id("live-status")).to_have_text("Reconnecting…")
    missed = emit(alice.account, "call.ringing", object_id="missed-while-away")
    server.start()
    expect(pane.get_by_test_id("live-status")).to_have_text("Live", timeout=20_000)
    expect(pane.locator(f'[data-event-id="{missed.public_id}"]')).to_contain_text("call.ringing")
    expect(pane.locator("li")).to_have_count(2)  # the key's event once, the missed one once

    # Each line links to the event's page.
    pane.locator(f'[data-event-id="{missed.public_id}"] a').click()
    expect(page).to_have_url(re.compile(rf"/a/account-a/events/{missed.public_id}/$"))
    expect(page.get_by_test_id("event-payload")).to_contain_text('"id": "missed-while-away"')

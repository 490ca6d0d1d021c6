"""The dashboard's live event pane in Chromium, against a real uvicorn process (the websocket needs ASGI).

pytest-django's live server speaks WSGI only, so these tests start uvicorn on the test database instead.
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect, sync_playwright

from telephony.tests.stream_support import Server, emit
from tenants.tests.factories import make_api_key
from tenants.tests.fixtures import CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = settings.BASE_DIR / "var" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API keeps an event loop running in this thread, and Django refuses ORM calls
    # from a thread with a running loop unless told it is safe; here it is, nothing else runs on that loop.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def server():
    with Server(settings_module="telephony.tests.stream_server_settings") as server:
        yield server


def log_in(page: Page, server: Server, member) -> None:
    page.goto(f"{server.url}/login/")
    page.get_by_label("Email").fill(member.user.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(rf"/a/{member.account.slug}/$"))


def test_the_dashboard_shows_events_as_they_happen_and_catches_up_after_a_drop(alice, server, page):
    log_in(page, server, alice)
    pane = page.get_by_test_id("live-events")
    expect(pane.get_by_test_id("live-status")).to_have_text("Live")

    # A configuration change made elsewhere (here, a key created through the service) appears without a reload.
    make_api_key(alice.account, actor=alice.user, name="billing server")
    expect(pane.get_by_test_id("live-list")).to_contain_text("api_key.created")
    expect(pane.get_by_test_id("live-list")).to_contain_text("billing server")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard_live_events.png"), full_page=True)

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

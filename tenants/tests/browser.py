"""Portal pages in a real browser: Chromium (Debian's /usr/bin/chromium) driven by Playwright.

Fixtures `browser` (one Chromium per test module) and `page` (a fresh context per test) are registered
for the whole suite in tenants/tests/fixtures.py; tests that use them are marked `browser`.
Screenshots land in var/screenshots/ so a person can look at the pages after a run.
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # Without these Chromium keeps calling Google's services, which this machine's network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = settings.BASE_DIR / "var" / "screenshots"


def launch_browser(chromium_path: str):
    """A context manager yielding a launched Chromium."""
    from contextlib import contextmanager

    from playwright.sync_api import sync_playwright

    @contextmanager
    def launched():
        # Playwright's sync API keeps an event loop running in this thread, and Django refuses ORM calls
        # from a thread with a running loop unless told it is safe; here it is, nothing else runs on that loop.
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
                try:
                    yield browser
                finally:
                    browser.close()

    return launched()


def new_page(browser, width: int = 1280, height: int = 900):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    return context, context.new_page()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page, base_url: str, member) -> None:
    """Sign in through the login form and land on the member's account dashboard."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}/login/")
    page.get_by_label("Email").fill(member.user.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(rf"/a/{member.account.slug}/$"))

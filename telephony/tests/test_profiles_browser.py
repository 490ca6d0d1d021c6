"""TN profiles in a real browser: Chromium through Playwright against pytest-django's live server."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect, sync_playwright

from telephony.models import CallerListEntry
from telephony.services.profiles import tn_profile_create
from tenants.tests.fixtures import CHROMIUM

pytestmark = pytest.mark.browser

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


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page: Page, live_server, member) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(member.user.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(rf"/a/{member.account.slug}/$"))


def test_it_blocks_a_caller_added_through_the_form_and_removes_an_entry(transactional_db, live_server, alice, page):
    tn_profile_create(account=alice.account, actor=alice.user, name="Front desk", block_action="busy")
    log_in(page, live_server, alice)

    page.get_by_test_id("account-nav").get_by_role("link", name="TN profiles").click()
    page.get_by_role("link", name="Front desk").click()
    expect(page.get_by_test_id("tnprofile-name")).to_have_text("Front desk")

    add = page.get_by_test_id("add-form")
    add.get_by_label("List").select_option("blacklist")
    add.get_by_label("Caller IDs").fill("+1900*, premium rate\n+12015550123\nanonymous")
    page.get_by_test_id("add-submit").click()

    expect(page.get_by_test_id("messages")).to_contain_text("3 added to the blacklist")
    blacklist = page.get_by_test_id("blacklist")
    expect(blacklist.get_by_test_id("entry-row")).to_have_count(3)
    expect(page.get_by_test_id("blacklist-count")).to_have_text("3 entries")

    page.get_by_test_id("test-form").get_by_label("Caller ID").fill("+1 900 555 1234")
    page.get_by_test_id("test-submit").click()

    decision = page.get_by_test_id("screening-decision")
    expect(decision.get_by_test_id("decision-verdict")).to_have_text("Blocked")
    expect(decision.get_by_test_id("decision-rule")).to_have_text("blacklist: +1900*")
    expect(decision).to_contain_text("premium rate")
    screenshot(page, "tnprofile_detail")

    blacklist.get_by_test_id("entry-row").filter(has_text="+1900*").get_by_test_id("remove-entry").click()
    expect(page.get_by_role("heading", name=re.compile(r"Remove \+1900\* from the blacklist"))).to_be_visible()
    page.get_by_test_id("confirm-button").click()

    expect(page.get_by_test_id("messages")).to_contain_text("+1900* was removed from the blacklist")
    expect(page.get_by_test_id("blacklist").get_by_test_id("entry-row")).to_have_count(2)
    page.get_by_test_id("test-form").get_by_label("Caller ID").fill("+19005551234")
    page.get_by_test_id("test-submit").click()
    expect(page.get_by_test_id("decision-verdict")).to_have_text("Allowed")
    assert sorted(CallerListEntry.objects.values_list("value", flat=True)) == ["+12015550123", "anonymous"]

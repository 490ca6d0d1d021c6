"""The portal in a real browser: Chromium through Playwright against pytest-django's live server.

Screenshots land in var/screenshots/ so a person can look at the pages after a run.
"""

from __future__ import annotations

import re

import httpx
import pytest
from django.conf import settings
from playwright.sync_api import expect

from tenants.models import ApiKey
from tenants.tests.browser import log_in, screenshot
from tenants.tests.factories import MembershipFactory

pytestmark = pytest.mark.browser


def call_api(live_server, secret: str) -> httpx.Response:
    return httpx.get(f"{live_server.url}/api/v1/account", headers={"Authorization": f"Bearer {secret}"})


def test_it_logs_in_through_the_form_and_lands_on_the_dashboard(transactional_db, live_server, alice, page):
    log_in(page, live_server.url, alice)
    expect(page.get_by_test_id("account-name")).to_have_text("Account A")
    expect(page.get_by_test_id("live-events")).to_be_visible()
    expect(page.get_by_test_id("account-nav").get_by_role("link", name="Dashboard")).to_have_attribute(
        "aria-current", "page"
    )
    screenshot(page, "dashboard")


def test_it_switches_to_another_account_through_the_switcher(transactional_db, live_server, alice, page):
    MembershipFactory(user=alice.user, account__name="Second Company", account__slug="second-company", role="admin")
    log_in(page, live_server.url, alice)

    switcher = page.get_by_test_id("account-switcher")
    switcher.locator("summary").click()
    switcher.get_by_role("link", name=re.compile("Second Company")).click()

    expect(page).to_have_url(f"{live_server.url}/a/second-company/")
    expect(page.get_by_test_id("account-name")).to_have_text("Second Company")
    expect(switcher.locator("summary")).to_contain_text("Second Company")


def test_it_creates_an_api_key_that_works_until_it_is_revoked(transactional_db, live_server, alice, page):
    log_in(page, live_server.url, alice)
    page.get_by_test_id("account-nav").get_by_role("link", name="API keys").click()
    page.get_by_test_id("create-api-key").click()
    page.get_by_label("Name").fill("billing server")
    page.get_by_test_id("apikey-submit").click()

    secret = page.get_by_test_id("api-key-secret").input_value()
    assert secret.startswith(settings.API_KEY_PREFIX)
    expect(page.get_by_text("shown only this once")).to_be_visible()
    response = call_api(live_server, secret)
    assert response.status_code == 200
    assert response.json()["name"] == "Account A"

    page.get_by_test_id("back-to-keys").click()
    expect(page.get_by_test_id("apikey-row")).to_have_count(1)
    assert secret not in page.content()
    screenshot(page, "apikey_list")

    page.get_by_role("link", name="billing server").click()
    page.get_by_test_id("revoke-api-key").click()
    expect(page.get_by_role("heading", name=re.compile("Revoke the API key"))).to_be_visible()
    page.get_by_test_id("confirm-button").click()

    expect(page).to_have_url(f"{live_server.url}/a/account-a/api-keys/")
    expect(page.get_by_test_id("messages")).to_contain_text("was revoked")
    expect(page.get_by_test_id("apikey-row").locator(".badge-revoked")).to_have_text("Revoked")
    assert ApiKey.objects.get(account=alice.account).revoked_at is not None
    assert call_api(live_server, secret).status_code == 401


def test_it_folds_the_account_nav_behind_a_menu_button_on_a_narrow_screen(transactional_db, live_server, alice, page):
    page.set_viewport_size({"width": 390, "height": 800})
    log_in(page, live_server.url, alice)
    nav = page.get_by_test_id("account-nav")
    expect(nav).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(nav).to_be_visible()
    screenshot(page, "dashboard_narrow")
    nav.get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members")).to_be_visible()

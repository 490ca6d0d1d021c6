"""Buying and releasing numbers in a real browser: Chromium through Playwright against the live server.

Screenshots land in var/screenshots/ so a person can look at the pages after a run.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from telephony.models import PhoneNumber, StockNumber
from telephony.tests.isolation_numbers import make_phone_number, make_stock
from tenants.tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser


def test_it_searches_by_area_code_and_orders_two_numbers(transactional_db, live_server, alice, page):
    wanted = [make_stock(), make_stock(), make_stock()]
    make_stock(npa="212", state="NY", number="+12125550150", digits="12125550150")
    log_in(page, live_server.url, alice)

    page.get_by_test_id("account-nav").get_by_role("link", name="Numbers").click()
    page.get_by_test_id("buy-numbers").click()
    page.get_by_label("Area code").fill("201")
    page.get_by_test_id("search-button").click()

    rows = page.get_by_test_id("available-row")
    expect(rows).to_have_count(3)
    screenshot(page, "number_search")
    page.get_by_label(f"Select {wanted[0].number}").check()
    page.get_by_label(f"Select {wanted[2].number}").check()
    page.get_by_test_id("order-selected").click()

    expect(page.get_by_test_id("order-status")).to_have_text("Completed")
    expect(page.get_by_test_id("item-result")).to_have_count(2)
    expect(page.get_by_test_id("item-result").first).to_have_text("Success")
    expect(page.get_by_test_id("item-result").last).to_have_text("Success")
    screenshot(page, "numberorder_detail")

    page.get_by_role("link", name="Your numbers").click()
    table = page.get_by_test_id("number-table")
    expect(page.get_by_test_id("number-row")).to_have_count(2)
    expect(table).to_contain_text(wanted[0].number)
    expect(table).to_contain_text(wanted[2].number)
    screenshot(page, "number_list")
    assert set(PhoneNumber.objects.for_account(alice.account).values_list("number", flat=True)) == {
        wanted[0].number,
        wanted[2].number,
    }


def test_it_releases_a_number_through_the_confirmation_page(transactional_db, live_server, alice, page):
    number = make_phone_number(alice.account, description="Old line")
    log_in(page, live_server.url, alice)

    page.goto(f"{live_server.url}/a/{alice.account.slug}/numbers/")
    page.get_by_role("link", name=number.number).click()
    screenshot(page, "number_detail")
    page.get_by_test_id("release-number").click()
    expect(page.get_by_role("heading", name=f"Release {number.number}?")).to_be_visible()
    page.get_by_test_id("confirm-button").click()

    expect(page).to_have_url(f"{live_server.url}/a/{alice.account.slug}/numbers/")
    expect(page.get_by_test_id("messages")).to_contain_text("was released")
    expect(page.get_by_test_id("number-row")).to_have_count(0)
    number.refresh_from_db()
    assert number.status == "released"
    assert StockNumber.objects.get(pk=number.stock_id).status == "quarantined"

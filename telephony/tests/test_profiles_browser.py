"""TN profiles in a real browser: Chromium through Playwright against pytest-django's live server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from telephony.models import CallerListEntry
from telephony.services.profiles import tn_profile_create
from tenants.tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser


def test_it_blocks_a_caller_added_through_the_form_and_removes_an_entry(transactional_db, live_server, alice, page):
    tn_profile_create(account=alice.account, actor=alice.user, name="Front desk", block_action="busy")
    log_in(page, live_server.url, alice)

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

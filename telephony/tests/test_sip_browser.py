"""SIP in a real browser: Chromium through Playwright against pytest-django's live server."""

from __future__ import annotations

import pytest
from django.conf import settings
from playwright.sync_api import expect

from telephony.models import SipUser
from tenants.tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser


def test_it_creates_a_domain_and_a_user_and_shows_the_users_sip_uri(transactional_db, live_server, alice, page):
    log_in(page, live_server.url, alice)
    page.get_by_test_id("account-nav").get_by_role("link", name="SIP domains").click()
    page.get_by_test_id("create-sip-domain").click()
    page.get_by_label("Name").fill("Acme")
    page.get_by_test_id("sipdomain-submit").click()

    domain = f"acme.sip.{settings.PLATFORM_SIP_DOMAIN}"
    expect(page.get_by_test_id("sipdomain-name")).to_have_text(domain)
    page.get_by_test_id("create-sip-user").click()
    page.get_by_label("Login").fill("mary")
    page.get_by_label("Password", exact=True).fill("blue-lantern-42!")
    page.get_by_label("Password again").fill("blue-lantern-42!")
    page.get_by_label("First name").fill("Mary")
    page.get_by_test_id("sipuser-submit").click()

    expect(page.get_by_test_id("messages")).to_contain_text("was created")
    expect(page.get_by_test_id("sipuser-uri")).to_have_text(f"sip:mary@{domain}")
    assert "blue-lantern-42!" not in page.content()
    assert SipUser.objects.get().ha1 not in page.content()
    screenshot(page, "sipuser_detail")

    page.get_by_role("link", name=domain).click()
    expect(page.get_by_test_id("sipuser-row")).to_have_count(1)
    screenshot(page, "sipdomain_detail")


def test_an_invited_person_creates_their_login_on_the_public_page(transactional_db, live_server, alice, page):
    from telephony.services import sip as services
    from telephony.tests.isolation_sip import make_connection, make_domain

    domain = make_domain(alice.account)
    created = services.sip_invite_create(
        account=alice.account, actor=None, connection=make_connection(alice.account), name="Mary", domain=domain
    )

    page.goto(f"{live_server.url}/invite/{created.token}")
    page.get_by_label("Login").fill("mary")
    page.get_by_label("Password", exact=True).fill("blue-lantern-42!")
    page.get_by_label("Password again").fill("blue-lantern-42!")
    page.get_by_test_id("invite-accept-submit").click()

    expect(page.get_by_test_id("invite-done-uri")).to_have_text(f"sip:mary@{domain.domain}")
    screenshot(page, "sip_invite_done")
    page.goto(f"{live_server.url}/invite/{created.token}")
    expect(page.get_by_role("heading", name="This invite was already used")).to_be_visible()


def test_it_creates_an_ip_connection_and_assigns_a_number(transactional_db, live_server, alice, page):
    from telephony.tests.isolation_sip import make_number

    make_number(alice.account, "+12015550100")
    log_in(page, live_server.url, alice)
    page.get_by_test_id("account-nav").get_by_role("link", name="SIP connections").click()
    page.get_by_test_id("create-sip-connection").click()
    page.get_by_label("Name", exact=True).fill("Carrier")
    page.get_by_label("IP address").check()
    page.get_by_label("Allowed IPs").fill("203.0.113.7\n198.51.100.0/24")
    page.get_by_label("Inbound host").fill("pbx.example.com")
    screenshot(page, "sipconnection_form")
    page.get_by_test_id("sipconnection-submit").click()

    expect(page.get_by_test_id("messages")).to_contain_text("was created")
    expect(page.get_by_test_id("sipconnection-settings")).to_contain_text("198.51.100.0/24")
    page.get_by_label("Assign numbers").select_option(label="+12015550100")
    page.get_by_test_id("assign-numbers").click()
    expect(page.get_by_test_id("sipconnection-number-row")).to_have_count(1)
    screenshot(page, "sipconnection_detail")

"""The portal's number pages through Django's test client: rendering, roles and the main flows."""

from __future__ import annotations

import pytest
from django.urls import reverse

from telephony.models import CallControlApp, NumberOrder, PhoneNumber, SipConnection, StockNumber, TnProfile
from telephony.tests.isolation_numbers import make_number_order, make_phone_number, make_stock
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db


def url(name: str, account, **kwargs) -> str:
    return reverse(name, kwargs={"account": account.slug, **kwargs})


@pytest.fixture
def owned(alice):
    return make_phone_number(alice.account, description="Support line", tags=["vip"])


def pages(alice, number, order) -> dict[str, str]:
    account = alice.account
    return {
        "number-list": url("number-list", account),
        "number-search": url("number-search", account) + "?npa=201",
        "number-detail": url("number-detail", account, id=number.public_id),
        "number-edit": url("number-edit", account, id=number.public_id),
        "number-release": url("number-release", account, id=number.public_id),
        "numberorder-list": url("numberorder-list", account),
        "numberorder-detail": url("numberorder-detail", account, id=order.public_id),
    }


def test_it_renders_every_number_page_for_the_owner(client, alice, owned):
    make_stock()
    client.force_login(alice.user)
    for name, path in pages(alice, owned, make_number_order(alice.account)).items():
        response = client.get(path)
        assert response.status_code == 200, name
        assert b"Account A" in response.content, name


def test_viewers_see_no_write_controls_and_cannot_post(client, alice, bob, owned):
    make_stock()
    order = make_number_order(alice.account)
    client.force_login(bob.user)
    read = pages(alice, owned, order)

    list_page = client.get(read["number-list"]).content.decode()
    detail = client.get(read["number-detail"]).content.decode()
    search = client.get(read["number-search"]).content.decode()

    assert owned.number in list_page and 'data-testid="buy-numbers"' not in list_page
    assert 'data-testid="edit-number"' not in detail and 'data-testid="release-number"' not in detail
    assert 'data-testid="available-row"' in search and 'name="numbers"' not in search
    assert 'data-testid="order-selected"' not in search
    for name in ("number-edit", "number-release"):
        assert client.get(read[name]).status_code == 403
        assert client.post(read[name], {"description": "x"}).status_code == 403
    stock = make_stock()
    assert client.post(url("numberorder-create", alice.account), {"numbers": [stock.number]}).status_code == 403
    assert not PhoneNumber.objects.filter(number=stock.number).exists()
    owned.refresh_from_db()
    assert owned.status == "active"


def test_the_list_filters_by_tag_and_shows_released_numbers_on_request(client, alice, owned):
    other = make_phone_number(alice.account, tags=["sales"])
    released = make_phone_number(alice.account, status="released")
    client.force_login(alice.user)

    by_tag = client.get(url("number-list", alice.account), {"tag": "vip"}).content.decode()
    everything = client.get(url("number-list", alice.account)).content.decode()
    gone = client.get(url("number-list", alice.account), {"status": "released"}).content.decode()

    assert owned.number in by_tag and other.number not in by_tag
    assert released.number not in everything
    assert released.number in gone and owned.number not in gone


def test_it_searches_and_orders_the_ticked_numbers(client, alice):
    first, second, third = make_stock(), make_stock(), make_stock()
    client.force_login(alice.user)

    search = client.get(url("number-search", alice.account), {"npa": "201", "features": ["voice", "sms"]})
    assert all(s.number in search.content.decode() for s in (first, second, third))

    response = client.post(
        url("numberorder-create", alice.account),
        {"numbers": [first.number, third.number], "features": ["voice", "sms"], "autorenew": "on", "query": "npa=201"},
        follow=True,
    )

    order = NumberOrder.objects.get(account=alice.account)
    assert response.redirect_chain[-1][0] == url("numberorder-detail", alice.account, id=order.public_id)
    page = response.content.decode()
    assert page.count('data-testid="item-result"') == 2 and "Success" in page
    assert "Order completed" in page
    leases = PhoneNumber.objects.for_account(alice.account)
    assert {n.number for n in leases} == {first.number, third.number}
    assert all(n.sms_enabled and n.autorenew for n in leases)


def test_ordering_nothing_sends_you_back_to_the_search(client, alice):
    client.force_login(alice.user)
    response = client.post(url("numberorder-create", alice.account), {"query": "npa=201&nxx=346"})
    assert response.status_code == 302
    assert response.url == url("number-search", alice.account) + "?npa=201&nxx=346"
    assert not NumberOrder.objects.exists()


def test_a_bad_search_shows_the_error_under_its_field(client, alice):
    client.force_login(alice.user)
    response = client.get(url("number-search", alice.account), {"pattern": "1201_"})
    assert response.status_code == 200
    assert "Use digits, *" in response.content.decode()
    assert 'data-testid="available-table"' not in response.content.decode()


def test_it_edits_a_number_and_explains_a_voice_target_conflict(client, alice, owned):
    app = CallControlApp.objects.create(account=alice.account, name="IVR")
    trunk = SipConnection.objects.create(account=alice.account, name="PBX", auth_type="ip")
    profile = TnProfile.objects.create(account=alice.account, name="Screened")
    client.force_login(alice.user)
    edit = url("number-edit", alice.account, id=owned.public_id)
    form = {
        "description": "Front desk",
        "tags": "vip, support  desk",
        "voice_enabled": "on",
        "autorenew": "on",
        "tn_profile": str(profile.public_id),
        "call_control_app": str(app.public_id),
        "sip_connection": str(trunk.public_id),
        "status_callback_url": "",
        "status_callback_method": "POST",
    }

    conflict = client.post(edit, form)
    assert conflict.status_code == 200
    assert "one voice target" in conflict.content.decode()

    saved = client.post(edit, {**form, "sip_connection": ""})
    assert saved.status_code == 302
    owned.refresh_from_db()
    assert owned.description == "Front desk" and owned.tags == ["vip", "support", "desk"]
    assert (owned.call_control_app, owned.sip_connection, owned.tn_profile) == (app, None, profile)
    assert AuditEntry.objects.filter(action="number.updated", actor_label=alice.user.email).exists()


def test_it_releases_a_number_after_confirmation(client, alice, owned):
    client.force_login(alice.user)
    release = url("number-release", alice.account, id=owned.public_id)
    assert "Release" in client.get(release).content.decode()

    response = client.post(release)

    assert response.status_code == 302 and response.url == url("number-list", alice.account)
    owned.refresh_from_db()
    assert owned.status == "released"
    assert StockNumber.objects.get(pk=owned.stock_id).status == "quarantined"


def test_a_released_numbers_edit_page_sends_you_to_its_details(client, alice):
    number = make_phone_number(alice.account, status="released")
    client.force_login(alice.user)
    response = client.get(url("number-edit", alice.account, id=number.public_id))
    assert response.status_code == 302
    assert response.url == url("number-detail", alice.account, id=number.public_id)


def test_another_accounts_number_is_404_under_your_own_account(client, alice, charlie):
    theirs = make_phone_number(charlie.account)
    client.force_login(alice.user)
    for name in ("number-detail", "number-edit", "number-release"):
        assert client.get(url(name, alice.account, id=theirs.public_id)).status_code == 404
        assert client.post(url(name, alice.account, id=theirs.public_id)).status_code in (404, 405)
    theirs.refresh_from_db()
    assert theirs.status == "active"

"""The SIP portal pages through Django's test client: rendering, the main flows, and what viewers may do."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from telephony.models import PhoneNumber, SipConnection, SipDomain, SipInvite, SipUser
from telephony.services import sip as services
from telephony.tests.isolation_sip import make_connection, make_number, make_user
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db

PASSWORD = "blue-lantern-42!"


def url(name: str, account, **kwargs) -> str:
    return reverse(name, kwargs={"account": account.slug, **kwargs})


@pytest.fixture
def objects(alice):
    account = alice.account
    connection = make_connection(account)
    user = make_user(account)
    invite = services.sip_invite_create(
        account=account, actor=None, connection=connection, name="Mary", domain=user.domain
    ).invite
    make_number(account, "+12015550100", sip_connection=connection)
    make_number(account, "+12015550101")
    return {"connection": connection, "domain": user.domain, "user": user, "invite": invite}


def pages(account, objects) -> dict[str, str]:
    c, d, u, i = (objects[k].public_id for k in ("connection", "domain", "user", "invite"))
    return {
        "sipconnection-list": url("sipconnection-list", account),
        "sipconnection-create": url("sipconnection-create", account),
        "sipconnection-detail": url("sipconnection-detail", account, id=c),
        "sipconnection-edit": url("sipconnection-edit", account, id=c),
        "sipconnection-delete": url("sipconnection-delete", account, id=c),
        "sipconnection-invite-create": url("sipconnection-invite-create", account, id=c),
        "sipconnection-invite-revoke": url("sipconnection-invite-revoke", account, id=i),
        "sipdomain-list": url("sipdomain-list", account),
        "sipdomain-create": url("sipdomain-create", account),
        "sipdomain-detail": url("sipdomain-detail", account, id=d),
        "sipdomain-edit": url("sipdomain-edit", account, id=d),
        "sipdomain-delete": url("sipdomain-delete", account, id=d),
        "sipuser-create": url("sipuser-create", account, id=d),
        "sipuser-detail": url("sipuser-detail", account, id=u),
        "sipuser-edit": url("sipuser-edit", account, id=u),
        "sipuser-delete": url("sipuser-delete", account, id=u),
    }


WRITE_PAGES = {
    "sipconnection-create", "sipconnection-edit", "sipconnection-delete", "sipconnection-invite-create",
    "sipconnection-invite-revoke", "sipdomain-create", "sipdomain-edit", "sipdomain-delete", "sipuser-create",
    "sipuser-edit", "sipuser-delete",
}  # fmt: skip


def test_it_renders_every_sip_page_for_the_owner_without_secrets(client, alice, objects):
    client.force_login(alice.user)
    user = objects["user"]
    for name, path in pages(alice.account, objects).items():
        response = client.get(path)
        assert response.status_code == 200, name
        text = response.content.decode()
        assert user.ha1 not in text and objects["connection"].ha1 not in text, name
        assert objects["invite"].token_digest not in text and objects["invite"].token_prefix not in text, name


def test_a_viewer_reads_every_page_but_sees_no_write_controls_and_cannot_write(client, alice, bob, objects):
    client.force_login(bob.user)
    all_pages = pages(alice.account, objects)
    for name, path in all_pages.items():
        if name in WRITE_PAGES:
            assert client.get(path).status_code == 403, name
            assert client.post(path, {}).status_code == 403, name
        else:
            response = client.get(path)
            assert response.status_code == 200, name
            for marker in (
                b"create-sip-",
                b"edit-sip-",
                b"delete-sip-",
                b"create-invite",
                b"assign-numbers",
                b"unassign-",
                b"Revoke",
            ):
                assert marker not in response.content, (name, marker)
    numbers = url("sipconnection-numbers", alice.account, id=objects["connection"].public_id)
    assert client.post(numbers, {"remove": "+12015550100"}).status_code == 403
    assert PhoneNumber.objects.get(number="+12015550100").sip_connection == objects["connection"]


def test_it_creates_a_credentials_connection_through_the_form(client, alice):
    client.force_login(alice.user)

    response = client.post(
        url("sipconnection-create", alice.account),
        {
            "name": "Office PBX",
            "is_active": "on",
            "auth_type": "credentials",
            "username": "office-pbx",
            "password": "trunk-secret-2024",
            "inbound_host": "pbx.example.com",
            "inbound_port": "5060",
            "inbound_transport": "udp",
            "codecs": "PCMU, pcma telephone-event",
            "caller_id_policy": "passthrough",
        },
    )

    connection = SipConnection.objects.get()
    assert response.status_code == 302
    assert response.url == url("sipconnection-detail", alice.account, id=connection.public_id)
    assert connection.codecs == ["PCMU", "PCMA", "telephone-event"]
    assert connection.ha1 and connection.username == "office-pbx"


def test_the_connection_form_shows_service_errors_under_their_fields(client, alice, charlie):
    make_connection(charlie.account)
    taken = SipConnection.objects.get().username
    client.force_login(alice.user)

    response = client.post(
        url("sipconnection-create", alice.account),
        {
            "name": "Carrier",
            "auth_type": "ip",
            "allowed_ips": "203.0.113.7\n0.0.0.0/0",
            "inbound_port": "5060",
            "inbound_transport": "udp",
            "codecs": "PCMU, SPEEX9",
            "caller_id_policy": "passthrough",
            "username": taken,
        },
    )

    assert response.status_code == 200
    form = response.context["form"]
    assert "too broad" in form.errors["allowed_ips"][0]
    assert "SPEEX9" in form.errors["codecs"][0]
    assert not SipConnection.objects.filter(account=alice.account).exists()


def test_editing_a_connection_keeps_the_password_when_left_empty(client, alice, objects):
    connection = objects["connection"]
    hashes = (connection.ha1, connection.ha1b)
    client.force_login(alice.user)
    edit = url("sipconnection-edit", alice.account, id=connection.public_id)
    form = client.get(edit).context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(name="Renamed", is_active="on")

    response = client.post(edit, data)

    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    connection.refresh_from_db()
    assert connection.name == "Renamed" and (connection.ha1, connection.ha1b) == hashes


def test_it_assigns_and_unassigns_numbers_from_the_connection_page(client, alice, objects):
    connection = objects["connection"]
    spare = PhoneNumber.objects.get(number="+12015550101")
    client.force_login(alice.user)
    numbers = url("sipconnection-numbers", alice.account, id=connection.public_id)

    detail = client.get(url("sipconnection-detail", alice.account, id=connection.public_id))
    assert b'data-testid="unassign-+12015550100"' in detail.content
    assert str(spare.public_id).encode() in detail.content

    assigned = client.post(numbers, {"add": [str(spare.public_id)]})
    spare.refresh_from_db()
    assert assigned.status_code == 302 and spare.sip_connection == connection

    client.post(numbers, {"remove": [str(spare.public_id)]})
    spare.refresh_from_db()
    assert spare.sip_connection is None
    assert client.get(numbers).status_code == 302


def test_the_invite_link_is_shown_once_and_works(client, alice, objects):
    connection = objects["connection"]
    client.force_login(alice.user)

    response = client.post(
        url("sipconnection-invite-create", alice.account, id=connection.public_id),
        {"name": "Front desk", "domain": str(objects["domain"].public_id)},
    )

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    link = response.context["invite_link"]
    assert "/invite/" in link and link.encode() in response.content
    detail = client.get(url("sipconnection-detail", alice.account, id=connection.public_id))
    assert link.rsplit("/", 1)[1].encode() not in detail.content
    assert b"Front desk" in detail.content
    client.logout()
    assert client.get(urlsplit(link).path).status_code == 200


def test_it_revokes_an_invite_from_its_confirmation_page(client, alice, objects):
    client.force_login(alice.user)

    response = client.post(url("sipconnection-invite-revoke", alice.account, id=objects["invite"].public_id))

    assert response.status_code == 302
    assert not SipInvite.objects.exists()


def test_it_creates_a_domain_and_a_user_then_changes_the_password(client, alice):
    client.force_login(alice.user)

    created = client.post(url("sipdomain-create", alice.account), {"name": "Acme"})
    domain = SipDomain.objects.get()
    assert created.url == url("sipdomain-detail", alice.account, id=domain.public_id)

    response = client.post(
        url("sipuser-create", alice.account, id=domain.public_id),
        {
            "login": "mary",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            "first_name": "Mary",
            "is_active": "on",
        },
    )
    user = SipUser.objects.get()
    assert response.url == url("sipuser-detail", alice.account, id=user.public_id)
    detail = client.get(response.url)
    assert f"sip:mary@{domain.domain}".encode() in detail.content

    first_hash = user.ha1
    edit = url("sipuser-edit", alice.account, id=user.public_id)
    client.post(
        edit, {"login": "mary", "password": "new-lantern-55", "password_confirm": "new-lantern-55", "is_active": "on"}
    )
    user.refresh_from_db()
    assert user.ha1 != first_hash
    assert AuditEntry.objects.filter(action="sip_user.password_changed").count() == 1


def test_the_user_form_checks_the_confirmation_and_the_service_rules(client, alice, objects):
    client.force_login(alice.user)
    create = url("sipuser-create", alice.account, id=objects["domain"].public_id)

    mismatch = client.post(create, {"login": "tom", "password": PASSWORD, "password_confirm": "other-lantern-1"})
    taken = client.post(create, {"login": "MARY", "password": PASSWORD, "password_confirm": PASSWORD})

    assert "password_confirm" in mismatch.context["form"].errors
    assert "This login is taken in this domain; choose another." in taken.context["form"].errors["login"]
    assert SipUser.objects.count() == 1


def test_the_domain_edit_form_cannot_rename(client, alice, objects):
    client.force_login(alice.user)
    edit = url("sipdomain-edit", alice.account, id=objects["domain"].public_id)

    response = client.post(edit, {"name": "other", "same_domain_calls_only": "on"})

    domain = SipDomain.objects.get(pk=objects["domain"].pk)
    assert response.status_code == 302
    assert domain.name == objects["domain"].name and domain.same_domain_calls_only is True


def test_it_deletes_user_domain_and_connection_through_confirmation_pages(client, alice, objects):
    client.force_login(alice.user)

    assert client.post(url("sipuser-delete", alice.account, id=objects["user"].public_id)).status_code == 302
    assert client.post(url("sipdomain-delete", alice.account, id=objects["domain"].public_id)).status_code == 302
    assert (
        client.post(url("sipconnection-delete", alice.account, id=objects["connection"].public_id)).status_code == 302
    )

    assert not SipUser.objects.exists() and not SipDomain.objects.exists() and not SipConnection.objects.exists()


def test_the_nav_links_to_the_sip_lists(client, alice):
    client.force_login(alice.user)
    response = client.get(url("sipdomain-list", alice.account))
    assert b'data-testid="nav-sipdomain-list"' in response.content
    assert b'aria-current="page"' in response.content

"""/api/v1/sip-domains: names, platform-wide uniqueness, no renames, the default inbound target."""

from __future__ import annotations

import pytest
from django.conf import settings

from telephony.models import CallControlApp, SipDomain, SipUser
from telephony.tests.isolation_sip import make_connection, make_domain
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db

URL = "/api/v1/sip-domains"


def create(client, name="acme", **fields):
    return client.post(URL, {"name": name, **fields}, format="json")


def test_it_creates_name_dot_sip_dot_the_platform_domain_in_lowercase(alice_api):
    response = create(alice_api, name="  Acme-West ")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "acme-west"
    assert body["domain"] == f"acme-west.sip.{settings.PLATFORM_SIP_DOMAIN}"
    assert body["same_domain_calls_only"] is False
    assert body["default_call_control_app"] is None and body["default_sip_connection"] is None
    assert AuditEntry.objects.filter(action="sip_domain.created", object_id=body["id"]).exists()


@pytest.mark.parametrize("name", ["-acme", "acme-", "ac_me", "ac.me", "a" * 64, "", "   ", "acmé"])
def test_it_refuses_names_that_are_not_a_dns_label(alice_api, name):
    response = create(alice_api, name=name)

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["name"]


@pytest.mark.parametrize("name", ["a", "7", "a" * 63, "front-desk-2"])
def test_it_accepts_any_dns_label(alice_api, name):
    assert create(alice_api, name=name).status_code == 201


def test_a_name_is_unique_across_accounts_without_saying_whose_it_is(alice_api, charlie_api):
    assert create(alice_api, name="acme").status_code == 201

    response = create(charlie_api, name="ACME")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "name_taken"
    assert "account" not in response.json()["error"]["message"].lower()
    assert SipDomain.objects.count() == 1


def test_a_domain_cannot_be_renamed(alice_api):
    domain = create(alice_api).json()

    renamed = alice_api.patch(f"{URL}/{domain['id']}", {"name": "other"}, format="json")
    same = alice_api.patch(f"{URL}/{domain['id']}", {"name": "ACME", "same_domain_calls_only": True}, format="json")

    assert renamed.status_code == 400
    assert renamed.json()["error"]["code"] == "rename_not_allowed"
    assert same.status_code == 200
    assert same.json()["same_domain_calls_only"] is True and same.json()["domain"].startswith("acme.")


def test_the_default_target_is_an_app_or_a_connection_never_both(alice_api, alice):
    app = CallControlApp.objects.create(account=alice.account, name="IVR")
    trunk = make_connection(alice.account)

    both = create(alice_api, default_call_control_app=str(app.public_id), default_sip_connection=str(trunk.public_id))
    with_app = create(alice_api, default_call_control_app=str(app.public_id))
    url = f"{URL}/{with_app.json()['id']}"
    switched = alice_api.patch(url, {"default_sip_connection": str(trunk.public_id)}, format="json")
    cleared = alice_api.patch(url, {"default_sip_connection": None}, format="json")

    assert both.status_code == 400
    assert both.json()["error"]["code"] == "one_default_target"
    assert with_app.json()["default_call_control_app"] == str(app.public_id)
    assert switched.json()["default_sip_connection"] == str(trunk.public_id)
    assert switched.json()["default_call_control_app"] is None
    assert cleared.json()["default_sip_connection"] is None


def test_another_accounts_app_or_connection_is_not_found(alice_api, charlie):
    app = CallControlApp.objects.create(account=charlie.account, name="Their IVR")
    trunk = make_connection(charlie.account)

    for field, value in (("default_call_control_app", app.public_id), ("default_sip_connection", trunk.public_id)):
        response = create(alice_api, **{field: str(value)})
        assert response.status_code == 400
        assert list(response.json()["error"]["fields"]) == [field]


def test_deleting_a_domain_deletes_its_users(alice_api, alice):
    domain = make_domain(alice.account)
    users_url = f"{URL}/{domain.public_id}/users"
    alice_api.post(users_url, {"login": "mary", "password": "blue-lantern-42!"}, format="json")

    response = alice_api.delete(f"{URL}/{domain.public_id}")

    assert response.status_code == 204
    assert not SipUser.objects.exists()
    entry = AuditEntry.objects.get(action="sip_domain.deleted")
    assert entry.before["users_deleted"] == 1 and entry.before["logins"] == ["mary"]


def test_a_viewer_reads_but_cannot_write(alice, bob, token_client):
    domain = make_domain(alice.account)
    as_bob = token_client(bob.user, bob.account)

    assert as_bob.get(URL).json()["count"] == 1
    assert create(as_bob, name="bobs").status_code == 403
    assert as_bob.patch(f"{URL}/{domain.public_id}", {"same_domain_calls_only": True}, format="json").status_code == 403
    assert as_bob.delete(f"{URL}/{domain.public_id}").status_code == 403


def test_charlie_cannot_see_alices_domain_or_its_users(alice, charlie_api):
    domain = make_domain(alice.account)

    assert charlie_api.get(f"{URL}/{domain.public_id}").status_code == 404
    assert charlie_api.get(f"{URL}/{domain.public_id}/users").status_code == 404
    response = charlie_api.post(
        f"{URL}/{domain.public_id}/users", {"login": "evil", "password": "blue-lantern-42!"}, format="json"
    )
    assert response.status_code == 404
    assert not SipUser.objects.exists()

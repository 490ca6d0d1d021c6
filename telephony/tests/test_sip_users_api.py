"""SIP users: created under a domain, managed at /api/v1/sip-users; their hashes never leave the database."""

from __future__ import annotations

import hashlib

import pytest
from django.conf import settings

from telephony.models import PhoneNumber, SipUser
from telephony.tests.isolation_sip import make_connection, make_domain, make_number
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db

PASSWORD = "blue-lantern-42!"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324


@pytest.fixture
def domain(alice):
    return make_domain(alice.account)


def users_url(domain) -> str:
    return f"/api/v1/sip-domains/{domain.public_id}/users"


def create(client, domain, **fields):
    return client.post(users_url(domain), {"login": "mary", "password": PASSWORD, **fields}, format="json")


def test_it_creates_a_user_with_the_registrars_hashes_and_a_sip_uri(alice_api, domain):
    response = create(alice_api, domain, first_name="Mary", last_name="Major", email="Mary@Example.com")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["sip_uri"] == f"sip:mary@{domain.domain}"
    assert body["domain_name"] == domain.domain
    assert body["state"] == "offline" and body["last_seen_at"] is None
    assert body["email"] == "mary@example.com"
    row = SipUser.objects.values().get(public_id=body["id"])
    assert row["ha1"] == md5(f"mary:{domain.domain}:{PASSWORD}")
    assert row["ha1b"] == md5(f"mary@{domain.domain}:{domain.domain}:{PASSWORD}")
    assert domain.domain == f"{domain.name}.sip.{settings.PLATFORM_SIP_DOMAIN}"


def test_no_response_ever_contains_a_hash_or_the_password(alice_api, alice, domain):
    trunk = make_connection(alice.account)
    created = create(alice_api, domain, sip_connection=str(trunk.public_id))
    user = SipUser.objects.get()
    url = f"/api/v1/sip-users/{user.public_id}"
    responses = [
        created,
        alice_api.get(users_url(domain)),
        alice_api.get("/api/v1/sip-users"),
        alice_api.get(url),
        alice_api.patch(url, {"password": "second-lantern-43"}, format="json"),
        alice_api.get(f"/api/v1/sip-domains/{domain.public_id}"),
        alice_api.get("/api/v1/audit-log"),
    ]
    user.refresh_from_db()

    for response in responses:
        assert response.status_code in (200, 201)
        text = response.content.decode()
        assert "ha1" not in text.lower()
        assert user.ha1 not in text and user.ha1b not in text
        assert PASSWORD not in text and "second-lantern-43" not in text


@pytest.mark.parametrize("login", ["m", "x" * 65, "mary smith", "mary@acme", ""])
def test_it_applies_the_login_rules(alice_api, domain, login):
    response = create(alice_api, domain, login=login)

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["login"]


@pytest.mark.parametrize(
    "password,code",
    [
        ("short-1", "password_too_short"),
        ("98765432109", "password_all_digits"),
        ("hello-MARY-1234", "password_contains_username"),
    ],
)
def test_it_applies_the_password_rules(alice_api, domain, password, code):
    response = create(alice_api, domain, password=password)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_a_login_is_unique_in_its_domain_whatever_its_case_but_not_across_domains(alice_api, alice, domain):
    assert create(alice_api, domain).status_code == 201

    again = create(alice_api, domain, login="MARY")
    elsewhere = create(alice_api, make_domain(alice.account))

    assert again.status_code == 400
    assert again.json()["error"]["code"] == "login_taken"
    assert elsewhere.status_code == 201


def test_the_caller_id_must_be_one_of_the_accounts_active_numbers(alice_api, alice, charlie, domain):
    mine = make_number(alice.account, "+12015550100")
    theirs = make_number(charlie.account, "+12015550199")
    make_number(alice.account, "+12015550101", status=PhoneNumber.Status.RELEASED)

    for ref in (str(theirs.public_id), "+12015550199", "+12015550101", "12015550100"):
        response = create(alice_api, domain, login=f"u{abs(hash(ref)) % 1000}", caller_id_number=ref)
        assert response.status_code == 400, ref
        assert list(response.json()["error"]["fields"]) == ["caller_id_number"]
    by_id = create(alice_api, domain, login="by-id", caller_id_number=str(mine.public_id))
    by_e164 = create(alice_api, domain, login="by-e164", caller_id_number="+12015550100")

    assert by_id.json()["caller_id_number"]["number"] == by_e164.json()["caller_id_number"]["number"] == "+12015550100"


def test_changing_the_password_replaces_both_hashes_and_audits_without_them(alice_api, domain):
    user_id = create(alice_api, domain).json()["id"]
    before = SipUser.objects.get(public_id=user_id)

    response = alice_api.patch(f"/api/v1/sip-users/{user_id}", {"password": "second-lantern-43"}, format="json")

    assert response.status_code == 200
    after = SipUser.objects.get(public_id=user_id)
    assert after.ha1 == md5(f"mary:{domain.domain}:second-lantern-43")
    assert after.ha1b == md5(f"mary@{domain.domain}:{domain.domain}:second-lantern-43")
    assert after.ha1 != before.ha1
    entry = AuditEntry.objects.get(action="sip_user.password_changed")
    assert entry.after == {"login": "mary"} and entry.before is None
    logged = str(list(AuditEntry.objects.values("before", "after")))
    assert "lantern" not in logged and after.ha1 not in logged and before.ha1 not in logged
    # Nothing else changed, so there is no "updated" entry.
    assert not AuditEntry.objects.filter(action="sip_user.updated").exists()


def test_a_new_login_needs_the_password(alice_api, domain):
    user_id = create(alice_api, domain).json()["id"]
    url = f"/api/v1/sip-users/{user_id}"

    refused = alice_api.patch(url, {"login": "mary.major"}, format="json")
    accepted = alice_api.patch(url, {"login": "mary.major", "password": "third-lantern-44"}, format="json")

    assert refused.status_code == 400
    assert list(refused.json()["error"]["fields"]) == ["password"]
    assert accepted.json()["sip_uri"] == f"sip:mary.major@{domain.domain}"
    assert SipUser.objects.get().ha1 == md5(f"mary.major:{domain.domain}:third-lantern-44")


def test_state_and_last_seen_are_read_only(alice_api, domain):
    user_id = create(alice_api, domain).json()["id"]

    response = alice_api.patch(
        f"/api/v1/sip-users/{user_id}",
        {"state": "online", "last_seen_at": "2030-01-01T00:00:00Z", "first_name": "Mary"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["state"] == "offline" and response.json()["last_seen_at"] is None
    assert response.json()["first_name"] == "Mary"


def test_it_filters_users_by_domain_login_activity_state_and_connection(alice_api, alice, domain):
    other = make_domain(alice.account)
    trunk = make_connection(alice.account)
    create(alice_api, domain, login="front-desk", sip_connection=str(trunk.public_id))
    create(alice_api, domain, login="back-office", is_active=False)
    create(alice_api, other, login="front-gate")
    SipUser.objects.filter(login="front-gate").update(state="online")

    def logins(**params):
        return sorted(u["login"] for u in alice_api.get("/api/v1/sip-users", params).json()["results"])

    assert logins() == ["back-office", "front-desk", "front-gate"]
    assert logins(domain=str(domain.public_id)) == ["back-office", "front-desk"]
    assert logins(login="front") == ["front-desk", "front-gate"]
    assert logins(is_active="false") == ["back-office"]
    assert logins(state="online") == ["front-gate"]
    assert logins(connection=str(trunk.public_id)) == ["front-desk"]
    assert alice_api.get("/api/v1/sip-users", {"domain": "nope"}).status_code == 400


def test_users_are_not_created_at_the_top_level(alice_api, domain):
    response = alice_api.post("/api/v1/sip-users", {"login": "mary", "password": PASSWORD}, format="json")
    assert response.status_code == 405


def test_deleting_a_user_frees_its_numbers(alice_api, alice, domain):
    user_id = create(alice_api, domain).json()["id"]
    number = make_number(alice.account, "+12015550100", sip_user=SipUser.objects.get())

    assert alice_api.delete(f"/api/v1/sip-users/{user_id}").status_code == 204

    number.refresh_from_db()
    assert number.sip_user is None
    assert AuditEntry.objects.filter(action="sip_user.deleted", object_id=user_id).exists()


def test_a_viewer_reads_but_cannot_write(alice_api, bob, token_client, domain):
    user_id = create(alice_api, domain).json()["id"]
    as_bob = token_client(bob.user, bob.account)

    assert as_bob.get(f"/api/v1/sip-users/{user_id}").status_code == 200
    assert create(as_bob, domain, login="bob").status_code == 403
    assert (
        as_bob.patch(f"/api/v1/sip-users/{user_id}", {"password": "bobs-lantern-45"}, format="json").status_code == 403
    )
    assert as_bob.delete(f"/api/v1/sip-users/{user_id}").status_code == 403


def test_charlie_cannot_use_alices_numbers_or_connections_for_his_users(alice, charlie, charlie_api):
    theirs = make_domain(charlie.account)
    alices_number = make_number(alice.account, "+12015550100")
    alices_trunk = make_connection(alice.account)

    number = create(charlie_api, theirs, caller_id_number=alices_number.number)
    trunk = create(charlie_api, theirs, sip_connection=str(alices_trunk.public_id))

    assert number.status_code == trunk.status_code == 400
    assert not SipUser.objects.exists()

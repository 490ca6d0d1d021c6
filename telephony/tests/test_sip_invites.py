"""SIP invites: created through the API, used once on the public /invite/<token> page."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection as db_connection
from django.utils import timezone

from telephony.models import SipInvite, SipUser
from telephony.services import sip as services
from telephony.tests.isolation_sip import make_connection, make_domain
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db

PASSWORD = "blue-lantern-42!"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324


@pytest.fixture
def trunk(alice):
    return make_connection(alice.account)


@pytest.fixture
def domain(alice):
    return make_domain(alice.account)


def invites_url(connection) -> str:
    return f"/api/v1/sip-connections/{connection.public_id}/invites"


def invite(client, connection, **fields):
    return client.post(invites_url(connection), {"name": "Mary", **fields}, format="json")


def page_path(token: str) -> str:
    return f"/invite/{token}"


def accept(client, token, login="mary", password=PASSWORD, confirm=None):
    return client.post(
        page_path(token),
        {"login": login, "password": password, "password_confirm": password if confirm is None else confirm},
    )


# --- The API -------------------------------------------------------------------------------------


def test_it_returns_the_token_and_link_once_and_stores_only_a_prefix_and_digest(alice_api, trunk, domain):
    response = invite(alice_api, trunk)

    assert response.status_code == 201, response.json()
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    token = body["token"]
    assert body["url"] == f"{settings.PORTAL_BASE_URL}/invite/{token}"
    assert body["state"] == "pending" and body["domain"] == str(domain.public_id)
    row = SipInvite.objects.values().get(public_id=body["id"])
    assert row["token_digest"] == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(row["token_prefix"]) and token not in str(row)

    listing = alice_api.get(invites_url(trunk))
    assert listing.json()["count"] == 1
    assert token not in listing.content.decode() and "token" not in listing.json()["results"][0]


def test_it_builds_the_link_from_the_portal_base_url_or_else_the_request(alice_api, trunk, domain, settings):
    settings.PORTAL_BASE_URL = "https://portal.example.com/"
    configured = invite(alice_api, trunk).json()
    settings.PORTAL_BASE_URL = ""
    from_request = invite(alice_api, trunk).json()

    assert configured["url"] == f"https://portal.example.com/invite/{configured['token']}"
    assert from_request["url"] == f"http://testserver/invite/{from_request['token']}"


def test_it_needs_a_domain_when_the_account_has_none_or_several(alice_api, alice, trunk):
    none = invite(alice_api, trunk)
    first = make_domain(alice.account)
    make_domain(alice.account)
    several = invite(alice_api, trunk)
    chosen = invite(alice_api, trunk, domain=str(first.public_id))

    for response in (none, several):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "domain_required"
        assert list(response.json()["error"]["fields"]) == ["domain"]
    assert chosen.status_code == 201 and chosen.json()["domain_name"] == first.domain


def test_another_accounts_domain_is_not_found(alice_api, charlie, trunk, domain):
    theirs = make_domain(charlie.account)

    response = invite(alice_api, trunk, domain=str(theirs.public_id))

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["domain"]


@pytest.mark.parametrize("delta", [timedelta(minutes=-1), timedelta(days=31)])
def test_the_expiry_must_be_in_the_next_30_days(alice_api, trunk, domain, delta):
    response = invite(alice_api, trunk, expires_at=(timezone.now() + delta).isoformat())

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["expires_at"]


def test_revoking_an_invite_kills_its_link(alice_api, client, trunk, domain):
    body = invite(alice_api, trunk).json()

    response = alice_api.delete(f"{invites_url(trunk)}/{body['id']}")

    assert response.status_code == 204
    assert client.get(page_path(body["token"])).status_code == 404
    assert list(AuditEntry.objects.filter(object_id=body["id"]).values_list("action", flat=True).order_by("id")) == [
        "sip_invite.created",
        "sip_invite.revoked",
    ]


def test_an_invite_is_revoked_only_through_its_own_connection(alice_api, alice, charlie_api, trunk, domain):
    body = invite(alice_api, trunk).json()
    other = make_connection(alice.account)

    assert alice_api.delete(f"{invites_url(other)}/{body['id']}").status_code == 404
    assert alice_api.delete(f"{invites_url(trunk)}/not-a-uuid").status_code == 404
    assert charlie_api.delete(f"{invites_url(trunk)}/{body['id']}").status_code == 404
    assert SipInvite.objects.filter(public_id=body["id"]).exists()


def test_the_list_shows_used_and_expired_states(alice_api, client, trunk, domain):
    used = invite(alice_api, trunk).json()
    expired = invite(alice_api, trunk, name="Late").json()
    accept(client, used["token"])
    SipInvite.objects.filter(public_id=expired["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))

    states = {i["name"]: (i["state"], i["sip_user"]) for i in alice_api.get(invites_url(trunk)).json()["results"]}

    user = SipUser.objects.get()
    assert states == {"Mary": ("used", str(user.public_id)), "Late": ("expired", None)}


def test_a_viewer_cannot_create_or_revoke_invites(alice_api, bob, token_client, trunk, domain):
    body = invite(alice_api, trunk).json()
    as_bob = token_client(bob.user, bob.account)

    assert as_bob.get(invites_url(trunk)).status_code == 200
    assert invite(as_bob, trunk).status_code == 403
    assert as_bob.delete(f"{invites_url(trunk)}/{body['id']}").status_code == 403


# --- The public page -----------------------------------------------------------------------------


def test_the_invited_person_creates_their_sip_user_once(alice_api, client, trunk, domain):
    token = invite(alice_api, trunk).json()["token"]

    form = client.get(page_path(token))
    assert form.status_code == 200
    assert form["Cache-Control"] == "no-store" and form["Referrer-Policy"] == "same-origin"
    assert b"Create your SIP login" in form.content and domain.domain.encode() in form.content

    done = accept(client, token)

    assert done.status_code == 200
    user = SipUser.objects.get()
    assert (user.login, user.domain, user.sip_connection, user.account) == ("mary", domain, trunk, trunk.account)
    assert user.ha1 == md5(f"mary:{domain.domain}:{PASSWORD}")
    assert user.ha1b == md5(f"mary@{domain.domain}:{domain.domain}:{PASSWORD}")
    page = done.content.decode()
    assert f"sip:mary@{domain.domain}" in page
    assert PASSWORD not in page and user.ha1 not in page
    used = SipInvite.objects.get()
    assert used.used_at is not None and used.sip_user == user
    actions = set(AuditEntry.objects.values_list("action", "actor_label"))
    assert ("sip_user.created", "invitee of Invite for Mary") in actions
    assert ("sip_invite.used", "invitee of Invite for Mary") in actions

    second = accept(client, token, login="mallory")
    assert second.status_code == 410
    assert b"already used" in second.content
    assert client.get(page_path(token)).status_code == 410
    assert SipUser.objects.count() == 1


def test_an_expired_invite_is_gone(alice_api, client, trunk, domain):
    token = invite(alice_api, trunk).json()["token"]
    SipInvite.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert client.get(page_path(token)).status_code == 410
    response = accept(client, token)

    assert response.status_code == 410
    assert b"expired" in response.content
    assert not SipUser.objects.exists()


@pytest.mark.parametrize("token", ["x" * 43, "short", "A" * 200])
def test_a_wrong_token_is_not_found(alice_api, client, trunk, domain, token):
    real = invite(alice_api, trunk).json()["token"]

    assert client.get(page_path(token)).status_code == 404
    assert client.get(page_path(real[:12] + "x" * 31)).status_code == 404
    assert accept(client, token).status_code == 404


def test_a_bad_login_or_password_shows_the_form_again_and_keeps_the_invite(alice_api, client, alice, trunk, domain):
    token = invite(alice_api, trunk).json()["token"]
    services.sip_user_create(account=alice.account, actor=None, domain=domain, login="taken", password=PASSWORD)

    mismatch = accept(client, token, confirm="something-else-1")
    weak = accept(client, token, password="1234567890123")
    taken = accept(client, token, login="TAKEN")

    assert b"The two passwords differ" in mismatch.content
    assert b"not only digits" in weak.content
    assert b"This login is taken" in taken.content
    assert all(r.status_code == 200 for r in (mismatch, weak, taken))
    assert SipInvite.objects.get().used_at is None
    assert accept(client, token).status_code == 200


def test_posts_are_rate_limited_per_address(alice_api, client, trunk, domain):
    token = invite(alice_api, trunk).json()["token"]

    statuses = [accept(client, token, confirm="mismatch-mismatch").status_code for _ in range(services_limit())]
    blocked = accept(client, token)

    assert set(statuses) == {200}
    assert blocked.status_code == 429
    assert blocked["Retry-After"]
    assert not SipUser.objects.exists()


def services_limit() -> int:
    from telephony.views.sip import INVITE_POSTS_PER_MINUTE

    return INVITE_POSTS_PER_MINUTE


def test_an_invite_of_a_suspended_account_cannot_be_used(alice_api, alice, client, trunk, domain):
    token = invite(alice_api, trunk).json()["token"]
    alice.account.status = "suspended"
    alice.account.save()

    assert client.get(page_path(token)).status_code == 403
    assert accept(client, token).status_code == 403
    assert not SipUser.objects.exists()


def test_the_service_refuses_a_second_acceptance_even_without_the_page(alice, trunk, domain):
    created = services.sip_invite_create(account=alice.account, actor=None, connection=trunk, name="Mary")
    services.sip_invite_accept(token=created.token, login="mary", password=PASSWORD)

    with pytest.raises(services.InviteUnavailable) as caught:
        services.sip_invite_accept(token=created.token, login="mary2", password=PASSWORD)
    assert caught.value.reason == "used"


def test_a_failed_acceptance_leaves_the_invite_unused(alice, trunk, domain):
    created = services.sip_invite_create(account=alice.account, actor=None, connection=trunk, name="Mary")

    with pytest.raises(ValidationError):
        services.sip_invite_accept(token=created.token, login="mary", password="mary-password-1")

    assert SipInvite.objects.get().used_at is None


@pytest.mark.postgres
def test_two_racing_acceptances_create_one_user(transactional_db, alice, trunk, domain):
    created = services.sip_invite_create(account=alice.account, actor=None, connection=trunk, name="Mary")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def race(login: str) -> None:
        barrier.wait()
        try:
            services.sip_invite_accept(token=created.token, login=login, password=PASSWORD)
            outcomes.append("created")
        except services.InviteUnavailable as exc:
            outcomes.append(exc.reason)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=race, args=(login,)) for login in ("mary", "mallory")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["created", "used"]
    assert SipUser.objects.count() == 1

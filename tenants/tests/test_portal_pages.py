"""The portal's account pages through Django's test client: rendering, roles, isolation and the main flows."""

from __future__ import annotations

import re
import uuid

import pytest
from django.conf import settings
from django.core import mail
from django.template.loader import render_to_string
from django.urls import reverse

from tenants.models import Account, ApiKey, AuditEntry, Membership, User
from tenants.tests.factories import PASSWORD, MembershipFactory, UserFactory, make_api_key

NEW_PASSWORD = "a brand new long passphrase"


def url(name: str, account: Account, **kwargs) -> str:
    return reverse(name, kwargs={"account": account.slug, **kwargs})


@pytest.fixture
def alice_key(alice):
    _, api_key = make_api_key(alice.account, actor=alice.user, name="billing server")
    return api_key


def account_pages(alice, bob, api_key) -> dict[str, str]:
    """Every account page of account A, by URL name."""
    account = alice.account
    return {
        "dashboard": url("dashboard", account),
        "member-list": url("member-list", account),
        "member-add": url("member-add", account),
        "member-edit": url("member-edit", account, id=bob.membership.public_id),
        "member-remove": url("member-remove", account, id=bob.membership.public_id),
        "apikey-list": url("apikey-list", account),
        "apikey-create": url("apikey-create", account),
        "apikey-detail": url("apikey-detail", account, id=api_key.public_id),
        "apikey-revoke": url("apikey-revoke", account, id=api_key.public_id),
        "audit-log": url("audit-log", account),
    }


# --- Rendering ---------------------------------------------------------------------------------------


def test_it_renders_every_account_page_for_the_owner(client, alice, bob, alice_key):
    client.force_login(alice.user)
    for name, path in account_pages(alice, bob, alice_key).items():
        response = client.get(path)
        assert response.status_code == 200, name
        assert b"Account A" in response.content, name


def test_it_renders_the_password_pages(client, alice):
    client.force_login(alice.user)
    assert client.get(reverse("password_change")).status_code == 200
    assert client.get(reverse("password_change_done")).status_code == 200


def test_it_sends_a_signed_in_user_to_their_first_accounts_dashboard(client, alice):
    client.force_login(alice.user)
    response = client.get(reverse("portal-home"))
    assert response.status_code == 302
    assert response.url == url("dashboard", alice.account)


def test_it_tells_a_user_without_an_account_that_they_have_none(client, db):
    client.force_login(UserFactory(email="nobody@example.com"))
    response = client.get(reverse("portal-home"))
    assert response.status_code == 200
    assert b"not a member of any account" in response.content


def test_it_lists_the_users_accounts_in_the_switcher_and_marks_the_current_one(client, alice, charlie):
    Membership.objects.create(account=charlie.account, user=alice.user, role="viewer")
    client.force_login(alice.user)
    html = client.get(url("dashboard", alice.account)).content.decode()
    assert url("dashboard", charlie.account) in html
    current = re.search(r'<a href="([^"]+)"[^>]*aria-current="true"', html, re.S)
    assert current.group(1) == url("dashboard", alice.account)


def test_it_shows_the_dashboard_counts_and_the_live_events_placeholder(client, alice, bob, alice_key):
    client.force_login(alice.user)
    response = client.get(url("dashboard", alice.account))
    assert response.context["member_count"] == 2
    assert response.context["active_key_count"] == 1
    assert b'id="live-events"' in response.content
    assert b"api_key.created" in response.content


def test_it_renders_the_error_pages(client, alice):
    client.force_login(alice.user)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"Page not found" in response.content
    assert "Something went wrong" in render_to_string("500.html")


# --- Anonymous, other accounts, unknown ids -----------------------------------------------------------


def test_it_redirects_anonymous_visitors_to_login(client, alice, bob, alice_key):
    for name, path in account_pages(alice, bob, alice_key).items():
        response = client.get(path)
        assert response.status_code == 302, name
        assert response.url.startswith(reverse("login") + "?next="), name


def test_it_answers_404_to_a_member_of_another_account(client, alice, bob, charlie, alice_key):
    client.force_login(charlie.user)
    for name, path in account_pages(alice, bob, alice_key).items():
        assert client.get(path).status_code == 404, name
        assert client.post(path).status_code == 404, name


def test_it_answers_404_for_another_accounts_api_key_under_ones_own_account(client, charlie, alice_key):
    client.force_login(charlie.user)
    assert client.get(url("apikey-detail", charlie.account, id=alice_key.public_id)).status_code == 404
    response = client.post(url("apikey-revoke", charlie.account, id=alice_key.public_id))
    assert response.status_code == 404
    alice_key.refresh_from_db()
    assert alice_key.revoked_at is None


def test_it_answers_404_for_unknown_and_malformed_ids(client, alice):
    client.force_login(alice.user)
    for key_id in [uuid.uuid4(), "not-a-uuid", "1"]:
        assert client.get(url("apikey-detail", alice.account, id=key_id)).status_code == 404
        assert client.get(url("member-edit", alice.account, id=key_id)).status_code == 404


def test_it_answers_403_with_the_suspended_message_on_a_suspended_account(client, alice):
    Account.objects.filter(pk=alice.account.pk).update(status=Account.Status.SUSPENDED)
    client.force_login(alice.user)
    for name in ["dashboard", "member-list", "apikey-list", "audit-log"]:
        response = client.get(url(name, alice.account))
        assert response.status_code == 403, name
        assert b"is suspended" in response.content
        assert b"data is kept" in response.content


# --- Viewers see and do nothing that writes ------------------------------------------------------------


def test_it_shows_a_viewer_no_member_controls(client, alice, bob):
    client.force_login(bob.user)
    response = client.get(url("member-list", alice.account))
    assert response.status_code == 200
    assert response.context["can_manage"] is False
    for control in [b"Add member", b"Edit role", b">Remove<", b"/members/add/", b"/edit/", b"/remove/"]:
        assert control not in response.content


def test_it_shows_a_viewer_no_api_key_controls(client, alice, bob, alice_key):
    client.force_login(bob.user)
    for path in [url("apikey-list", alice.account), url("apikey-detail", alice.account, id=alice_key.public_id)]:
        response = client.get(path)
        assert response.status_code == 200
        assert b"billing server" in response.content
        for control in [b"Create API key", b">Revoke<", b"/revoke/", b"/api-keys/new/"]:
            assert control not in response.content


def test_it_shows_a_developer_no_member_or_api_key_controls(client, alice, alice_key):
    developer = MembershipFactory(account=alice.account, role="developer").user
    client.force_login(developer)
    members = client.get(url("member-list", alice.account))
    keys = client.get(url("apikey-list", alice.account))
    assert members.context["can_write"] is True
    assert b"Add member" not in members.content
    assert b"Create API key" not in keys.content
    assert b">Revoke<" not in keys.content


def test_it_forbids_a_viewer_to_add_members_or_create_and_revoke_keys(client, alice, bob, alice_key):
    client.force_login(bob.user)
    response = client.post(url("member-add", alice.account), {"email": "eve@example.com", "role": "owner"})
    assert response.status_code == 403
    response = client.post(url("apikey-create", alice.account), {"name": "sneaky"})
    assert response.status_code == 403
    response = client.post(url("apikey-revoke", alice.account, id=alice_key.public_id))
    assert response.status_code == 403
    assert not User.objects.filter(email="eve@example.com").exists()
    assert ApiKey.objects.filter(account=alice.account).count() == 1
    alice_key.refresh_from_db()
    assert alice_key.revoked_at is None


# --- API keys ----------------------------------------------------------------------------------------


def test_it_shows_a_new_api_keys_secret_once(client, alice):
    client.force_login(alice.user)
    response = client.post(url("apikey-create", alice.account), {"name": "crm sync", "read_only": "on"})
    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith(settings.API_KEY_PREFIX)
    assert secret.encode() in response.content
    assert b'data-testid="api-key-secret"' in response.content
    assert response["Cache-Control"] == "no-store"
    api_key = ApiKey.objects.get(account=alice.account, name="crm sync")
    assert api_key.read_only

    listing = client.get(url("apikey-list", alice.account))
    assert b"crm sync" in listing.content
    assert api_key.masked.encode() in listing.content
    assert secret.encode() not in listing.content
    detail = client.get(url("apikey-detail", alice.account, id=api_key.public_id))
    assert secret.encode() not in detail.content


def test_it_shows_api_key_form_errors_inline(client, alice):
    client.force_login(alice.user)
    response = client.post(url("apikey-create", alice.account), {"name": "x", "rate_limit": "lots"})
    assert response.status_code == 200
    assert "secret" not in response.context
    assert b'id="id_rate_limit_error"' in response.content
    assert not ApiKey.objects.filter(account=alice.account).exists()


def test_it_revokes_an_api_key_and_records_it(client, alice, alice_key):
    client.force_login(alice.user)
    confirm = client.get(url("apikey-revoke", alice.account, id=alice_key.public_id))
    assert b"Revoke key" in confirm.content
    response = client.post(url("apikey-revoke", alice.account, id=alice_key.public_id), follow=True)
    assert response.redirect_chain[-1][0] == url("apikey-list", alice.account)
    assert "was revoked" in response.content.decode()
    alice_key.refresh_from_db()
    assert alice_key.state == "revoked"
    entry = AuditEntry.objects.get(account=alice.account, action="api_key.revoked")
    assert entry.object_id == str(alice_key.public_id)
    assert entry.actor_user == alice.user


def test_it_paginates_the_api_key_list_and_keeps_the_filters(client, alice):
    for n in range(30):
        make_api_key(alice.account, actor=alice.user, name=f"key {n}")
    client.force_login(alice.user)
    first = client.get(url("apikey-list", alice.account), {"state": "active"})
    assert first.context["is_paginated"]
    assert len(first.context["object_list"]) == 25
    assert b"?state=active&amp;page=2" in first.content
    second = client.get(url("apikey-list", alice.account), {"state": "active", "page": 2})
    assert second.status_code == 200
    assert len(second.context["object_list"]) == 5


# --- Members -----------------------------------------------------------------------------------------


def test_it_filters_the_member_list(client, alice, bob):
    client.force_login(alice.user)
    by_role = client.get(url("member-list", alice.account), {"role": "viewer"})
    assert [m.user for m in by_role.context["object_list"]] == [bob.user]
    by_email = client.get(url("member-list", alice.account), {"email": "ALICE"})
    assert [m.user for m in by_email.context["object_list"]] == [alice.user]


def test_it_adds_a_member_who_chooses_a_password_from_the_invite(client, alice, django_capture_on_commit_callbacks):
    client.force_login(alice.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url("member-add", alice.account), {"email": "Dana@Example.com", "name": "Dana", "role": "developer"}
        )
    assert response.status_code == 302
    dana = User.objects.get(email="dana@example.com")
    assert Membership.objects.get(account=alice.account, user=dana).role == "developer"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["dana@example.com"]
    assert "\n" not in message.subject
    link = re.search(r"https?://[^/\s]+(/password/reset/\S+)", message.body).group(1)

    client.logout()
    response = client.get(link)
    assert response.status_code == 302  # Django swaps the token for a session marker, then shows the form
    form_url = response.url
    response = client.get(form_url)
    assert response.context["validlink"]
    response = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("password_reset_complete")
    assert client.get(response.url).status_code == 200

    response = client.post(reverse("login"), {"username": "dana@example.com", "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("portal-home")).url == url("dashboard", alice.account)
    # The link worked once; it is spent now.
    client.logout()
    assert client.get(link, follow=True).context["validlink"] is False


def test_it_shows_member_errors_inline_and_adds_nobody(client, alice, bob):
    client.force_login(alice.user)
    response = client.post(url("member-add", alice.account), {"email": bob.user.email, "role": "viewer"})
    assert response.status_code == 200
    assert b"already a member" in response.content
    assert b'class="field has-error' in response.content
    assert Membership.objects.filter(account=alice.account).count() == 2


def test_it_changes_a_members_role(client, alice, bob):
    client.force_login(alice.user)
    response = client.post(url("member-edit", alice.account, id=bob.membership.public_id), {"role": "admin"})
    assert response.status_code == 302
    bob.membership.refresh_from_db()
    assert bob.membership.role == "admin"


def test_it_removes_a_member_after_confirmation(client, alice, bob):
    client.force_login(alice.user)
    path = url("member-remove", alice.account, id=bob.membership.public_id)
    assert b"Remove member" in client.get(path).content
    assert client.post(path).status_code == 302
    assert not Membership.objects.filter(pk=bob.membership.pk).exists()


# --- Login -------------------------------------------------------------------------------------------


def test_it_logs_in_with_email_and_password(client, alice):
    response = client.post(reverse("login"), {"username": "ALICE@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("portal-home")


def test_it_throttles_login_after_too_many_failures(client, alice):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        response = client.post(reverse("login"), {"username": "alice@example.com", "password": "wrong"})
        assert response.status_code == 200
        assert b"Too many failed attempts" not in response.content
    response = client.post(reverse("login"), {"username": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert b"Too many failed attempts" in response.content
    assert "_auth_user_id" not in client.session

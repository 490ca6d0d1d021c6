"""GET/POST/PATCH/DELETE /api/v1/members: who may manage people, and the rules that keep an owner."""

from __future__ import annotations

import pytest
from django.core import mail

from tenants.models import AuditEntry, Membership, User

pytestmark = pytest.mark.django_db


def test_everyone_in_the_account_can_list_members(bob, token_client):
    response = token_client(bob.user, bob.account).get("/api/v1/members")

    assert response.status_code == 200
    assert sorted(m["user"]["email"] for m in response.json()["results"]) == ["alice@example.com", "bob@example.com"]


def test_an_owner_adds_a_new_person_who_is_emailed_a_link(alice, token_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client(alice.user, alice.account).post(
            "/api/v1/members", {"email": "Dana@Example.com", "role": "developer", "name": "Dana"}, format="json"
        )

    assert response.status_code == 201
    assert response.json()["user"]["email"] == "dana@example.com"
    assert response.json()["role"] == "developer"
    dana = User.objects.get(email="dana@example.com")
    assert not dana.has_usable_password()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["dana@example.com"]
    assert "/password/reset/" in mail.outbox[0].body
    assert AuditEntry.objects.filter(action="member.added", account=alice.account).exists()


def test_adding_an_existing_member_again_names_the_email_field(alice, bob, token_client):
    response = token_client(alice.user, alice.account).post(
        "/api/v1/members", {"email": "bob@example.com", "role": "admin"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "already_member"
    assert "email" in response.json()["error"]["fields"]


def test_an_admin_cannot_make_an_owner(alice, bob, token_client):
    Membership.objects.filter(pk=bob.membership.pk).update(role="admin")

    response = token_client(bob.user, bob.account).post(
        "/api/v1/members", {"email": "eve@example.com", "role": "owner"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "owner_required"


def test_an_owner_changes_a_role(alice, bob, token_client):
    response = token_client(alice.user, alice.account).patch(
        f"/api/v1/members/{bob.membership.public_id}", {"role": "admin"}, format="json"
    )

    assert response.status_code == 200
    bob.membership.refresh_from_db()
    assert bob.membership.role == "admin"


def test_the_last_owner_cannot_leave(alice, token_client):
    response = token_client(alice.user, alice.account).delete(f"/api/v1/members/{alice.membership.public_id}")

    assert response.status_code == 400
    assert Membership.objects.filter(pk=alice.membership.pk).exists()


def test_removing_a_member_ends_their_access(alice, bob, token_client):
    bobs = token_client(bob.user, bob.account)
    assert bobs.get("/api/v1/account").status_code == 200

    response = token_client(alice.user, alice.account).delete(f"/api/v1/members/{bob.membership.public_id}")

    assert response.status_code == 204
    assert bobs.get("/api/v1/account").status_code == 401


def test_a_viewer_cannot_add_members(bob, token_client):
    response = token_client(bob.user, bob.account).post(
        "/api/v1/members", {"email": "x@example.com", "role": "viewer"}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "read_only_credential"


def test_the_audit_log_shows_who_changed_what(alice, bob, token_client):
    client = token_client(alice.user, alice.account)
    client.patch(f"/api/v1/members/{bob.membership.public_id}", {"role": "developer"}, format="json")

    entries = client.get("/api/v1/audit-log?action=member.").json()["results"]

    assert entries[0]["action"] == "member.role_changed"
    assert entries[0]["actor"] == "alice@example.com"
    assert entries[0]["before"] == {"email": "bob@example.com", "role": "viewer"}
    assert entries[0]["after"] == {"email": "bob@example.com", "role": "developer"}

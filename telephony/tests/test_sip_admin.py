"""The staff admin for SIP: it shows no hash or token, and its changes go through the services."""

from __future__ import annotations

import hashlib

import pytest
from django.urls import reverse

from telephony.models import SipConnection, SipInvite, SipUser
from telephony.services import sip as services
from telephony.tests.isolation_sip import make_connection, make_user
from tenants.models import AuditEntry, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    staff = User.objects.create_superuser(email="staff@example.com", password="staff password 1")
    client.force_login(staff)
    return client


@pytest.fixture
def rows(alice):
    connection = make_connection(alice.account)
    user = make_user(alice.account)
    invite = services.sip_invite_create(
        account=alice.account, actor=None, connection=connection, name="Mary", domain=user.domain
    )
    return connection, user, invite


def admin_url(model, action: str, *args) -> str:
    return reverse(f"admin:telephony_{model._meta.model_name}_{action}", args=args)


def test_the_admin_pages_show_no_hash_and_no_token(staff_client, rows):
    connection, user, created = rows
    invite = created.invite
    paths = [
        admin_url(SipConnection, "changelist"),
        admin_url(SipConnection, "change", connection.pk),
        admin_url(SipUser, "changelist"),
        admin_url(SipUser, "change", user.pk),
        admin_url(SipInvite, "changelist"),
        admin_url(SipInvite, "change", invite.pk),
        admin_url(SipUser, "changelist") + "?q=mary",
        admin_url(SipConnection, "changelist") + "?q=trunk",
    ]

    for path in paths:
        response = staff_client.get(path)
        assert response.status_code == 200, path
        text = response.content.decode()
        for secret in (
            connection.ha1,
            connection.ha1b,
            user.ha1,
            user.ha1b,
            invite.token_digest,
            invite.token_prefix,
            created.token,
        ):
            assert secret not in text, path


def test_staff_set_a_users_password_through_the_service(staff_client, rows):
    _, user, _ = rows
    path = admin_url(SipUser, "change", user.pk)

    response = staff_client.post(
        path,
        {"new_password": "staff-set-lantern-9", "first_name": "Mary", "last_name": "", "email": "", "is_active": "on"},
    )

    assert response.status_code == 302
    user.refresh_from_db()
    realm = user.domain.domain
    assert user.ha1 == hashlib.md5(f"mary:{realm}:staff-set-lantern-9".encode()).hexdigest()  # noqa: S324
    assert user.first_name == "Mary"
    entry = AuditEntry.objects.get(action="sip_user.password_changed")
    assert entry.actor_label == "staff@example.com"


def test_a_weak_password_from_staff_is_refused_with_a_message(staff_client, rows):
    _, user, _ = rows
    before = user.ha1

    response = staff_client.post(
        admin_url(SipUser, "change", user.pk), {"new_password": "123", "is_active": "on"}, follow=True
    )

    user.refresh_from_db()
    assert user.ha1 == before
    assert b"Not saved" in response.content


def test_staff_disable_a_connection_and_delete_an_invite_through_the_services(staff_client, rows):
    connection, _, created = rows

    staff_client.post(admin_url(SipConnection, "change", connection.pk), {"name": connection.name})
    staff_client.post(admin_url(SipInvite, "delete", created.invite.pk), {"post": "yes"})

    connection.refresh_from_db()
    assert connection.is_active is False
    assert AuditEntry.objects.filter(action="sip_connection.updated").exists()
    assert not SipInvite.objects.exists()
    assert AuditEntry.objects.filter(action="sip_invite.revoked").exists()


def test_staff_cannot_add_sip_rows_by_hand(staff_client):
    for model in (SipConnection, SipUser, SipInvite):
        assert staff_client.get(admin_url(model, "add")).status_code == 403

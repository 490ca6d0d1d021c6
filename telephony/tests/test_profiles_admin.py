"""The staff admin for TN profiles and list entries: it searches and filters, and changes go through the services."""

from __future__ import annotations

import pytest
from django.urls import reverse

from telephony.models import CallerListEntry, TnProfile
from telephony.services.profiles import caller_list_change, tn_profile_create
from telephony.tests.isolation_profiles import make_phone_number
from tenants.models import AuditEntry, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    staff = User.objects.create_superuser(email="staff@example.com", password="staff password 1")
    client.force_login(staff)
    return client


@pytest.fixture
def profile(alice) -> TnProfile:
    profile = tn_profile_create(account=alice.account, actor=None, name="Front desk")
    caller_list_change(
        account=alice.account, actor=None, profile=profile, list_type="blacklist", add=["+1900*", "+12015550123"]
    )
    profile.refresh_from_db()
    return profile


def admin_url(model, action: str, *args) -> str:
    return reverse(f"admin:telephony_{model._meta.model_name}_{action}", args=args)


def test_the_admin_pages_render_search_and_filter(staff_client, profile):
    entry = CallerListEntry.objects.get(value="+1900")
    pages = {
        admin_url(TnProfile, "changelist"): "Front desk",
        admin_url(TnProfile, "changelist") + "?q=account-a": "Front desk",
        admin_url(TnProfile, "changelist") + "?block_action__exact=reject": "Front desk",
        admin_url(TnProfile, "change", profile.pk): "Front desk",
        admin_url(CallerListEntry, "changelist") + "?q=%2B1900": "+1900*",
        admin_url(CallerListEntry, "changelist") + "?list_type__exact=blacklist&kind__exact=prefix": "+1900*",
        admin_url(CallerListEntry, "change", entry.pk): "+1900",
    }
    for path, text in pages.items():
        response = staff_client.get(path)
        assert response.status_code == 200, path
        assert text in response.content.decode(), path
    searched = staff_client.get(admin_url(CallerListEntry, "changelist") + "?q=%2B1201").content.decode()
    assert "+12015550123" in searched and "+1900*" not in searched


def test_a_staff_change_to_a_profile_goes_through_the_service(staff_client, alice, profile):
    response = staff_client.post(
        admin_url(TnProfile, "change", profile.pk),
        {"name": "Front desk", "description": "by staff", "block_action": "hangup"},
    )

    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.block_action == "hangup"
    audit = AuditEntry.objects.for_account(alice.account).get(action="tn_profile.updated")
    assert audit.actor_label == "staff@example.com"


def test_staff_remove_entries_through_the_service(staff_client, alice, profile):
    entry = CallerListEntry.objects.get(value="+1900")

    staff_client.post(
        admin_url(CallerListEntry, "changelist"), {"action": "remove_entries", "_selected_action": [entry.pk]}
    )

    profile.refresh_from_db()
    assert list(CallerListEntry.objects.values_list("value", flat=True)) == ["+12015550123"]
    assert profile.blacklist_count == 1
    assert AuditEntry.objects.for_account(alice.account).filter(action="tn_profile.blacklist_changed").count() == 2


def test_staff_delete_a_profile_through_the_service_detaching_its_numbers(staff_client, alice, profile):
    number = make_phone_number(alice.account, tn_profile=profile)

    staff_client.post(
        admin_url(TnProfile, "changelist"), {"action": "delete_detaching_numbers", "_selected_action": [profile.pk]}
    )

    number.refresh_from_db()
    assert not TnProfile.objects.exists() and number.tn_profile is None
    assert AuditEntry.objects.for_account(alice.account).get(action="tn_profile.deleted").after["numbers_detached"] == 1

"""The staff admin for apps and calls: searchable lists across accounts, app changes through the services,
call records read-only."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from telephony.models import Call, CallControlApp, CallHttpRequest
from telephony.tests.isolation_apps import make_app, make_call
from tenants.models import AuditEntry, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    staff = User.objects.create_superuser(email="staff@example.com", password="staff password 1")
    client.force_login(staff)
    return client


def admin_url(model, action: str, *args) -> str:
    return reverse(f"admin:telephony_{model._meta.model_name}_{action}", args=args)


def hidden_inputs(page: str) -> dict[str, str]:
    """The hidden fields of an admin change form (the inline's management form among them)."""
    fields = {}
    for tag in re.findall(r"<input[^>]*type=\"hidden\"[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = value.group(1) if value else ""
    return fields


def test_the_app_and_call_pages_load_and_search_across_accounts(staff_client, alice, charlie):
    app = make_app(alice.account, name="Alice IVR")
    make_app(charlie.account, name="Charlie IVR")
    call = make_call(alice.account, app=app, switch_call_id="abc@sip", q850_cause=17)
    leg = make_call(alice.account, parent=call, direction="outbound-dial")
    CallHttpRequest.objects.create(
        account=alice.account, call=call, purpose="call_flow_url", method="POST", url="https://e.com/f", outcome="ok"
    )

    apps = staff_client.get(admin_url(CallControlApp, "changelist") + "?q=IVR").content.decode()
    app_page = staff_client.get(admin_url(CallControlApp, "change", app.pk)).content.decode()
    by_switch_id = staff_client.get(admin_url(Call, "changelist") + "?q=abc@sip").content.decode()
    by_public_id = staff_client.get(admin_url(Call, "changelist") + f"?q={leg.public_id}").content.decode()
    call_page = staff_client.get(admin_url(Call, "change", call.pk)).content.decode()
    filtered = staff_client.get(admin_url(Call, "changelist") + "?status__exact=completed&direction__exact=inbound")

    assert "Alice IVR" in apps and "Charlie IVR" in apps
    assert "&lt;Say&gt;Hello&lt;/Say&gt;" in app_page  # version 1, read-only in the inline
    assert admin_url(Call, "change", call.pk) in by_switch_id
    assert admin_url(Call, "change", leg.pk) in by_public_id
    assert admin_url(Call, "change", call.pk) not in by_public_id
    assert "https://e.com/f" in call_page
    assert "17 USER_BUSY" in call_page
    assert filtered.status_code == 200


def test_staff_disable_an_app_through_the_service(staff_client, alice):
    app = make_app(alice.account, name="IVR")
    path = admin_url(CallControlApp, "change", app.pk)
    data = hidden_inputs(staff_client.get(path).content.decode())
    data.update({"name": "IVR", "max_call_length_s": "600", "channel_limit": ""})

    response = staff_client.post(path, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    app.refresh_from_db()
    assert (app.is_active, app.max_call_length_s) == (False, 600)
    entry = AuditEntry.objects.get(action="call_control_app.updated")
    assert entry.actor_label == "staff@example.com"
    assert entry.after == {"is_active": False, "max_call_length_s": 600}


def test_a_bad_value_from_staff_is_refused_with_a_message(staff_client, alice):
    app = make_app(alice.account, name="IVR")
    path = admin_url(CallControlApp, "change", app.pk)
    data = hidden_inputs(staff_client.get(path).content.decode())
    data.update({"name": "IVR", "is_active": "on", "max_call_length_s": "999999", "channel_limit": ""})

    response = staff_client.post(path, data, follow=True)

    assert b"Not saved" in response.content
    app.refresh_from_db()
    assert app.max_call_length_s == 4 * 3600


def test_staff_delete_an_app_through_the_service(staff_client, alice):
    app = make_app(alice.account)

    staff_client.post(admin_url(CallControlApp, "delete", app.pk), {"post": "yes"})

    assert not CallControlApp.objects.exists()
    assert AuditEntry.objects.filter(action="call_control_app.deleted").exists()


def test_calls_are_read_only_in_the_admin(staff_client, alice):
    call = make_call(alice.account)

    assert staff_client.get(admin_url(Call, "add")).status_code == 403
    assert staff_client.post(admin_url(Call, "delete", call.pk), {"post": "yes"}).status_code == 403
    assert staff_client.get(admin_url(CallControlApp, "add")).status_code == 403
    assert Call.objects.filter(pk=call.pk).exists()

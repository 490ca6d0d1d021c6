"""The portal's app pages: list, create and edit with the flow editor, delete, and the editor's validation endpoint."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from telephony.models import CallControlApp
from telephony.tests.isolation_apps import FLOW, make_app, make_call
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db


def url(name: str, account, app=None) -> str:
    kwargs = {"account": account.slug}
    if app is not None:
        kwargs["id"] = app.public_id
    return reverse(name, kwargs=kwargs)


def form_data(**overrides) -> dict:
    data = {
        "name": "Main IVR",
        "is_active": "on",
        "mode": "xml",
        "xml": FLOW,
        "call_flow_url": "",
        "call_flow_method": "POST",
        "call_flow_timeout_ms": "5000",
        "fallback_url": "",
        "webhook_url": "",
        "webhook_method": "POST",
        "webhook_timeout_ms": "5000",
        "status_callback_url": "",
        "status_callback_method": "POST",
        "auto_answer": "on",
        "max_call_length_s": "14400",
        "channel_limit": "",
        "time_zone": "UTC",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice.user)
    return client


def test_the_list_shows_the_accounts_apps_with_their_numbers(as_alice, alice, charlie):
    make_app(alice.account, name="Sales")
    make_app(charlie.account, name="Not mine")

    page = as_alice.get(url("app-list", alice.account)).content.decode()

    assert page.count('data-testid="app-row"') == 1
    assert "Sales" in page
    assert "Not mine" not in page
    assert 'data-testid="create-app"' in page
    assert 'data-testid="nav-app-list"' in page
    assert 'data-testid="nav-call-list"' in page


def test_it_creates_an_app_from_the_form(as_alice, alice):
    response = as_alice.post(url("app-create", alice.account), form_data(status_callback_events=["answered"]))

    app = CallControlApp.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("app-detail", alice.account, app)
    assert (app.name, app.xml, app.xml_version, app.status_callback_events) == ("Main IVR", FLOW, 1, ["answered"])
    page = as_alice.get(response["Location"]).content.decode()
    assert "was created" in page
    assert 'data-testid="app-version">1<' in page


def test_the_form_page_loads_the_editor(as_alice, alice):
    page = as_alice.get(url("app-create", alice.account)).content.decode()

    assert "portal/callflow-editor.js" in page
    assert 'data-callflow-editor=""' in page
    assert f'data-validate-url="{url("app-validate", alice.account)}"' in page


def test_an_invalid_document_comes_back_inline_with_its_line_and_column(as_alice, alice):
    xml = '<Response>\n  <Answer/>\n  <Pause length="2s"/>\n</Response>'

    response = as_alice.post(url("app-create", alice.account), form_data(xml=xml))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="xml-errors"' in page
    assert "Line 3, column 3:" in page
    assert "&lt;Pause&gt;" in page  # the message names the tag, escaped
    assert not CallControlApp.objects.exists()


def test_a_refused_url_and_a_bad_range_come_back_on_their_fields(as_alice, alice, settings):
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = False

    page = as_alice.post(
        url("app-create", alice.account), form_data(webhook_url="http://127.0.0.1/hooks", webhook_timeout_ms="5")
    ).content.decode()

    assert 'data-testid="webhook_url-errors"' in page
    assert "loopback" in page
    assert 'data-testid="webhook_timeout_ms-errors"' in page
    assert not CallControlApp.objects.exists()


def test_editing_the_document_saves_version_2_and_an_untouched_document_no_new_version(as_alice, alice):
    app = make_app(alice.account, name="IVR")
    edit = url("app-edit", alice.account, app)
    changed = FLOW.replace("Hello", "Welcome")

    page = as_alice.get(edit).content.decode()
    renamed = as_alice.post(edit, form_data(name="IVR 2", xml=FLOW.replace("\n", "\r\n")))
    app.refresh_from_db()
    assert (renamed.status_code, app.name, app.xml_version) == (302, "IVR 2", 1)
    as_alice.post(edit, form_data(name="IVR 2", xml=changed))

    app.refresh_from_db()
    assert "Hello" in page
    assert (app.xml, app.xml_version) == (changed, 2)
    assert list(app.versions.values_list("number", flat=True)) == [2, 1]
    assert AuditEntry.objects.filter(action="call_control_app.updated").count() == 2


def test_switching_to_url_mode_in_the_form(as_alice, alice):
    app = make_app(alice.account)

    response = as_alice.post(
        url("app-edit", alice.account, app), form_data(mode="url", call_flow_url="http://127.0.0.1:8001/flow")
    )

    assert response.status_code == 302
    app.refresh_from_db()
    assert (app.mode, app.call_flow_url, app.xml_version) == ("url", "http://127.0.0.1:8001/flow", 1)
    page = as_alice.get(url("app-detail", alice.account, app)).content.decode()
    assert 'data-testid="app-flow-url"' in page


def test_the_app_page_shows_flow_numbers_versions_recent_calls_and_history(as_alice, alice):
    app = make_app(alice.account, name="IVR")
    call = make_call(alice.account, app=app)

    page = as_alice.get(url("app-detail", alice.account, app)).content.decode()

    assert "&lt;Say&gt;Hello&lt;/Say&gt;" in page
    assert 'data-testid="app-recent-versions"' in page
    assert reverse("call-detail", kwargs={"account": alice.account.slug, "id": call.public_id}) in page
    assert "call_control_app.created" in page


def test_deleting_asks_first(as_alice, alice):
    app = make_app(alice.account, name="IVR")
    delete = url("app-delete", alice.account, app)

    confirm = as_alice.get(delete).content.decode()
    done = as_alice.post(delete)

    assert "Delete the app “IVR”?" in confirm
    assert done.status_code == 302
    assert done["Location"] == url("app-list", alice.account)
    assert not CallControlApp.objects.exists()


def test_a_viewer_sees_no_write_controls_and_cannot_write(client, alice, bob):
    app = make_app(alice.account, name="IVR")
    client.force_login(bob.user)

    listing = client.get(url("app-list", alice.account)).content.decode()
    detail = client.get(url("app-detail", alice.account, app)).content.decode()

    assert 'data-testid="create-app"' not in listing
    for marker in ('data-testid="edit-app"', 'data-testid="delete-app"', 'data-testid="assign-numbers-form"'):
        assert marker not in detail
    assert client.get(url("app-create", alice.account)).status_code == 403
    assert client.post(url("app-create", alice.account), form_data()).status_code == 403
    assert client.post(url("app-edit", alice.account, app), form_data(name="Mine")).status_code == 403
    assert client.post(url("app-delete", alice.account, app)).status_code == 403
    assert CallControlApp.objects.get().name == "IVR"


# --- The editor's validation endpoint -------------------------------------------------------------------


def test_the_validate_endpoint_answers_errors_and_warnings_with_their_place(as_alice, alice):
    xml = '<Response>\n  <Hangup/>\n  <Say>Bye</Say>\n  <Pause length="x"/>\n</Response>'

    response = as_alice.post(url("app-validate", alice.account), {"xml": xml})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["valid"] is False
    assert [(e["code"], e["line"], e["column"], e["attribute"]) for e in body["errors"]] == [
        ("bad_value", 4, 3, "length")
    ]
    assert [(w["code"], w["line"], w["column"]) for w in body["warnings"]] == [("unreachable", 3, 3)]


def test_the_validate_endpoint_says_valid(as_alice, alice):
    body = as_alice.post(url("app-validate", alice.account), {"xml": FLOW}).json()

    assert body == {"valid": True, "errors": [], "warnings": []}


def test_the_validate_endpoint_needs_csrf_a_post_and_the_field(alice):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice.user)
    endpoint = url("app-validate", alice.account)

    assert strict.post(endpoint, {"xml": FLOW}).status_code == 403
    assert strict.get(endpoint).status_code == 405
    strict.get(url("app-create", alice.account))  # sets the CSRF cookie, as the editor page does
    token = strict.cookies["csrftoken"].value
    ok = strict.post(endpoint, {"xml": FLOW}, headers={"X-CSRFToken": token})
    missing = strict.post(endpoint, {}, headers={"X-CSRFToken": token})
    assert ok.status_code == 200
    assert missing.status_code == 400


def test_a_viewer_may_validate_and_an_outsider_may_not(client, alice, bob, charlie):
    client.force_login(bob.user)
    assert json.loads(client.post(url("app-validate", alice.account), {"xml": FLOW}).content)["valid"] is True
    client.force_login(charlie.user)
    assert client.post(url("app-validate", alice.account), {"xml": FLOW}).status_code == 404

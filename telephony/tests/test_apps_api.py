"""/api/v1/call-control-apps: create, read, change and delete apps, with the rules on every field."""

from __future__ import annotations

import pytest

from telephony.models import AppVersion, CallControlApp, Event, PhoneNumber
from telephony.tests.isolation_apps import FLOW, make_app
from telephony.tests.isolation_sip import make_number
from tenants.models import AuditEntry
from tenants.tests.fixtures import _client_with_key

pytestmark = pytest.mark.django_db

URL = "/api/v1/call-control-apps"


def app_url(app_id) -> str:
    return f"{URL}/{app_id}"


def test_it_creates_an_xml_app_whose_document_becomes_version_1(alice_api, alice):
    response = alice_api.post(
        URL,
        {"name": "Main IVR", "xml": FLOW, "status_callback_url": "http://127.0.0.1:9/status", "channel_limit": 5},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "Main IVR"
    assert body["mode"] == "xml"
    assert body["xml"] == FLOW
    assert body["xml_version"] == 1
    assert body["xml_warnings"] == []
    assert body["channel_limit"] == 5
    assert body["time_zone"] == "UTC"
    app = CallControlApp.objects.get(public_id=body["id"])
    assert app.account == alice.account
    assert list(app.versions.values_list("number", "xml")) == [(1, FLOW)]
    entry = AuditEntry.objects.get(action="call_control_app.created")
    assert entry.object_id == body["id"]
    assert entry.after["xml_version"] == 1
    assert "xml" not in entry.after  # the document is named by its version, not copied into the log
    assert Event.objects.filter(type="call_control_app.created", object_type="call_control_app").exists()


def test_it_answers_the_documents_warnings_without_refusing_it(alice_api):
    xml = "<Response>\n  <Hangup/>\n  <Say>Never heard</Say>\n</Response>"

    response = alice_api.post(URL, {"name": "IVR", "xml": xml}, format="json")

    assert response.status_code == 201
    warnings = response.json()["xml_warnings"]
    assert [(w["code"], w["line"], w["column"]) for w in warnings] == [("unreachable", 3, 3)]


def test_an_invalid_document_is_a_400_on_xml_with_each_error_and_its_place(alice_api):
    xml = '<Response>\n  <Answer/>\n  <Pause length="5s"/>\n  <Sya>Hi</Sya>\n</Response>'

    response = alice_api.post(URL, {"name": "IVR", "xml": xml}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == ["xml"]
    messages = error["fields"]["xml"]
    assert messages[0].startswith("Line 3, column 3:")
    assert "milliseconds" in messages[0]
    assert messages[1].startswith("Line 4, column 3:")
    assert "<Sya>" in messages[1]
    assert error["code"] == "bad_value"
    assert not CallControlApp.objects.exists()


def test_xml_mode_needs_a_document_and_url_mode_needs_a_flow_url(alice_api):
    no_xml = alice_api.post(URL, {"name": "IVR"}, format="json")
    no_url = alice_api.post(URL, {"name": "Remote", "mode": "url"}, format="json")

    assert no_xml.status_code == 400
    assert list(no_xml.json()["error"]["fields"]) == ["xml"]
    assert no_url.status_code == 400
    assert list(no_url.json()["error"]["fields"]) == ["call_flow_url"]


def test_it_creates_a_url_app_with_a_fallback(alice_api):
    response = alice_api.post(
        URL,
        {
            "name": "Remote",
            "mode": "url",
            "call_flow_url": "http://127.0.0.1:8001/flow",
            "call_flow_method": "GET",
            "call_flow_timeout_ms": 3000,
            "fallback_url": "http://127.0.0.1:8002/flow",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["mode"], body["call_flow_method"], body["call_flow_timeout_ms"]) == ("url", "GET", 3000)
    assert body["xml"] == ""
    assert body["xml_version"] == 0
    assert not AppVersion.objects.exists()


def test_every_mistake_is_reported_at_once_naming_its_field(alice_api, settings):
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = False
    response = alice_api.post(
        URL,
        {
            "name": "IVR",
            "xml": FLOW,
            "webhook_url": "http://127.0.0.1/hooks",
            "status_callback_url": "ftp://example.com/x",
            "fallback_url": "http://10.1.2.3/flow",
            "time_zone": "Mars/Olympus_Mons",
            "status_callback_events": ["ringing", "hungup"],
            "call_flow_timeout_ms": 50,
            "webhook_timeout_ms": 30001,
            "max_call_length_s": 0,
            "channel_limit": 0,
        },
        format="json",
    )

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert sorted(fields) == [
        "call_flow_timeout_ms",
        "channel_limit",
        "fallback_url",
        "max_call_length_s",
        "status_callback_events.1",
        "status_callback_url",
        "time_zone",
        "webhook_timeout_ms",
        "webhook_url",
    ]
    assert "loopback" in fields["webhook_url"][0]
    assert "http://" in fields["status_callback_url"][0]
    assert "private" in fields["fallback_url"][0]
    assert "IANA" in fields["time_zone"][0]
    assert not CallControlApp.objects.exists()


def test_a_refused_url_carries_the_url_policys_code(alice_api, settings):
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = False

    response = alice_api.post(
        URL, {"name": "Remote", "mode": "url", "call_flow_url": "http://127.0.0.1/flow"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_forbidden_address"
    assert list(response.json()["error"]["fields"]) == ["call_flow_url"]


def test_status_callback_events_are_kept_in_canonical_order_without_repeats(alice_api):
    response = alice_api.post(
        URL,
        {"name": "IVR", "xml": FLOW, "status_callback_events": ["completed", "initiated", "completed"]},
        format="json",
    )

    assert response.json()["status_callback_events"] == ["initiated", "completed"]


def test_a_patch_changes_only_what_it_names_and_audits_before_and_after(alice_api, alice):
    app = make_app(alice.account, name="IVR", channel_limit=3)

    response = alice_api.patch(
        app_url(app.public_id), {"name": "Sales IVR", "time_zone": "Europe/Paris"}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["name"], body["time_zone"], body["channel_limit"], body["xml_version"]) == (
        "Sales IVR",
        "Europe/Paris",
        3,
        1,
    )
    entry = AuditEntry.objects.get(action="call_control_app.updated")
    assert entry.before == {"name": "IVR", "time_zone": "UTC"}
    assert entry.after == {"name": "Sales IVR", "time_zone": "Europe/Paris"}


def test_switching_to_url_mode_needs_a_flow_url_and_keeps_the_document(alice_api, alice):
    app = make_app(alice.account)

    refused = alice_api.patch(app_url(app.public_id), {"mode": "url"}, format="json")
    switched = alice_api.patch(
        app_url(app.public_id), {"mode": "url", "call_flow_url": "http://127.0.0.1:8001/flow"}, format="json"
    )

    assert refused.status_code == 400
    assert list(refused.json()["error"]["fields"]) == ["call_flow_url"]
    assert switched.status_code == 200
    assert (switched.json()["mode"], switched.json()["xml"], switched.json()["xml_version"]) == ("url", FLOW, 1)


def test_a_patch_that_changes_nothing_audits_nothing(alice_api, alice):
    app = make_app(alice.account, name="IVR")

    response = alice_api.patch(app_url(app.public_id), {"name": "IVR", "xml": FLOW}, format="json")

    assert response.status_code == 200
    assert not AuditEntry.objects.filter(action="call_control_app.updated").exists()
    assert app.versions.count() == 1


def test_the_list_leaves_the_documents_out_and_filters(alice_api, alice, charlie):
    make_app(alice.account, name="Sales")
    make_app(alice.account, name="Support", is_active=False)
    make_app(charlie.account, name="Sales elsewhere")

    everything = alice_api.get(URL).json()
    inactive = alice_api.get(URL, {"is_active": "false"}).json()
    named = alice_api.get(URL, {"name": "sal"}).json()

    assert [a["name"] for a in everything["results"]] == ["Sales", "Support"]
    assert "xml" not in everything["results"][0]
    assert everything["results"][0]["xml_version"] == 1
    assert [a["name"] for a in inactive["results"]] == ["Support"]
    assert [a["name"] for a in named["results"]] == ["Sales"]


def test_the_app_itself_carries_its_document(alice_api, alice):
    app = make_app(alice.account)

    body = alice_api.get(app_url(app.public_id)).json()

    assert body["xml"] == FLOW
    assert "xml_warnings" not in body


def test_deleting_an_app_leaves_its_numbers_without_a_voice_target_and_audits_them(alice_api, alice):
    app = make_app(alice.account, name="IVR")
    number = make_number(alice.account, "+12015550100", call_control_app=app)

    response = alice_api.delete(app_url(app.public_id))

    assert response.status_code == 204
    assert not CallControlApp.objects.filter(pk=app.pk).exists()
    assert not AppVersion.objects.exists()
    number.refresh_from_db()
    assert number.call_control_app is None
    assert number.status == PhoneNumber.Status.ACTIVE
    entry = AuditEntry.objects.get(action="call_control_app.deleted")
    assert entry.before["numbers"] == ["+12015550100"]
    assert entry.before["name"] == "IVR"


def test_viewers_and_read_only_keys_read_but_do_not_write(alice, bob, token_client):
    app = make_app(alice.account)
    read_only = _client_with_key(alice.account, read_only=True)
    viewer = token_client(bob.user, bob.account)

    for client in (read_only, viewer):
        assert client.get(app_url(app.public_id)).status_code == 200
        assert client.post(URL, {"name": "X", "xml": FLOW}, format="json").status_code == 403
        assert client.patch(app_url(app.public_id), {"name": "X"}, format="json").status_code == 403
        assert client.delete(app_url(app.public_id)).status_code == 403
    assert CallControlApp.objects.get().name == app.name


def test_another_accounts_app_is_not_found(charlie_api, alice):
    app = make_app(alice.account)

    assert charlie_api.get(app_url(app.public_id)).status_code == 404
    assert charlie_api.patch(app_url(app.public_id), {"name": "mine"}, format="json").status_code == 404
    assert charlie_api.get(f"{app_url(app.public_id)}/versions").status_code == 404
    assert charlie_api.post(f"{app_url(app.public_id)}/versions/1/restore").status_code == 404
    assert CallControlApp.objects.get().name == app.name


def test_a_document_must_be_a_string(alice_api):
    response = alice_api.post(URL, {"name": "IVR", "xml": 42}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["xml"]

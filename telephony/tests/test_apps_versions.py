"""The versions of an app's flow document: every change is kept, listed, compared with the current one, restored."""

from __future__ import annotations

import pytest
from django.urls import reverse

from telephony.models import AppVersion
from telephony.services import apps as services
from telephony.tests.isolation_apps import FLOW, make_app
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db

SECOND = "<Response>\n  <Answer/>\n  <Say>Welcome to Acme</Say>\n  <Hangup/>\n</Response>"
THIRD = '<Response>\n  <Answer/>\n  <Say>Welcome to Acme</Say>\n  <Pause length="1000"/>\n  <Hangup/>\n</Response>'


def versions_url(app) -> str:
    return f"/api/v1/call-control-apps/{app.public_id}/versions"


def edit(app, xml, actor=None):
    return services.app_update(account=app.account, actor=actor, app=app, xml=xml).app


def test_each_change_of_the_document_is_a_new_version_numbered_in_order(alice_api, alice):
    app = make_app(alice.account)

    alice_api.patch(f"/api/v1/call-control-apps/{app.public_id}", {"xml": SECOND}, format="json")
    alice_api.patch(f"/api/v1/call-control-apps/{app.public_id}", {"name": "Renamed"}, format="json")
    response = alice_api.patch(f"/api/v1/call-control-apps/{app.public_id}", {"xml": THIRD}, format="json")

    assert response.json()["xml_version"] == 3
    listed = alice_api.get(versions_url(app)).json()["results"]
    assert [(v["number"], v["current"]) for v in listed] == [(3, True), (2, False), (1, False)]
    assert listed[0]["actor"].startswith("API key")
    assert "xml" not in listed[0]
    entry = AuditEntry.objects.filter(action="call_control_app.updated").order_by("-id").first()
    assert (entry.before, entry.after) == ({"xml_version": 2}, {"xml_version": 3})


def test_one_version_carries_its_text(alice_api, alice):
    app = edit(make_app(alice.account), SECOND)

    first = alice_api.get(f"{versions_url(app)}/1")
    missing = alice_api.get(f"{versions_url(app)}/9")

    assert first.status_code == 200
    assert first.json() == {
        "number": 1,
        "created_at": first.json()["created_at"],
        "actor": "system",
        "current": False,
        "xml": FLOW,
    }
    assert missing.status_code == 404


def test_restoring_makes_the_old_text_the_newest_version(alice_api, alice):
    app = edit(edit(make_app(alice.account), SECOND), THIRD)

    response = alice_api.post(f"{versions_url(app)}/1/restore")

    assert response.status_code == 200, response.json()
    assert (response.json()["xml"], response.json()["xml_version"]) == (FLOW, 4)
    assert list(app.versions.order_by("number").values_list("number", "xml")) == [
        (1, FLOW),
        (2, SECOND),
        (3, THIRD),
        (4, FLOW),
    ]
    entry = AuditEntry.objects.get(action="call_control_app.version_restored")
    assert entry.after == {"xml_version": 4, "restored_from": 1}


def test_restoring_the_current_text_changes_nothing(alice_api, alice):
    app = edit(make_app(alice.account), SECOND)

    response = alice_api.post(f"{versions_url(app)}/2/restore")

    assert response.status_code == 200
    assert response.json()["xml_version"] == 2
    assert app.versions.count() == 2
    assert not AuditEntry.objects.filter(action="call_control_app.version_restored").exists()


def test_a_version_that_no_longer_validates_is_not_restored(alice_api, alice):
    app = edit(make_app(alice.account), SECOND)
    # As if the language had grown stricter since version 1 was saved.
    AppVersion.objects.filter(app=app, number=1).update(xml='<Response>\n  <Pause length="5s"/>\n</Response>')

    response = alice_api.post(f"{versions_url(app)}/1/restore")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["xml"][0].startswith("Line 2, column 3:")
    app.refresh_from_db()
    assert (app.xml, app.xml_version) == (SECOND, 2)


def test_restoring_a_missing_version_is_not_found(alice_api, alice):
    app = make_app(alice.account)

    assert alice_api.post(f"{versions_url(app)}/7/restore").status_code == 404


# --- The portal's versions page ------------------------------------------------------------------------


def page_url(app, **query) -> str:
    url = reverse("app-versions", kwargs={"account": app.account.slug, "id": app.public_id})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_the_versions_page_shows_what_the_last_save_changed_by_default(client, alice):
    app = edit(make_app(alice.account), SECOND)
    client.force_login(alice.user)

    page = client.get(page_url(app)).content.decode()

    assert 'data-testid="app-diff"' in page
    assert "Version 1 → current (version 2)" in page
    assert 'data-kind="removed">-  &lt;Say&gt;Hello&lt;/Say&gt;</del>' in page
    assert 'data-kind="added">+  &lt;Say&gt;Welcome to Acme&lt;/Say&gt;</ins>' in page
    assert page.count('data-testid="app-version-row"') == 2


def test_any_version_can_be_compared_and_the_diff_is_escaped(client, alice):
    hostile = "<Response>\n  <Say>&lt;script&gt;alert(1)&lt;/script&gt;</Say>\n</Response>"
    app = edit(edit(make_app(alice.account), hostile), SECOND)
    client.force_login(alice.user)

    page = client.get(page_url(app, version=2)).content.decode()

    assert "Version 2 → current (version 3)" in page
    assert "<script>" not in page
    assert "&amp;lt;script&amp;gt;" in page


def test_comparing_the_current_version_says_it_is_the_same(client, alice):
    app = make_app(alice.account)
    client.force_login(alice.user)

    page = client.get(page_url(app, version=1)).content.decode()

    assert 'data-testid="app-diff-same"' in page
    assert 'data-testid="restore-version"' not in page


def test_restore_in_the_portal_asks_first_then_restores(client, alice):
    app = edit(make_app(alice.account), SECOND)
    client.force_login(alice.user)
    url = reverse("app-restore", kwargs={"account": alice.account.slug, "id": app.public_id}) + "?version=1"

    confirm = client.get(url)
    done = client.post(url, follow=True)

    assert "Restore version 1 of" in confirm.content.decode()
    assert done.status_code == 200
    app.refresh_from_db()
    assert (app.xml, app.xml_version) == (FLOW, 3)
    assert "restored to version 1" in done.content.decode()


def test_viewers_see_versions_but_no_restore(client, alice, bob):
    app = edit(make_app(alice.account), SECOND)
    client.force_login(bob.user)
    url = reverse("app-restore", kwargs={"account": alice.account.slug, "id": app.public_id}) + "?version=1"

    page = client.get(page_url(app)).content.decode()

    assert 'data-testid="app-diff"' in page
    assert 'data-testid="restore-version"' not in page
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    app.refresh_from_db()
    assert app.xml_version == 2

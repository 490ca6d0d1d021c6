"""/api/v1/call-control-apps/{id}/numbers and the app page's assign buttons: which numbers' calls run an app."""

from __future__ import annotations

import pytest
from django.urls import reverse

from telephony.models import PhoneNumber
from telephony.tests.isolation_apps import make_app
from telephony.tests.isolation_sip import make_connection, make_number, make_user
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(alice):
    return make_app(alice.account, name="IVR")


def numbers_url(app) -> str:
    return f"/api/v1/call-control-apps/{app.public_id}/numbers"


def listed(response) -> list[str]:
    return [n["number"] for n in response.json()["results"]]


def test_it_assigns_numbers_by_id_or_e164_and_answers_the_apps_numbers(alice_api, alice, app):
    first = make_number(alice.account, "+12015550100")
    make_number(alice.account, "+12015550101")

    response = alice_api.post(numbers_url(app), {"add": [str(first.public_id), "+12015550101"]}, format="json")

    assert response.status_code == 200, response.json()
    assert listed(response) == ["+12015550100", "+12015550101"]
    assert listed(alice_api.get(numbers_url(app))) == ["+12015550100", "+12015550101"]
    entry = AuditEntry.objects.get(action="call_control_app.numbers_changed")
    assert entry.after == {"added": ["+12015550100", "+12015550101"], "removed": [], "replaced_targets": {}}


def test_assigning_takes_the_number_off_its_connection_user_or_other_app(alice_api, alice, app):
    connection = make_connection(alice.account)
    user = make_user(alice.account)
    other = make_app(alice.account, name="Other")
    make_number(alice.account, "+12015550100", sip_connection=connection)
    make_number(alice.account, "+12015550101", sip_user=user)
    make_number(alice.account, "+12015550102", call_control_app=other)

    response = alice_api.post(
        numbers_url(app), {"add": ["+12015550100", "+12015550101", "+12015550102"]}, format="json"
    )

    assert response.status_code == 200
    for number in PhoneNumber.objects.all():
        assert (number.call_control_app, number.sip_connection, number.sip_user) == (app, None, None)
    # Public ids in the log (and in the event it becomes), never integer keys.
    assert AuditEntry.objects.get(action="call_control_app.numbers_changed").after["replaced_targets"] == {
        "+12015550100": {"sip_connection": str(connection.public_id)},
        "+12015550101": {"sip_user": str(user.public_id)},
        "+12015550102": {"call_control_app": str(other.public_id)},
    }


def test_it_unassigns_numbers_and_ignores_ones_that_were_not_here(alice_api, alice, app):
    other = make_app(alice.account, name="Other")
    make_number(alice.account, "+12015550100", call_control_app=app)
    elsewhere = make_number(alice.account, "+12015550101", call_control_app=other)

    response = alice_api.post(numbers_url(app), {"remove": ["+12015550100", str(elsewhere.public_id)]}, format="json")

    assert response.status_code == 200
    assert listed(response) == []
    elsewhere.refresh_from_db()
    assert elsewhere.call_control_app == other
    assert AuditEntry.objects.get(action="call_control_app.numbers_changed").after["removed"] == ["+12015550100"]


def test_another_accounts_number_is_a_positional_not_found_and_nothing_changes(alice_api, alice, charlie, app):
    make_number(alice.account, "+12015550100")
    theirs = make_number(charlie.account, "+12015550199")

    response = alice_api.post(
        numbers_url(app), {"add": ["+12015550100", str(theirs.public_id), "+12015550199", "nonsense"]}, format="json"
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert sorted(error["fields"]) == ["add.1", "add.2", "add.3"]
    assert not PhoneNumber.objects.filter(call_control_app=app).exists()
    theirs.refresh_from_db()
    assert theirs.call_control_app is None
    assert not AuditEntry.objects.filter(action="call_control_app.numbers_changed").exists()


def test_a_number_in_add_and_remove_is_a_conflict(alice_api, alice, app):
    make_number(alice.account, "+12015550100")

    response = alice_api.post(numbers_url(app), {"add": ["+12015550100"], "remove": ["+12015550100"]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "conflict"
    assert list(response.json()["error"]["fields"]) == ["remove.0"]


def test_an_empty_change_is_refused_and_a_repeat_changes_nothing(alice_api, alice, app):
    make_number(alice.account, "+12015550100", call_control_app=app)

    empty = alice_api.post(numbers_url(app), {}, format="json")
    again = alice_api.post(numbers_url(app), {"add": ["+12015550100"]}, format="json")

    assert empty.status_code == 400
    assert listed(again) == ["+12015550100"]
    assert not AuditEntry.objects.filter(action="call_control_app.numbers_changed").exists()


def test_a_viewer_cannot_change_numbers(alice, bob, app, token_client):
    make_number(alice.account, "+12015550100")

    response = token_client(bob.user, bob.account).post(numbers_url(app), {"add": ["+12015550100"]}, format="json")

    assert response.status_code == 403
    assert not PhoneNumber.objects.filter(call_control_app=app).exists()


# --- The app page --------------------------------------------------------------------------------------


def test_the_app_page_assigns_and_unassigns_numbers(client, alice, app):
    number = make_number(alice.account, "+12015550100")
    client.force_login(alice.user)
    url = reverse("app-numbers", kwargs={"account": alice.account.slug, "id": app.public_id})
    detail = reverse("app-detail", kwargs={"account": alice.account.slug, "id": app.public_id})

    before = client.get(detail).content.decode()
    assigned = client.post(url, {"add": [str(number.public_id)]}, follow=True).content.decode()
    number.refresh_from_db()
    assert number.call_control_app == app
    unassigned = client.post(url, {"remove": [str(number.public_id)]}, follow=True).content.decode()
    number.refresh_from_db()

    assert 'data-testid="assign-numbers-form"' in before
    assert "Numbers: 1 assigned." in assigned
    assert 'data-testid="app-number-row"' in assigned
    assert "Numbers: 1 unassigned." in unassigned
    assert number.call_control_app is None


def test_the_app_page_shows_a_refused_assignment(client, alice, charlie, app):
    theirs = make_number(charlie.account, "+12015550199")
    client.force_login(alice.user)
    url = reverse("app-numbers", kwargs={"account": alice.account.slug, "id": app.public_id})

    page = client.post(url, {"add": [str(theirs.public_id)]}, follow=True).content.decode()

    assert "No number" in page
    theirs.refresh_from_db()
    assert theirs.call_control_app is None

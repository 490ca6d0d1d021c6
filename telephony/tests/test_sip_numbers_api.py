"""/api/v1/sip-connections/{id}/numbers: which numbers' voice calls go to a connection."""

from __future__ import annotations

import pytest

from telephony.models import CallControlApp, PhoneNumber
from telephony.tests.isolation_sip import make_connection, make_number, make_user
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(alice):
    return make_connection(alice.account)


def numbers_url(connection) -> str:
    return f"/api/v1/sip-connections/{connection.public_id}/numbers"


def listed(response) -> list[str]:
    return [n["number"] for n in response.json()["results"]]


def test_it_assigns_numbers_by_id_or_e164_and_answers_the_numbers_as_they_stand(alice_api, alice, connection):
    first = make_number(alice.account, "+12015550100")
    make_number(alice.account, "+12015550101")

    response = alice_api.post(numbers_url(connection), {"add": [str(first.public_id), "+12015550101"]}, format="json")

    assert response.status_code == 200, response.json()
    assert listed(response) == ["+12015550100", "+12015550101"]
    assert response.json()["count"] == 2
    assert listed(alice_api.get(numbers_url(connection))) == ["+12015550100", "+12015550101"]
    assert set(PhoneNumber.objects.filter(sip_connection=connection).values_list("number", flat=True)) == {
        "+12015550100",
        "+12015550101",
    }


def test_assigning_takes_the_number_off_its_app_user_or_other_connection(alice_api, alice, connection):
    app = CallControlApp.objects.create(account=alice.account, name="IVR")
    user = make_user(alice.account)
    other = make_connection(alice.account)
    on_app = make_number(alice.account, "+12015550100", call_control_app=app)
    on_user = make_number(alice.account, "+12015550101", sip_user=user)
    on_other = make_number(alice.account, "+12015550102", sip_connection=other)

    response = alice_api.post(
        numbers_url(connection), {"add": ["+12015550100", "+12015550101", "+12015550102"]}, format="json"
    )

    assert response.status_code == 200
    for number in (on_app, on_user, on_other):
        number.refresh_from_db()
        assert (number.sip_connection, number.call_control_app, number.sip_user) == (connection, None, None)
    entry = AuditEntry.objects.get(action="sip_connection.numbers_changed")
    assert entry.after["added"] == ["+12015550100", "+12015550101", "+12015550102"]
    assert entry.after["replaced_targets"] == {
        "+12015550100": {"call_control_app": str(app.public_id)},
        "+12015550101": {"sip_user": str(user.public_id)},
        "+12015550102": {"sip_connection": str(other.public_id)},
    }


def test_it_unassigns_numbers_and_ignores_ones_that_were_not_here(alice_api, alice, connection):
    app = CallControlApp.objects.create(account=alice.account, name="IVR")
    here = make_number(alice.account, "+12015550100", sip_connection=connection)
    elsewhere = make_number(alice.account, "+12015550101", call_control_app=app)

    response = alice_api.post(
        numbers_url(connection), {"remove": ["+12015550100", str(elsewhere.public_id)]}, format="json"
    )

    assert response.status_code == 200
    assert listed(response) == []
    here.refresh_from_db()
    elsewhere.refresh_from_db()
    assert here.sip_connection is None
    assert elsewhere.call_control_app == app
    assert AuditEntry.objects.get(action="sip_connection.numbers_changed").after["removed"] == ["+12015550100"]


def test_another_accounts_number_is_a_positional_not_found_and_nothing_changes(alice_api, alice, charlie, connection):
    make_number(alice.account, "+12015550100")
    theirs = make_number(charlie.account, "+12015550199")

    response = alice_api.post(
        numbers_url(connection),
        {"add": ["+12015550100", str(theirs.public_id), "+12015550199", "not-a-number"]},
        format="json",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert sorted(error["fields"]) == ["add.1", "add.2", "add.3"]
    assert not PhoneNumber.objects.filter(sip_connection=connection).exists()
    theirs.refresh_from_db()
    assert theirs.sip_connection is None
    assert not AuditEntry.objects.filter(action="sip_connection.numbers_changed").exists()


def test_a_released_number_cannot_be_assigned(alice_api, alice, connection):
    make_number(alice.account, "+12015550100", status=PhoneNumber.Status.RELEASED)

    response = alice_api.post(numbers_url(connection), {"add": ["+12015550100"]}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["add.0"]


def test_a_number_in_both_add_and_remove_is_refused(alice_api, alice, connection):
    make_number(alice.account, "+12015550100")

    response = alice_api.post(
        numbers_url(connection), {"add": ["+12015550100"], "remove": ["+12015550100"]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "conflict"
    assert list(response.json()["error"]["fields"]) == ["remove.0"]


def test_an_empty_change_is_refused(alice_api, connection):
    response = alice_api.post(numbers_url(connection), {}, format="json")
    assert response.status_code == 400


def test_assigning_the_same_numbers_again_changes_nothing_and_audits_nothing(alice_api, alice, connection):
    make_number(alice.account, "+12015550100", sip_connection=connection)

    response = alice_api.post(numbers_url(connection), {"add": ["+12015550100"]}, format="json")

    assert listed(response) == ["+12015550100"]
    assert not AuditEntry.objects.filter(action="sip_connection.numbers_changed").exists()


def test_a_viewer_sees_the_numbers_but_cannot_change_them(alice, bob, token_client, connection):
    make_number(alice.account, "+12015550100", sip_connection=connection)
    as_bob = token_client(bob.user, bob.account)

    assert listed(as_bob.get(numbers_url(connection))) == ["+12015550100"]
    assert as_bob.post(numbers_url(connection), {"remove": ["+12015550100"]}, format="json").status_code == 403


def test_charlie_cannot_list_or_change_alices_connection_numbers(charlie, charlie_api, connection):
    make_number(charlie.account, "+12015550199")

    assert charlie_api.get(numbers_url(connection)).status_code == 404
    assert charlie_api.post(numbers_url(connection), {"add": ["+12015550199"]}, format="json").status_code == 404
    assert not PhoneNumber.objects.filter(sip_connection=connection).exists()

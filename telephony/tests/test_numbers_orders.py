"""POST/GET /api/v1/number-orders: buying numbers from stock."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from telephony.models import CallControlApp, NumberOrder, PhoneNumber, SipConnection, StockNumber, TnProfile
from telephony.tests.isolation_numbers import make_phone_number, make_stock
from tenants.models import AuditEntry
from tenants.tests.factories import make_api_key

pytestmark = pytest.mark.django_db

URL = "/api/v1/number-orders"


def order(client, numbers, **body):
    return client.post(URL, {"numbers": numbers, **body}, format="json")


def results(response) -> dict[str, tuple[str, str]]:
    return {item["number"]: (item["result"], item["reason"]) for item in response.json()["items"]}


def test_it_orders_numbers_and_answers_201_with_a_result_per_number(alice_api, alice):
    first, second = make_stock(), make_stock(sms=True)

    response = order(alice_api, [first.number, second.number], features=["voice", "sms"], autorenew=False)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "completed"
    assert body["features"] == ["voice", "sms"]
    assert body["autorenew"] is False
    assert results(response) == {first.number: ("success", ""), second.number: ("success", "")}
    leases = PhoneNumber.objects.for_account(alice.account)
    assert {lease.number for lease in leases} == {first.number, second.number}
    lease = leases.get(number=first.number)
    assert (lease.status, lease.voice_enabled, lease.sms_enabled, lease.autorenew) == ("active", True, True, False)
    assert lease.expires_at > lease.leased_at
    assert body["items"][0]["phone_number"] == str(lease.public_id)
    assert StockNumber.objects.get(pk=first.pk).status == "assigned"


def test_it_records_why_each_number_failed(alice_api, charlie):
    voice_only = make_stock(sms=False)
    taken = make_phone_number(charlie.account)
    resting = make_stock(status=StockNumber.Status.QUARANTINED)
    good = make_stock()

    response = order(
        alice_api,
        [good.number, taken.number, resting.number, "+12019998888", "not a number", "+1201", voice_only.number],
        features=["voice", "sms"],
    )

    assert response.status_code == 201
    assert response.json()["status"] == "partial"
    assert results(response) == {
        good.number: ("success", ""),
        taken.number: ("failed", "taken"),
        resting.number: ("failed", "taken"),
        "+12019998888": ("failed", "not_found"),
        "not a number": ("failed", "invalid"),
        "+1201": ("failed", "invalid"),
        voice_only.number: ("failed", "feature_unavailable"),
    }


def test_it_keeps_the_request_order_and_answers_a_repeated_number_once(alice_api):
    a, b = make_stock(), make_stock()
    response = order(alice_api, [b.number, a.number, b.number.replace("+1", "1 ")])
    assert [item["number"] for item in response.json()["items"]] == [b.number, a.number]


def test_a_number_sold_to_one_account_fails_as_taken_for_the_next(alice_api, charlie_api):
    number = make_stock().number
    assert results(order(alice_api, [number]))[number] == ("success", "")

    response = order(charlie_api, [number])

    assert response.json()["status"] == "failed"
    assert results(response)[number] == ("failed", "taken")
    assert PhoneNumber.objects.filter(number=number, status="active").count() == 1


@override_settings(NUMBER_QUOTA=2)
def test_it_stops_at_the_platform_quota(alice_api, alice):
    make_phone_number(alice.account)
    wanted = [make_stock().number for _ in range(3)]

    response = order(alice_api, wanted)

    assert [item["reason"] for item in response.json()["items"]] == ["", "quota", "quota"]
    assert PhoneNumber.objects.for_account(alice.account).filter(status="active").count() == 2


@override_settings(NUMBER_QUOTA=1)
def test_an_accounts_own_quota_overrides_the_platform_one(alice_api, alice):
    alice.account.number_quota = 3
    alice.account.save()
    response = order(alice_api, [make_stock().number for _ in range(4)])
    assert [item["result"] for item in response.json()["items"]] == ["success", "success", "success", "failed"]


def test_released_numbers_do_not_count_against_the_quota(alice_api, alice, settings):
    settings.NUMBER_QUOTA = 1
    make_phone_number(alice.account, status="released")
    assert order(alice_api, [make_stock().number]).json()["status"] == "completed"


def test_it_applies_the_profile_and_voice_target_to_every_number(alice_api, alice):
    profile = TnProfile.objects.create(account=alice.account, name="Screened")
    app = CallControlApp.objects.create(account=alice.account, name="IVR")
    number = make_stock().number

    response = order(alice_api, [number], tn_profile=str(profile.public_id), call_control_app=str(app.public_id))

    assert response.status_code == 201
    lease = PhoneNumber.objects.get(number=number)
    assert (lease.tn_profile, lease.call_control_app) == (profile, app)


def test_it_refuses_another_accounts_profile_as_not_found(alice_api, charlie):
    theirs = TnProfile.objects.create(account=charlie.account, name="Theirs")
    number = make_stock().number

    response = order(alice_api, [number], tn_profile=str(theirs.public_id))

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"tn_profile": ["No such object in this account."]}
    assert not PhoneNumber.objects.exists()


def test_it_refuses_two_voice_targets(alice_api, alice):
    app = CallControlApp.objects.create(account=alice.account, name="IVR")
    trunk = SipConnection.objects.create(account=alice.account, name="PBX", auth_type="ip")

    response = order(
        alice_api, [make_stock().number], call_control_app=str(app.public_id), sip_connection=str(trunk.public_id)
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "voice_target_conflict"
    assert set(error["fields"]) == {"call_control_app", "sip_connection"}


@pytest.mark.parametrize(
    "body,field",
    [
        ({"numbers": []}, "numbers"),
        ({"numbers": "+12015550123"}, "numbers"),
        ({"numbers": ["+12015550123"] * 101}, "numbers"),
        ({"numbers": ["+12015550123"], "features": ["fax"]}, "features"),
        ({"numbers": ["+12015550123"], "autorenew": "maybe"}, "autorenew"),
        ({"numbers": ["+12015550123"], "tn_profile": "nope"}, "tn_profile"),
        ({}, "numbers"),
    ],
)
def test_it_answers_400_naming_the_bad_field(alice_api, body, field):
    response = alice_api.post(URL, body, format="json")
    assert response.status_code == 400
    assert field in {name.split(".")[0] for name in response.json()["error"]["fields"]}
    assert not NumberOrder.objects.exists()


def test_viewers_and_read_only_keys_cannot_order(bob, token_client, alice):
    number = make_stock().number
    secret, _ = make_api_key(alice.account, read_only=True)
    read_only = token_client(bob.user, bob.account)
    key_client = APIClient()
    key_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    for client in (read_only, key_client):
        response = order(client, [number])
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "read_only_credential"
        assert client.get(URL).status_code == 200
    assert not PhoneNumber.objects.exists()


def test_it_audits_the_order_and_each_number(alice_api, alice):
    good, missing = make_stock().number, "+12019998888"

    response = order(alice_api, [good, missing])

    entries = AuditEntry.objects.for_account(alice.account)
    order_entry = entries.get(action="number_order.created")
    assert order_entry.object_id == response.json()["id"]
    assert order_entry.actor_label.startswith("API key")
    assert [i["reason"] for i in order_entry.after["items"]] == ["", "not_found"]
    ordered = entries.get(action="number.ordered")
    assert ordered.object_repr == good
    assert ordered.after["order"] == response.json()["id"]


def test_it_lists_and_shows_only_the_accounts_orders(alice_api, charlie_api):
    mine = order(alice_api, [make_stock().number]).json()
    theirs = order(charlie_api, [make_stock().number]).json()

    listed = alice_api.get(URL).json()
    assert [o["id"] for o in listed["results"]] == [mine["id"]]
    assert alice_api.get(f"{URL}/{mine['id']}").json() == mine
    assert alice_api.get(f"{URL}/{theirs['id']}").status_code == 404


def test_it_pages_orders_with_a_cursor(alice_api):
    for _ in range(3):
        order(alice_api, ["+12019998888"])
    first = alice_api.get(URL, {"limit": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    second = alice_api.get(first["next"]).json()
    assert len(second["results"]) == 1


def test_an_idempotency_key_makes_a_retried_order_happen_once(alice_api):
    number = make_stock().number
    first = alice_api.post(URL, {"numbers": [number]}, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    again = alice_api.post(URL, {"numbers": [number]}, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert NumberOrder.objects.count() == 1

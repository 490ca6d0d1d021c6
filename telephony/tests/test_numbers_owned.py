"""/api/v1/numbers: the account's numbers — list, filter, look up by id or number, change, release."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from telephony.models import CallControlApp, PhoneNumber, SipConnection, SipDomain, SipUser, StockNumber, TnProfile
from telephony.tests.isolation_numbers import make_phone_number
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db

URL = "/api/v1/numbers"


@pytest.fixture
def targets(alice):
    account = alice.account
    domain = SipDomain.objects.create(account=account, name="acme", domain="acme.sip.example.net")
    return {
        "call_control_app": CallControlApp.objects.create(account=account, name="IVR"),
        "sip_connection": SipConnection.objects.create(account=account, name="PBX", auth_type="ip"),
        "sip_user": SipUser.objects.create(account=account, domain=domain, login="desk", ha1="x" * 32, ha1b="y" * 32),
    }


def listed(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["number"] for row in response.json()["results"]]


def patch(client, number, body):
    return client.patch(f"{URL}/{number.public_id}", body, format="json")


# --- Listing and filters -------------------------------------------------------------------------------


def test_it_lists_the_accounts_active_numbers_only_by_default(alice_api, alice, charlie):
    active = make_phone_number(alice.account)
    released = make_phone_number(alice.account, status="released", released_at=timezone.now())
    make_phone_number(charlie.account)

    assert listed(alice_api.get(URL)) == [active.number]
    assert listed(alice_api.get(URL, {"status": "released"})) == [released.number]


def test_it_describes_a_number(alice_api, alice):
    number = make_phone_number(alice.account, description="Support line", tags=["vip"])
    body = alice_api.get(f"{URL}/{number.public_id}").json()
    assert body["id"] == str(number.public_id)
    assert body["number"] == number.number
    assert body["country"] == "US" and body["type"] == "local" and body["features"] == ["voice", "sms"]
    assert body["description"] == "Support line" and body["tags"] == ["vip"]
    assert body["call_control_app"] is body["sip_connection"] is body["sip_user"] is body["tn_profile"] is None
    assert body["status_callback_method"] == "POST"


def test_it_filters_by_number_fragment_features_tag_profile_and_target(alice_api, alice, targets):
    profile = TnProfile.objects.create(account=alice.account, name="Screened")
    a = make_phone_number(alice.account, tags=["vip", "support"], tn_profile=profile)
    b = make_phone_number(alice.account, tags=["vipx"], sms_enabled=True, sip_user=targets["sip_user"])
    c = make_phone_number(alice.account, voice_enabled=False, call_control_app=targets["call_control_app"])

    assert listed(alice_api.get(URL, {"tag": "vip"})) == [a.number]
    assert listed(alice_api.get(URL, {"tag": "VIPX"})) == [b.number]
    assert listed(alice_api.get(URL, {"sms_enabled": "true"})) == [b.number]
    assert listed(alice_api.get(URL, {"voice_enabled": "false"})) == [c.number]
    assert listed(alice_api.get(URL, {"tn_profile": str(profile.public_id)})) == [a.number]
    assert listed(alice_api.get(URL, {"sip_user": str(targets["sip_user"].public_id)})) == [b.number]
    assert listed(alice_api.get(URL, {"call_control_app": str(targets["call_control_app"].public_id)})) == [c.number]
    assert listed(alice_api.get(URL, {"number": c.number[-6:]})) == [c.number]
    assert listed(alice_api.get(URL, {"number": "+1 (201) 346"})) == [a.number, b.number, c.number]


@pytest.mark.parametrize("params", [{"tag": 'vip"'}, {"number": "abc"}, {"status": "gone"}, {"tn_profile": "x"}])
def test_it_answers_400_for_a_bad_filter(alice_api, params):
    response = alice_api.get(URL, params)
    assert response.status_code == 400
    assert set(params) <= set(response.json()["error"]["fields"])


# --- Looking a number up -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["{number}", "%2B{digits}", "{digits}", "{id}"])
def test_it_finds_a_number_by_id_or_e164(alice_api, alice, form):
    number = make_phone_number(alice.account)
    path = form.format(number=number.number, digits=number.number[1:], id=number.public_id)
    response = alice_api.get(f"{URL}/{path}")
    assert response.status_code == 200
    assert response.json()["id"] == str(number.public_id)


def test_a_number_finds_the_active_lease_before_older_released_ones(alice_api, alice):
    old = make_phone_number(alice.account, status="released", released_at=timezone.now())
    current = PhoneNumber.objects.create(
        account=alice.account, stock=old.stock, number=old.number, leased_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=30),
    )  # fmt: skip
    assert alice_api.get(f"{URL}/{old.number}").json()["id"] == str(current.public_id)
    assert alice_api.get(f"{URL}/{old.public_id}").json()["status"] == "released"


@pytest.mark.parametrize("form", ["{number}", "%2B{digits}", "{id}"])
def test_another_accounts_number_is_not_found_either_way(charlie_api, alice, form):
    number = make_phone_number(alice.account)
    path = form.format(number=number.number, digits=number.number[1:], id=number.public_id)
    for response in (
        charlie_api.get(f"{URL}/{path}"),
        charlie_api.patch(f"{URL}/{path}", {"description": "mine"}, format="json"),
        charlie_api.delete(f"{URL}/{path}"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    number.refresh_from_db()
    assert (number.status, number.description) == ("active", "")


@pytest.mark.parametrize("path", ["+1", "nope", "+12015550123abc", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_number_is_not_found(alice_api, path):
    assert alice_api.get(f"{URL}/{path}").status_code == 404


# --- Changing a number ---------------------------------------------------------------------------------


def test_it_changes_a_number_and_audits_only_the_changed_fields(alice_api, alice):
    number = make_phone_number(alice.account, description="Old")

    response = patch(
        alice_api,
        number,
        {
            "description": "Support",
            "tags": ["vip", "support", "vip"],
            "autorenew": True,  # unchanged: not in the audit
            "sms_enabled": True,
            "status_callback_url": "https://93.184.216.34/status",
            "status_callback_method": "GET",
        },
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["description"] == "Support" and body["tags"] == ["vip", "support"] and body["sms_enabled"] is True
    assert body["status_callback_url"] == "https://93.184.216.34/status"
    entry = AuditEntry.objects.for_account(alice.account).get(action="number.updated")
    assert entry.before == {
        "description": "Old",
        "tags": [],
        "sms_enabled": False,
        "status_callback_url": "",
        "status_callback_method": "POST",
    }
    assert entry.after["tags"] == ["vip", "support"]
    assert entry.object_id == str(number.public_id)


def test_an_unchanged_patch_writes_no_audit_entry(alice_api, alice):
    number = make_phone_number(alice.account, description="Same")
    assert patch(alice_api, number, {"description": "Same"}).status_code == 200
    assert not AuditEntry.objects.filter(action="number.updated").exists()


def test_it_can_patch_a_number_addressed_by_e164(alice_api, alice):
    number = make_phone_number(alice.account)
    response = alice_api.patch(f"{URL}/%2B{number.number[1:]}", {"description": "By number"}, format="json")
    assert response.status_code == 200
    number.refresh_from_db()
    assert number.description == "By number"


@pytest.mark.parametrize(
    "tags,code",
    [
        ([f"t{i}" for i in range(21)], "too_many_tags"),
        (["x" * 33], "invalid_tag"),
        (["has space"], "invalid_tag"),
        (['quo"te'], "invalid_tag"),
        ([""], "invalid_tag"),
        ("vip", None),
    ],
)
def test_it_validates_tags(alice_api, alice, tags, code):
    number = make_phone_number(alice.account)
    response = patch(alice_api, number, {"tags": tags})
    assert response.status_code == 400
    assert "tags" in {name.split(".")[0] for name in response.json()["error"]["fields"]}
    if code:
        assert response.json()["error"]["code"] == code


def test_it_sets_a_voice_target_from_the_accounts_own_objects(alice_api, alice, targets):
    number = make_phone_number(alice.account)
    for name, target in targets.items():
        response = patch(alice_api, number, {**dict.fromkeys(targets), name: str(target.public_id)})
        assert response.status_code == 200, response.content
        assert response.json()[name] == str(target.public_id)
        assert [response.json()[n] for n in targets if n != name] == [None, None]


def test_setting_two_voice_targets_at_once_is_a_conflict(alice_api, alice, targets):
    number = make_phone_number(alice.account)
    response = patch(
        alice_api,
        number,
        {"sip_connection": str(targets["sip_connection"].public_id), "sip_user": str(targets["sip_user"].public_id)},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "voice_target_conflict"
    assert set(error["fields"]) == {"sip_connection", "sip_user"}


def test_setting_a_target_while_another_is_set_conflicts_unless_the_other_is_nulled(alice_api, alice, targets):
    number = make_phone_number(alice.account, call_control_app=targets["call_control_app"])
    trunk = str(targets["sip_connection"].public_id)

    conflict = patch(alice_api, number, {"sip_connection": trunk})
    assert conflict.status_code == 400
    assert conflict.json()["error"]["code"] == "voice_target_conflict"
    assert set(conflict.json()["error"]["fields"]) == {"call_control_app", "sip_connection"}

    switched = patch(alice_api, number, {"sip_connection": trunk, "call_control_app": None})
    assert switched.status_code == 200
    number.refresh_from_db()
    assert (number.call_control_app, number.sip_connection) == (None, targets["sip_connection"])


def test_another_accounts_target_or_profile_is_not_found(alice_api, alice, charlie):
    number = make_phone_number(alice.account)
    theirs_app = CallControlApp.objects.create(account=charlie.account, name="Theirs")
    theirs_profile = TnProfile.objects.create(account=charlie.account, name="Theirs")
    for field, obj in (("call_control_app", theirs_app), ("tn_profile", theirs_profile)):
        response = patch(alice_api, number, {field: str(obj.public_id)})
        assert response.status_code == 400
        assert response.json()["error"]["fields"] == {field: ["No such object in this account."]}


def test_sms_cannot_be_enabled_on_a_voice_only_number(alice_api, alice):
    number = make_phone_number(alice.account)
    StockNumber.objects.filter(pk=number.stock_id).update(sms=False)
    response = patch(alice_api, number, {"sms_enabled": True})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "feature_unavailable"
    assert "sms_enabled" in response.json()["error"]["fields"]


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http://10.1.2.3/status", "https://user:pw@example.com/"])
def test_the_status_callback_url_must_pass_the_outbound_policy(alice_api, alice, url):
    number = make_phone_number(alice.account)
    response = patch(alice_api, number, {"status_callback_url": url})
    assert response.status_code == 400
    assert "status_callback_url" in response.json()["error"]["fields"]


def test_a_bad_status_callback_method_is_a_400(alice_api, alice):
    response = patch(alice_api, make_phone_number(alice.account), {"status_callback_method": "PUT"})
    assert response.status_code == 400
    assert "status_callback_method" in response.json()["error"]["fields"]


def test_a_released_number_cannot_be_changed(alice_api, alice):
    number = make_phone_number(alice.account, status="released", released_at=timezone.now())
    response = patch(alice_api, number, {"description": "again"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "number_released"


def test_viewers_read_but_cannot_change_or_release(bob, token_client, alice):
    number = make_phone_number(alice.account)
    client = token_client(bob.user, bob.account)
    assert client.get(f"{URL}/{number.public_id}").status_code == 200
    assert patch(client, number, {"description": "x"}).status_code == 403
    assert client.delete(f"{URL}/{number.public_id}").status_code == 403
    number.refresh_from_db()
    assert (number.status, number.description) == ("active", "")


# --- Releasing -----------------------------------------------------------------------------------------


def test_delete_releases_the_number_into_quarantine(alice_api, alice, settings):
    settings.NUMBER_QUARANTINE_DAYS = 30
    number = make_phone_number(alice.account)
    before = timezone.now()

    response = alice_api.delete(f"{URL}/{number.number}")

    assert response.status_code == 204
    number.refresh_from_db()
    assert number.status == "released" and number.released_at >= before
    stock = StockNumber.objects.get(pk=number.stock_id)
    assert stock.status == "quarantined"
    assert timedelta(days=29, hours=23) < stock.quarantined_until - before < timedelta(days=30, minutes=1)
    assert listed(alice_api.get(URL)) == []
    assert alice_api.get(f"{URL}/{number.public_id}").json()["status"] == "released"
    entry = AuditEntry.objects.for_account(alice.account).get(action="number.released")
    assert entry.object_id == str(number.public_id)


def test_a_released_number_cannot_be_ordered_during_quarantine(alice_api, charlie_api, alice):
    number = make_phone_number(alice.account)
    alice_api.delete(f"{URL}/{number.public_id}")
    response = charlie_api.post("/api/v1/number-orders", {"numbers": [number.number]}, format="json")
    assert response.json()["items"][0]["reason"] == "taken"


def test_releasing_twice_is_harmless(alice_api, alice):
    number = make_phone_number(alice.account)
    assert alice_api.delete(f"{URL}/{number.public_id}").status_code == 204
    assert alice_api.delete(f"{URL}/{number.public_id}").status_code == 204
    assert AuditEntry.objects.filter(action="number.released").count() == 1


def test_the_schema_documents_the_number_endpoints(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    assert {"/api/v1/numbers", "/api/v1/numbers/{id}", "/api/v1/number-orders", "/api/v1/number-orders/{id}"} <= set(
        schema["paths"]
    )
    assert set(schema["paths"]["/api/v1/numbers/{id}"]) >= {"get", "patch", "delete"}


def test_releasing_a_number_stops_it_being_anyones_caller_id(alice_api, alice):
    from telephony.models import PhoneNumber, SipConnection, SipDomain, SipUser
    from telephony.tests.isolation_numbers import FACTORIES

    lease = FACTORIES[PhoneNumber](alice.account)
    domain = SipDomain.objects.create(account=alice.account, name="acme", domain="acme.sip.example.net")
    user = SipUser.objects.create(
        account=alice.account, domain=domain, login="mary", ha1="x" * 32, ha1b="y" * 32, caller_id_number=lease
    )
    trunk = SipConnection.objects.create(
        account=alice.account,
        name="PBX",
        auth_type="ip",
        allowed_ips=["203.0.113.7/32"],
        caller_id_policy="default_number",
        default_caller_id=lease,
    )

    assert alice_api.delete(f"/api/v1/numbers/{lease.public_id}").status_code == 204

    user.refresh_from_db()
    trunk.refresh_from_db()
    assert user.caller_id_number is None
    assert (trunk.default_caller_id, trunk.caller_id_policy) == (None, "passthrough")

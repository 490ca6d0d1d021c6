"""The /tn-profiles API: profiles, their blacklist and whitelist, the dry-run test, roles and isolation."""

from __future__ import annotations

import pytest
from django.urls import include, path
from drf_spectacular.generators import SchemaGenerator
from rest_framework.routers import DefaultRouter

from telephony.api.profiles import TnProfileViewSet
from telephony.models import CallerListEntry, TnProfile
from telephony.services.profiles import MAX_CHANGES_PER_REQUEST
from telephony.tests.isolation_profiles import make_phone_number
from tenants.models import AuditEntry
from tenants.tests.factories import make_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def profile(alice_api) -> dict:
    response = alice_api.post("/api/v1/tn-profiles", {"name": "Front desk", "block_action": "busy"}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def url(profile: dict, tail: str = "") -> str:
    return f"/api/v1/tn-profiles/{profile['id']}{tail}"


def values(response) -> list[str]:
    return [row["caller_id"] for row in response.json()["results"]]


# --- Profiles ----------------------------------------------------------------------------------------


def test_it_creates_a_profile_and_records_it(alice_api, alice):
    response = alice_api.post(
        "/api/v1/tn-profiles",
        {"name": " Support ", "description": "Spam filter", "block_action": "hangup"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert {
        k: body[k]
        for k in ("name", "description", "block_action", "blacklist_count", "whitelist_count", "numbers_count")
    } == {
        "name": "Support",
        "description": "Spam filter",
        "block_action": "hangup",
        "blacklist_count": 0,
        "whitelist_count": 0,
        "numbers_count": 0,
    }
    audit = AuditEntry.objects.for_account(alice.account).get(action="tn_profile.created")
    assert audit.object_id == body["id"] and audit.after["block_action"] == "hangup"


def test_it_defaults_the_block_action_to_reject(alice_api):
    assert alice_api.post("/api/v1/tn-profiles", {"name": "P"}, format="json").json()["block_action"] == "reject"


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "P", "block_action": "drop"}, "block_action"),
    ],
)
def test_it_names_the_field_of_a_bad_profile(alice_api, body, field):
    response = alice_api.post("/api/v1/tn-profiles", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_it_refuses_a_second_profile_with_the_same_name(alice_api, profile):
    response = alice_api.post("/api/v1/tn-profiles", {"name": "Front desk"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "duplicate_name"
    assert list(response.json()["error"]["fields"]) == ["name"]


def test_the_same_name_is_free_in_another_account(charlie_api, profile):
    assert charlie_api.post("/api/v1/tn-profiles", {"name": "Front desk"}, format="json").status_code == 201


def test_it_changes_a_profile_and_records_before_and_after(alice_api, alice, profile):
    response = alice_api.patch(url(profile), {"block_action": "reject", "description": "Calls to sales"}, format="json")

    assert response.status_code == 200
    assert (response.json()["block_action"], response.json()["name"]) == ("reject", "Front desk")
    audit = AuditEntry.objects.for_account(alice.account).get(action="tn_profile.updated")
    assert (audit.before["block_action"], audit.after["block_action"]) == ("busy", "reject")


def test_it_lists_and_filters_profiles_with_their_number_counts(alice_api, alice, profile):
    alice_api.post("/api/v1/tn-profiles", {"name": "Night", "block_action": "reject"}, format="json")
    make_phone_number(alice.account, tn_profile=TnProfile.objects.get(public_id=profile["id"]))

    everything = alice_api.get("/api/v1/tn-profiles").json()
    busy = alice_api.get("/api/v1/tn-profiles?block_action=busy").json()

    assert [(p["name"], p["numbers_count"]) for p in everything["results"]] == [("Front desk", 1), ("Night", 0)]
    assert [p["name"] for p in busy["results"]] == ["Front desk"]


def test_it_deletes_an_unused_profile_with_its_lists(alice_api, alice, profile):
    alice_api.post(url(profile, "/blacklist"), {"add": ["+1900*"]}, format="json")

    assert alice_api.delete(url(profile)).status_code == 204

    assert not TnProfile.objects.filter(public_id=profile["id"]).exists()
    assert not CallerListEntry.objects.exists()
    assert AuditEntry.objects.for_account(alice.account).filter(action="tn_profile.deleted").count() == 1


def test_it_refuses_to_delete_a_profile_in_use_and_says_how_many_numbers(alice_api, alice, profile):
    tn_profile = TnProfile.objects.get(public_id=profile["id"])
    make_phone_number(alice.account, tn_profile=tn_profile)
    make_phone_number(alice.account, tn_profile=tn_profile)

    response = alice_api.delete(url(profile))

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "profile_in_use"
    assert "2 numbers" in response.json()["error"]["message"]
    assert TnProfile.objects.filter(pk=tn_profile.pk).exists()


def test_it_names_a_bad_detach_numbers_option(alice_api, profile):
    response = alice_api.delete(url(profile, "?detach_numbers=perhaps"))

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["detach_numbers"]


def test_it_detaches_the_numbers_when_asked_and_deletes(alice_api, alice, profile):
    number = make_phone_number(alice.account, tn_profile=TnProfile.objects.get(public_id=profile["id"]))

    assert alice_api.delete(url(profile, "?detach_numbers=true")).status_code == 204

    number.refresh_from_db()
    assert number.tn_profile is None
    audit = AuditEntry.objects.for_account(alice.account).get(action="tn_profile.deleted")
    assert audit.after == {"numbers_detached": 1, "numbers": [number.number]}


# --- The lists ---------------------------------------------------------------------------------------


def test_it_adds_numbers_prefixes_and_anonymous_and_answers_with_the_list(alice_api, profile):
    response = alice_api.post(
        url(profile, "/blacklist"),
        {
            "add": [
                "+12015550123",
                {"caller_id": "+1900*", "note": "premium rate"},
                "ANONYMOUS",
                "+44 20 7946 0000",
            ]
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["added"], body["updated"], body["removed"], body["count"]) == (4, 0, 0, 4)
    assert [(r["caller_id"], r["kind"], r["note"]) for r in body["results"]] == [
        ("+12015550123", "number", ""),
        ("+1900*", "prefix", "premium rate"),
        ("+442079460000", "number", ""),
        ("anonymous", "anonymous", ""),
    ]
    assert CallerListEntry.objects.get(kind="prefix").value == "+1900"  # stored without its "*"
    assert alice_api.get(url(profile)).json()["blacklist_count"] == 4


def test_the_whitelist_is_a_separate_list(alice_api, profile):
    alice_api.post(url(profile, "/whitelist"), {"add": ["+12015550123"]}, format="json")

    assert values(alice_api.get(url(profile, "/whitelist"))) == ["+12015550123"]
    assert values(alice_api.get(url(profile, "/blacklist"))) == []
    assert alice_api.get(url(profile)).json()["whitelist_count"] == 1


def test_adding_an_existing_entry_is_not_an_error_and_updates_its_note(alice_api, profile):
    alice_api.post(
        url(profile, "/blacklist"), {"add": [{"caller_id": "+1900*", "note": "old"}, "+12015550123"]}, format="json"
    )

    response = alice_api.post(
        url(profile, "/blacklist"), {"add": [{"caller_id": "+1900*", "note": "new"}, "+12015550123"]}, format="json"
    )

    body = response.json()
    assert (body["added"], body["updated"], body["count"]) == (0, 1, 2)
    assert CallerListEntry.objects.get(value="+1900").note == "new"


def test_it_removes_entries_and_ignores_absent_ones(alice_api, alice, profile):
    alice_api.post(url(profile, "/blacklist"), {"add": ["+12015550123", "+1900*", "anonymous"]}, format="json")

    response = alice_api.post(
        url(profile, "/blacklist"),
        {"add": ["+12015550124"], "remove": ["+1900*", "anonymous", "+12015550199"]},
        format="json",
    )

    body = response.json()
    assert (body["added"], body["removed"], body["count"]) == (1, 2, 2)
    assert values(alice_api.get(url(profile, "/blacklist"))) == ["+12015550123", "+12015550124"]
    audit = AuditEntry.objects.for_account(alice.account).filter(action="tn_profile.blacklist_changed").first()
    assert audit.after["added"] == 1 and audit.after["removed"] == 2
    assert audit.after["added_values"] == ["+12015550124"]
    assert sorted(audit.after["removed_values"]) == ["+1900*", "anonymous"]


def test_it_records_one_audit_entry_per_change_and_none_for_a_change_that_changes_nothing(alice_api, alice, profile):
    alice_api.post(url(profile, "/blacklist"), {"add": [f"+1201555{n:04d}" for n in range(50)]}, format="json")
    alice_api.post(url(profile, "/blacklist"), {"add": ["+12015550001"]}, format="json")

    audits = AuditEntry.objects.for_account(alice.account).filter(action="tn_profile.blacklist_changed")
    assert audits.count() == 1
    assert audits.get().after["added"] == 50 and len(audits.get().after["added_values"]) == 20


@pytest.mark.parametrize(
    "item,code",
    [
        ("12015550123", "invalid_caller_id"),  # no +
        ("+1201555012", "invalid_caller_id"),  # too short for +1
        ("+999123", "invalid_caller_id"),  # no such country code
        ("call me", "invalid_caller_id"),
        ("+1900", "invalid_caller_id"),  # a prefix needs its *
        ("+*", "invalid_prefix"),
        ("+123456789012345*", "invalid_prefix"),  # 15 digits
        ("1900*", "invalid_prefix"),
        ("+19a0*", "invalid_prefix"),
        ("", "invalid_item"),
        (42, "invalid_item"),
        ({"number": "+12015550123"}, "invalid_item"),
        ({"caller_id": "+12015550123", "note": 5}, "invalid_item"),
        ({"caller_id": "+12015550123", "note": "x" * 201}, "note_too_long"),
    ],
)
def test_it_refuses_a_bad_item_by_position_and_changes_nothing(alice_api, profile, item, code):
    alice_api.post(url(profile, "/blacklist"), {"add": ["+12015550100"]}, format="json")

    response = alice_api.post(
        url(profile, "/blacklist"),
        {"add": ["+12015550123", "+1900*", "anonymous", item], "remove": ["+12015550100"]},
        format="json",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == ["add.3"]
    assert error["code"] == code
    assert values(alice_api.get(url(profile, "/blacklist"))) == ["+12015550100"]


def test_it_names_every_bad_item_at_once(alice_api, profile):
    response = alice_api.post(
        url(profile, "/whitelist"), {"add": ["bad", "+12015550123", "+1*", "worse"], "remove": ["nope"]}, format="json"
    )

    assert set(response.json()["error"]["fields"]) == {"add.0", "add.3", "remove.0"}
    assert CallerListEntry.objects.count() == 0


def test_it_refuses_an_entry_both_added_and_removed(alice_api, profile):
    response = alice_api.post(
        url(profile, "/blacklist"), {"add": ["+1900*"], "remove": ["+12015550123", "+1900*"]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"].keys() == {"remove.1"}


def test_it_refuses_a_body_that_is_not_lists(alice_api, profile):
    response = alice_api.post(url(profile, "/blacklist"), {"add": "+12015550123"}, format="json")

    assert response.status_code == 400
    assert "add" in response.json()["error"]["fields"]


def test_it_takes_ten_thousand_items_in_one_request_and_no_more(alice_api, profile):
    items = [f"+1201{n:07d}" for n in range(MAX_CHANGES_PER_REQUEST)]

    too_many = alice_api.post(url(profile, "/blacklist"), {"add": items, "remove": ["+1900*"]}, format="json")
    accepted = alice_api.post(url(profile, "/blacklist"), {"add": items}, format="json")

    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "too_many_items"
    assert accepted.status_code == 200 and accepted.json()["count"] == MAX_CHANGES_PER_REQUEST
    assert len(accepted.json()["results"]) == 50  # the first page of the list as it now stands


def test_it_pages_and_filters_a_list_by_caller_id_prefix(alice_api, profile):
    alice_api.post(
        url(profile, "/blacklist"),
        {"add": ["+12015550123", "+12015550124", "+1201*", "+19005551234", "+1900*", "anonymous"]},
        format="json",
    )

    page = alice_api.get(url(profile, "/blacklist?limit=2&page=2")).json()
    prefix = alice_api.get(url(profile, "/blacklist?caller_id=%2B1900*")).json()
    only_prefixes = alice_api.get(url(profile, "/blacklist?kind=prefix")).json()

    assert (page["count"], [r["caller_id"] for r in page["results"]]) == (6, ["+12015550124", "+1900*"])
    assert [r["caller_id"] for r in prefix["results"]] == ["+1900*", "+19005551234"]
    assert [r["caller_id"] for r in only_prefixes["results"]] == ["+1201*", "+1900*"]


# --- The test endpoint -------------------------------------------------------------------------------


def test_it_tests_a_caller_without_counting_a_hit(alice_api, profile):
    alice_api.post(url(profile, "/blacklist"), {"add": [{"caller_id": "+1900*", "note": "premium"}]}, format="json")

    response = alice_api.post(url(profile, "/test"), {"caller_id": "19005551234"}, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "allowed": False,
        "outcome": "blacklisted",
        "action": "busy",
        "sip_code": 486,
        "reason": "+19005551234 is on the blacklist (+1900*).",
        "caller_id": "+19005551234",
        "rule": "blacklist: +1900*",
        "matched_entry": {"list": "blacklist", "caller_id": "+1900*", "kind": "prefix", "note": "premium"},
    }
    assert CallerListEntry.objects.get().hit_count == 0


def test_it_tests_against_a_whitelist_in_use(alice_api, profile):
    alice_api.post(url(profile, "/whitelist"), {"add": ["+1201*"]}, format="json")

    outsider = alice_api.post(url(profile, "/test"), {"caller_id": ""}, format="json").json()
    insider = alice_api.post(url(profile, "/test"), {"caller_id": "+12015550123"}, format="json").json()

    assert (outsider["allowed"], outsider["caller_id"], outsider["rule"], outsider["matched_entry"]) == (
        False,
        "anonymous",
        "not on whitelist",
        None,
    )
    assert (insider["allowed"], insider["rule"], insider["action"], insider["sip_code"]) == (
        True,
        "whitelist: +1201*",
        None,
        None,
    )


def test_the_test_endpoint_needs_a_caller_id(alice_api, profile):
    response = alice_api.post(url(profile, "/test"), {}, format="json")

    assert response.status_code == 400 and "caller_id" in response.json()["error"]["fields"]


# --- Roles and isolation -----------------------------------------------------------------------------


def test_a_viewer_reads_and_tests_but_changes_nothing(bob, token_client, profile):
    as_bob = token_client(bob.user, bob.account)

    assert as_bob.get(url(profile)).status_code == 200
    assert as_bob.get(url(profile, "/blacklist")).status_code == 200
    assert as_bob.post(url(profile, "/test"), {"caller_id": "+12015550123"}, format="json").status_code == 200
    for response in (
        as_bob.post("/api/v1/tn-profiles", {"name": "Mine"}, format="json"),
        as_bob.patch(url(profile), {"name": "Renamed"}, format="json"),
        as_bob.post(url(profile, "/blacklist"), {"add": ["+1900*"]}, format="json"),
        as_bob.delete(url(profile)),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "read_only_credential"
    assert TnProfile.objects.get(public_id=profile["id"]).name == "Front desk"
    assert not CallerListEntry.objects.exists()


def test_a_read_only_key_may_test_but_not_change_a_list(api_client, alice, profile):
    secret, _ = make_api_key(alice.account, read_only=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert api_client.post(url(profile, "/test"), {"caller_id": "+1"}, format="json").status_code == 200
    assert api_client.post(url(profile, "/whitelist"), {"add": ["+1900*"]}, format="json").status_code == 403


def test_another_accounts_profile_and_its_lists_are_not_found(charlie_api, alice_api, profile):
    alice_api.post(url(profile, "/blacklist"), {"add": ["+1900*"]}, format="json")

    for response in (
        charlie_api.get(url(profile, "/blacklist")),
        charlie_api.get(url(profile, "/whitelist")),
        charlie_api.post(url(profile, "/blacklist"), {"remove": ["+1900*"]}, format="json"),
        charlie_api.post(url(profile, "/test"), {"caller_id": "+19005551234"}, format="json"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert CallerListEntry.objects.count() == 1


def test_the_schema_documents_the_screening_rules():
    # Generated for this resource alone, so that another resource's schema trouble does not hide ours.
    router = DefaultRouter(trailing_slash=False)
    router.register("tn-profiles", TnProfileViewSet, basename="tn-profile")
    schema = SchemaGenerator(patterns=[path("api/v1/", include(router.urls))]).get_schema(request=None, public=True)

    blacklist = schema["paths"]["/api/v1/tn-profiles/{id}/blacklist"]
    assert "the blacklist wins" in blacklist["get"]["description"]
    assert "all or nothing" in blacklist["post"]["description"]
    assert "the blacklist wins" in schema["paths"]["/api/v1/tn-profiles"]["post"]["description"]
    assert "409" in schema["paths"]["/api/v1/tn-profiles/{id}"]["delete"]["responses"]

"""/api/v1/sip-connections: authentication by credentials or IP, the field rules, and what is never shown."""

from __future__ import annotations

import hashlib

import pytest
from django.conf import settings

from telephony.models import PhoneNumber, SipConnection
from telephony.tests.isolation_sip import make_number
from tenants.models import AuditEntry
from tenants.tests.factories import make_api_key

pytestmark = pytest.mark.django_db

URL = "/api/v1/sip-connections"
PASSWORD = "trunk-secret-2024"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324


def create(client, **fields):
    body = {"name": "Office PBX", "username": "office-pbx", "password": PASSWORD, **fields}
    return client.post(URL, body, format="json")


def ip_trunk(client, allowed_ips, **fields):
    return client.post(URL, {"name": "Carrier", "auth_type": "ip", "allowed_ips": allowed_ips, **fields}, format="json")


def field_codes(response) -> dict:
    body = response.json()["error"]
    return {"code": body["code"], "fields": sorted(body["fields"])}


# --- Credentials ---------------------------------------------------------------------------------


def test_it_creates_a_credentials_connection_and_stores_only_digest_hashes(alice_api):
    response = create(alice_api)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["username"] == "office-pbx"
    assert body["auth_type"] == "credentials"
    assert body["registrar"] == settings.PLATFORM_SIP_DOMAIN
    assert body["codecs"] == ["PCMU", "PCMA", "telephone-event"]
    row = SipConnection.objects.values().get(public_id=body["id"])
    realm = settings.PLATFORM_SIP_DOMAIN
    assert row["ha1"] == md5(f"office-pbx:{realm}:{PASSWORD}")
    assert row["ha1b"] == md5(f"office-pbx@{realm}:{realm}:{PASSWORD}")
    assert PASSWORD not in str(row)


def test_it_never_returns_the_password_or_the_hashes(alice_api):
    created = create(alice_api).json()
    row = SipConnection.objects.get(public_id=created["id"])

    responses = [
        alice_api.get(URL),
        alice_api.get(f"{URL}/{created['id']}"),
        alice_api.patch(f"{URL}/{created['id']}", {"password": "another-secret-99"}, format="json"),
    ]

    for response in responses:
        assert response.status_code == 200
        text = response.content.decode().lower()
        assert "ha1" not in text and "password" not in text
        assert row.ha1 not in text and PASSWORD not in text


def test_it_requires_a_username_and_password_for_credentials(alice_api):
    response = alice_api.post(URL, {"name": "PBX"}, format="json")

    assert response.status_code == 400
    assert field_codes(response)["fields"] == ["password", "username"]


@pytest.mark.parametrize(
    "password,code",
    [
        ("short-1", "password_too_short"),
        ("12345678901234", "password_all_digits"),
        ("my-Office-PBX-secret", "password_contains_username"),
    ],
)
def test_it_applies_the_sip_password_rules(alice_api, password, code):
    response = create(alice_api, password=password)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert list(response.json()["error"]["fields"]) == ["password"]


@pytest.mark.parametrize("username", ["ab", "x" * 65, "office pbx", "office@pbx"])
def test_it_applies_the_username_rules(alice_api, username):
    response = create(alice_api, username=username)

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["username"]


def test_a_username_is_unique_across_accounts_whatever_its_case(alice_api, charlie_api):
    assert create(alice_api, username="Office-PBX").status_code == 201

    response = create(charlie_api, username="office-pbx")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "username_taken"
    assert list(error["fields"]) == ["username"]
    assert "Account A" not in response.content.decode() and "account-a" not in response.content.decode()
    assert SipConnection.objects.count() == 1


def test_a_new_username_needs_the_password_too(alice_api):
    connection = create(alice_api).json()

    refused = alice_api.patch(f"{URL}/{connection['id']}", {"username": "pbx-2"}, format="json")
    accepted = alice_api.patch(
        f"{URL}/{connection['id']}", {"username": "pbx-2", "password": "new-trunk-secret"}, format="json"
    )

    assert refused.status_code == 400
    assert list(refused.json()["error"]["fields"]) == ["password"]
    assert accepted.status_code == 200
    row = SipConnection.objects.get(public_id=connection["id"])
    assert row.ha1 == md5(f"pbx-2:{settings.PLATFORM_SIP_DOMAIN}:new-trunk-secret")


def test_changing_the_password_replaces_both_hashes_and_is_audited_without_them(alice_api):
    connection = create(alice_api).json()
    before = SipConnection.objects.get(public_id=connection["id"])

    response = alice_api.patch(f"{URL}/{connection['id']}", {"password": "second-trunk-secret"}, format="json")

    assert response.status_code == 200
    after = SipConnection.objects.get(public_id=connection["id"])
    assert after.ha1 != before.ha1 and after.ha1b != before.ha1b
    assert after.ha1b == md5(
        f"office-pbx@{settings.PLATFORM_SIP_DOMAIN}:{settings.PLATFORM_SIP_DOMAIN}:second-trunk-secret"
    )
    entries = AuditEntry.objects.filter(object_id=connection["id"])
    assert set(entries.values_list("action", flat=True)) == {
        "sip_connection.created",
        "sip_connection.password_changed",
    }
    logged = str(list(entries.values("before", "after")))
    assert "second-trunk-secret" not in logged and after.ha1 not in logged and before.ha1 not in logged


# --- IP authentication ---------------------------------------------------------------------------


def test_it_creates_an_ip_connection_with_normalized_networks(alice_api):
    response = ip_trunk(alice_api, ["203.0.113.7", "198.51.100.77/24", "203.0.113.7/32", "2001:db8:0::/48"])

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["allowed_ips"] == ["203.0.113.7", "198.51.100.0/24", "2001:db8::/48"]
    assert body["username"] is None and body["registrar"] is None


def test_an_ip_connection_needs_at_least_one_address(alice_api):
    response = ip_trunk(alice_api, [])

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["allowed_ips"]


@pytest.mark.parametrize(
    "entry,code",
    [
        ("0.0.0.0/0", "ip_network_too_broad"),
        ("10.0.0.0/15", "ip_network_too_broad"),
        ("2001:db8::/47", "ip_network_too_broad"),
        ("127.0.0.1", "ip_not_allowed"),
        ("224.0.0.5", "ip_not_allowed"),
        ("fe80::1", "ip_not_allowed"),
        ("not-an-ip", "ip_invalid"),
        ("203.0.113.300", "ip_invalid"),
    ],
)
def test_it_refuses_unsafe_or_invalid_entries_by_position(alice_api, entry, code):
    response = ip_trunk(alice_api, ["203.0.113.7", entry])

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert list(response.json()["error"]["fields"]) == ["allowed_ips.1"]


def test_it_accepts_networks_as_broad_as_the_safety_rule_allows(alice_api):
    response = ip_trunk(alice_api, ["10.20.0.0/16", "2001:db8:1::/48"])
    assert response.status_code == 201, response.json()


def test_it_refuses_more_than_fifty_entries(alice_api):
    response = ip_trunk(alice_api, [f"203.0.113.{n}" for n in range(51)])

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many"


def test_switching_to_ip_retires_the_credentials(alice_api):
    connection = create(alice_api).json()

    response = alice_api.patch(
        f"{URL}/{connection['id']}", {"auth_type": "ip", "allowed_ips": ["203.0.113.9"]}, format="json"
    )

    assert response.status_code == 200, response.json()
    row = SipConnection.objects.get(public_id=connection["id"])
    assert (row.username, row.ha1, row.ha1b) == (None, "", "")
    # The username is free again for anyone.
    assert create(alice_api, name="Other").status_code == 201


def test_switching_to_ip_without_addresses_is_refused(alice_api):
    connection = create(alice_api).json()

    response = alice_api.patch(f"{URL}/{connection['id']}", {"auth_type": "ip"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["allowed_ips"]


def test_switching_to_credentials_requires_username_and_password(alice_api):
    connection = ip_trunk(alice_api, ["203.0.113.7"]).json()
    url = f"{URL}/{connection['id']}"

    refused = alice_api.patch(url, {"auth_type": "credentials"}, format="json")
    accepted = alice_api.patch(
        url, {"auth_type": "credentials", "username": "carrier-1", "password": PASSWORD}, format="json"
    )

    assert refused.status_code == 400
    assert sorted(refused.json()["error"]["fields"]) == ["password", "username"]
    assert accepted.status_code == 200
    assert accepted.json()["allowed_ips"] == []


def test_an_allow_list_on_a_credentials_connection_is_refused(alice_api):
    response = create(alice_api, allowed_ips=["203.0.113.7"])

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_applicable"


# --- Inbound, codecs, caller ID, limits ----------------------------------------------------------


@pytest.mark.parametrize(
    "host,expected",
    [
        ("PBX.Example.com.", "pbx.example.com"),
        ("93.184.216.34", "93.184.216.34"),
        ("[2606:4700::1111]", "2606:4700::1111"),
        ("", ""),
    ],
)
def test_it_accepts_a_hostname_or_an_ip_as_the_inbound_host(alice_api, host, expected):
    response = create(alice_api, inbound_host=host, inbound_port=5080, inbound_transport="tls")

    assert response.status_code == 201, response.json()
    assert response.json()["inbound_host"] == expected
    assert response.json()["inbound_transport"] == "tls"


@pytest.mark.parametrize(
    "host,code",
    [
        ("pbx.example.com:5060", "host_invalid"),
        ("sip://pbx.example.com", "host_invalid"),
        ("pbx", "host_invalid"),
        ("-pbx.example.com", "host_invalid"),
        ("10.1.2.3", "host_forbidden_address"),
        ("169.254.169.254", "host_forbidden_address"),
        ("localhost", "host_invalid"),
        ("sip.example.net", "host_loop"),
        ("acme.sip.example.net", "host_loop"),
    ],
)
def test_it_refuses_bad_or_forbidden_inbound_hosts(alice_api, host, code):
    response = create(alice_api, inbound_host=host)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert list(response.json()["error"]["fields"]) == ["inbound_host"]


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_it_refuses_ports_outside_1_to_65535(alice_api, port):
    response = create(alice_api, inbound_port=port)

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["inbound_port"]


def test_it_keeps_codecs_in_order_in_their_canonical_spelling(alice_api):
    response = create(alice_api, codecs=["opus", "g722", "PCMU", "Telephone-Event"])

    assert response.status_code == 201
    assert response.json()["codecs"] == ["OPUS", "G722", "PCMU", "telephone-event"]


def test_an_unknown_codec_is_named_by_position(alice_api):
    response = create(alice_api, codecs=["PCMU", "SPEEX9"])

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "codec_unknown"
    assert list(error["fields"]) == ["codecs.1"]
    assert "SPEEX9" in error["fields"]["codecs.1"][0]


@pytest.mark.parametrize(
    "codecs,code",
    [(["PCMU", "pcmu"], "codec_duplicate"), (["telephone-event"], "codec_audio_required"), ([], "codec_required")],
)
def test_it_refuses_duplicate_dtmf_only_or_empty_codec_lists(alice_api, codecs, code):
    response = create(alice_api, codecs=codecs)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_the_default_number_policy_needs_one_of_the_accounts_numbers(alice_api, alice, charlie):
    mine = make_number(alice.account, "+12015550100")
    theirs = make_number(charlie.account, "+12015550199")
    released = make_number(alice.account, "+12015550101", status=PhoneNumber.Status.RELEASED)

    missing = create(alice_api, caller_id_policy="default_number")
    other_account = create(alice_api, caller_id_policy="default_number", default_caller_id=str(theirs.public_id))
    not_active = create(alice_api, caller_id_policy="default_number", default_caller_id=released.number)
    by_number = create(alice_api, caller_id_policy="default_number", default_caller_id="+12015550100")

    assert missing.status_code == other_account.status_code == not_active.status_code == 400
    assert list(missing.json()["error"]["fields"]) == ["default_caller_id"]
    assert other_account.json()["error"]["fields"] == not_active.json()["error"]["fields"]
    assert by_number.status_code == 201
    assert by_number.json()["default_caller_id"] == {
        "id": str(mine.public_id),
        "number": "+12015550100",
        "description": "",
        "voice_enabled": True,
    }


@pytest.mark.parametrize("limit", [0, -3, 10_001])
def test_it_refuses_a_channel_limit_outside_1_to_10000(alice_api, limit):
    response = create(alice_api, channel_limit=limit)

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["channel_limit"]


def test_it_reports_every_bad_field_at_once(alice_api):
    response = create(alice_api, username="x", inbound_port=0, codecs=["NOPE"], channel_limit=0)

    assert response.status_code == 400
    assert sorted(response.json()["error"]["fields"]) == ["channel_limit", "codecs.0", "inbound_port", "username"]


# --- Lifecycle and access ------------------------------------------------------------------------


def test_it_lists_filters_updates_and_deletes_with_an_audit_trail(alice_api, alice):
    first = create(alice_api).json()
    ip_trunk(alice_api, ["203.0.113.7"])
    number = make_number(alice.account, "+12015550100", sip_connection=SipConnection.objects.get(public_id=first["id"]))

    assert alice_api.get(URL).json()["count"] == 2
    assert [c["name"] for c in alice_api.get(URL, {"auth_type": "ip"}).json()["results"]] == ["Carrier"]
    patched = alice_api.patch(f"{URL}/{first['id']}", {"name": "HQ PBX", "is_active": False}, format="json")
    assert patched.json()["name"] == "HQ PBX" and patched.json()["is_active"] is False
    assert alice_api.delete(f"{URL}/{first['id']}").status_code == 204

    number.refresh_from_db()
    assert number.sip_connection is None
    actions = list(
        AuditEntry.objects.filter(object_id=first["id"]).order_by("created_at", "id").values_list("action", flat=True)
    )
    assert actions == ["sip_connection.created", "sip_connection.updated", "sip_connection.deleted"]
    deleted = AuditEntry.objects.get(object_id=first["id"], action="sip_connection.deleted")
    assert deleted.before["numbers"] == ["+12015550100"]


def test_a_viewer_reads_but_cannot_write(alice_api, bob, token_client):
    connection = create(alice_api).json()
    as_bob = token_client(bob.user, bob.account)

    assert as_bob.get(f"{URL}/{connection['id']}").status_code == 200
    assert create(as_bob, username="bob-pbx").status_code == 403
    assert as_bob.patch(f"{URL}/{connection['id']}", {"name": "x"}, format="json").status_code == 403
    assert as_bob.delete(f"{URL}/{connection['id']}").status_code == 403


def test_a_read_only_key_cannot_create(alice):
    from rest_framework.test import APIClient

    secret, _ = make_api_key(alice.account, read_only=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    response = create(client)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "read_only_credential"


def test_charlie_cannot_see_or_touch_alices_connection(alice_api, charlie_api):
    connection = create(alice_api).json()
    url = f"{URL}/{connection['id']}"

    for response in (
        charlie_api.get(url),
        charlie_api.get(f"{url}/numbers"),
        charlie_api.get(f"{url}/invites"),
        charlie_api.post(f"{url}/invites", {"name": "x"}, format="json"),
        charlie_api.patch(url, {"name": "stolen"}, format="json"),
    ):
        assert response.status_code == 404
    assert charlie_api.get(URL).json()["count"] == 0


@pytest.mark.postgres
def test_two_accounts_racing_for_one_username_get_one_connection_and_one_400(transactional_db, alice, charlie):
    import threading

    from django.core.exceptions import ValidationError
    from django.db import connection as db_connection

    from telephony.services import sip as services

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def race(account) -> None:
        barrier.wait()
        try:
            services.sip_connection_create(
                account=account, actor=None, name="PBX", username="shared-pbx", password=PASSWORD
            )
            outcomes.append("created")
        except ValidationError as exc:
            outcomes.append(exc.error_dict["username"][0].code)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=race, args=(account,)) for account in (alice.account, charlie.account)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["created", "username_taken"]
    assert SipConnection.objects.filter(username__iexact="shared-pbx").count() == 1

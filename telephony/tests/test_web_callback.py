"""/api/v1/web-callback (Acrobits Cloud Softphone): each request format, credentials, answers per Accept."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode

import pytest
from defusedxml import ElementTree
from django.conf import settings

from telephony.models import Call, Event, SimulatorRule, WebCallbackSettings
from telephony.services import sip as sip_services
from telephony.services import web_callback
from telephony.tests.engine_support import drive
from telephony.tests.isolation_sip import make_number

pytestmark = pytest.mark.django_db

URL = "/api/v1/web-callback"
PASSWORD = "blue-lantern-42!"
TARGET, CALLBACK = "+13105550123", "+13105559876"


@pytest.fixture
def mary(alice):
    domain = sip_services.sip_domain_create(account=alice.account, actor=None, name="acme")
    number = make_number(alice.account, "+12015550150")
    return sip_services.sip_user_create(
        account=alice.account, actor=None, domain=domain, login="mary", password=PASSWORD, caller_id_number=number
    )


def username(user) -> str:
    return f"{user.login}@{user.domain.domain}"


def call_get(client, params: dict, accept: str = "", secure: bool = True):
    extra = {"HTTP_ACCEPT": accept} if accept else {}
    return client.get(URL, params, secure=secure, **extra)


def call_post_form(client, params: dict, accept: str = ""):
    extra = {"HTTP_ACCEPT": accept} if accept else {}
    body = urlencode(params)
    return client.post(URL, body, content_type="application/x-www-form-urlencoded", secure=True, **extra)


def call_post_json(client, params: dict, accept: str = ""):
    extra = {"HTTP_ACCEPT": accept} if accept else {}
    return client.post(URL, json.dumps(params), content_type="application/json", secure=True, **extra)


def message_of(response) -> str:
    content_type = response["Content-Type"]
    text = response.content.decode()
    if content_type.startswith("application/json"):
        return json.loads(text)["message"]
    if content_type.startswith("application/xml"):
        return ElementTree.fromstring(text).findtext("message")
    assert content_type.startswith("application/x-www-form-urlencoded")
    return parse_qs(text)["message"][0]


GOOD = {
    "GET query, Acrobits names": (call_get, {"targetNumber": TARGET, "callbackNumber": CALLBACK}),
    "POST form, short names": (call_post_form, {"to": TARGET, "callback": CALLBACK}),
    "POST JSON, wcb_postData": (call_post_json, {"to": TARGET, "callback": CALLBACK}),
}


@pytest.mark.parametrize("send,numbers", GOOD.values(), ids=GOOD.keys())
def test_it_rings_the_callback_number_with_the_users_caller_id_and_dials_the_target(client, mary, send, numbers):
    response = send(client, {"username": username(mary), "password": PASSWORD, **numbers})

    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    call = Call.objects.get()
    assert response.json()["call_id"] == str(call.public_id) and "message" in response.json()
    assert (call.direction, call.from_number, call.to_number) == ("outbound-api", "+12015550150", CALLBACK)
    assert call.sip_user == mary and call.tag == "web-callback"
    dial = call.document["children"][0] if "children" in call.document else None
    assert TARGET in json.dumps(call.document), dial


@pytest.mark.parametrize("send", [call_get, call_post_form, call_post_json], ids=["GET", "POST form", "POST JSON"])
@pytest.mark.parametrize("accept", ["application/json", "application/xml", "application/x-www-form-urlencoded"])
def test_wrong_credentials_get_401_with_a_message_in_the_format_asked_for(client, mary, send, accept):
    response = send(client, {"username": username(mary), "password": "wrong-password!", "to": TARGET,
                             "callback": CALLBACK}, accept)  # fmt: skip

    assert response.status_code == 401
    assert response["Content-Type"].startswith(accept)
    assert message_of(response) == "Wrong username or password."
    assert not Call.objects.exists()


def test_a_bare_login_with_the_domain_and_the_acrobits_u_p_names_work(client, mary):
    response = call_get(
        client, {"u": "MARY", "domain": mary.domain.domain, "p": PASSWORD, "to": TARGET, "callback": CALLBACK}
    )

    assert response.status_code == 200, response.content


def test_an_unknown_user_and_an_inactive_one_look_like_a_wrong_password(client, mary):
    unknown = call_get(client, {"username": f"nobody@{mary.domain.domain}", "password": PASSWORD, "to": TARGET,
                                "callback": CALLBACK})  # fmt: skip
    sip_services.sip_user_update(account=mary.account, actor=None, sip_user=mary, is_active=False)
    inactive = call_get(client, {"username": username(mary), "password": PASSWORD, "to": TARGET, "callback": CALLBACK})

    assert unknown.status_code == inactive.status_code == 401
    assert unknown.content == inactive.content


def test_repeated_bad_credentials_are_throttled_even_with_the_right_password_after(client, mary):
    params = {"username": username(mary), "password": "wrong-password!", "to": TARGET, "callback": CALLBACK}
    for _ in range(web_callback.FAILURE_LIMIT):
        assert call_get(client, params).status_code == 401

    response = call_get(client, {**params, "password": PASSWORD})

    assert response.status_code == 429 and response["Retry-After"]
    assert "Too many" in message_of(response)
    assert not Call.objects.exists()


def test_bad_credentials_from_many_addresses_are_throttled_per_user_however_the_username_is_spelled(client, mary):
    domain = mary.domain.domain
    spellings = [{"username": f"MARY@{domain}"}, {"username": f" mary@{domain} "}, {"username": f"sip:mary@{domain}"},
                 {"username": "mary", "domain": domain.upper()}, {"username": f"Mary@{domain}"}]  # fmt: skip
    assert len(spellings) == web_callback.FAILURE_LIMIT
    for index, spelling in enumerate(spellings):
        params = {**spelling, "password": "wrong-password!", "to": TARGET, "callback": CALLBACK}
        assert client.get(URL, params, secure=True, REMOTE_ADDR=f"198.51.100.{index + 1}").status_code == 401

    params = {"username": username(mary), "password": PASSWORD, "to": TARGET, "callback": CALLBACK}
    response = client.get(URL, params, secure=True, REMOTE_ADDR="198.51.100.200")

    assert response.status_code == 429
    assert not Call.objects.exists()


@pytest.mark.parametrize("spelling", [{"username": "ma\x00ry@acme"}, {"username": "mary", "domain": "ac\x00me"}])
def test_a_nul_character_in_the_username_is_a_wrong_password_not_a_server_error(client, mary, spelling):
    params = {**spelling, "password": PASSWORD, "to": TARGET, "callback": CALLBACK}

    response = call_post_json(client, params, accept="application/xml")

    assert response.status_code == 401
    assert message_of(response) == "Wrong username or password."


def test_a_password_over_plain_http_is_refused_in_production_settings(client, mary):
    assert settings.WEB_CALLBACK_REQUIRE_HTTPS  # the test settings run with DEBUG off, like production

    response = call_get(
        client, {"username": username(mary), "password": PASSWORD, "to": TARGET, "callback": CALLBACK}, secure=False
    )

    assert response.status_code == 403 and "HTTPS" in message_of(response)
    assert not Call.objects.exists()


@pytest.mark.parametrize(
    "numbers,status,words",
    [
        ({"to": "not-a-number", "callback": CALLBACK}, 400, "Unknown number"),
        ({"callback": CALLBACK}, 400, "targetNumber"),
        ({"to": TARGET}, 400, "callbackNumber"),
        ({"to": "+19005550123", "callback": CALLBACK}, 403, "premium-rate"),  # the destination policy says no
    ],
)
def test_a_request_that_cannot_be_placed_is_refused_with_a_message(client, mary, numbers, status, words):
    response = call_get(client, {"username": username(mary), "password": PASSWORD, **numbers}, "application/xml")

    assert response.status_code == status, response.content
    assert words in message_of(response) and message_of(response)
    assert not Call.objects.filter(status="queued").exists()


def test_a_user_without_a_caller_id_is_told_so(client, mary):
    sip_services.sip_user_update(account=mary.account, actor=None, sip_user=mary, caller_id_number=None)

    response = call_get(client, {"username": username(mary), "password": PASSWORD, "to": TARGET, "callback": CALLBACK})

    assert response.status_code == 403 and "caller ID" in message_of(response)


def test_the_account_can_ring_the_target_first(client, mary):
    web_callback.web_callback_settings_update(account=mary.account, actor=None, enabled=True, order="target_first")

    response = call_post_json(client, {"username": username(mary), "password": PASSWORD, "to": TARGET,
                                       "callback": CALLBACK})  # fmt: skip

    assert response.status_code == 200
    call = Call.objects.get()
    assert call.to_number == TARGET and CALLBACK in json.dumps(call.document)
    assert WebCallbackSettings.objects.get(account=mary.account).order == "target_first"


def test_both_legs_appear_in_the_call_log_bridged(client, mary):
    SimulatorRule.objects.create(match=CALLBACK, action="answer")
    SimulatorRule.objects.create(match=TARGET, action="answer", hangup_after_ms=5000)

    response = call_get(client, {"username": username(mary), "password": PASSWORD, "to": TARGET, "callback": CALLBACK})
    first = drive(Call.objects.get(public_id=response.json()["call_id"]))

    second = first.children.get()
    assert (first.to_number, first.status) == (CALLBACK, "completed")
    assert (second.to_number, second.from_number, second.answered_at is not None) == (TARGET, "+12015550150", True)
    assert Event.objects.filter(type="call.bridged", object_id=str(first.public_id)).exists()


def test_a_full_outbound_queue_is_reported_as_a_limit(client, mary):
    from telephony.services import outbound

    outbound.outbound_policy_update(account=mary.account, actor=None, calls_per_second=0.01, max_queue_wait_s=1)
    params = {"username": username(mary), "password": PASSWORD, "to": TARGET, "callback": CALLBACK}
    assert call_get(client, params).status_code == 200  # takes the only slot within the queue wait

    response = call_get(client, params)

    assert response.status_code == 403 and "queue is full" in message_of(response)

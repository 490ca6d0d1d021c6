"""Simulated inbound calls: POST /api/v1/simulator/inbound-calls and the portal's test-call form."""

from __future__ import annotations

import pytest
from django.urls import reverse

from telephony.models import Call
from telephony.services import profiles as profile_services
from telephony.tests.engine_support import number_for_app
from tenants.tests.factories import make_api_key
from tenants.tests.fixtures import wait_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/simulator/inbound-calls"
FLOW = "<Response><Say>Hello</Say></Response>"


def test_it_places_a_call_through_the_inbound_path(alice, alice_api):
    number, app = number_for_app(alice.account, FLOW)

    response = alice_api.post(URL, {"from": "+12125550100", "to": number.number, "digits": "1#|2"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    call = Call.objects.get(public_id=body["call_id"])
    assert body == {
        "call_id": str(call.public_id),
        "status": "ringing",
        "accepted": True,
        "sip_code": None,
        "reason": "Routed to its app",
    }
    assert call.app == app and call.source == "simulated" and call.from_number == "+12125550100"


def test_a_refused_call_is_created_with_its_sip_code(alice, alice_api):
    number, _ = number_for_app(alice.account, FLOW)
    profile = profile_services.tn_profile_create(account=alice.account, actor=None, name="Screen")
    profile_services.caller_list_change(
        account=alice.account, actor=None, profile=profile, list_type="blacklist", add=["+12125550100"]
    )
    number.tn_profile = profile
    number.save(update_fields=["tn_profile"])

    body = alice_api.post(URL, {"from": "+12125550100", "to": number.number}, format="json").json()

    assert body["accepted"] is False and body["status"] == "failed" and body["sip_code"] == 603
    assert "blacklist" in body["reason"]


def test_another_accounts_number_and_an_unknown_one_are_the_same_400(alice, charlie_api):
    number, _ = number_for_app(alice.account, FLOW)

    theirs = charlie_api.post(URL, {"from": "+12125550100", "to": number.number}, format="json")
    unknown = charlie_api.post(URL, {"from": "+12125550100", "to": "+19995550000"}, format="json")

    assert theirs.status_code == unknown.status_code == 400
    assert theirs.json()["error"]["fields"] == unknown.json()["error"]["fields"]
    assert theirs.json()["error"]["code"] == "unknown_number"
    assert Call.objects.count() == 0


def test_bad_input_names_the_field(alice, alice_api):
    number, _ = number_for_app(alice.account, FLOW)

    response = alice_api.post(URL, {"from": "+12125550100", "to": number.number, "digits": "12x"}, format="json")
    missing = alice_api.post(URL, {"to": number.number}, format="json")

    assert response.status_code == 400 and "digits" in response.json()["error"]["fields"]
    assert missing.status_code == 400 and "from" in missing.json()["error"]["fields"]


def test_viewers_and_read_only_keys_cannot_place_calls(alice, bob, token_client, api_client):
    number, _ = number_for_app(alice.account, FLOW)
    secret, _ = make_api_key(alice.account, read_only=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    as_viewer = token_client(bob.user, alice.account).post(URL, {"from": "+1212", "to": number.number}, format="json")
    as_reader = api_client.post(URL, {"from": "+12125550100", "to": number.number}, format="json")

    assert as_viewer.status_code == as_reader.status_code == 403
    assert Call.objects.count() == 0


def test_it_is_not_found_while_the_simulator_is_disabled(alice, alice_api, settings):
    settings.SIMULATOR_ENABLED = False
    number, _ = number_for_app(alice.account, FLOW)

    response = alice_api.post(URL, {"from": "+12125550100", "to": number.number}, format="json")

    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# --- Portal -----------------------------------------------------------------------------------------------


def test_the_call_log_offers_the_test_call_form_to_writers_only(alice, bob, client, settings):
    number, _ = number_for_app(alice.account, FLOW)
    page = reverse("call-list", kwargs={"account": alice.account.slug})

    client.force_login(alice.user)
    html = client.get(page).content.decode()
    assert 'data-testid="test-call-form"' in html and f'<option value="{number.number}">' in html

    client.force_login(bob.user)
    assert 'data-testid="test-call-form"' not in client.get(page).content.decode()

    settings.SIMULATOR_ENABLED = False
    client.force_login(alice.user)
    assert 'data-testid="test-call"' not in client.get(page).content.decode()


def test_the_form_places_the_call_and_opens_it(alice, client):
    number, _ = number_for_app(alice.account, FLOW)
    client.force_login(alice.user)

    response = client.post(
        reverse("simulator-inbound-call", kwargs={"account": alice.account.slug}),
        {"from": "+12125550100", "to": number.number, "digits": ""},
    )

    call = Call.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("call-detail", kwargs={"account": alice.account.slug, "id": call.public_id})


def test_the_form_refuses_a_number_of_another_account(alice, charlie, client):
    number, _ = number_for_app(alice.account, FLOW)
    client.force_login(charlie.user)

    response = client.post(
        reverse("simulator-inbound-call", kwargs={"account": charlie.account.slug}),
        {"from": "+12125550100", "to": number.number},
    )

    assert response.status_code == 302 and Call.objects.count() == 0


def test_viewers_cannot_post_the_form(alice, bob, client):
    number, _ = number_for_app(alice.account, FLOW)
    client.force_login(bob.user)

    response = client.post(
        reverse("simulator-inbound-call", kwargs={"account": alice.account.slug}),
        {"from": "+12125550100", "to": number.number},
    )

    assert response.status_code == 403 and Call.objects.count() == 0


# --- End to end, with a worker -------------------------------------------------------------------------------


@pytest.mark.worker
def test_a_real_worker_runs_the_call_to_its_end(celery_worker, alice_api, alice):
    number, _ = number_for_app(
        alice.account,
        '<Response><Gather dtmf_length="1"><Say>Press 1</Say><DTMF value="1"><Say>Thanks</Say></DTMF></Gather>'
        '<Hangup tag="done"/></Response>',
    )

    body = alice_api.post(URL, {"from": "+12125550100", "to": number.number, "digits": "1"}, format="json").json()

    detail = wait_for(
        lambda: (d := alice_api.get(f"/api/v1/calls/{body['call_id']}").json())["status"] == "completed" and d,
        timeout=60,
        message="the worker to run the call",
    )
    assert detail["end_reason"] == "done"
    commands = [e["command"]["name"] for e in detail["timeline"] if e["kind"] == "command"]
    assert commands == ["Say", "Gather", "Say", "Hangup"]  # the prompt ends before the Gather


def test_the_app_page_offers_the_apps_own_numbers(alice, client):
    number, app = number_for_app(alice.account, FLOW)
    other, _ = number_for_app(alice.account, FLOW)
    client.force_login(alice.user)

    page = client.get(reverse("app-detail", kwargs={"account": alice.account.slug, "id": app.public_id}))
    form = page.content.decode().split('data-testid="test-call-form"', 1)[1].split("</form>", 1)[0]

    assert f'<option value="{number.number}">' in form and other.number not in form

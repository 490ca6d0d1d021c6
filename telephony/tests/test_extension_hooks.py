"""Extension event hooks (VoipNow CallAPI Events): the nested API, and the requests a SIP user's calls fire.

Delivery is real: a Celery worker runs the calls and sends the hooks to a real local server (GET: parameters in
the query string; POST: form-encoded body). A disabled hook sends nothing.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from telephony.models import Call, Delivery, ExtensionHook, SimulatorRule
from telephony.services import extension_hooks
from telephony.services import sip as sip_services
from telephony.tests.engine_support import drive, place
from telephony.tests.isolation_sip import make_number
from telephony.tests.receivers import Receiver, receiver_fixture  # noqa: F401 - the `receiver` fixture
from tenants.tests.fixtures import wait_for

PASSWORD = "blue-lantern-42!"


@pytest.fixture
def mary(alice):
    domain = sip_services.sip_domain_create(account=alice.account, actor=None, name="acme")
    caller_id = make_number(alice.account, "+12015550150")
    return sip_services.sip_user_create(
        account=alice.account, actor=None, domain=domain, login="mary", password=PASSWORD, first_name="Mary",
        last_name="Jones", caller_id_number=caller_id,
    )  # fmt: skip


def hooks_url(user, hook=None) -> str:
    url = f"/api/v1/sip-users/{user.public_id}/event-hooks"
    return f"{url}/{hook}" if hook else url


def params_of(received) -> dict[str, str]:
    query = parse_qs(urlsplit(received.path).query, keep_blank_values=True)
    body = parse_qs(received.text, keep_blank_values=True) if received.method == "POST" else {}
    return {key: values[-1] for key, values in {**query, **body}.items()}


# --- The API ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_adds_lists_edits_and_removes_hooks(alice_api, mary):
    created = alice_api.post(
        hooks_url(mary),
        {"event": "dial-in", "method": "GET", "url": "http://127.0.0.1:9/in", "notes": "CRM pop-up"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    hook_id = created.json()["id"]
    assert created.json()["enabled"] is True and created.json()["sip_user"] == str(mary.public_id)

    assert [h["id"] for h in alice_api.get(hooks_url(mary)).json()["results"]] == [hook_id]
    edited = alice_api.patch(hooks_url(mary, hook_id), {"enabled": False, "method": "POST"}, format="json")
    assert edited.status_code == 200 and edited.json()["enabled"] is False and edited.json()["method"] == "POST"
    assert alice_api.get(hooks_url(mary, hook_id)).json()["url"] == "http://127.0.0.1:9/in"

    assert alice_api.delete(hooks_url(mary, hook_id)).status_code == 204
    assert not ExtensionHook.objects.exists()
    assert alice_api.get(hooks_url(mary, hook_id)).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body,field",
    [
        ({"event": "ringing", "url": "http://127.0.0.1:9/x"}, "event"),
        ({"event": "hangup", "method": "PUT", "url": "http://127.0.0.1:9/x"}, "method"),
        ({"event": "hangup", "url": "ftp://example.com/x"}, "url"),
    ],
)
def test_it_refuses_a_bad_hook_naming_the_field(alice_api, mary, body, field):
    response = alice_api.post(hooks_url(mary), body, format="json")

    assert response.status_code == 400 and field in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_a_url_the_outbound_policy_forbids_is_refused(alice_api, mary, settings):
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = False

    response = alice_api.post(hooks_url(mary), {"event": "hangup", "url": "http://127.0.0.1:9/x"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_forbidden_address"


@pytest.mark.django_db
def test_another_accounts_user_and_hooks_are_not_found(alice_api, charlie_api, mary):
    hook = extension_hooks.extension_hook_create(
        account=mary.account, actor=None, sip_user=mary, event="hangup", url="http://127.0.0.1:9/x"
    )

    assert charlie_api.get(hooks_url(mary)).status_code == 404
    assert charlie_api.post(hooks_url(mary), {"event": "hangup", "url": "http://127.0.0.1:9/y"}).status_code == 404
    assert charlie_api.patch(hooks_url(mary, hook.public_id), {"enabled": False}).status_code == 404
    assert charlie_api.delete(hooks_url(mary, hook.public_id)).status_code == 404
    assert ExtensionHook.objects.get().enabled is True


# --- Firing ---------------------------------------------------------------------------------------------


@pytest.mark.worker
def test_a_call_to_the_user_fires_dial_in_answer_and_hangup_with_get_and_post(celery_worker, mary, receiver):
    disabled = Receiver()
    try:
        number = make_number(mary.account, "+12015550160", sip_user=mary)
        SimulatorRule.objects.create(match=mary.sip_uri, action="answer", hangup_after_ms=2000)
        for event, method in (("dial-in", "GET"), ("answer", "POST"), ("hangup", "POST")):
            extension_hooks.extension_hook_create(
                account=mary.account, actor=None, sip_user=mary, event=event, method=method, url=receiver.url
            )
        extension_hooks.extension_hook_create(
            account=mary.account, actor=None, sip_user=mary, event="dial-in", url=disabled.url, enabled=False
        )

        call = place(number)  # committed: the worker runs the call and sends the hooks

        wait_for(lambda: receiver.count() == 3, timeout=60, message="three hook requests")
        wait_for(lambda: Call.objects.get(pk=call.pk).is_final, timeout=60, message="the call to end")
        leg = Call.objects.get(parent=call)
        by_status = {}
        for received in receiver.requests:
            by_status.setdefault(params_of(received)["CallStatus"], []).append(received)
        dial_in = by_status["CALLING"][0]
        assert dial_in.method == "GET" and "CallID=" in dial_in.path  # GET: in the query string
        assert params_of(dial_in) == {
            "CallID": str(leg.public_id), "CallerIDNum": "+12125550100", "CallerIDName": "", "CallerIDNam": "",
            "CalledDID": number.number, "CalledExtension": "mary", "CallStatus": "CALLING", "CallFlow": "IN",
            "CallerExtension": "", "CalledNumber": number.number,
        }  # fmt: skip
        posted = by_status["ANSWER"]
        assert len(posted) == 2 and all(r.method == "POST" and "CallID=" in r.text for r in posted)
        assert all(params_of(r)["CallFlow"] == "IN" and params_of(r)["CalledExtension"] == "mary" for r in posted)
        assert Delivery.objects.filter(kind="extension_hook", call=leg).count() == 3
        assert disabled.count() == 0
    finally:
        disabled.stop()


@pytest.mark.django_db
def test_a_call_placed_for_the_user_fires_dial_out_and_an_unanswered_hangup_is_unknown(mary, client):
    SimulatorRule.objects.create(match="+13105550123", action="no-answer")
    for event in ("dial-out", "hangup"):
        extension_hooks.extension_hook_create(
            account=mary.account, actor=None, sip_user=mary, event=event, url="http://127.0.0.1:9/hook"
        )
    response = client.get(
        "/api/v1/web-callback",
        {"username": f"mary@{mary.domain.domain}", "password": PASSWORD, "to": "+13105559999",
         "callback": "+13105550123"},
        secure=True,
    )  # fmt: skip
    call = drive(Call.objects.get(public_id=response.json()["call_id"]))

    sent = {d.params["CallStatus"]: d.params for d in Delivery.objects.filter(kind="extension_hook", call=call)}
    assert set(sent) == {"CALLING", "UNKNOWN"}
    dial_out = sent["CALLING"]
    assert (dial_out["CallFlow"], dial_out["CallerExtension"], dial_out["CallerIDName"]) == (
        "OUT",
        "mary",
        "Mary Jones",
    )
    assert dial_out["CallerIDNam"] == "Mary Jones" and dial_out["CallerIDNum"] == "+12015550150"
    assert dial_out["CalledNumber"] == "+13105550123" and dial_out["CalledDID"] == "+13105550123"
    assert sent["UNKNOWN"]["CallFlow"] == "OUT"


@pytest.mark.django_db
def test_a_call_from_another_extension_names_both_extensions(mary):
    domain = mary.domain.domain
    root = Call(account=mary.account, direction="inbound", from_number=f"sip:john@{domain}",
                to_number=f"sip:mary@{domain}", status="in-progress")  # fmt: skip
    leg = Call(account=mary.account, parent=root, direction="outbound-dial", from_number=f"sip:john@{domain}",
               to_number=f"sip:mary@{domain}", status="initiated", sip_user=mary)  # fmt: skip

    params = extension_hooks.hook_params(sip_user=mary, event="dial-in", call=leg)

    assert (params["CallerExtension"], params["CalledExtension"], params["CallFlow"]) == ("john", "mary", "IN")
    assert params["CalledDID"] == "" and params["CalledNumber"] == f"sip:mary@{domain}"
    assert params["CallStatus"] == "CALLING" and params["CallID"] == str(leg.public_id)


@pytest.mark.django_db
def test_the_answer_and_hangup_of_a_call_the_users_phone_placed_are_out(mary):
    leg = Call(account=mary.account, direction="inbound", from_number="+12015550150", to_number="+13105550123",
               status="completed", sip_user=mary, variables={"edge": {"caller_user": True}})  # fmt: skip

    params = extension_hooks.hook_params(sip_user=mary, event="hangup", call=leg)

    assert (params["CallFlow"], params["CallerExtension"], params["CallStatus"]) == ("OUT", "mary", "UNKNOWN")
    assert params["CalledNumber"] == params["CalledDID"] == "+13105550123"

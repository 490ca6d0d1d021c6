"""Callbacks (status callbacks, extension hooks, message callbacks) through the webhook delivery engine.

In-process drains against real local receivers: the request's shape (form body, query string, JSON), the
signature with the account's callback secret, retries, the fallback URL, and the hidden per-URL endpoints that
must never show up as, or harm, the account's webhook endpoints. A real worker at the end.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from telephony import delivery as engine
from telephony.models import Delivery, Event, SimulatorRule, WebhookEndpoint
from telephony.services import callbacks
from telephony.services import webhooks as webhook_services
from telephony.services.callbacks import callback_enqueue, callbacks_purge_expired
from telephony.services.events import event_emit
from telephony.tests.engine_support import CustomerServer, drive, number_for_app, place
from telephony.tests.isolation_apps import make_call
from telephony.tests.receivers import Answer, Receiver, receiver_fixture  # noqa: F401 - the receiver fixture
from tenants.tests.factories import AccountFactory
from tenants.tests.fixtures import wait_for

pytestmark = pytest.mark.django_db

PARAMS = {"CallSid": "c-1", "CallStatus": "completed", "ParentCallSid": "", "SequenceNumber": "0"}


@pytest.fixture
def fast_retries(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0, 0]


def drain_until_idle(rounds: int = 10) -> Counter:
    totals: Counter = Counter()
    for _ in range(rounds):
        done = engine.drain(budget=5)
        if not done:
            break
        totals.update(done)
    return totals


def enqueue(account, url, **fields) -> Delivery:
    fields.setdefault("params", PARAMS)
    fields.setdefault("kind", "status_callback")
    return callback_enqueue(account=account, url=url, **fields)


def rotate(client) -> str:
    response = client.post("/api/v1/callback-signing-secret/rotate")
    assert response.status_code == 200, response.content
    return response.json()["secret"]


# --- What is written ---------------------------------------------------------------------------------


def test_a_callback_is_a_pending_delivery_on_one_hidden_endpoint_per_account_and_server(alice, charlie):
    first = enqueue(alice.account, "https://93.184.216.34/status")
    same_server = enqueue(alice.account, "https://93.184.216.34/other?call=2", method="GET")
    other_server = enqueue(alice.account, "https://93.184.216.34:8443/status")
    other_account = enqueue(charlie.account, "https://93.184.216.34/status")

    assert first.status == "pending" and first.kind == "status_callback" and first.params == PARAMS
    assert first.url == "https://93.184.216.34/status" and same_server.url == "https://93.184.216.34/other?call=2"
    assert first.endpoint_id == same_server.endpoint_id != other_server.endpoint_id
    assert other_account.endpoint_id != first.endpoint_id
    hidden = WebhookEndpoint.objects.get(pk=first.endpoint_id)
    assert hidden.purpose == "callback" and hidden.event_types == [] and hidden.account == alice.account
    assert hidden.url == "https://93.184.216.34"


def test_a_hidden_endpoint_created_meanwhile_by_another_transaction_is_reused(alice):
    # What a concurrent enqueue finds: the row appeared between the lookup and the insert.
    first = enqueue(alice.account, "https://93.184.216.34/status")
    secret = callbacks._signing_secret(alice.account, timezone.now())

    again = callbacks._create_endpoint(alice.account, "https://93.184.216.34", secret)

    assert again.pk == first.endpoint_id
    assert WebhookEndpoint.objects.filter(purpose="callback").count() == 1
    enqueue(alice.account, "https://93.184.216.34/status")  # the caller's transaction is still usable


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "event"},
        {"method": "PUT"},
        {"payload_format": "xml"},
        {"url": "ftp://93.184.216.34/x"},
        {"url": "https://user:pw@93.184.216.34/x"},
        {"url": ""},
    ],
)
def test_it_refuses_arguments_no_caller_should_pass(alice, fields):
    fields = {"url": "https://93.184.216.34/status", **fields}
    with pytest.raises(ValueError):
        enqueue(alice.account, **fields)
    assert not Delivery.objects.exists()


def test_hidden_endpoints_get_no_events_and_are_not_in_the_webhooks_api(alice, alice_api):
    callback = enqueue(alice.account, "https://93.184.216.34/status")
    real = webhook_services.webhook_endpoint_create(
        account=alice.account, actor=None, url="https://93.184.216.34/hooks", event_types=["*"]
    ).endpoint

    event = event_emit(account=alice.account, type="call.ringing", object_type="call", object_id="c-1", payload={})

    assert list(Delivery.objects.filter(event=event).values_list("endpoint_id", flat=True)) == [real.pk]
    listed = alice_api.get("/api/v1/webhooks").json()["results"]
    assert [item["id"] for item in listed] == [str(real.public_id)]
    assert alice_api.get(f"/api/v1/webhooks/{callback.endpoint.public_id}").status_code == 404
    assert alice_api.delete(f"/api/v1/webhooks/{callback.endpoint.public_id}").status_code == 404


def test_the_deliveries_api_lists_callbacks_with_their_kind_url_call_and_fields(alice, alice_api):
    call = make_call(alice.account)
    delivery = enqueue(alice.account, "https://93.184.216.34/status", call=call)
    hook = enqueue(alice.account, "https://93.184.216.34/hook", kind="extension_hook", object_type="sip_user",
                   object_id="u-1")  # fmt: skip

    listed = alice_api.get("/api/v1/deliveries?kind=status_callback").json()["results"]
    detail = alice_api.get(f"/api/v1/deliveries/{delivery.public_id}").json()

    assert [item["id"] for item in listed] == [str(delivery.public_id)]
    assert detail["kind"] == "status_callback" and detail["url"] == "https://93.184.216.34/status"
    assert detail["call"] == str(call.public_id) and detail["webhook"] is None and detail["event"] is None
    assert detail["message_id"] == str(delivery.public_id) and detail["payload"] == PARAMS
    hook_detail = alice_api.get(f"/api/v1/deliveries/{hook.public_id}").json()
    assert (hook_detail["kind"], hook_detail["object_type"], hook_detail["object_id"]) == (
        "extension_hook", "sip_user", "u-1",
    )  # fmt: skip


def test_another_accounts_callbacks_and_secret_are_out_of_reach(alice, alice_api, charlie, token_client):
    secret = rotate(alice_api)
    delivery = enqueue(alice.account, "https://93.184.216.34/status")
    as_charlie = token_client(charlie.user, charlie.account)

    assert as_charlie.get(f"/api/v1/deliveries/{delivery.public_id}").status_code == 404
    assert as_charlie.post(f"/api/v1/deliveries/{delivery.public_id}/replay").status_code == 404
    assert str(delivery.public_id) not in str(as_charlie.get("/api/v1/deliveries").json())
    assert as_charlie.get("/api/v1/callback-signing-secret").json()["exists"] is False
    assert rotate(as_charlie) != secret
    assert alice_api.get("/api/v1/callback-signing-secret").json()["masked"].endswith(secret[-4:])


def test_a_callback_can_be_replayed_with_the_same_id(alice, alice_api, receiver):
    delivery = enqueue(alice.account, receiver.url)
    engine.drain()

    response = alice_api.post(f"/api/v1/deliveries/{delivery.public_id}/replay")
    engine.drain()

    assert response.status_code == 202
    assert receiver.ids() == [str(delivery.public_id)] * 2


# --- What is sent -------------------------------------------------------------------------------------


def test_a_post_callback_is_a_form_signed_with_the_accounts_callback_secret(alice, alice_api, receiver):
    secret = rotate(alice_api)
    delivery = enqueue(alice.account, receiver.url)

    engine.drain()

    request = receiver.requests[0]
    assert request.method == "POST" and request.headers["content-type"] == "application/x-www-form-urlencoded"
    Webhook(secret).verify(request.body, request.headers, json_parse=False)  # raises if the signature does not match
    assert dict(parse_qsl(request.text, keep_blank_values=True)) == PARAMS
    assert request.headers["webhook-id"] == str(delivery.public_id)
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempt_count == 1


def test_a_get_callback_puts_its_fields_in_the_query_string_and_signs_it(alice, alice_api, receiver):
    secret = rotate(alice_api)
    enqueue(alice.account, receiver.url + "?tenant=7", method="GET")

    engine.drain()

    request = receiver.requests[0]
    query = urlsplit(request.path).query
    assert request.method == "GET" and request.body == b""
    assert dict(parse_qsl(query, keep_blank_values=True)) == {"tenant": "7", **PARAMS}
    Webhook(secret).verify(query, request.headers, json_parse=False)  # the query string, as received, is what is signed


def test_a_json_callback_sends_its_fields_as_a_json_body(alice, alice_api, receiver):
    secret = rotate(alice_api)
    enqueue(alice.account, receiver.url, payload_format="json", params={"event": "hangup", "duration": 12})

    engine.drain()

    request = receiver.requests[0]
    assert request.headers["content-type"] == "application/json"
    assert Webhook(secret).verify(request.body, request.headers) == {"event": "hangup", "duration": 12}


def test_after_a_rotation_callbacks_are_signed_with_both_secrets_for_24_hours(alice, alice_api, receiver):
    old = rotate(alice_api)
    enqueue(alice.account, receiver.url)  # the hidden endpoint exists before the rotation: it takes the new one
    new = rotate(alice_api)
    enqueue(alice.account, receiver.url)

    drain_until_idle()

    for request in receiver.requests:
        Webhook(old).verify(request.body, request.headers, json_parse=False)
        Webhook(new).verify(request.body, request.headers, json_parse=False)
    shown = alice_api.get("/api/v1/callback-signing-secret").json()
    assert shown["exists"] is True and shown["masked"] == f"whsec_...{new[-4:]}" and new not in json.dumps(shown)
    assert shown["previous_secret_expires_at"] is not None


def test_the_secret_is_masked_before_any_callback_and_a_viewer_cannot_rotate(alice_api, bob, token_client):
    assert alice_api.get("/api/v1/callback-signing-secret").json()["exists"] is False
    viewer = token_client(bob.user, bob.account)
    assert viewer.post("/api/v1/callback-signing-secret/rotate").status_code == 403


def test_500_then_200_is_retried_and_delivered_once(alice, receiver, fast_retries):
    receiver.respond(Answer(500, b"oops"))
    delivery = enqueue(alice.account, receiver.url)

    drain_until_idle()

    delivery.refresh_from_db()
    assert [(a.number, a.status_code) for a in delivery.attempts.order_by("number")] == [(1, 500), (2, 200)]
    assert delivery.status == "delivered" and receiver.ids() == [str(delivery.public_id)] * 2


def test_the_fallback_url_takes_the_attempt_after_a_failure(alice, receiver, fast_retries):
    fallback = Receiver()
    try:
        receiver.respond(Answer(503, b"down"))
        delivery = enqueue(alice.account, receiver.url, fallback_url=fallback.url.replace("/hooks", "/fallback"))

        drain_until_idle()

        delivery.refresh_from_db()
        assert delivery.status == "delivered"
        assert receiver.count() == 1 and fallback.count() == 1
        assert fallback.requests[0].path == "/fallback"
        assert fallback.requests[0].headers["webhook-id"] == str(delivery.public_id)
        fallback_url = fallback.url.replace("/hooks", "/fallback")
        assert [a.request_url for a in delivery.attempts.order_by("number")] == [receiver.url, fallback_url]
    finally:
        fallback.stop()


def test_after_failures_the_url_and_the_fallback_take_turns(alice, receiver, fast_retries):
    fallback = Receiver(default=Answer(500, b"down too"))
    try:
        receiver.respond(Answer(500), Answer(500))
        delivery = enqueue(alice.account, receiver.url, fallback_url=fallback.url)

        drain_until_idle()

        delivery.refresh_from_db()
        assert delivery.status == "failed" and delivery.attempt_count == 4  # the whole (fast) schedule
        assert receiver.count() == 2 and fallback.count() == 2  # attempts 1 and 3 / 2 and 4
    finally:
        fallback.stop()


def test_a_connection_failure_sends_the_next_attempt_to_the_fallback(alice, receiver, fast_retries):
    delivery = enqueue(alice.account, "http://127.0.0.1:9/status", fallback_url=receiver.url)

    drain_until_idle()

    delivery.refresh_from_db()
    assert delivery.status == "delivered" and receiver.count() == 1
    assert [bool(a.error) for a in delivery.attempts.order_by("number")] == [True, False]


def test_a_dead_callback_url_never_disables_or_reports_on_endpoints(alice, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    real = webhook_services.webhook_endpoint_create(
        account=alice.account, actor=None, url="https://93.184.216.34/hooks", event_types=["endpoint.*"]
    ).endpoint
    receiver.respond(Answer(410, b"gone"))
    gone = enqueue(alice.account, receiver.url)

    engine.drain()

    gone.refresh_from_db()
    hidden = gone.endpoint
    assert gone.status == "failed" and hidden.enabled is True
    WebhookEndpoint.objects.filter(pk=hidden.pk).update(failing_since=timezone.now() - timedelta(days=30))
    assert engine.endpoints_disable_failing() == 0
    hidden.refresh_from_db()
    real.refresh_from_db()
    assert hidden.enabled is True and real.enabled is True
    assert not Event.objects.filter(type="endpoint.disabled").exists() and mail.outbox == []
    assert enqueue(alice.account, receiver.url).endpoint_id == hidden.pk  # the next callback still goes out


def test_the_outbound_url_policy_refuses_a_callback_to_a_private_address_when_it_is_sent(alice, receiver, settings):
    delivery = enqueue(alice.account, receiver.url)  # allowed when queued: the address is checked at connect time
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = False
    settings.OUTBOUND_URL_ALLOWED_NETWORKS = []

    engine.drain()

    delivery.refresh_from_db()
    assert receiver.count() == 0 and delivery.status == "pending" and delivery.attempt_count == 1
    assert "loopback" in delivery.attempts.get().error


def test_old_callbacks_are_purged_with_their_attempts(alice, settings):
    settings.EVENT_RETENTION_DAYS = 30
    old = enqueue(alice.account, "https://93.184.216.34/status")
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    recent = enqueue(alice.account, "https://93.184.216.34/status")

    assert callbacks_purge_expired() == 1

    assert list(Delivery.objects.values_list("pk", flat=True)) == [recent.pk]


# --- Status callbacks of a call, in its timeline ------------------------------------------------------


@pytest.fixture
def server():
    customer = CustomerServer()
    yield customer
    customer.stop()


def test_a_calls_status_callbacks_and_their_attempts_are_in_its_timeline(alice, alice_api, client, server):
    url = server.route("/status", "ok")
    SimulatorRule.objects.create(match="+13105552100", hangup_after_ms=500)
    number, _ = number_for_app(
        alice.account,
        f'<Response><Dial><To statusCallback="{url}" statusCallbackMethod="GET">+13105552100</To></Dial></Response>',
        status_callback_url=url,
        status_callback_events=["initiated", "completed"],
    )
    call = drive(place(number))
    drain_until_idle()

    detail = alice_api.get(f"/api/v1/calls/{call.public_id}").json()
    callbacks = [entry for entry in detail["timeline"] if entry["kind"] == "callback"]
    b_leg = call.children.get()
    assert sorted((c["call_id"], c["callback"]["params"]["CallStatus"]) for c in callbacks) == sorted(
        [(str(call.public_id), "initiated"), (str(b_leg.public_id), "completed"), (str(call.public_id), "completed")]
    )
    first = callbacks[0]["callback"]
    assert first["status"] == "delivered" and first["kind"] == "status_callback" and first["url"] == url
    assert [(a["number"], a["status_code"], a["url"]) for a in first["attempts"]] == [(1, 200, url)]
    b_callback = next(c["callback"] for c in callbacks if c["call_id"] == str(b_leg.public_id))
    assert b_callback["method"] == "GET"
    assert [hit.method for hit in server.to("/status")].count("GET") == 1

    client.force_login(alice.user)
    page = client.get(reverse("call-detail", kwargs={"account": alice.account.slug, "id": call.public_id}))
    assert page.content.decode().count('data-kind="callback"') == 3
    assert "Status callback" in page.content.decode() and 'data-testid="callback-attempt-row"' in page.content.decode()


# --- A real worker ---------------------------------------------------------------------------------------


@pytest.mark.worker
def test_a_real_worker_delivers_a_callback_enqueued_in_a_transaction(celery_worker, receiver):
    account = AccountFactory()
    with transaction.atomic():
        delivery = enqueue(account, receiver.url)  # sent after the commit, by the worker

    wait_for(lambda: receiver.count() >= 1, timeout=30, message="the worker to send the callback")
    assert receiver.requests[0].headers["webhook-id"] == str(delivery.public_id)
    wait_for(lambda: Delivery.objects.get(pk=delivery.pk).status == "delivered", message="the attempt recorded")

"""The portal's webhook pages: endpoints (health, create, edit, delete, rotate, test, recover) and the delivery log."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from telephony import delivery as engine
from telephony.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from telephony.services import webhooks as services
from telephony.services.events import event_emit
from telephony.tests.isolation_events import make_delivery, make_endpoint
from telephony.tests.receivers import Answer, receiver_fixture  # noqa: F401 - the receiver fixture

pytestmark = pytest.mark.django_db

REMOTE = "https://93.184.216.34/hooks"  # a public address: passes the URL policy, never called by these tests


def url(name: str, account, obj=None, **params) -> str:
    kwargs = {"account": account.slug}
    if obj is not None:
        kwargs["id"] = obj.public_id
    path = reverse(name, kwargs=kwargs)
    return f"{path}?{urlencode(params)}" if params else path


def emit(account, type="call.ringing", object_id="call-1"):
    return event_emit(account=account, type=type, object_type="call", object_id=object_id, payload={"n": 1})


def form_data(**overrides) -> dict:
    return {
        "url": REMOTE,
        "description": "CRM",
        "event_types": "call.*\nnumber.ordered",
        "payload_format": "json",
        "rate_limit": "",
        "enabled": "on",
        **overrides,
    }


# --- Endpoints ---------------------------------------------------------------------------------------


def test_it_lists_the_accounts_endpoints_with_their_health(client, alice, charlie):
    client.force_login(alice.user)
    now = timezone.now()
    healthy = make_endpoint(alice.account, url="https://93.184.216.34/healthy")
    failing = make_endpoint(alice.account, url="https://93.184.216.34/failing")
    WebhookEndpoint.objects.filter(pk=failing.pk).update(
        failing_since=now - timedelta(hours=3), consecutive_failures=7, circuit_open_until=now + timedelta(minutes=1)
    )
    off = make_endpoint(alice.account, url="https://93.184.216.34/off")
    services.webhook_endpoint_disable(account=alice.account, actor=None, endpoint=off, reason="gone")
    make_endpoint(charlie.account, url="https://93.184.216.34/charlies")

    response = client.get(url("webhookendpoint-list", alice.account))

    assert response.status_code == 200
    rows = {e.url: e for e in response.context["object_list"]}
    assert set(rows) == {healthy.url, failing.url, off.url}
    assert (rows[healthy.url].circuit, rows[failing.url].circuit, rows[off.url].circuit) == ("closed", "open", "off")
    page = response.content.decode()
    assert "charlies" not in page
    assert "7 failures" in page and "Disabled" in page and "gone" in page
    assert 'data-testid="create-webhook"' in page


def test_it_filters_the_endpoint_list_by_state_with_the_shared_filterset(client, alice):
    client.force_login(alice.user)
    make_endpoint(alice.account, url="https://93.184.216.34/on")
    off = make_endpoint(alice.account, url="https://93.184.216.34/off")
    services.webhook_endpoint_update(account=alice.account, actor=None, endpoint=off, enabled=False)

    response = client.get(url("webhookendpoint-list", alice.account, enabled="false"))

    assert [e.url for e in response.context["object_list"]] == [off.url]


def test_it_creates_an_endpoint_and_shows_its_secret_once(client, alice):
    client.force_login(alice.user)

    response = client.post(url("webhookendpoint-create", alice.account), form_data(rate_limit="20"))

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get(account=alice.account)
    secret = services.decrypt_secret(endpoint.secret_encrypted)
    assert secret.startswith("whsec_") and secret in response.content.decode()
    assert (endpoint.url, endpoint.event_types, endpoint.rate_limit) == (REMOTE, ["call.*", "number.ordered"], 20)
    assert endpoint.enabled is True
    # Never again: not on the endpoint's page, not in its edit form.
    for page in ("webhookendpoint-detail", "webhookendpoint-edit"):
        assert secret not in client.get(url(page, alice.account, endpoint)).content.decode()


@override_settings(OUTBOUND_URL_ALLOW_LOOPBACK=False)
@pytest.mark.parametrize(
    "bad_url", ["http://169.254.169.254/latest/meta-data", "http://127.0.0.1:8000/hooks", "ftp://example.com/x"]
)
def test_it_refuses_a_url_the_outbound_policy_refuses_with_a_form_error(client, alice, bad_url):
    client.force_login(alice.user)

    response = client.post(url("webhookendpoint-create", alice.account), form_data(url=bad_url))

    assert response.status_code == 200
    assert response.context["form"].errors["url"]
    assert not WebhookEndpoint.objects.exists()
    assert "whsec_" not in response.content.decode()


def test_it_refuses_an_unknown_event_type_under_its_field(client, alice):
    client.force_login(alice.user)

    response = client.post(url("webhookendpoint-create", alice.account), form_data(event_types="call.*, nope.thing"))

    assert "nope.thing" in " ".join(response.context["form"].errors["event_types"])
    assert not WebhookEndpoint.objects.exists()


def test_it_edits_an_endpoint_and_keeps_its_secret(client, alice):
    client.force_login(alice.user)
    endpoint = make_endpoint(alice.account)
    secret_before = endpoint.secret_encrypted

    response = client.post(
        url("webhookendpoint-edit", alice.account, endpoint),
        form_data(url="https://93.184.216.34/v2", event_types="*", payload_format="form", enabled=""),
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.event_types, endpoint.payload_format) == ("https://93.184.216.34/v2", ["*"], "form")
    assert endpoint.enabled is False and endpoint.secret_encrypted == secret_before
    assert Event.objects.filter(type="endpoint.updated", object_id=str(endpoint.public_id)).exists()


def test_it_rotates_the_secret_after_a_confirm_page_and_shows_the_new_one_once(client, alice):
    client.force_login(alice.user)
    endpoint = make_endpoint(alice.account)
    old_secret = services.decrypt_secret(endpoint.secret_encrypted)
    rotate = url("webhookendpoint-rotate", alice.account, endpoint)

    confirm = client.get(rotate)
    assert confirm.status_code == 200 and "24 hours" in confirm.content.decode()
    endpoint.refresh_from_db()
    assert services.decrypt_secret(endpoint.secret_encrypted) == old_secret  # a GET changes nothing

    response = client.post(rotate)

    assert response["Cache-Control"] == "no-store"
    endpoint.refresh_from_db()
    new_secret = services.decrypt_secret(endpoint.secret_encrypted)
    assert new_secret != old_secret and new_secret in response.content.decode()
    assert services.decrypt_secret(endpoint.previous_secret_encrypted) == old_secret
    assert endpoint.previous_secret_expires_at > timezone.now() + timedelta(hours=23)
    detail = client.get(url("webhookendpoint-detail", alice.account, endpoint)).content.decode()
    assert new_secret not in detail and 'data-testid="previous-secret"' in detail


def test_it_deletes_an_endpoint_after_a_confirm_page(client, alice):
    client.force_login(alice.user)
    endpoint = make_endpoint(alice.account)
    delete = url("webhookendpoint-delete", alice.account, endpoint)

    assert client.get(delete).status_code == 200
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    response = client.post(delete)

    assert response.status_code == 302 and response["Location"] == url("webhookendpoint-list", alice.account)
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_a_viewer_sees_no_write_controls_and_cannot_write(client, alice, bob):
    endpoint = make_endpoint(alice.account, event_types=["call.*"])
    delivery = Delivery.objects.get(event=emit(alice.account), endpoint=endpoint)
    client.force_login(bob.user)

    pages = [
        client.get(url("webhookendpoint-list", alice.account)),
        client.get(url("webhookendpoint-detail", alice.account, endpoint)),
        client.get(url("webhookdelivery-list", alice.account)),
        client.get(url("webhookdelivery-detail", alice.account, delivery)),
    ]

    for response in pages:
        assert response.status_code == 200
        page = response.content.decode()
        for control in (
            "create-webhook", "edit-webhook", "rotate-secret", "delete-webhook", "test-form", "recover-form", "replay",
        ):  # fmt: skip
            assert f'data-testid="{control}"' not in page, control
    secret_before = endpoint.secret_encrypted
    for name in ("webhookendpoint-rotate", "webhookendpoint-delete", "webhookendpoint-test", "webhookendpoint-edit"):
        assert client.post(url(name, alice.account, endpoint), form_data()).status_code == 403, name
    assert client.post(url("webhookdelivery-replay", alice.account, delivery)).status_code == 403
    assert client.get(url("webhookendpoint-create", alice.account)).status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.secret_encrypted == secret_before and endpoint.description == ""


def test_another_accounts_endpoint_and_delivery_are_not_found(client, alice, charlie):
    delivery = make_delivery(alice.account)
    client.force_login(charlie.user)

    for name, obj in [
        ("webhookendpoint-detail", delivery.endpoint),
        ("webhookendpoint-rotate", delivery.endpoint),
        ("webhookdelivery-detail", delivery),
        ("webhookdelivery-replay", delivery),
    ]:
        assert client.get(url(name, charlie.account, obj)).status_code == 404, name
        assert client.post(url(name, charlie.account, obj)).status_code in (404, 405), name  # 405: no form
    listed = client.get(url("webhookdelivery-list", charlie.account)).context["deliveries"]
    assert listed == []


# --- Test send, recover, replay ----------------------------------------------------------------------


def test_it_sends_a_test_event_and_shows_its_delivery(client, alice, receiver):
    client.force_login(alice.user)
    endpoint = make_endpoint(alice.account, url=receiver.url)
    secret = services.decrypt_secret(endpoint.secret_encrypted)

    response = client.post(url("webhookendpoint-test", alice.account, endpoint), {"event_type": "call.ringing"})

    delivery = Delivery.objects.get(endpoint=endpoint)
    assert delivery.kind == Delivery.Kind.TEST and delivery.event_type == "call.ringing"
    assert response.status_code == 302 and response["Location"] == url(
        "webhookdelivery-detail", alice.account, delivery
    )
    engine.drain(budget=5)
    assert Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)["type"] == "call.ringing"


def test_an_unknown_test_event_type_is_a_form_error_on_the_endpoint_page(client, alice):
    client.force_login(alice.user)
    endpoint = make_endpoint(alice.account)

    response = client.post(url("webhookendpoint-test", alice.account, endpoint), {"event_type": "call.*"})

    assert response.status_code == 200 and response.context["test_form"].errors["event_type"]
    assert not Delivery.objects.exists()


def _failed(endpoint, created_at):
    event = emit(endpoint.account, object_id=f"c-{created_at.timestamp()}")
    Delivery.objects.filter(event=event, endpoint=endpoint).update(
        status="failed", next_attempt_at=None, created_at=created_at, attempt_count=8, last_error="HTTP 500"
    )
    return Delivery.objects.get(event=event, endpoint=endpoint)


def test_the_recover_form_requeues_failed_deliveries_since_a_time(client, alice):
    client.force_login(alice.user)
    endpoint = make_endpoint(alice.account, event_types=["call.*"])
    now = timezone.now()
    recent = _failed(endpoint, now - timedelta(hours=2))
    old = _failed(endpoint, now - timedelta(days=3))

    response = client.post(
        url("webhookendpoint-recover", alice.account, endpoint),
        {"since": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")},
        follow=True,
    )

    assert "1 failed delivery queued again" in response.content.decode()
    recent.refresh_from_db()
    old.refresh_from_db()
    assert (recent.status, recent.trigger) == ("pending", "recover") and recent.next_attempt_at <= timezone.now()
    assert old.status == "failed"


def test_the_recover_form_shows_a_time_in_the_future_as_its_error(client, alice):
    client.force_login(alice.user)
    endpoint = make_endpoint(alice.account)

    response = client.post(
        url("webhookendpoint-recover", alice.account, endpoint),
        {"since": (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")},
    )

    assert response.status_code == 200
    assert response.context["recover_form"].errors["since"] == ["Must be in the past."]


def test_replay_sends_a_delivery_again_with_the_same_webhook_id(client, alice, receiver):
    client.force_login(alice.user)
    endpoint = make_endpoint(alice.account, url=receiver.url, event_types=["call.*"])
    event = emit(alice.account)
    engine.drain(budget=5)
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == "delivered"

    response = client.post(url("webhookdelivery-replay", alice.account, delivery), follow=True)

    assert "being sent again" in response.content.decode()
    engine.drain(budget=5)
    assert receiver.ids() == [str(event.public_id)] * 2
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.trigger) for a in attempts] == [(1, "scheduled"), (2, "replay")]
    assert endpoint.enabled


def test_replay_to_a_disabled_endpoint_says_why_instead_of_failing(client, alice):
    client.force_login(alice.user)
    delivery = make_delivery(alice.account)
    services.webhook_endpoint_update(account=alice.account, actor=None, endpoint=delivery.endpoint, enabled=False)

    response = client.post(url("webhookdelivery-replay", alice.account, delivery), follow=True)

    assert "enable it first" in response.content.decode()


# --- The delivery log and a delivery's attempts --------------------------------------------------------


def test_the_log_filters_by_endpoint_status_event_type_kind_and_time(client, alice, charlie):
    client.force_login(alice.user)
    calls = make_endpoint(alice.account, url="https://93.184.216.34/calls", event_types=["call.*"])
    numbers = make_endpoint(alice.account, url="https://93.184.216.34/numbers", event_types=["number.*"])
    ringing = Delivery.objects.get(event=emit(alice.account, "call.ringing"))
    hangup = Delivery.objects.get(event=emit(alice.account, "call.hangup"))
    ordered = Delivery.objects.get(event=emit(alice.account, "number.ordered"))
    Delivery.objects.filter(pk=hangup.pk).update(status="failed", created_at=timezone.now() - timedelta(days=2))
    test_send = services.webhook_endpoint_send_test(account=alice.account, actor=None, endpoint=numbers)
    make_delivery(charlie.account)

    def listed(**params) -> list[int]:
        response = client.get(url("webhookdelivery-list", alice.account, **params))
        assert response.status_code == 200
        return [d.pk for d in response.context["deliveries"]]

    assert listed() == [test_send.pk, ordered.pk, hangup.pk, ringing.pk]
    assert listed(webhook=str(calls.public_id)) == [hangup.pk, ringing.pk]
    assert listed(status="failed") == [hangup.pk]
    assert listed(event_type="call.*") == [hangup.pk, ringing.pk]
    assert listed(kind="test") == [test_send.pk]
    assert listed(created_before=(timezone.now() - timedelta(days=1)).isoformat()) == [hangup.pk]
    assert listed(created_after=(timezone.now() - timedelta(days=1)).isoformat(), status="pending") == [
        test_send.pk, ordered.pk, ringing.pk,
    ]  # fmt: skip
    page = client.get(url("webhookdelivery-list", alice.account)).content.decode()
    assert "Test send" in page and "Event" in page  # each row labelled by its kind


def test_the_log_pages_back_through_older_deliveries(client, alice, monkeypatch):
    from telephony.views import webhooks as views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    client.force_login(alice.user)
    make_endpoint(alice.account, event_types=["call.*"])
    deliveries = [Delivery.objects.get(event=emit(alice.account, object_id=f"c-{n}")) for n in range(3)]

    first = client.get(url("webhookdelivery-list", alice.account))
    second = client.get(f"{url('webhookdelivery-list', alice.account)}?{first.context['older_query']}")

    assert [d.pk for d in first.context["deliveries"]] == [deliveries[2].pk, deliveries[1].pk]
    assert [d.pk for d in second.context["deliveries"]] == [deliveries[0].pk]
    assert second.context["older_query"] == ""


def test_the_delivery_page_shows_each_attempts_headers_body_response_and_timing(client, alice, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    receiver.respond(Answer(503, b"busy, try later", headers={"X-Upstream": "maintenance"}))
    endpoint = make_endpoint(alice.account, url=receiver.url, event_types=["call.*"])
    event = emit(alice.account)
    engine.drain(budget=5)
    engine.drain(budget=5)
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == "delivered" and delivery.attempt_count == 2
    client.force_login(alice.user)

    response = client.get(url("webhookdelivery-detail", alice.account, delivery))

    page = response.content.decode()
    first, second = sorted(response.context["attempts"], key=lambda a: a.number)
    sent = receiver.requests
    # What was recorded is what the receiver got, per attempt (each has its own timestamp and signature).
    for attempt, request in zip([first, second], sent, strict=True):
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type"):
            assert attempt.request_headers[name] == request.headers[name]
    assert first.status_code == 503 and first.response_headers["x-upstream"] == "maintenance"
    assert "busy, try later" in page and "maintenance" in page
    assert second.status_code == 200
    # Signatures are shown cut short; ids and timestamps whole.
    signature = sent[0].headers["webhook-signature"]
    assert signature not in page and signature[:15] in page
    assert sent[0].headers["webhook-timestamp"] in page and str(event.public_id) in page
    assert "&quot;type&quot;: &quot;call.ringing&quot;" in page  # the body, pretty-printed
    assert re.search(r'data-testid="attempt-duration">\d+ ms<', page)
    assert response.context["auto_refresh"] is False
    assert not endpoint.consecutive_failures


def test_an_attempt_without_a_response_shows_its_error(client, alice):
    endpoint = make_endpoint(alice.account, url="http://127.0.0.1:9/closed", event_types=["call.*"])
    event = emit(alice.account)
    engine.drain(budget=5)
    delivery = Delivery.objects.get(event=event, endpoint=endpoint)
    client.force_login(alice.user)

    response = client.get(url("webhookdelivery-detail", alice.account, delivery))

    attempt = response.context["attempts"][0]
    assert attempt.status_code is None and attempt.error and attempt.response_headers == {}
    page = response.content.decode()
    assert "No response" in page and attempt.error in page


def test_a_callback_with_a_fallback_appears_in_the_log_by_kind_with_each_attempts_target(
    client, alice, receiver, settings
):
    from telephony.services.callbacks import callback_enqueue
    from telephony.tests.receivers import Receiver

    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    receiver.respond(Answer(500, b"primary down"))
    fallback = Receiver()
    try:
        delivery = callback_enqueue(
            account=alice.account,
            url=receiver.url,
            method="GET",
            params={"MessageSid": "m-1", "MessageStatus": "delivered"},
            kind="message_callback",
            object_type="message",
            object_id="m-1",
            fallback_url=fallback.url,
        )
        engine.drain(budget=5)
        engine.drain(budget=5)
    finally:
        fallback.stop()
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    client.force_login(alice.user)

    log = client.get(url("webhookdelivery-list", alice.account))
    endpoints = client.get(url("webhookendpoint-list", alice.account))
    page = client.get(url("webhookdelivery-detail", alice.account, delivery))

    assert [d.pk for d in log.context["deliveries"]] == [delivery.pk]
    assert "Message callback" in log.content.decode()
    assert list(endpoints.context["object_list"]) == []  # the hidden callback endpoint is not a webhook
    assert log.context["filter"].filters["webhook"].extra["choices"] == []
    first, second = sorted(page.context["attempts"], key=lambda a: a.number)
    assert (first.request_method, second.request_method) == ("GET", "GET")
    assert first.request_url.startswith(receiver.url + "?") and "MessageStatus=delivered" in first.request_url
    assert second.request_url.startswith(fallback.url + "?")
    assert first.request_headers["webhook-id"] == second.request_headers["webhook-id"] == str(delivery.public_id)
    html = page.content.decode()
    assert "Message callback" in html and "primary down" in html and "query string" in html
    # Hidden endpoints have no page of their own.
    assert client.get(url("webhookendpoint-detail", alice.account, delivery.endpoint)).status_code == 404


def test_a_form_endpoints_delivery_shows_its_form_fields(client, alice):
    endpoint = make_endpoint(alice.account, payload_format="form", event_types=["call.*"])
    delivery = Delivery.objects.get(event=emit(alice.account), endpoint=endpoint)
    client.force_login(alice.user)

    response = client.get(url("webhookdelivery-detail", alice.account, delivery))

    outgoing = response.context["outgoing"]
    assert outgoing["content_type"] == "application/x-www-form-urlencoded" and outgoing["method"] == "POST"
    assert ("EventType", "call.ringing") in outgoing["fields"]
    assert 'class="active" aria-current="page">Deliveries<' in response.content.decode()
    assert 'data-testid="delivery-fields"' in response.content.decode()
    assert response.context["auto_refresh"] is True  # due now, not yet attempted


def test_the_write_forms_need_the_csrf_token(alice):
    from django.test import Client

    endpoint = make_endpoint(alice.account)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice.user)
    secret_before = endpoint.secret_encrypted

    page = browser.get(url("webhookendpoint-rotate", alice.account, endpoint)).content.decode()
    forged = browser.post(url("webhookendpoint-rotate", alice.account, endpoint))

    assert 'name="csrfmiddlewaretoken"' in page
    assert forged.status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.secret_encrypted == secret_before


def test_it_rotates_the_callback_signing_secret_and_shows_it_once(client, alice):
    from telephony.services.callbacks import callback_signing_secret_get

    client.force_login(alice.user)
    listing = client.get(url("webhookendpoint-list", alice.account)).content.decode()
    assert 'data-testid="callback-secret-none"' in listing
    assert client.get(url("callbacksecret-rotate", alice.account)).status_code == 200  # the confirm page
    assert callback_signing_secret_get(account=alice.account) is None  # a GET changes nothing

    response = client.post(url("callbacksecret-rotate", alice.account))

    assert response["Cache-Control"] == "no-store"
    secret = re.search(r'value="(whsec_[^"]+)"', response.content.decode()).group(1)
    info = callback_signing_secret_get(account=alice.account)
    assert info.masked.endswith(secret[-4:])
    listing = client.get(url("webhookendpoint-list", alice.account)).content.decode()
    assert secret not in listing and info.masked in listing


def test_a_viewer_cannot_rotate_the_callback_signing_secret(client, alice, bob):
    from telephony.services.callbacks import callback_signing_secret_get

    client.force_login(bob.user)

    assert (
        'data-testid="rotate-callback-secret"'
        not in client.get(url("webhookendpoint-list", alice.account)).content.decode()
    )
    assert client.post(url("callbacksecret-rotate", alice.account)).status_code == 403
    assert callback_signing_secret_get(account=alice.account) is None

"""The delivery engine in-process, against real local receivers: signing, retries, stop rules, breaker, limits."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from urllib.parse import parse_qsl

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from telephony import delivery as engine
from telephony.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from telephony.services import webhooks as services
from telephony.services.events import event_emit, events_purge_expired
from telephony.tests.receivers import Answer, Receiver, receiver_fixture  # noqa: F401 - the receiver fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def fast_retries(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0, 0]


def add_endpoint(account, url, **fields):
    fields.setdefault("event_types", ["call.*"])
    created = services.webhook_endpoint_create(account=account, actor=None, url=url, **fields)
    return created.endpoint, created.secret


def emit(account, type="call.ringing", object_id="call-1", **data):
    return event_emit(account=account, type=type, object_type="call", object_id=object_id, payload=data)


def drain_until_idle(rounds: int = 10) -> Counter:
    totals: Counter = Counter()
    for _ in range(rounds):
        done = engine.drain(budget=5)
        if not done:
            break
        totals.update(done)
    return totals


def verify(secret: str, request) -> dict:
    return Webhook(secret).verify(request.body, request.headers)


def test_it_delivers_a_signed_event_the_standardwebhooks_package_verifies(alice, receiver):
    endpoint, secret = add_endpoint(alice.account, receiver.url, event_types=["call.*"])
    event = emit(alice.account, state="ringing")

    engine.drain()

    assert receiver.count() == 1
    request = receiver.requests[0]
    body = verify(secret, request)
    assert request.headers["webhook-id"] == str(event.public_id)
    assert request.headers["content-type"] == "application/json"
    assert body == {
        "id": str(event.public_id),
        "type": "call.ringing",
        "occurred_at": body["occurred_at"],
        "account": str(alice.account.public_id),
        "object": {"type": "call", "id": "call-1"},
        "sequence": 1,
        "data": {"state": "ringing"},
    }
    delivery = Delivery.objects.get(event=event, endpoint=endpoint)
    assert delivery.status == "delivered" and delivery.attempt_count == 1 and delivery.next_attempt_at is None


def test_a_tampered_body_or_another_secret_does_not_verify(alice, receiver):
    _, secret = add_endpoint(alice.account, receiver.url)
    emit(alice.account)
    engine.drain()
    request = receiver.requests[0]

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body.replace(b"ringing", b"hangup") + b" ", request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(services.new_signing_secret()).verify(request.body, request.headers)


def test_500_twice_then_200_records_three_attempts_and_delivers_once(alice, receiver, fast_retries):
    receiver.respond(Answer(500, b"oops"), Answer(500, b"again"))
    add_endpoint(alice.account, receiver.url)
    event = emit(alice.account)

    drain_until_idle()

    delivery = Delivery.objects.get(event=event)
    attempts = list(delivery.attempts.order_by("number"))
    assert [(a.number, a.status_code, a.response_excerpt) for a in attempts] == [
        (1, 500, "oops"),
        (2, 500, "again"),
        (3, 200, "ok"),
    ]
    assert delivery.status == "delivered" and delivery.attempt_count == 3
    assert receiver.ids() == [str(event.public_id)] * 3  # the same id every time, so receivers can dedupe


def test_it_retries_on_the_documented_schedule_with_jitter(settings):
    assert settings.WEBHOOK_RETRY_SCHEDULE == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    failed = engine.http.Result(status_code=503, duration=0.01)
    now = timezone.now()
    for index, expected in enumerate([5, 300, 1800, 7200, 18000, 36000, 36000]):
        delays = [engine.next_delay(index, failed, now) for _ in range(50)]
        assert all(expected * 0.9 <= d <= expected * 1.1 for d in delays)
    assert engine.next_delay(7, failed, now) is None  # eight attempts in all, then it fails


def test_the_first_retry_comes_about_five_seconds_later(alice, receiver):
    receiver.respond(Answer(503))
    add_endpoint(alice.account, receiver.url)
    event = emit(alice.account)
    before = timezone.now()

    engine.drain()

    delivery = Delivery.objects.get(event=event)
    assert delivery.status == "pending" and delivery.retry_index == 1
    assert before + timedelta(seconds=4.4) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=5.6)
    assert delivery.last_status_code == 503 and delivery.last_error == "HTTP 503"


@pytest.mark.parametrize("status", [301, 302, 408, 429, 500, 502, 503])
def test_these_answers_are_retried(alice, receiver, status):
    receiver.respond(Answer(status, b"", {"Location": "http://10.0.0.1/"} if status < 400 else {}))
    add_endpoint(alice.account, receiver.url)
    event = emit(alice.account)

    engine.drain()

    assert Delivery.objects.get(event=event).status == "pending"
    assert receiver.count() == 1  # a redirect is never followed


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_client_errors_stop_at_once(alice, receiver, status):
    receiver.respond(Answer(status, b"no"))
    add_endpoint(alice.account, receiver.url)
    event = emit(alice.account)

    engine.drain()

    delivery = Delivery.objects.get(event=event)
    assert delivery.status == "failed" and delivery.attempt_count == 1 and delivery.next_attempt_at is None


def test_410_stops_disables_the_endpoint_raises_an_event_and_emails_the_owners(
    alice, bob, receiver, django_capture_on_commit_callbacks
):
    receiver.respond(Answer(410, b"gone"))
    endpoint, _ = add_endpoint(alice.account, receiver.url, event_types=["call.*"])
    watcher, _ = add_endpoint(alice.account, "https://93.184.216.34/watch", event_types=["endpoint.*"])
    event = emit(alice.account)

    with django_capture_on_commit_callbacks(execute=True):
        engine.drain()

    endpoint.refresh_from_db()
    assert endpoint.enabled is False and endpoint.disabled_reason == "gone"
    assert Delivery.objects.get(event=event).status == "failed"
    disabled = Event.objects.get(account=alice.account, type="endpoint.disabled")
    assert disabled.object_id == str(endpoint.public_id)
    assert disabled.payload["after"]["reason"] == "gone"
    assert Delivery.objects.filter(event=disabled, endpoint=watcher).exists()
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]  # owners only; Bob is a viewer
    assert endpoint.url in mail.outbox[0].subject


def test_retry_after_is_honoured(alice, receiver):
    receiver.respond(Answer(429, b"slow down", {"Retry-After": "120"}))
    add_endpoint(alice.account, receiver.url)
    event = emit(alice.account)

    engine.drain()

    delivery = Delivery.objects.get(event=event)
    assert delivery.next_attempt_at >= timezone.now() + timedelta(seconds=115)


def test_a_connection_error_is_recorded_and_retried(alice, fast_retries, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 3600]
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    add_endpoint(alice.account, f"http://127.0.0.1:{port}/hooks")
    event = emit(alice.account)

    engine.drain()

    delivery = Delivery.objects.get(event=event)
    attempt = delivery.attempts.get()
    assert attempt.status_code is None and "could not connect" in attempt.error
    assert delivery.status == "pending" and delivery.next_attempt_at > timezone.now() + timedelta(minutes=50)


def test_it_keeps_8_kb_of_the_response(alice, receiver):
    receiver.respond(Answer(500, b"\x00" + b"y" * 200_000))
    add_endpoint(alice.account, receiver.url)
    emit(alice.account)

    engine.drain()

    excerpt = DeliveryAttempt.objects.get().response_excerpt
    assert len(excerpt) == 8 * 1024 and excerpt.startswith("\ufffdy")


def test_the_circuit_breaker_stops_attempts_then_lets_one_probe_through(alice, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0, 0, 0, 0]
    settings.WEBHOOK_CIRCUIT_FAILURES = 3
    settings.WEBHOOK_CIRCUIT_COOLDOWN_SECONDS = 60
    receiver.default = Answer(500, b"down")
    endpoint, _ = add_endpoint(alice.account, receiver.url)
    healthy = Receiver()
    try:
        add_endpoint(alice.account, healthy.url)
        emit(alice.account, object_id="a")

        drain_until_idle()

        endpoint.refresh_from_db()
        assert receiver.count() == 3  # then the breaker opened: no fourth attempt
        assert endpoint.circuit_open_until > timezone.now() + timedelta(seconds=50)
        pending = Delivery.objects.get(endpoint=endpoint)
        assert pending.status == "pending" and pending.next_attempt_at == endpoint.circuit_open_until

        # While it is open, new events wait for it, and the healthy endpoint is not held up.
        for n in range(4):
            emit(alice.account, object_id=f"b{n}")
        drain_until_idle()
        assert receiver.count() == 3
        assert healthy.count() == 5

        # After the cool-down one probe goes; it succeeds, the breaker closes, the held deliveries follow.
        receiver.default = Answer(200)
        with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=True):
            engine.drain()
            first_wave = receiver.count()
            drain_until_idle()
        assert first_wave >= 4  # the probe, then everything it held back
        assert Delivery.objects.filter(endpoint=endpoint, status="delivered").count() == 5
        endpoint.refresh_from_db()
        assert endpoint.consecutive_failures == 0 and endpoint.circuit_open_until is None
    finally:
        healthy.stop()


def test_a_half_open_breaker_sends_a_single_probe(alice, settings):
    settings.WEBHOOK_CIRCUIT_FAILURES = 3
    endpoint, _ = add_endpoint(alice.account, "https://93.184.216.34/hooks")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=7)
    for n in range(5):
        emit(alice.account, object_id=f"c{n}")

    claimed = engine.claim(limit=100)

    assert len(claimed) == 1
    endpoint.refresh_from_db()
    waiting = Delivery.objects.filter(endpoint=endpoint, claim_token=None)
    assert all(d.next_attempt_at == endpoint.circuit_open_until for d in waiting)


def test_the_rate_limit_spreads_deliveries_over_seconds(alice):
    endpoint, _ = add_endpoint(alice.account, "https://93.184.216.34/hooks", rate_limit=2)
    for n in range(6):
        emit(alice.account, object_id=f"r{n}")
    now = timezone.now()

    claimed = engine.claim(limit=100, now=now)

    assert len(claimed) == 2
    later = sorted(
        Delivery.objects.filter(endpoint=endpoint, claim_token=None).values_list("next_attempt_at", flat=True)
    )
    assert later == [now + timedelta(seconds=1)] * 2 + [now + timedelta(seconds=2)] * 2
    assert engine.claim(limit=100, now=now + timedelta(milliseconds=500)) == []
    assert len(engine.claim(limit=100, now=now + timedelta(seconds=1))) == 2


def test_one_process_claims_only_its_share_for_one_endpoint(alice, settings):
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 2  # so a process holds at most 2 x 2 of its deliveries
    slow, _ = add_endpoint(alice.account, "https://93.184.216.34/slow", event_types=["call.ringing"])
    other, _ = add_endpoint(alice.account, "https://93.184.216.35/other", event_types=["call.hangup"])
    for n in range(6):
        emit(alice.account, object_id=f"s{n}")
    emit(alice.account, type="call.hangup")

    first = engine.claim(limit=100)
    second = engine.claim(limit=100, busy=Counter({slow.pk: 4}))

    assert Counter(d.endpoint_id for d in first) == {slow.pk: 4, other.pk: 1}
    assert second == []
    # The rest were not pushed back: they are due for the next claim that has room.
    assert Delivery.objects.filter(endpoint=slow, claim_token=None, next_attempt_at__lte=timezone.now()).count() == 2


def test_requests_in_flight_to_one_endpoint_stay_within_its_share(alice, settings):
    import threading

    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 2
    lock, active, peak = threading.Lock(), [0], [0]

    class Counting(Receiver):
        def _record(self, received):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            answer = super()._record(received)
            return answer

    server = Counting(default=Answer(200, b"ok", delay=0.1))
    original = server.server.RequestHandlerClass.send_response

    def send_response(handler, *args, **kwargs):
        with lock:
            active[0] -= 1
        return original(handler, *args, **kwargs)

    server.server.RequestHandlerClass.send_response = send_response
    try:
        add_endpoint(alice.account, server.url)
        for n in range(8):
            emit(alice.account, object_id=f"p{n}")

        drain_until_idle()

        assert server.count() == 8
        assert peak[0] <= 2
    finally:
        server.stop()


def test_a_claim_is_a_lease_that_a_dead_worker_gives_up_when_it_expires(alice, settings):
    settings.WEBHOOK_CLAIM_LEASE_SECONDS = 60
    add_endpoint(alice.account, "https://93.184.216.34/hooks")
    emit(alice.account)
    now = timezone.now()

    assert len(engine.claim(limit=10, now=now)) == 1
    assert engine.claim(limit=10, now=now + timedelta(seconds=59)) == []
    assert len(engine.claim(limit=10, now=now + timedelta(seconds=61))) == 1


def test_deliveries_to_a_disabled_endpoint_fail_without_an_attempt(alice):
    endpoint, _ = add_endpoint(alice.account, "https://93.184.216.34/hooks")
    event = emit(alice.account)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False)

    assert engine.claim(limit=10) == []

    delivery = Delivery.objects.get(event=event)
    assert delivery.status == "failed" and delivery.attempt_count == 0 and "disabled" in delivery.last_error


def test_after_a_rotation_both_secrets_sign_for_24_hours(alice, receiver):
    endpoint, old = add_endpoint(alice.account, receiver.url)
    new = services.webhook_endpoint_rotate_secret(account=alice.account, actor=None, endpoint=endpoint).secret
    emit(alice.account, object_id="one")
    engine.drain()

    request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verify(old, request) and verify(new, request)

    with time_machine.travel(timezone.now() + timedelta(hours=25), tick=True):
        emit(alice.account, object_id="two")
        engine.drain()
        later = receiver.requests[1]
        assert len(later.headers["webhook-signature"].split(" ")) == 1
        assert verify(new, later)
        with pytest.raises(WebhookVerificationError):
            verify(old, later)


def test_the_form_format_posts_status_callback_fields(alice, receiver):
    _, secret = add_endpoint(alice.account, receiver.url, payload_format="form")
    event = emit(alice.account, CallSid="abc", CallStatus="ringing", legs=[1, 2], answered=False)

    engine.drain()

    request = receiver.requests[0]
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    Webhook(secret).verify(request.body, request.headers, json_parse=False)
    fields = parse_qsl(request.text)
    assert ("EventId", str(event.public_id)) in fields
    assert ("EventType", "call.ringing") in fields
    assert ("SequenceNumber", "1") in fields
    assert ("CallSid", "abc") in fields and ("CallStatus", "ringing") in fields
    assert ("legs", "1") in fields and ("legs", "2") in fields and ("answered", "false") in fields


def test_a_test_send_is_attempted_once_with_a_fresh_id(alice, receiver):
    receiver.respond(Answer(500))
    endpoint, secret = add_endpoint(alice.account, receiver.url)

    delivery = services.webhook_endpoint_send_test(account=alice.account, actor=None, endpoint=endpoint)
    engine.drain()

    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempt_count == 1
    body = verify(secret, receiver.requests[0])
    assert body["type"] == "webhook.test" and body["id"] == str(delivery.public_id)
    assert not Event.objects.filter(public_id=delivery.public_id).exists()


def test_replay_resends_with_the_same_id(alice, receiver):
    add_endpoint(alice.account, receiver.url)
    event = emit(alice.account)
    engine.drain()
    delivery = Delivery.objects.get(event=event)

    services.delivery_replay(account=alice.account, actor=alice.user, delivery=delivery)
    engine.drain()

    assert receiver.ids() == [str(event.public_id)] * 2
    assert list(delivery.attempts.values_list("trigger", flat=True)) == ["scheduled", "replay"]


def test_recover_requeues_failed_deliveries_since_a_time(alice, receiver):
    receiver.respond(Answer(400), Answer(400), Answer(400))
    endpoint, _ = add_endpoint(alice.account, receiver.url)
    old = emit(alice.account, object_id="old")
    Delivery.objects.filter(event=old).update(created_at=timezone.now() - timedelta(days=2))
    emit(alice.account, object_id="new-1")
    emit(alice.account, object_id="new-2")
    drain_until_idle()
    assert Delivery.objects.filter(status="failed").count() == 3

    count = services.webhook_endpoint_recover(
        account=alice.account, actor=alice.user, endpoint=endpoint, since=timezone.now() - timedelta(days=1)
    )
    drain_until_idle()

    assert count == 2
    assert Delivery.objects.filter(status="delivered").count() == 2
    assert Delivery.objects.get(event=old).status == "failed"


def test_an_endpoint_failing_for_five_days_is_disabled_and_its_owners_told(alice, django_capture_on_commit_callbacks):
    failing, _ = add_endpoint(alice.account, "https://93.184.216.34/a")
    recent, _ = add_endpoint(alice.account, "https://93.184.216.34/b")
    WebhookEndpoint.objects.filter(pk=failing.pk).update(failing_since=timezone.now() - timedelta(days=5, hours=1))
    WebhookEndpoint.objects.filter(pk=recent.pk).update(failing_since=timezone.now() - timedelta(days=4))

    with django_capture_on_commit_callbacks(execute=True):
        assert engine.endpoints_disable_failing() == 1

    failing.refresh_from_db()
    recent.refresh_from_db()
    assert failing.enabled is False and failing.disabled_reason == "failing"
    assert recent.enabled is True
    assert Event.objects.filter(type="endpoint.disabled", object_id=str(failing.public_id)).exists()
    assert len(mail.outbox) == 1 and "5 days" in mail.outbox[0].body


def test_a_success_ends_the_failure_streak(alice, receiver):
    endpoint, _ = add_endpoint(alice.account, receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=2, failing_since=timezone.now() - timedelta(days=1)
    )
    emit(alice.account)

    engine.drain()

    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.failing_since is None and endpoint.last_success_at


def test_old_events_are_purged_with_their_deliveries(alice, settings):
    settings.EVENT_RETENTION_DAYS = 30
    add_endpoint(alice.account, "https://93.184.216.34/hooks")
    old = emit(alice.account, object_id="old")
    kept = emit(alice.account, object_id="kept")
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    DeliveryAttempt.objects.create(
        delivery=Delivery.objects.get(event=old), number=1, attempted_at=timezone.now(), duration_ms=1
    )

    assert events_purge_expired() == 1

    assert list(Event.objects.filter(type="call.ringing").values_list("pk", flat=True)) == [kept.pk]
    assert not Delivery.objects.filter(event_id=old.pk).exists()
    assert not DeliveryAttempt.objects.exists()


def test_the_sweeper_sees_due_work(alice):
    assert engine.sweep() is False
    add_endpoint(alice.account, "https://93.184.216.34/hooks")
    emit(alice.account)

    assert engine.sweep() is True


def test_the_body_is_compact_json(alice, receiver):
    add_endpoint(alice.account, receiver.url)
    emit(alice.account, text="héllo")

    engine.drain()

    assert json.loads(receiver.requests[0].body)["data"] == {"text": "héllo"}
    assert b", " not in receiver.requests[0].body


def test_a_live_worker_keeps_renewing_its_claim_on_a_slow_delivery(alice, receiver, settings):
    settings.WEBHOOK_CLAIM_LEASE_SECONDS = 0.6
    receiver.respond(Answer(200, b"ok", delay=1.5))  # far longer than the lease
    add_endpoint(alice.account, receiver.url)
    event = emit(alice.account)

    engine.drain()

    assert receiver.count() == 1  # not claimed again (and sent twice) while it was still in flight
    assert Delivery.objects.get(event=event).status == "delivered"

"""The staff admin for events and webhooks: lists across accounts, stuck deliveries, re-queue, no secrets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from telephony.models import Delivery, Event, WebhookEndpoint
from telephony.services import webhooks as services
from telephony.services.events import event_emit
from tenants.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(email="staff@example.com", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def setup(alice):
    created = services.webhook_endpoint_create(
        account=alice.account, actor=None, url="https://93.184.216.34/hooks", event_types=["call.*"]
    )
    event = event_emit(account=alice.account, type="call.ringing", object_id="c1", payload={"state": "ringing"})
    return created, event, Delivery.objects.get(event=event)


def test_the_lists_render_and_never_show_a_secret(staff_client, setup):
    created, event, delivery = setup

    for path in ("event", "webhookendpoint", "delivery"):
        response = staff_client.get(f"/admin/telephony/{path}/")
        assert response.status_code == 200, path
        assert created.secret not in response.content.decode()
    page = staff_client.get(f"/admin/telephony/webhookendpoint/{created.endpoint.pk}/change/").content.decode()
    assert created.secret not in page and created.endpoint.secret_encrypted not in page
    assert staff_client.get(f"/admin/telephony/delivery/{delivery.pk}/change/").status_code == 200
    assert staff_client.get(f"/admin/telephony/event/{event.pk}/change/").status_code == 200


def test_stuck_deliveries_are_found_and_requeued(staff_client, setup):
    _, _, delivery = setup
    stuck_at = timezone.now() - timedelta(minutes=10)
    Delivery.objects.filter(pk=delivery.pk).update(
        status="failed", next_attempt_at=None, last_error="HTTP 500", attempt_count=8
    )
    other = Delivery.objects.create(
        account=delivery.account, event=delivery.event, endpoint=delivery.endpoint, next_attempt_at=stuck_at,
        claimed_until=stuck_at,
    )  # fmt: skip

    listed = staff_client.get("/admin/telephony/delivery/", {"health": "stuck"}).content.decode()
    assert str(other.public_id) in listed and str(delivery.public_id) not in listed

    response = staff_client.post(
        "/admin/telephony/delivery/",
        {"action": "requeue", "_selected_action": [delivery.pk, other.pk]},
        follow=True,
    )

    assert response.status_code == 200
    for row in Delivery.objects.filter(pk__in=[delivery.pk, other.pk]):
        assert row.status == "pending" and row.next_attempt_at <= timezone.now() and row.claimed_until is None


def test_staff_can_disable_and_enable_an_endpoint_through_the_services(staff_client, setup):
    created, _, _ = setup
    endpoint = created.endpoint

    staff_client.post("/admin/telephony/webhookendpoint/", {"action": "disable", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.enabled is False and endpoint.disabled_reason == "staff"
    assert Event.objects.filter(type="endpoint.disabled", object_id=str(endpoint.public_id)).exists()

    staff_client.post("/admin/telephony/webhookendpoint/", {"action": "enable", "_selected_action": [endpoint.pk]})
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled is True


def test_deliveries_to_failing_endpoints_and_recent_ones_are_listed_by_their_filters(staff_client, setup):
    created, event, delivery = setup
    WebhookEndpoint.objects.filter(pk=created.endpoint.pk).update(failing_since=timezone.now() - timedelta(hours=1))
    healthy = services.webhook_endpoint_create(
        account=delivery.account, actor=None, url="https://93.184.216.34/other", event_types=["call.*"]
    ).endpoint
    elsewhere = Delivery.objects.create(account=delivery.account, event=event, endpoint=healthy)
    old = Delivery.objects.create(
        account=delivery.account, event=event, endpoint=healthy, created_at=timezone.now() - timedelta(days=30)
    )

    failing = staff_client.get("/admin/telephony/delivery/", {"health": "failing_endpoint"}).content.decode()
    recent = staff_client.get(
        "/admin/telephony/delivery/", {"created_at__gte": str(timezone.now() - timedelta(days=7))}
    ).content.decode()
    endpoints = staff_client.get("/admin/telephony/webhookendpoint/", {"health": "failing"}).content.decode()

    assert str(delivery.public_id) in failing and str(elsewhere.public_id) not in failing
    assert str(elsewhere.public_id) in recent and str(old.public_id) not in recent
    assert created.endpoint.url in endpoints and healthy.url not in endpoints


def test_requeue_leaves_delivered_ones_and_disabled_endpoints_alone(staff_client, setup):
    _, _, delivery = setup
    Delivery.objects.filter(pk=delivery.pk).update(status="delivered", next_attempt_at=None)
    other = services.webhook_endpoint_create(
        account=delivery.account, actor=None, url="https://93.184.216.34/off", event_types=["call.*"]
    ).endpoint
    failed_to_disabled = Delivery.objects.create(
        account=delivery.account, event=delivery.event, endpoint=other, status="failed", next_attempt_at=None
    )
    services.webhook_endpoint_disable(account=delivery.account, actor=None, endpoint=other, reason="staff")

    response = staff_client.post(
        "/admin/telephony/delivery/",
        {"action": "requeue", "_selected_action": [delivery.pk, failed_to_disabled.pk]},
        follow=True,
    )

    assert "0 deliveries queued again" in response.content.decode()
    assert Delivery.objects.get(pk=delivery.pk).status == "delivered"
    assert Delivery.objects.get(pk=failed_to_disabled.pk).status == "failed"


def test_a_deliverys_admin_page_shows_each_attempts_headers(staff_client, setup):
    _, _, delivery = setup
    delivery.attempts.create(
        number=1, attempted_at=timezone.now(), duration_ms=12, status_code=502,
        request_headers={"webhook-id": delivery.message_id, "webhook-signature": "v1,abc"},
        response_headers={"x-upstream": "down"},
    )  # fmt: skip

    page = staff_client.get(f"/admin/telephony/delivery/{delivery.pk}/change/").content.decode()

    assert "x-upstream" in page and "v1,abc" in page and delivery.message_id in page

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

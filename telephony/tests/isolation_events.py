"""Isolation-test registrations for events and webhooks (read by tenants/tests/test_isolation.py).

FACTORIES: model -> function(account) making one row of it in that account.
PORTAL_OBJECT_ROUTES: portal URL name with an <id> -> model.
"""

from __future__ import annotations

from telephony.models import Delivery, Event, WebhookEndpoint
from telephony.services import webhooks as webhook_services
from telephony.services.events import event_emit


def make_endpoint(account, **fields) -> WebhookEndpoint:
    values = {"url": "https://93.184.216.34/hooks", "event_types": ["*"], **fields}
    return webhook_services.webhook_endpoint_create(account=account, actor=None, **values).endpoint


def make_event(account, type: str = "call.ringing", **payload) -> Event:
    return event_emit(account=account, type=type, object_type="call", object_id="call-1", payload=payload)


def make_delivery(account) -> Delivery:
    endpoint = make_endpoint(account, event_types=["call.*"])
    event = make_event(account)
    return Delivery.objects.get(event=event, endpoint=endpoint)


FACTORIES: dict = {Event: make_event, WebhookEndpoint: make_endpoint, Delivery: make_delivery}
PORTAL_OBJECT_ROUTES: dict = {
    "webhookendpoint-detail": WebhookEndpoint,
    "webhookendpoint-edit": WebhookEndpoint,
    "webhookendpoint-delete": WebhookEndpoint,
    "webhookendpoint-rotate": WebhookEndpoint,
    "webhookendpoint-test": WebhookEndpoint,
    "webhookendpoint-recover": WebhookEndpoint,
    "webhookdelivery-detail": Delivery,
    "webhookdelivery-replay": Delivery,
}

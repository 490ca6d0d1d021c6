"""Isolation-test registrations for the event stream (read by tenants/tests/test_isolation.py).

FACTORIES: model -> function(account) making one row of it in that account (Event's is in isolation_events).
PORTAL_OBJECT_ROUTES: portal URL name with an <id> -> model.
"""

from __future__ import annotations

from telephony.models import Event, EventSubscription
from telephony.services import stream as services


def make_subscription(account) -> EventSubscription:
    return services.event_subscription_create(account=account, actor=None, event_types=["call.*"])


FACTORIES: dict = {EventSubscription: make_subscription}
PORTAL_OBJECT_ROUTES: dict = {"event-detail": Event}

"""Isolation-test registrations for call-control apps and calls (read by tenants/tests/test_isolation.py).

FACTORIES: model -> function(account) making one row of it in that account.
PORTAL_OBJECT_ROUTES: portal URL name with an <id> -> model.
Also the helpers the app and call test modules share.
"""

from __future__ import annotations

import itertools
from datetime import datetime

from django.utils import timezone

from telephony.models import Call, CallControlApp
from telephony.services import apps as services

_serial = itertools.count(1)

FLOW = "<Response>\n  <Answer/>\n  <Say>Hello</Say>\n  <Hangup/>\n</Response>"


def make_app(account, **fields) -> CallControlApp:
    values = {"name": f"IVR {next(_serial)}", "xml": FLOW, **fields}
    return services.app_create(account=account, actor=None, **values).app


def make_call(account, *, created_at: datetime | None = None, **fields) -> Call:
    """A call record as the engine will write it (calls have no service of their own yet)."""
    values = {
        "direction": Call.Direction.INBOUND,
        "from_number": "+12015550100",
        "to_number": "+12015550199",
        "status": Call.Status.COMPLETED,
        "created_at": created_at or timezone.now(),
        **fields,
    }
    return Call.objects.create(account=account, **values)


FACTORIES: dict = {CallControlApp: make_app, Call: make_call}
PORTAL_OBJECT_ROUTES: dict = {
    "app-detail": CallControlApp,
    "app-edit": CallControlApp,
    "app-delete": CallControlApp,
    "app-numbers": CallControlApp,
    "app-versions": CallControlApp,
    "app-restore": CallControlApp,
    "call-detail": Call,
}

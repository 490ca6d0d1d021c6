"""Isolation-test registrations for placing and controlling calls (read by tenants/tests/test_isolation.py).

Calls themselves are registered by isolation_apps.py; the portal's hang-up route names one.
"""

from __future__ import annotations

from telephony.models import Call

FACTORIES: dict = {}
PORTAL_OBJECT_ROUTES: dict = {"call-hangup": Call}

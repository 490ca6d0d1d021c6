"""Isolation-test registrations for sip (read by tenants/tests/test_isolation.py).

FACTORIES: model -> function(account) making one row of it in that account.
PORTAL_OBJECT_ROUTES: portal URL name with an <id> -> model.
"""

from __future__ import annotations

FACTORIES: dict = {}
PORTAL_OBJECT_ROUTES: dict = {}

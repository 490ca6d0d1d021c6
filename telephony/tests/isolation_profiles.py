"""Isolation-test registrations for TN profiles (read by tenants/tests/test_isolation.py).

FACTORIES: model -> function(account) making one row of it in that account.
PORTAL_OBJECT_ROUTES: portal URL name with an <id> -> model.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

from django.utils import timezone

from telephony.models import PhoneNumber, StockNumber, TnProfile


def make_tn_profile(account) -> TnProfile:
    from telephony.services.profiles import caller_list_change, tn_profile_create

    profile = tn_profile_create(account=account, actor=None, name=f"Profile {uuid.uuid4().hex[:8]}")
    # With entries, so that a leak of the lists (not only of the profile) would show.
    caller_list_change(account=account, actor=None, profile=profile, list_type="blacklist", add=["+19005550100"])
    profile.refresh_from_db()
    return profile


FACTORIES: dict = {TnProfile: make_tn_profile}
PORTAL_OBJECT_ROUTES: dict = {
    "tnprofile-detail": TnProfile,
    "tnprofile-edit": TnProfile,
    "tnprofile-delete": TnProfile,
    "tnprofile-entries-add": TnProfile,
    "tnprofile-entries-import": TnProfile,
    "tnprofile-entry-remove": TnProfile,
    "tnprofile-test": TnProfile,
}


# --- Helpers the profile tests share ----------------------------------------------------------------

_lines = itertools.count(1000)


def make_phone_number(account, **fields) -> PhoneNumber:
    """An active number (+1 973 555 xxxx) in the account, made directly: the numbers services are another area's."""
    digits = f"1973555{next(_lines):04d}"
    stock = StockNumber.objects.create(
        number=f"+{digits}", digits=digits, country="US", status=StockNumber.Status.ASSIGNED
    )
    now = timezone.now()
    return PhoneNumber.objects.create(
        account=account, stock=stock, number=stock.number, leased_at=now, expires_at=now + timedelta(days=30), **fields
    )

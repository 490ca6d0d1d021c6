"""Isolation-test registrations for numbers (read by tenants/tests/test_isolation.py).

FACTORIES: model -> function(account) making one row of it in that account.
PORTAL_OBJECT_ROUTES: portal URL name with an <id> -> model.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from django.utils import timezone

from telephony.models import NumberOrder, PhoneNumber, StockNumber

_lines = itertools.count(1000)


def make_stock(**fields) -> StockNumber:
    """A fresh available stock number (+1 201 346 xxxx) with the given overrides."""
    line = next(_lines)
    digits = f"1201346{line:04d}"
    values = {
        "number": f"+{digits}",
        "digits": digits,
        "country": "US",
        "state": "NJ",
        "npa": "201",
        "nxx": "346",
        "rate_center": "JERSEYCITY",
        "city": "Jersey City",
        "voice": True,
        "sms": True,
        **fields,
    }
    return StockNumber.objects.create(**values)


def make_phone_number(account, **fields) -> PhoneNumber:
    stock = make_stock(status=StockNumber.Status.ASSIGNED)
    now = timezone.now()
    return PhoneNumber.objects.create(
        account=account,
        stock=stock,
        number=stock.number,
        leased_at=now,
        expires_at=now + timedelta(days=30),
        **fields,
    )


def make_number_order(account) -> NumberOrder:
    order = NumberOrder.objects.create(account=account, status=NumberOrder.Status.FAILED, actor_label="test")
    order.items.create(number="+12013460000", result="failed", reason="not_found")
    return order


FACTORIES: dict = {PhoneNumber: make_phone_number, NumberOrder: make_number_order}
PORTAL_OBJECT_ROUTES: dict = {
    "number-detail": PhoneNumber,
    "number-edit": PhoneNumber,
    "number-release": PhoneNumber,
    "numberorder-detail": NumberOrder,
}

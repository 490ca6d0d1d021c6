"""Isolation-test registrations for sip (read by tenants/tests/test_isolation.py).

FACTORIES: model -> function(account) making one row of it in that account.
PORTAL_OBJECT_ROUTES: portal URL name with an <id> -> model.
"""

from __future__ import annotations

import itertools

from telephony.models import SipConnection, SipDomain, SipInvite, SipUser
from telephony.services import sip as services

_serial = itertools.count(1)


def make_connection(account) -> SipConnection:
    n = next(_serial)
    return services.sip_connection_create(
        account=account, actor=None, name=f"Trunk {n}", username=f"trunk-{account.slug}-{n}",
        password="a long trunk secret",
    )  # fmt: skip


def make_domain(account) -> SipDomain:
    return services.sip_domain_create(account=account, actor=None, name=f"{account.slug}-{next(_serial)}")


def make_user(account) -> SipUser:
    return services.sip_user_create(
        account=account, actor=None, domain=make_domain(account), login="mary", password="a long phone secret"
    )


def make_invite(account) -> SipInvite:
    domain = make_domain(account)
    created = services.sip_invite_create(
        account=account, actor=None, connection=make_connection(account), name="Mary", domain=domain
    )
    return created.invite


FACTORIES: dict = {
    SipConnection: make_connection,
    SipDomain: make_domain,
    SipUser: make_user,
    SipInvite: make_invite,
}
PORTAL_OBJECT_ROUTES: dict = {
    "sipconnection-detail": SipConnection,
    "sipconnection-edit": SipConnection,
    "sipconnection-delete": SipConnection,
    "sipconnection-numbers": SipConnection,
    "sipconnection-invite-create": SipConnection,
    "sipconnection-invite-revoke": SipInvite,
    "sipdomain-detail": SipDomain,
    "sipdomain-edit": SipDomain,
    "sipdomain-delete": SipDomain,
    "sipuser-create": SipDomain,
    "sipuser-detail": SipUser,
    "sipuser-edit": SipUser,
    "sipuser-delete": SipUser,
}


# --- Also used by the SIP test modules ---------------------------------------------------------------


def make_number(account, number: str, **fields):
    """A leased number in the account (numbers have their own services; SIP tests only need the row)."""
    from datetime import timedelta

    from django.utils import timezone

    from telephony.models import PhoneNumber, StockNumber

    stock = StockNumber.objects.create(
        number=number, digits=number.lstrip("+"), country="US", status=StockNumber.Status.ASSIGNED
    )
    now = timezone.now()
    return PhoneNumber.objects.create(
        account=account, stock=stock, number=number, leased_at=now, expires_at=now + timedelta(days=30), **fields
    )

"""Isolation-test registrations for messaging (read by tenants/tests/test_isolation.py), and the helpers the
messaging tests share.

FACTORIES: model -> function(account) making one row of it in that account.
PORTAL_OBJECT_ROUTES: portal URL name with an <id> -> model.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from telephony.models import (
    Brand,
    Campaign,
    Message,
    MessagingNumber,
    MessagingProfile,
    OptOut,
    PhoneNumber,
    StockNumber,
)
from telephony.models.numbers import NumberType

_lines = itertools.count(1000)


def make_sms_number(account, *, toll_free: bool = False, sms: bool = True, country: str = "US") -> PhoneNumber:
    """An active number of the account whose stock supports SMS: a US long code (+1 201 347 xxxx) or toll-free."""
    line = next(_lines)
    digits = f"1833555{line:04d}" if toll_free else f"1201347{line:04d}"
    stock = StockNumber.objects.create(
        number=f"+{digits}",
        digits=digits,
        country=country,
        number_type=NumberType.TOLL_FREE if toll_free else NumberType.LOCAL,
        npa=digits[1:4],
        nxx=digits[4:7],
        voice=True,
        sms=sms,
        status=StockNumber.Status.ASSIGNED,
    )
    now = timezone.now()
    return PhoneNumber.objects.create(
        account=account, stock=stock, number=stock.number, leased_at=now, expires_at=now + timedelta(days=30)
    )


def make_profile(account, **values) -> MessagingProfile:
    from telephony.services.messaging import messaging_profile_create

    return messaging_profile_create(
        account=account, actor=None, name=values.pop("name", f"Profile {uuid.uuid4().hex[:8]}"), **values
    )


def make_campaign(account, *, approved: bool = True, **values) -> Campaign:
    from telephony.services.messaging import brand_create, campaign_create, tendlc_review

    brand = brand_create(account=account, actor=None, display_name="Acme", company_name="Acme Inc.")
    campaign = campaign_create(
        account=account,
        actor=None,
        brand=brand,
        name=values.pop("name", "Order updates"),
        use_case=values.pop("use_case", Campaign.UseCase.DELIVERY_NOTIFICATION),
        description="Tells customers where their order is.",
        sample_messages=["Your order #123 has shipped."],
        message_flow="Customers opt in at checkout.",
        **values,
    )
    if approved:
        tendlc_review(staff=None, obj=brand, approve=True)
        campaign = tendlc_review(staff=None, obj=campaign, approve=True)
    return campaign


def make_sender(account, profile=None, *, toll_free: bool = False, campaign=None) -> MessagingNumber:
    """An SMS-enabled number that can send: in `profile` (a new one if None), with an approved campaign if needed."""
    from telephony.services.messaging import number_sms_enable

    profile = profile or make_profile(account)
    number = make_sms_number(account, toll_free=toll_free)
    if campaign is None and not toll_free:
        campaign = make_campaign(account)
    return number_sms_enable(account=account, actor=None, number=number, profile=profile, campaign=campaign)


def make_message(account) -> Message:
    from telephony.services.messaging import message_receive

    sender = make_sender(account)
    return message_receive(from_="+12125550100", to=sender.number, text="Hello")


def make_opt_out(account, number: str = "+12125550100") -> OptOut:
    """An opt-out as a STOP texted to one of the account's numbers leaves it (with its event)."""
    from telephony.services.messaging import opt_out_record

    return opt_out_record(account=account, number=number, keyword="STOP", via_number="+12013479999")


# --- Races: real transactions on their own connections (PostgreSQL) ---------------------------------


@contextmanager
def held_transaction(job):
    """Run `job` in a transaction on another connection and keep that transaction open until the block ends."""
    ready, release, result = threading.Event(), threading.Event(), {}

    def run():
        try:
            with transaction.atomic():
                job()
                ready.set()
                release.wait(10)
        except Exception as exc:  # noqa: BLE001 - the test reads it
            result["error"] = exc
        finally:
            ready.set()
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert ready.wait(10)
    try:
        yield result
    finally:
        release.set()
        thread.join(10)


def meanwhile(job):
    """Start `job` on another connection; its result (or exception) once joined."""
    result = {}

    def run():
        try:
            result["value"] = job()
        except Exception as exc:  # noqa: BLE001 - the test reads it
            result["value"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)  # long enough for it to reach the lock (or the commit) the held transaction blocks
    return thread, result


FACTORIES: dict = {
    MessagingProfile: make_profile,
    Brand: lambda account: Brand.objects.create(account=account, display_name="Acme", company_name="Acme Inc."),
    Campaign: lambda account: make_campaign(account, approved=False),
    Message: make_message,
    OptOut: make_opt_out,
}
PORTAL_OBJECT_ROUTES: dict = {
    "messagingprofile-detail": MessagingProfile,
    "messagingprofile-edit": MessagingProfile,
    "messagingprofile-delete": MessagingProfile,
    "messagingprofile-numbers": MessagingProfile,
    "number-sms-disable": PhoneNumber,
    "message-detail": Message,
    "message-thread": Message,
    "brand-detail": Brand,
    "brand-delete": Brand,
    "campaign-detail": Campaign,
    "campaign-delete": Campaign,
}

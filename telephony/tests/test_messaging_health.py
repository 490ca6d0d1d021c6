"""Sender health (for `skip_unhealthy`): failed messages count up per sender, a delivered one resets the count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from telephony.models import Message, MessagingNumber, SimulatedCarrierRule
from telephony.services import messaging as services
from telephony.tests.isolation_messaging import make_profile, make_sender

pytestmark = pytest.mark.django_db


def _send_all(account):
    return services.messages_send_due(now=timezone.now() + timedelta(hours=2))


def test_failures_count_per_sender_and_a_delivery_resets_them(alice):
    SimulatedCarrierRule.objects.create(match="+12125550100", action="fail", error_code="30006")
    SimulatedCarrierRule.objects.create(match="+12125550101", action="silent")
    profile = make_profile(alice.account)
    first = make_sender(alice.account, profile, toll_free=True)
    second = make_sender(alice.account, profile, toll_free=True)
    # Several senders' failures in one batch of sends: each sender's count goes up by its own failures.
    for sender, times in ((second, 2), (first, 1), (second, 1)):
        for _ in range(times):
            services.message_send(account=alice.account, actor=None, from_=sender.number, to="+12125550100", text="x")
    services.message_send(account=alice.account, actor=None, from_=first.number, to="+12125550101", text="ok")
    _send_all(alice.account)
    counts = dict(
        MessagingNumber.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", "consecutive_failures")
    )
    assert counts == {first.pk: 1, second.pk: 3}
    assert MessagingNumber.objects.get(pk=second.pk).last_failure_at is not None

    # A delivery receipt for the first sender's message resets its count; the second keeps its own.
    delivered = Message.objects.get(from_number=first.number, to_number="+12125550101")
    applied, early = services.message_receipts(
        carrier=delivered.carrier, receipts=[(delivered.carrier_message_id, "delivered", "", "")]
    )
    assert [message.pk for message in applied] == [delivered.pk] and early == []
    counts = dict(
        MessagingNumber.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", "consecutive_failures")
    )
    assert counts == {first.pk: 0, second.pk: 3}

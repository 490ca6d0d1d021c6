"""The portal's "Place a call" form, the Hang up button of a live call, and staff's outbound policy admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from telephony.models import Call, CallWakeup, Event, OutboundPolicy
from telephony.tests.engine_support import next_number
from telephony.tests.isolation_apps import make_call
from telephony.tests.isolation_sip import make_number
from tenants.models import AuditEntry
from tenants.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

XML = '<Response><Pause length="600000"/></Response>'


def test_a_member_places_a_call_and_lands_on_its_page(client, alice):
    number = make_number(alice.account, next_number())
    client.force_login(alice.user)
    page = client.get(reverse("call-list", kwargs={"account": alice.account.slug}))
    assert 'data-testid="place-call-form"' in page.content.decode() and number.number in page.content.decode()

    response = client.post(
        reverse("call-place", kwargs={"account": alice.account.slug}),
        {"from": number.number, "to": "+13105550100", "xml": XML},
        follow=True,
    )

    call = Call.objects.get(account=alice.account)
    assert response.redirect_chain[-1][0] == reverse(
        "call-detail", kwargs={"account": alice.account.slug, "id": call.public_id}
    )
    assert call.direction == "outbound-api" and call.status == "queued"
    assert 'data-testid="call-hangup"' in response.content.decode()


def test_a_refused_call_says_which_field_is_wrong(client, alice):
    number = make_number(alice.account, next_number())
    client.force_login(alice.user)

    response = client.post(
        reverse("call-place", kwargs={"account": alice.account.slug}),
        {"from": number.number, "to": "+19005550100", "xml": XML},
        follow=True,
    )

    assert "to: +19005550100 is a premium-rate number" in response.content.decode()
    assert not Call.objects.exists()


def test_hang_up_asks_the_engine_to_end_a_live_call_and_refuses_an_ended_one(client, alice):
    live = make_call(alice.account, status="in-progress", direction="outbound-api")
    ended = make_call(alice.account, status="completed")
    client.force_login(alice.user)

    confirm = client.get(reverse("call-hangup", kwargs={"account": alice.account.slug, "id": live.public_id}))
    assert 'data-testid="confirm-button"' in confirm.content.decode() and not CallWakeup.objects.exists()
    client.post(reverse("call-hangup", kwargs={"account": alice.account.slug, "id": live.public_id}))
    response = client.post(
        reverse("call-hangup", kwargs={"account": alice.account.slug, "id": ended.public_id}), follow=True
    )

    assert CallWakeup.objects.get(root_id=live.pk).data["action"] == "hangup"
    assert Event.objects.filter(type="call.control", object_id=str(live.public_id)).count() == 1
    assert "already ended" in response.content.decode()
    assert not CallWakeup.objects.filter(root_id=ended.pk).exists()


def test_a_viewer_sees_no_call_controls_and_may_not_use_them(client, alice):
    viewer = MembershipFactory(account=alice.account, role="viewer").user
    make_number(alice.account, next_number())
    live = make_call(alice.account, status="in-progress")
    client.force_login(viewer)

    log = client.get(reverse("call-list", kwargs={"account": alice.account.slug})).content.decode()
    detail = client.get(reverse("call-detail", kwargs={"account": alice.account.slug, "id": live.public_id}))
    hangup = client.post(reverse("call-hangup", kwargs={"account": alice.account.slug, "id": live.public_id}))

    assert 'data-testid="place-call-form"' not in log and 'data-testid="call-export"' in log
    assert 'data-testid="call-hangup"' not in detail.content.decode()
    assert hangup.status_code == 403 and not CallWakeup.objects.exists()


def test_staff_set_an_accounts_policy_in_the_admin_and_it_is_audited(admin_client, alice):
    response = admin_client.post(
        reverse("admin:telephony_outboundpolicy_add"),
        {
            "account": alice.account.pk,
            "calls_per_second": "2.5",
            "max_concurrent_calls": "3",
            "max_queue_wait_s": "30",
            "allowed_countries": '["us", "CA"]',
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    policy = OutboundPolicy.objects.get(account=alice.account)
    assert (policy.rate, policy.concurrency, policy.queue_wait_s) == (2.5, 3, 30)
    assert policy.countries == ["CA", "US"] and not policy.allow_premium_rate
    entry = AuditEntry.objects.get(action="outbound_policy.updated")
    assert entry.after["calls_per_second"] == 2.5 and entry.before["calls_per_second"] is None

"""Messaging portal pages: profiles and SMS enablement, the send-test form, the log, threads, and 10DLC forms."""

from __future__ import annotations

import pytest
from django.urls import reverse

from telephony.models import Brand, Campaign, Message, MessagingNumber, MessagingProfile
from telephony.services import messaging as services
from telephony.tests.isolation_messaging import make_campaign, make_profile, make_sender, make_sms_number

pytestmark = pytest.mark.django_db


def _url(name, account, **kwargs):
    return reverse(name, kwargs={"account": account.slug, **kwargs})


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice.user)
    return client


@pytest.fixture
def as_bob(client, bob):
    client.force_login(bob.user)
    return client


def test_it_creates_a_profile_and_puts_a_number_in_it(as_alice, alice):
    response = as_alice.post(
        _url("messagingprofile-create", alice.account),
        {"name": "Alerts", "long_code_weight": 1, "toll_free_weight": 2, "number_pool_enabled": "on"},
    )
    profile = MessagingProfile.objects.get(account=alice.account, name="Alerts")
    assert response.status_code == 302 and profile.toll_free_weight == 2 and not profile.sticky_sender
    number = make_sms_number(alice.account)
    campaign = make_campaign(alice.account)

    as_alice.post(
        _url("messagingprofile-numbers", alice.account, id=profile.public_id),
        {"number": str(number.public_id), "campaign": str(campaign.public_id)},
    )
    enabled = MessagingNumber.objects.get(phone_number=number)
    assert enabled.profile == profile and enabled.campaign == campaign
    page = as_alice.get(_url("messagingprofile-detail", alice.account, id=profile.public_id)).content.decode()
    assert number.number in page and "Order updates" in page

    confirm = as_alice.get(_url("number-sms-disable", alice.account, id=number.public_id)).content.decode()
    assert f"Turn SMS off on {number.number}?" in confirm
    assert MessagingNumber.objects.filter(phone_number=number).exists()
    as_alice.post(_url("number-sms-disable", alice.account, id=number.public_id))
    assert not MessagingNumber.objects.filter(phone_number=number).exists()


def test_a_voice_only_number_is_not_offered_and_is_refused(as_alice, alice):
    profile = make_profile(alice.account)
    voice_only = make_sms_number(alice.account, sms=False)
    page = as_alice.get(_url("messagingprofile-detail", alice.account, id=profile.public_id)).content.decode()
    assert voice_only.number not in page
    response = as_alice.post(
        _url("messagingprofile-numbers", alice.account, id=profile.public_id), {"number": str(voice_only.public_id)}
    )
    assert response.status_code == 302
    assert not MessagingNumber.objects.filter(phone_number=voice_only).exists()


def test_the_send_form_queues_a_message_and_shows_its_thread(as_alice, alice):
    sender = make_sender(alice.account)
    response = as_alice.post(
        _url("message-send", alice.account),
        {"sender": sender.number, "to": "+12125550100", "text": "Hi from the portal"},
    )
    message = Message.objects.get(account=alice.account)
    assert response.status_code == 302 and response["Location"] == _url(
        "message-thread", alice.account, id=message.public_id
    )
    thread = as_alice.get(response["Location"]).content.decode()
    assert "Hi from the portal" in thread and "+12125550100" in thread


def test_the_send_form_shows_why_a_send_was_refused(as_alice, alice):
    profile = make_profile(alice.account)
    no_campaign = services.number_sms_enable(
        account=alice.account, actor=None, number=make_sms_number(alice.account), profile=profile
    )
    response = as_alice.post(
        _url("message-send", alice.account), {"sender": no_campaign.number, "to": "+12125550100", "text": "x"}
    )
    assert response.status_code == 200
    assert "10DLC campaign" in response.content.decode()
    assert not Message.objects.exists()


def test_the_log_filters_by_text(as_alice, alice):
    sender = make_sender(alice.account)
    services.message_receive(from_="+12125550100", to=sender.number, text="apples")
    services.message_receive(from_="+12125550100", to=sender.number, text="pears")
    page = as_alice.get(_url("message-list", alice.account) + "?text=appl").content.decode()
    assert "apples" in page and "pears" not in page


def test_a_message_page_shows_its_history(as_alice, alice):
    sender = make_sender(alice.account)
    message = services.message_receive(from_="+12125550100", to=sender.number, text="hello")
    page = as_alice.get(_url("message-detail", alice.account, id=message.public_id)).content.decode()
    assert "hello" in page and "received" in page


def test_a_viewer_sees_no_send_form_and_cannot_send(as_bob, alice):
    sender = make_sender(alice.account)
    page = as_bob.get(_url("message-list", alice.account)).content.decode()
    assert "send-message-form" not in page
    response = as_bob.post(
        _url("message-send", alice.account), {"sender": sender.number, "to": "+12125550100", "text": "x"}
    )
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_brand_and_campaign_forms_submit_for_review(as_alice, alice):
    as_alice.post(
        _url("brand-create", alice.account),
        {"display_name": "Acme", "company_name": "Acme Inc.", "entity_type": "private_profit", "country": "US"},
    )
    brand = Brand.objects.get(account=alice.account)
    assert brand.status == "pending"
    response = as_alice.post(
        _url("campaign-create", alice.account),
        {
            "brand": str(brand.public_id), "name": "Shipping", "use_case": "delivery_notification",
            "description": "Where your parcel is.", "sample_messages": "Your parcel left.\nIt arrives today.",
            "message_flow": "Checkout checkbox.", "help_message": "Acme help",
        },
    )  # fmt: skip
    campaign = Campaign.objects.get(account=alice.account)
    assert response.status_code == 302 and campaign.sample_messages == ["Your parcel left.", "It arrives today."]
    page = as_alice.get(_url("brand-list", alice.account)).content.decode()
    assert "Shipping" in page and "Pending review" in page

    services.tendlc_review(staff=None, obj=campaign, approve=False, note="Add an opt-in screenshot.")
    page = as_alice.get(_url("campaign-detail", alice.account, id=campaign.public_id)).content.decode()
    assert "Rejected" in page and "Add an opt-in screenshot." in page


def test_the_number_page_links_its_messaging_profile(as_alice, alice):
    sender = make_sender(alice.account, make_profile(alice.account, name="Alerts"))
    page = as_alice.get(_url("number-detail", alice.account, id=sender.phone_number.public_id)).content.decode()
    assert "Alerts" in page and "number-messaging-profile" in page
    other = make_sms_number(alice.account)
    page = as_alice.get(_url("number-detail", alice.account, id=other.public_id)).content.decode()
    assert "put it in a messaging profile" in page

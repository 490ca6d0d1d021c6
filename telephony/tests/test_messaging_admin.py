"""The staff admin for messaging: 10DLC approval and rejection through the service, and messages across accounts."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from telephony.models import Campaign, Event, Message
from telephony.services import messaging as services
from telephony.tests.isolation_messaging import make_campaign, make_profile, make_sender, make_sms_number
from tenants.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    staff = User.objects.create_superuser(email="staff@example.com", password="staff password 1")
    client.force_login(staff)
    return client


def admin_url(model, action: str, *args) -> str:
    return reverse(f"admin:telephony_{model._meta.model_name}_{action}", args=args)


def test_staff_approve_a_campaign_and_its_long_codes_can_send(staff_client, alice, alice_api):
    campaign = make_campaign(alice.account, approved=False)
    enabled = services.number_sms_enable(
        account=alice.account, actor=None, number=make_sms_number(alice.account), profile=make_profile(alice.account),
        campaign=campaign,
    )  # fmt: skip
    refused = alice_api.post("/api/v1/messages", {"from": enabled.number, "to": "+12125550100", "text": "x"})
    assert refused.json()["error"]["code"] == "campaign_required"

    response = staff_client.post(
        admin_url(Campaign, "changelist"), {"action": "approve", ACTION_CHECKBOX_NAME: [campaign.pk]}
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "approved" and campaign.reviewed_by == "staff@example.com"
    assert Event.objects.filter(account=alice.account, type="campaign.approved").exists()
    sent = alice_api.post("/api/v1/messages", {"from": enabled.number, "to": "+12125550100", "text": "x"})
    assert sent.status_code == 201


def test_staff_reject_a_campaign_with_a_note_the_customer_sees(staff_client, alice, alice_api):
    campaign = make_campaign(alice.account, approved=False)
    ask = staff_client.post(
        admin_url(Campaign, "changelist"), {"action": "reject", ACTION_CHECKBOX_NAME: [campaign.pk]}
    )
    assert ask.status_code == 200 and b"note the customer will see" in ask.content
    staff_client.post(
        admin_url(Campaign, "changelist"),
        {"action": "reject", "apply": "1", "note": "Show the opt-in form.", ACTION_CHECKBOX_NAME: [campaign.pk]},
    )
    body = alice_api.get(f"/api/v1/campaigns/{campaign.public_id}").json()
    assert (body["status"], body["review_note"]) == ("rejected", "Show the opt-in form.")


def test_staff_see_messages_of_every_account(staff_client, alice, charlie):
    for account, text in ((alice.account, "from A"), (charlie.account, "from B")):
        services.message_receive(from_="+12125550100", to=make_sender(account).number, text=text)
    page = staff_client.get(admin_url(Message, "changelist")).content.decode()
    assert "account-a" in page.lower() or "Account A" in page
    assert "Account B" in page
    message = Message.objects.get(text="from B")
    assert staff_client.get(admin_url(Message, "change", message.pk)).status_code == 200

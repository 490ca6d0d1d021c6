"""Deleting 10DLC brands and campaigns (API and portal): refused while in use, audited, and the shared review
fields of both."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from telephony.models import Brand, Campaign, Message, MessagingNumber
from telephony.services import messaging as services
from telephony.tests.isolation_messaging import (
    held_transaction,
    make_campaign,
    make_profile,
    make_sender,
    make_sms_number,
    meanwhile,
)
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db

OFF_NET = "+12125550100"


def _error(response):
    return response.json()["error"]


def _url(name, account, **kwargs):
    return reverse(name, kwargs={"account": account.slug, **kwargs})


# --- API ---------------------------------------------------------------------------------------------


def test_it_deletes_a_campaign_no_number_uses_then_its_brand(alice, alice_api):
    campaign = make_campaign(alice.account, approved=False)
    brand = campaign.brand

    assert alice_api.delete(f"/api/v1/campaigns/{campaign.public_id}").status_code == 204
    assert alice_api.delete(f"/api/v1/brands/{brand.public_id}").status_code == 204

    assert not Campaign.objects.filter(pk=campaign.pk).exists() and not Brand.objects.filter(pk=brand.pk).exists()
    actions = set(AuditEntry.objects.filter(account=alice.account).values_list("action", flat=True))
    assert {"campaign.deleted", "brand.deleted"} <= actions
    entry = AuditEntry.objects.get(account=alice.account, action="campaign.deleted")
    assert entry.object_id == str(campaign.public_id) and entry.before["name"] == campaign.name
    assert alice_api.get(f"/api/v1/campaigns/{campaign.public_id}").status_code == 404


def test_it_refuses_to_delete_a_campaign_a_number_sends_under(alice, alice_api):
    sender = make_sender(alice.account)

    response = alice_api.delete(f"/api/v1/campaigns/{sender.campaign.public_id}")

    assert response.status_code == 409
    assert _error(response)["code"] == "campaign_in_use" and "1 number sends" in _error(response)["message"]
    assert Campaign.objects.filter(pk=sender.campaign_id).exists()


def test_it_refuses_to_delete_a_brand_that_still_has_campaigns(alice, alice_api):
    campaign = make_campaign(alice.account, approved=False)

    response = alice_api.delete(f"/api/v1/brands/{campaign.brand.public_id}")

    assert response.status_code == 409
    assert _error(response)["code"] == "brand_in_use"
    assert Brand.objects.filter(pk=campaign.brand_id).exists()


def test_a_campaign_whose_numbers_left_can_be_deleted_and_its_messages_stay(alice, alice_api):
    sender = make_sender(alice.account)
    campaign = sender.campaign
    sent = alice_api.post("/api/v1/messages", {"from": sender.number, "to": OFF_NET, "text": "hi"}, format="json")
    assert sent.status_code == 201
    services.number_sms_disable(account=alice.account, actor=None, number=sender.phone_number)

    assert alice_api.delete(f"/api/v1/campaigns/{campaign.public_id}").status_code == 204

    message = Message.objects.get(public_id=sent.json()["id"])
    assert message.campaign_id is None


def test_another_accounts_brand_and_campaign_cannot_be_deleted(alice, charlie_api):
    campaign = make_campaign(alice.account, approved=False)

    assert charlie_api.delete(f"/api/v1/campaigns/{campaign.public_id}").status_code == 404
    assert charlie_api.delete(f"/api/v1/brands/{campaign.brand.public_id}").status_code == 404
    assert Campaign.objects.filter(pk=campaign.pk).exists()


def test_brands_and_campaigns_share_the_review_fields(alice):
    campaign = make_campaign(alice.account, approved=False)
    rejected = services.tendlc_review(staff=None, obj=campaign.brand, approve=False, note="EIN does not match")

    assert (rejected.status, rejected.review_note, rejected.reviewed_by) == ("rejected", "EIN does not match", "staff")
    for model in (Brand, Campaign):
        names = {field.name for field in model._meta.get_fields()}
        assert {"status", "review_note", "reviewed_at", "reviewed_by"} <= names
        assert f"telephony_{model._meta.model_name}_status_valid" in {c.name for c in model._meta.constraints}


# --- Portal ------------------------------------------------------------------------------------------


def test_the_portal_deletes_a_campaign_after_a_confirm_page(client, alice):
    campaign = make_campaign(alice.account, approved=False)
    client.force_login(alice.user)
    detail = client.get(_url("campaign-detail", alice.account, id=campaign.public_id)).content.decode()
    assert _url("campaign-delete", alice.account, id=campaign.public_id) in detail

    confirm = client.get(_url("campaign-delete", alice.account, id=campaign.public_id))
    assert confirm.status_code == 200 and 'data-testid="confirm-button"' in confirm.content.decode()
    assert Campaign.objects.filter(pk=campaign.pk).exists()

    response = client.post(_url("campaign-delete", alice.account, id=campaign.public_id))

    assert response.status_code == 302 and response["Location"] == _url("brand-list", alice.account)
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert AuditEntry.objects.filter(account=alice.account, action="campaign.deleted", actor_user=alice.user).exists()


def test_the_portal_refuses_to_delete_a_brand_with_campaigns_and_says_why(client, alice):
    campaign = make_campaign(alice.account, approved=False)
    client.force_login(alice.user)

    response = client.post(_url("brand-delete", alice.account, id=campaign.brand.public_id), follow=True)

    assert Brand.objects.filter(pk=campaign.brand_id).exists()
    assert "still has 1 campaign" in response.content.decode()


def test_the_portal_refuses_to_delete_a_campaign_in_use(client, alice):
    campaign = make_campaign(alice.account)
    services.number_sms_enable(
        account=alice.account, actor=None, number=make_sms_number(alice.account), profile=make_profile(alice.account),
        campaign=campaign,
    )  # fmt: skip
    client.force_login(alice.user)

    response = client.post(_url("campaign-delete", alice.account, id=campaign.public_id), follow=True)

    assert Campaign.objects.filter(pk=campaign.pk).exists()
    assert "sends under this campaign" in response.content.decode()


def test_the_portal_delete_pages_need_the_forms_csrf_token(alice):
    from django.test import Client

    campaign = make_campaign(alice.account, approved=False)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice.user)
    url = _url("campaign-delete", alice.account, id=campaign.public_id)

    assert browser.post(url).status_code == 403
    assert Campaign.objects.filter(pk=campaign.pk).exists()
    page = browser.get(url).content.decode()
    confirm_form = page[page.index('data-testid="confirm"') :]
    [token] = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', confirm_form.split("</form>")[0])
    assert browser.post(url, {"csrfmiddlewaretoken": token}).status_code == 302
    assert not Campaign.objects.filter(pk=campaign.pk).exists()


def test_a_viewer_cannot_delete_a_brand(client, alice, bob):
    brand = services.brand_create(account=alice.account, actor=None, display_name="Acme", company_name="Acme Inc.")
    client.force_login(bob.user)

    response = client.post(_url("brand-delete", alice.account, id=brand.public_id))

    assert response.status_code == 403
    assert Brand.objects.filter(pk=brand.pk).exists()


# --- Races (PostgreSQL: real transactions on their own connections) ------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("deleted", ["campaign", "messaging_profile"])
def test_enabling_a_number_in_a_campaign_or_profile_deleted_meanwhile_is_a_clean_refusal(
    alice, transactional_db, deleted
):
    campaign, profile, number = (
        make_campaign(alice.account),
        make_profile(alice.account),
        make_sms_number(alice.account),
    )
    delete = {
        "campaign": lambda: services.campaign_delete(account=alice.account, actor=None, campaign=campaign),
        "messaging_profile": lambda: services.messaging_profile_delete(
            account=alice.account, actor=None, profile=profile
        ),
    }[deleted]

    with held_transaction(delete) as held:
        thread, enabled = meanwhile(
            lambda: services.number_sms_enable(
                account=alice.account, actor=None, number=number, profile=profile, campaign=campaign
            )
        )
    thread.join(10)

    assert "error" not in held
    # Not an IntegrityError at commit (a 500): the enable waited for the delete and found the object gone.
    assert isinstance(enabled["value"], ValidationError), enabled["value"]
    assert enabled["value"].message_dict.keys() == {deleted}
    assert not MessagingNumber.objects.filter(phone_number=number).exists()


@pytest.mark.postgres
def test_a_campaign_deleted_while_a_number_is_being_enabled_with_it_is_refused_as_in_use(alice, transactional_db):
    campaign, profile, number = (
        make_campaign(alice.account),
        make_profile(alice.account),
        make_sms_number(alice.account),
    )

    with held_transaction(
        lambda: services.number_sms_enable(
            account=alice.account, actor=None, number=number, profile=profile, campaign=campaign
        )
    ):
        thread, deleted = meanwhile(
            lambda: services.campaign_delete(account=alice.account, actor=None, campaign=campaign)
        )
    thread.join(10)

    assert isinstance(deleted["value"], ValidationError) and deleted["value"].code == "campaign_in_use"
    assert MessagingNumber.objects.get(phone_number=number).campaign_id == campaign.pk


@pytest.mark.postgres
def test_a_campaign_created_under_a_brand_deleted_meanwhile_is_a_clean_refusal(alice, transactional_db):
    brand = services.brand_create(account=alice.account, actor=None, display_name="Acme", company_name="Acme Inc.")

    with held_transaction(lambda: services.brand_delete(account=alice.account, actor=None, brand=brand)) as held:
        thread, created = meanwhile(
            lambda: services.campaign_create(
                account=alice.account,
                actor=None,
                brand=brand,
                name="Alerts",
                use_case="mixed",
                description="Alerts.",
                sample_messages=["Hi"],
                message_flow="At checkout.",
            )
        )
    thread.join(10)

    assert "error" not in held
    assert isinstance(created["value"], ValidationError), created["value"]
    assert created["value"].message_dict.keys() == {"brand"}
    assert not Campaign.objects.filter(account=alice.account).exists()


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["campaigns", "brands"])
def test_a_second_delete_of_the_same_brand_or_campaign_at_once_is_404_not_a_server_error(
    alice, alice_api, transactional_db, kind
):
    campaign = make_campaign(alice.account, approved=False)
    if kind == "brands":
        Campaign.objects.filter(pk=campaign.pk).delete()
    obj = campaign if kind == "campaigns" else campaign.brand
    delete = {
        "campaigns": lambda: services.campaign_delete(account=alice.account, actor=None, campaign=campaign),
        "brands": lambda: services.brand_delete(account=alice.account, actor=None, brand=campaign.brand),
    }[kind]

    with held_transaction(delete):
        thread, response = meanwhile(lambda: alice_api.delete(f"/api/v1/{kind}/{obj.public_id}"))
    thread.join(10)

    assert response["value"].status_code == 404, response["value"].content
    assert response["value"].json()["error"]["code"] == "not_found"


@pytest.mark.postgres
def test_a_second_portal_delete_of_the_same_campaign_at_once_is_404(alice, client, transactional_db):
    campaign = make_campaign(alice.account, approved=False)
    client.force_login(alice.user)

    with held_transaction(lambda: services.campaign_delete(account=alice.account, actor=None, campaign=campaign)):
        thread, response = meanwhile(lambda: client.post(_url("campaign-delete", alice.account, id=campaign.public_id)))
    thread.join(10)

    assert not isinstance(response["value"], Exception), response["value"]
    assert response["value"].status_code == 404


# --- Viewers -----------------------------------------------------------------------------------------


def test_a_viewer_sees_no_delete_controls_and_gets_403_on_the_confirm_pages(client, alice, bob):
    campaign = make_campaign(alice.account, approved=False)
    client.force_login(bob.user)

    for name, obj in (("brand", campaign.brand), ("campaign", campaign)):
        detail = client.get(_url(f"{name}-detail", alice.account, id=obj.public_id))
        assert detail.status_code == 200 and f'data-testid="delete-{name}"' not in detail.content.decode()
        assert client.get(_url(f"{name}-delete", alice.account, id=obj.public_id)).status_code == 403
        assert client.post(_url(f"{name}-delete", alice.account, id=obj.public_id)).status_code == 403
    assert Campaign.objects.filter(pk=campaign.pk).exists()


def test_a_viewer_api_key_gets_403_deleting_a_brand_or_campaign(alice, bob, token_client):
    campaign = make_campaign(alice.account, approved=False)
    as_bob = token_client(bob.user, alice.account)

    for path in (f"/api/v1/campaigns/{campaign.public_id}", f"/api/v1/brands/{campaign.brand.public_id}"):
        response = as_bob.delete(path)
        assert response.status_code == 403, response.content
        assert set(response.json()["error"]) == {"code", "message", "fields"}
    assert Campaign.objects.filter(pk=campaign.pk).exists() and Brand.objects.filter(pk=campaign.brand_id).exists()


@pytest.mark.parametrize("model", [Brand, Campaign])
def test_staff_who_may_only_view_10dlc_records_cannot_approve_or_reject_them(client, alice, model):
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
    from django.contrib.auth.models import Permission

    from tenants.models import User

    campaign = make_campaign(alice.account, approved=False)
    obj = campaign if model is Campaign else campaign.brand
    staff = User.objects.create_user(email="viewer@example.com", password="staff password 1", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename=f"view_{model._meta.model_name}"))
    client.force_login(staff)
    url = reverse(f"admin:telephony_{model._meta.model_name}_changelist")
    assert client.get(url).status_code == 200

    client.post(url, {"action": "approve", ACTION_CHECKBOX_NAME: [obj.pk]})
    client.post(url, {"action": "reject", "apply": "1", "note": "No.", ACTION_CHECKBOX_NAME: [obj.pk]})

    obj.refresh_from_db()
    assert obj.status == "pending"

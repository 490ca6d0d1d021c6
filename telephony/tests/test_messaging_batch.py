"""POST /api/v1/messages/batch: many messages in one request, each checked as a single send, with the refused ones
listed by index; the rules of single sends (sticky sender, opt-out, limits, 10DLC) hold across the batch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from telephony.models import Event, Message, MessagingNumber
from telephony.tests.isolation_messaging import make_opt_out, make_profile, make_sender, make_sms_number
from tenants.tests.fixtures import wait_for

pytestmark = pytest.mark.django_db

OFF_NET = "+12125550100"


def _batch(client, messages, **headers):
    return client.post("/api/v1/messages/batch", {"messages": messages}, format="json", **headers)


def _rejected(response) -> dict[int, tuple]:
    return {entry["index"]: (entry["code"], entry["field"]) for entry in response.json()["rejected"]}


def test_it_accepts_the_valid_messages_and_lists_the_others_by_index(alice, alice_api):
    profile = make_profile(alice.account, sticky_sender=False)
    pooled = make_sender(alice.account, profile, toll_free=True)
    sender = make_sender(alice.account, toll_free=True)
    voice_only = make_sms_number(alice.account)
    response = _batch(
        alice_api,
        [
            {"from": sender.number, "to": OFF_NET, "text": "one"},
            {"from": sender.number, "to": "not a number", "text": "two"},
            {"messaging_profile": str(profile.public_id), "to": "+12125550101", "text": "three €"},
            {"from": voice_only.number, "to": OFF_NET, "text": "four"},
            {"to": OFF_NET, "text": "five"},
            {"from": sender.number, "text": "six"},
            "seven",
        ],
    )
    assert response.status_code == 201, response.content
    accepted = response.json()["accepted"]
    assert [entry["index"] for entry in accepted] == [0, 2]
    assert [entry["message"]["text"] for entry in accepted] == ["one", "three €"]
    assert accepted[1]["message"]["from"] == pooled.number and accepted[1]["message"]["status"] == "queued"
    assert accepted[1]["message"]["segments"] == 1
    assert _rejected(response) == {
        1: ("invalid_number", "to"),
        3: ("sms_not_enabled", "from"),
        4: ("validation_error", "from"),
        5: ("validation_error", "to"),
        6: ("validation_error", None),
    }
    assert "messaging profile" in response.json()["rejected"][1]["detail"]
    queued = Message.objects.filter(account=alice.account)
    assert sorted(queued.values_list("text", flat=True)) == ["one", "three €"]
    # Each accepted message raised its own message.queued event, as a single send does.
    for entry in accepted:
        assert Event.objects.filter(object_id=entry["message"]["id"], type="message.queued").count() == 1


def test_a_sticky_sender_holds_across_a_batch(alice, alice_api):
    profile = make_profile(alice.account, sticky_sender=True)
    for _ in range(4):
        make_sender(alice.account, profile, toll_free=True)
    first = alice_api.post(
        "/api/v1/messages", {"messaging_profile": str(profile.public_id), "to": OFF_NET, "text": "x"}, format="json"
    ).json()["from"]
    others = [f"+1212555{line:04d}" for line in range(200, 206)]
    items = [
        {"messaging_profile": str(profile.public_id), "to": to, "text": f"n{i}"} for i in range(3) for to in others
    ]
    items += [{"messaging_profile": str(profile.public_id), "to": OFF_NET, "text": f"again {i}"} for i in range(3)]
    response = _batch(alice_api, items)
    assert response.status_code == 201, response.content
    by_destination: dict[str, set] = {}
    for entry in response.json()["accepted"]:
        by_destination.setdefault(entry["message"]["to"], set()).add(entry["message"]["from"])
    assert by_destination[OFF_NET] == {first}  # the sender it had before the batch
    assert all(len(senders) == 1 for senders in by_destination.values())  # one sender per destination within it
    assert len(set().union(*by_destination.values())) > 1  # while the pool still spreads destinations


def test_an_opted_out_destination_is_refused_in_a_batch(alice, alice_api):
    make_opt_out(alice.account, OFF_NET)
    sender = make_sender(alice.account, toll_free=True)
    response = _batch(
        alice_api,
        [
            {"from": sender.number, "to": "+12125550101", "text": "fine"},
            {"from": sender.number, "to": OFF_NET, "text": "opted out"},
        ],
    )
    assert response.status_code == 201
    assert _rejected(response) == {1: ("opted_out", "to")}
    assert "START" in response.json()["rejected"][0]["detail"]


def test_a_us_long_code_without_an_approved_campaign_is_refused_in_a_batch(alice, alice_api):
    from telephony.services.messaging import number_sms_enable

    profile = make_profile(alice.account)
    number = make_sms_number(alice.account)
    number_sms_enable(account=alice.account, actor=None, number=number, profile=profile)
    response = _batch(alice_api, [{"from": number.number, "to": OFF_NET, "text": "x"}])
    assert response.status_code == 200  # nothing accepted
    assert response.json()["accepted"] == []
    assert _rejected(response) == {0: ("campaign_required", "from")}


def test_the_daily_limit_reached_mid_batch_refuses_the_rest(alice, alice_api, settings):
    settings.MESSAGING_ACCOUNT_DAILY_LIMIT = 3
    sender = make_sender(alice.account, toll_free=True)
    alice_api.post("/api/v1/messages", {"from": sender.number, "to": OFF_NET, "text": "before"}, format="json")
    items = [{"from": sender.number, "to": OFF_NET, "text": f"m{i}"} for i in range(4)]
    items.insert(1, {"from": sender.number, "to": "bad", "text": "invalid"})
    response = _batch(alice_api, items)
    assert [entry["index"] for entry in response.json()["accepted"]] == [0, 2]
    assert _rejected(response) == {
        1: ("invalid_number", "to"),
        3: ("daily_limit_reached", None),
        4: ("daily_limit_reached", None),
    }
    assert Message.objects.filter(account=alice.account).count() == 3
    # The refused messages took no slot: the next day's first send would follow the last accepted one.
    last = Message.objects.filter(account=alice.account).order_by("-send_after").first()
    slot = MessagingNumber.objects.get(pk=sender.pk).next_slot_at
    assert round((slot - last.send_after).total_seconds(), 3) == round(1 / settings.MESSAGING_RATE_TOLL_FREE, 3)


def test_a_batch_queues_its_messages_behind_each_other_at_the_senders_throughput(alice, alice_api, settings):
    settings.MESSAGING_RATE_LONG_CODE = 1.0
    settings.MESSAGING_SENDER_MAX_QUEUE_SECONDS = 2
    sender = make_sender(alice.account)
    response = _batch(alice_api, [{"from": sender.number, "to": OFF_NET, "text": f"m{i}"} for i in range(5)])
    slots = [entry["message"]["send_after"] for entry in response.json()["accepted"]]
    assert len(slots) == 3 and slots == sorted(slots) and len(set(slots)) == 3
    assert _rejected(response) == {3: ("sender_queue_full", None), 4: ("sender_queue_full", None)}


def test_it_refuses_a_batch_with_too_many_messages_or_none(alice, alice_api, settings):
    settings.MESSAGING_BATCH_MAX = 2
    sender = make_sender(alice.account, toll_free=True)
    item = {"from": sender.number, "to": OFF_NET, "text": "x"}
    response = _batch(alice_api, [item, item, item])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "too_many_items" and "at most 2" in error["fields"]["messages"][0]
    assert _batch(alice_api, []).status_code == 400
    assert alice_api.post("/api/v1/messages/batch", {"messages": "x"}, format="json").status_code == 400
    assert not Message.objects.filter(account=alice.account).exists()


def test_the_same_idempotency_key_accepts_a_batch_once(alice, alice_api):
    sender = make_sender(alice.account, toll_free=True)
    items = [{"from": sender.number, "to": OFF_NET, "text": f"m{i}"} for i in range(3)]
    first = _batch(alice_api, items, HTTP_IDEMPOTENCY_KEY="batch-1")
    second = _batch(alice_api, items, HTTP_IDEMPOTENCY_KEY="batch-1")
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Message.objects.filter(account=alice.account).count() == 3


def test_another_accounts_profile_in_an_item_is_not_found(alice, charlie, alice_api):
    theirs = make_profile(charlie.account)
    make_sender(charlie.account, theirs, toll_free=True)
    response = _batch(alice_api, [{"messaging_profile": str(theirs.public_id), "to": OFF_NET, "text": "x"}])
    assert response.json()["accepted"] == []
    assert _rejected(response) == {0: ("does_not_exist", "messaging_profile")}
    assert response.json()["rejected"][0]["detail"] == "No such object in this account."
    assert not Message.objects.exists()


def test_batch_messages_are_sent_by_the_worker(celery_worker, alice, alice_api):
    profile = make_profile(alice.account, sticky_sender=False)
    for _ in range(3):
        make_sender(alice.account, profile, toll_free=True)
    items = [
        {"messaging_profile": str(profile.public_id), "to": f"+1212555{i:04d}", "text": f"m{i}"} for i in range(12)
    ]
    response = _batch(alice_api, items)
    assert len(response.json()["accepted"]) == 12
    # Three senders at three a second: some messages are due at once, the others queued up to a second ahead.
    wait_for(
        lambda: Message.objects.filter(account=alice.account, sent_at__isnull=False).count() == 12,
        message="every batch message sent",
    )
    for message in Message.objects.filter(account=alice.account):
        assert [entry["status"] for entry in message.history][:3] == ["queued", "sending", "sent"]
        assert message.sent_at >= message.send_after


def test_a_batch_of_one_at_the_daily_limit_lists_it_as_refused(alice, alice_api, settings):
    # One message left to accept is still a batch: refused by index with daily_limit_reached, never a 500.
    settings.MESSAGING_ACCOUNT_DAILY_LIMIT = 1
    sender = make_sender(alice.account, toll_free=True)
    assert _batch(alice_api, [{"from": sender.number, "to": OFF_NET, "text": "first"}]).status_code == 201
    response = _batch(
        alice_api,
        [{"from": sender.number, "to": "bad", "text": "invalid"}, {"from": sender.number, "to": OFF_NET, "text": "x"}],
    )
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == []
    assert _rejected(response) == {0: ("invalid_number", "to"), 1: ("daily_limit_reached", None)}
    assert Message.objects.filter(account=alice.account).count() == 1


@pytest.mark.postgres
def test_concurrent_batches_and_single_sends_never_share_a_senders_slot(alice, transactional_db, settings):
    import itertools
    import threading
    from collections import defaultdict

    from django.db import connection

    from telephony.services import messaging as services

    settings.MESSAGING_RATE_TOLL_FREE = 10.0
    settings.MESSAGING_SENDER_MAX_QUEUE_SECONDS = 3600
    profile = make_profile(alice.account, sticky_sender=False)
    senders = [make_sender(alice.account, profile, toll_free=True) for _ in range(3)]
    errors = []

    def single(n):
        try:
            for i in range(n):
                to = f"+1212556{i:04d}"
                services.message_send(account=alice.account, actor=None, profile=profile, to=to, text="s")
                services.message_send(account=alice.account, actor=None, from_=senders[0].number, to=OFF_NET, text="f")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    def batch(n):
        try:
            for _ in range(n):
                requests = [
                    (i, services.SendRequest(to=f"+1212557{i:04d}", text="b", profile=profile)) for i in range(10)
                ]
                requests.append((10, services.SendRequest(to=OFF_NET, text="b", from_=senders[0].number)))
                outcome = services.messages_send_many(account=alice.account, actor=None, requests=requests)
                assert not outcome.rejected, outcome.rejected
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=single, args=(15,)) for _ in range(3)]
    threads += [threading.Thread(target=batch, args=(5,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    by_sender = defaultdict(list)
    for number, slot in Message.objects.filter(account=alice.account).values_list("from_number", "send_after"):
        by_sender[number].append(slot)
    assert sum(len(slots) for slots in by_sender.values()) == 3 * 15 * 2 + 2 * 5 * 11
    for slots in by_sender.values():
        slots.sort()
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(slots)]
        assert min(gaps) >= 0.1 - 1e-6, gaps  # one segment at 10/s each: no two messages in one slot


def test_a_batch_over_the_request_body_limit_is_a_413_in_the_error_shape(alice, alice_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    sender = make_sender(alice.account, toll_free=True)
    items = [{"from": sender.number, "to": OFF_NET, "text": "x" * 100} for _ in range(30)]
    for headers in ({}, {"HTTP_IDEMPOTENCY_KEY": "big"}):
        response = _batch(alice_api, items, **headers)
        assert response.status_code == 413, response.content
        error = response.json()["error"]
        assert error["code"] == "request_too_large" and "2000 bytes" in error["message"]
    assert not Message.objects.exists()


def test_a_message_from_a_pool_number_makes_it_the_sticky_sender_later_in_the_batch(alice, alice_api, settings):
    # As with single sends: a message sent with `from` one of the pool's numbers makes it the destination's sender.
    settings.MESSAGING_SENDER_MAX_QUEUE_SECONDS = 3600
    profile = make_profile(alice.account, sticky_sender=True)
    chosen = make_sender(alice.account, profile, toll_free=True)
    for _ in range(3):
        make_sender(alice.account, profile, toll_free=True)
    # The busiest of the pool: without the sticky rule the pool would never pick it.
    MessagingNumber.objects.filter(pk=chosen.pk).update(next_slot_at=timezone.now() + timedelta(seconds=30))
    response = _batch(
        alice_api,
        [
            {"from": chosen.number, "to": OFF_NET, "text": "explicit"},
            {"messaging_profile": str(profile.public_id), "to": OFF_NET, "text": "pooled"},
        ],
    )
    assert [entry["message"]["from"] for entry in response.json()["accepted"]] == [chosen.number, chosen.number]


def test_another_accounts_numbers_and_opt_outs_play_no_part_in_alices_sends(alice, charlie, alice_api):
    from telephony.services import messaging as services

    theirs = make_profile(charlie.account, sticky_sender=True)
    their_sender = make_sender(charlie.account, theirs, toll_free=True)
    make_opt_out(charlie.account, OFF_NET)  # opted out of Charlie's messages, not Alice's
    services.message_send(account=charlie.account, actor=None, profile=theirs, to="+12125550101", text="theirs")
    profile = make_profile(alice.account, sticky_sender=True)
    mine = make_sender(alice.account, profile, toll_free=True)
    single = alice_api.post(
        "/api/v1/messages", {"messaging_profile": str(profile.public_id), "to": OFF_NET, "text": "x"}, format="json"
    )
    assert single.status_code == 201 and single.json()["from"] == mine.number
    response = _batch(
        alice_api,
        [
            {"from": their_sender.number, "to": "+12125550102", "text": "not mine"},
            {"messaging_profile": str(profile.public_id), "to": OFF_NET, "text": "pooled"},
            {"messaging_profile": str(profile.public_id), "to": "+12125550101", "text": "their sticky destination"},
        ],
    )
    assert _rejected(response) == {0: ("unknown_number", "from")}
    assert [entry["message"]["from"] for entry in response.json()["accepted"]] == [mine.number, mine.number]
    # The worker's claim-time opt-out check is per account too: Alice's messages are sent.
    services.messages_send_due(now=timezone.now() + timedelta(hours=2))
    statuses = set(Message.objects.filter(account=alice.account).values_list("status", flat=True))
    assert statuses <= {"sent", "delivered"}, statuses


def test_a_pool_send_refused_for_a_full_queue_gives_its_slot_back(alice, alice_api, settings):
    settings.MESSAGING_SENDER_MAX_QUEUE_SECONDS = 10
    profile = make_profile(alice.account, sticky_sender=False)
    senders = [make_sender(alice.account, profile, toll_free=True) for _ in range(2)]
    later = timezone.now() + timedelta(seconds=30)
    MessagingNumber.objects.filter(pk__in=[sender.pk for sender in senders]).update(next_slot_at=later)
    item = {"messaging_profile": str(profile.public_id), "to": OFF_NET, "text": "x"}
    single = alice_api.post("/api/v1/messages", item, format="json")
    assert single.status_code == 429 and single.json()["error"]["code"] == "sender_queue_full"
    response = _batch(alice_api, [item, item])
    assert response.status_code == 200
    assert _rejected(response) == {0: ("sender_queue_full", None), 1: ("sender_queue_full", None)}
    slots = set(MessagingNumber.objects.filter(profile=profile).values_list("next_slot_at", flat=True))
    assert slots == {later}
    assert not Message.objects.exists()


def test_a_pool_never_sends_from_another_accounts_number_even_if_a_row_points_into_it(alice, charlie, alice_api):
    # Defence in depth: the services never put another account's number in a profile, but the pool's queries name
    # the account as well, so a row that did (a bad data migration, a manual fix) is ignored rather than used.
    profile = make_profile(alice.account, sticky_sender=False)
    mine = make_sender(alice.account, profile, toll_free=True)
    theirs = make_sender(charlie.account, toll_free=True)
    MessagingNumber.objects.filter(pk=theirs.pk).update(profile=profile)
    MessagingNumber.objects.filter(pk=mine.pk).update(next_slot_at=timezone.now() + timedelta(seconds=20))
    item = {"messaging_profile": str(profile.public_id), "to": OFF_NET, "text": "x"}
    single = alice_api.post("/api/v1/messages", item, format="json")
    assert single.status_code == 201 and single.json()["from"] == mine.number
    response = _batch(alice_api, [item, {**item, "to": "+12125550101"}])
    assert [entry["message"]["from"] for entry in response.json()["accepted"]] == [mine.number, mine.number]


@pytest.mark.postgres
def test_a_batch_does_not_send_from_a_number_whose_sms_was_turned_off_while_it_waited(alice, transactional_db):
    import threading
    import time

    from django.db import connection, transaction

    from telephony.services import messaging as services

    profile = make_profile(alice.account, sticky_sender=False)
    sender = make_sender(alice.account, toll_free=True)
    pooled = make_sender(alice.account, profile, toll_free=True)
    spare = make_sender(alice.account, profile, toll_free=True)
    MessagingNumber.objects.filter(pk=spare.pk).update(next_slot_at=timezone.now() + timedelta(seconds=20))
    disabling = threading.Event()

    def disable_and_commit_late():
        try:
            with transaction.atomic():
                for enabled in (sender, pooled):
                    services.number_sms_disable(account=alice.account, actor=None, number=enabled.phone_number)
                disabling.set()
                time.sleep(1.5)  # the batch has read both numbers and waits for their locks meanwhile
        finally:
            disabling.set()
            connection.close()

    thread = threading.Thread(target=disable_and_commit_late)
    thread.start()
    try:
        assert disabling.wait(10)
        outcome = services.messages_send_many(
            account=alice.account,
            actor=None,
            requests=[
                (0, services.SendRequest(to=OFF_NET, text="from", from_=sender.number)),
                (1, services.SendRequest(to=OFF_NET, text="pool", profile=profile)),
            ],
        )
    finally:
        thread.join(10)
    assert [(index, exc.error_dict["from"][0].code) for index, exc in outcome.rejected] == [(0, "sms_not_enabled")]
    assert [message.from_number for _, message in outcome.accepted] == [spare.number]
    assert not Message.objects.filter(from_number__in=[sender.number, pooled.number]).exists()


@pytest.mark.postgres
def test_a_single_send_from_a_number_whose_sms_was_turned_off_while_it_waited_is_a_clean_refusal(
    alice, transactional_db
):
    import threading
    import time

    from django.core.exceptions import ValidationError
    from django.db import connection, transaction

    from telephony.services import messaging as services

    sender = make_sender(alice.account, toll_free=True)
    disabling = threading.Event()

    def disable_and_commit_late():
        try:
            with transaction.atomic():
                services.number_sms_disable(account=alice.account, actor=None, number=sender.phone_number)
                disabling.set()
                time.sleep(1.5)  # the send has read the number and waits for its lock meanwhile
        finally:
            disabling.set()
            connection.close()

    thread = threading.Thread(target=disable_and_commit_late)
    thread.start()
    try:
        assert disabling.wait(10)
        with pytest.raises(ValidationError) as refused:
            services.message_send(account=alice.account, actor=None, from_=sender.number, to=OFF_NET, text="x")
    finally:
        thread.join(10)
    assert refused.value.error_dict["from"][0].code == "sms_not_enabled"
    assert not Message.objects.exists()

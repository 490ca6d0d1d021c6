"""What a websocket connection receives: subscribed types only, filters, never another account's, resume, heartbeats."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from telephony import delivery
from telephony.models import Delivery
from telephony.tests.isolation_events import make_endpoint
from telephony.tests.stream_support import Client, aemit, connected, emit, run, stream_settings  # noqa: F401
from tenants.tests.factories import make_api_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stream_settings")]


def test_it_streams_subscribed_events_in_the_webhook_body(alice):
    secret, _ = make_api_key(alice.account)

    async def scenario():
        client = await connected(secret, event_types=["call.*"])
        event = await aemit(alice.account, "call.ringing", object_id="c-1", state="ringing")
        received = await client.receive_event()
        await client.close()
        return event, received

    event, received = run(scenario)

    assert received["id"] == str(event.public_id)
    assert received["type"] == "call.ringing"
    assert received["object"] == {"type": "call", "id": "c-1"}
    assert received["data"] == {"state": "ringing"}
    # The very body a JSON webhook carries, so one parser serves both.
    make_endpoint(alice.account, event_types=["call.*"])
    webhook_event = emit(alice.account, "call.answered", object_id="c-1", state="in-progress")
    webhook_body = delivery.envelope(Delivery.objects.get(event=webhook_event))
    assert set(received) == set(webhook_body)
    assert received["account"] == webhook_body["account"]


def test_it_sends_nothing_until_something_is_subscribed(alice):
    secret, _ = make_api_key(alice.account)

    async def scenario():
        client = await connected(secret)
        await aemit(alice.account, "call.ringing")
        await client.receive_nothing(0.5)
        await client.close()

    run(scenario)


def test_it_sends_only_the_subscribed_types(alice):
    secret, _ = make_api_key(alice.account)

    async def scenario():
        client = await connected(secret, event_types=["message.*", "call.hangup"])
        await aemit(alice.account, "call.ringing")
        await aemit(alice.account, "message.sent", object_type="message", object_id="m-1")
        await aemit(alice.account, "call.hangup")
        types = [(await client.receive_event())["type"], (await client.receive_event())["type"]]
        await client.receive_nothing(0.3)
        await client.close()
        return types

    assert run(scenario) == ["message.sent", "call.hangup"]


def test_another_accounts_events_never_arrive(alice, charlie):
    alice_secret, _ = make_api_key(alice.account)

    async def scenario():
        client = await connected(alice_secret, event_types=["*"])
        await aemit(charlie.account, "call.ringing", object_id="charlies-call")
        await aemit(charlie.account, "message.received", object_type="message", object_id="charlies-message")
        mine = await aemit(alice.account, "call.ringing", object_id="alices-call")
        received = await client.receive_event()
        await client.receive_nothing(0.5)
        await client.close()
        return mine, received

    mine, received = run(scenario)

    assert received["id"] == str(mine.public_id)


def test_a_resume_from_another_accounts_event_id_is_refused(alice, charlie):
    alice_secret, _ = make_api_key(alice.account)
    theirs = emit(charlie.account, "call.ringing")

    async def scenario():
        client = await Client().open()
        return await client.auth(alice_secret, last_event_id=str(theirs.public_id))

    reply = run(scenario)

    assert (reply["type"], reply["code"]) == ("closed", 4410)
    assert "unknown or past retention" in reply["reason"]


def test_it_filters_by_number_app_and_call(alice):
    from telephony.models import CallControlApp

    secret, _ = make_api_key(alice.account)
    app = CallControlApp.objects.create(account=alice.account, name="IVR")
    call_id = "6c1f0a64-9a0e-4a3c-9d7a-2f8f5d0d1b11"
    other_call = "7d2e1b75-0b1f-4b4d-8e8b-3a9f6e1e2c22"

    async def scenario():
        client = await connected(secret)
        await client.send(
            {"type": "subscribe", "event_types": ["call.*", "number.*"], "filters": {"number": "+1 201 555 0123"}}
        )
        by_number = await client.receive()
        by_app = await client.subscribe(["call.*"], app=str(app.public_id))
        by_call = await client.subscribe(["call.flow"], call=call_id)
        # Matches the number (to), the app (data), the call (the object), the number's own change, and nothing.
        await aemit(alice.account, "call.ringing", object_id=other_call, to="+12015550123", **{"from": "+15550001"})
        await aemit(alice.account, "call.answered", object_id=other_call, call_control_app_id=str(app.public_id))
        await aemit(alice.account, "call.flow", object_id=call_id, call_id=call_id, command="Answer")
        await aemit(alice.account, "call.flow", object_id=other_call, call_id=other_call, command="Hangup")
        await aemit(alice.account, "call.ringing", object_id=other_call, to="+12015559999")
        await aemit(
            alice.account, "number.updated", object_type="number", object_id="n-1",
            object={"type": "number", "id": "n-1", "repr": "+12015550123"},
        )  # fmt: skip
        received = [await client.receive_event() for _ in range(4)]
        await client.receive_nothing(0.5)
        await client.close()
        return by_number, by_app, by_call, received

    by_number, by_app, by_call, received = run(scenario)

    assert by_number["filters"] == {"number": "+12015550123", "app": None, "call": None}
    assert len({by_number["subscription"], by_app, by_call}) == 3
    assert [(event["type"], event["object"]["id"]) for event in received] == [
        ("call.ringing", other_call),
        ("call.answered", other_call),
        ("call.flow", call_id),
        ("number.updated", "n-1"),
    ]


def test_it_rejects_an_invalid_subscription_and_keeps_the_connection(alice, charlie):
    from telephony.models import CallControlApp

    secret, _ = make_api_key(alice.account)
    charlies_app = CallControlApp.objects.create(account=charlie.account, name="Not yours")

    async def scenario():
        client = await connected(secret)
        replies = []
        for body in (
            {"event_types": ["call.exploded"]},
            {"event_types": []},
            {"event_types": ["*"], "filters": {"number": "12"}},
            {"event_types": ["*"], "filters": {"app": str(charlies_app.public_id)}},
            {"event_types": ["*"], "filters": {"colour": "red"}},
        ):
            await client.send({"type": "subscribe", **body})
            replies.append(await client.receive())
        await client.subscribe(["call.*"])  # still open and usable
        await client.close()
        return replies

    replies = run(scenario)

    assert [reply["type"] for reply in replies] == ["error"] * 5
    assert [sorted(reply["fields"]) for reply in replies] == [
        ["event_types"], ["event_types"], ["filters.number"], ["filters.app"], ["filters"],
    ]  # fmt: skip


def test_unsubscribe_stops_the_events(alice):
    secret, _ = make_api_key(alice.account)

    async def scenario():
        client = await connected(secret)
        subscription = await client.subscribe(["call.*"])
        await aemit(alice.account, "call.ringing")
        first = await client.receive_event()
        await client.send({"type": "unsubscribe", "subscription": subscription})
        unsubscribed = await client.receive()
        await aemit(alice.account, "call.hangup")
        await client.receive_nothing(0.5)
        await client.send({"type": "unsubscribe", "subscription": subscription})
        again = await client.receive()
        await client.close()
        return first, unsubscribed, again

    first, unsubscribed, again = run(scenario)

    assert first["type"] == "call.ringing"
    assert unsubscribed == {"type": "unsubscribed", "subscription": "ws-1"}
    assert again["type"] == "error" and again["fields"] == {"subscription": ["Not found."]}


def test_resume_after_disconnect_gets_the_missed_events_in_order_then_live_ones(alice):
    secret, _ = make_api_key(alice.account)

    async def first_session():
        client = await connected(secret, event_types=["call.*"])
        await aemit(alice.account, "call.initiated", object_id="c-1")
        last_seen = await client.receive_event()
        await client.close()
        return last_seen

    last_seen = run(first_session)
    missed = [emit(alice.account, f"call.{state}", object_id="c-1") for state in ("ringing", "answered", "hangup")]
    emit(alice.account, "message.sent", object_type="message", object_id="m-1")  # not subscribed

    async def second_session():
        client = await Client().open()
        await client.auth(secret, last_event_id=last_seen["id"], subscriptions=[{"event_types": ["call.*"]}])
        subscribed = await client.receive()
        replayed = [await client.receive_event() for _ in range(3)]
        live = await aemit(alice.account, "call.completed", object_id="c-1")
        after = await client.receive_event()
        await client.close()
        return subscribed, replayed, live, after

    subscribed, replayed, live, after = run(second_session)

    assert subscribed["type"] == "subscribed"
    assert [event["id"] for event in replayed] == [str(event.public_id) for event in missed]
    assert [event["sequence"] for event in replayed] == [2, 3, 4]
    assert after["id"] == str(live.public_id)


def test_a_resume_that_subscribes_after_auth_still_gets_the_missed_events(alice):
    """With nothing subscribed yet, a connection keeps its starting position until its first subscription."""
    secret, _ = make_api_key(alice.account)
    first = emit(alice.account, "call.initiated", object_id="c-9")
    missed = emit(alice.account, "call.ringing", object_id="c-9")

    async def scenario():
        client = await connected(secret, last_event_id=str(first.public_id))
        await client.receive_nothing(0.3)
        await client.subscribe(["call.*"])
        received = await client.receive_event()
        await client.close()
        return received

    assert run(scenario)["id"] == str(missed.public_id)


def test_an_unknown_last_event_id_closes_with_a_clear_reason(alice):
    secret, _ = make_api_key(alice.account)

    async def scenario():
        client = await Client().open()
        return await client.auth(secret, last_event_id="00000000-0000-0000-0000-000000000000")

    reply = run(scenario)

    assert (reply["code"], reply["reason"]) == (
        4410,
        "last_event_id is unknown or past retention; reconnect without it",
    )


def test_it_sends_heartbeats(alice, settings):
    settings.STREAM_HEARTBEAT_SECONDS = 0.2
    secret, _ = make_api_key(alice.account)

    async def scenario():
        client = await connected(secret)
        beats = [await client.receive(timeout=2, heartbeats=True) for _ in range(2)]
        await client.close()
        return beats

    assert run(scenario) == [{"type": "heartbeat"}, {"type": "heartbeat"}]


def test_it_closes_a_client_that_falls_too_far_behind_the_live_stream(alice, settings):
    settings.STREAM_BATCH_SIZE = 2
    settings.STREAM_MAX_LAG = 3
    secret, _ = make_api_key(alice.account)

    def burst():
        from django.db import transaction

        with transaction.atomic():
            for n in range(6):
                emit(alice.account, "call.ringing", object_id=f"burst-{n}")

    async def scenario():
        client = await connected(secret, event_types=["call.*"])
        await client.receive_nothing(0.3)  # caught up: the connection is live
        await sync_to_async(burst)()
        while True:
            message = await client.receive()
            if message["type"] == "closed":
                return message

    closed = run(scenario)

    assert (closed["code"], closed["reason"]) == (4008, "slow consumer: reconnect with your last event id")


def test_a_resume_may_replay_more_than_the_live_lag_limit(alice, settings):
    settings.STREAM_BATCH_SIZE = 2
    settings.STREAM_MAX_LAG = 3
    secret, _ = make_api_key(alice.account)
    start = emit(alice.account, "call.initiated", object_id="backlog")
    backlog = [emit(alice.account, "call.ringing", object_id=f"backlog-{n}") for n in range(8)]

    async def scenario():
        client = await connected(secret, last_event_id=str(start.public_id), subscriptions=[{"event_types": ["*"]}])
        await client.receive()  # subscribed
        received = [await client.receive_event() for _ in backlog]
        await client.close()
        return received

    assert [event["id"] for event in run(scenario)] == [str(event.public_id) for event in backlog]


@pytest.mark.postgres
def test_an_event_that_commits_after_a_later_numbered_one_is_still_sent(alice):
    """PostgreSQL numbers rows at insert, not at commit: id N may become visible after N+1 was sent."""
    import threading

    from django.db import connections, transaction

    secret, _ = make_api_key(alice.account)
    inserted, release = threading.Event(), threading.Event()
    held: dict = {}

    def slow_transaction():
        try:
            with transaction.atomic():
                held["event"] = emit(alice.account, "call.ringing", object_id="slow")
                inserted.set()
                release.wait(timeout=10)
        finally:
            connections.close_all()

    async def scenario():
        client = await connected(secret, event_types=["call.*"])
        thread = threading.Thread(target=slow_transaction)
        thread.start()
        await sync_to_async(inserted.wait, thread_sensitive=False)(10)
        fast = await aemit(alice.account, "call.ringing", object_id="fast")
        first = await client.receive_event()
        release.set()
        await sync_to_async(thread.join, thread_sensitive=False)(10)
        late = await client.receive_event()
        await client.receive_nothing(0.3)
        await client.close()
        return fast, first, late

    fast, first, late = run(scenario)

    assert held["event"].id < fast.id
    assert first["id"] == str(fast.public_id)
    assert late["id"] == str(held["event"].public_id)


def test_a_transaction_wakes_the_stream_once_however_many_events_it_writes(alice, charlie):
    from django.db import connection, transaction

    from telephony import stream

    with transaction.atomic():
        for n in range(3):
            emit(alice.account, "call.ringing", object_id=f"c-{n}")
        emit(charlie.account, "call.ringing")
        notices = [
            callback for _, callback, _ in connection.run_on_commit if isinstance(callback, stream._StreamNotice)
        ]

    assert sorted(notice.account_id for notice in notices) == sorted([alice.account.pk, charlie.account.pk])

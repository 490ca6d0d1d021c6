"""Opt-outs: the read-only API and portal list, the opt_out.* events (webhook, stream), staff removal in admin,
and keyword auto-replies obeying the sender rules of any send."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import DELETION, LogEntry
from django.urls import reverse
from django.utils import timezone

from telephony import delivery as engine
from telephony.models import Event, Message, OptOut
from telephony.services import messaging as services
from telephony.stream import api_rules, rules_match
from telephony.tests.isolation_messaging import (
    held_transaction,
    make_campaign,
    make_opt_out,
    make_sender,
    meanwhile,
)
from telephony.tests.receivers import Receiver, receiver_fixture  # noqa: F401 - the receiver fixture
from tenants.models import User

pytestmark = pytest.mark.django_db

OFF_NET = "+12125550100"


def _inbound(client, to, text, from_=OFF_NET):
    response = client.post("/api/v1/simulator/inbound-messages", {"from": from_, "to": to, "text": text}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _events(account, type_):
    return list(Event.objects.filter(account=account, type=type_).order_by("id"))


# --- The API -----------------------------------------------------------------------------------------


def test_it_lists_the_accounts_opt_outs_with_the_keyword_and_the_number_texted(alice, alice_api):
    sender = make_sender(alice.account)
    _inbound(alice_api, sender.number, "unsubscribe")

    listed = alice_api.get("/api/v1/opt-outs")

    assert listed.status_code == 200
    [row] = listed.json()["results"]
    assert (row["number"], row["keyword"], row["via_number"]) == (OFF_NET, "UNSUBSCRIBE", sender.number)
    assert set(row) == {"id", "number", "keyword", "via_number", "created_at"}
    detail = alice_api.get(f"/api/v1/opt-outs/{row['id']}")
    assert detail.status_code == 200 and detail.json() == row


def test_it_filters_opt_outs_by_number_and_time(alice, alice_api):
    first = make_opt_out(alice.account, "+12125550101")
    make_opt_out(alice.account, "+12125550102")
    OptOut.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=3))

    by_number = alice_api.get("/api/v1/opt-outs", {"number": "+1 212 555 0101"}).json()["results"]
    recent = alice_api.get("/api/v1/opt-outs", {"created_after": (timezone.now() - timedelta(days=1)).isoformat()})

    assert [row["number"] for row in by_number] == ["+12125550101"]
    assert [row["number"] for row in recent.json()["results"]] == ["+12125550102"]


def test_it_pages_opt_outs_with_cursors(alice, alice_api):
    for line in range(3):
        make_opt_out(alice.account, f"+1212555020{line}")
    page = alice_api.get("/api/v1/opt-outs", {"limit": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    rest = alice_api.get(page["next"]).json()
    assert len(rest["results"]) == 1


def test_another_accounts_opt_out_is_not_found_and_not_listed(alice, charlie_api):
    theirs = make_opt_out(alice.account)

    response = charlie_api.get(f"/api/v1/opt-outs/{theirs.public_id}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert charlie_api.get("/api/v1/opt-outs").json()["results"] == []


def test_an_account_cannot_delete_an_opt_out(alice, alice_api):
    opt_out = make_opt_out(alice.account)

    response = alice_api.delete(f"/api/v1/opt-outs/{opt_out.public_id}")

    assert response.status_code == 405
    assert OptOut.objects.filter(pk=opt_out.pk).exists()


# --- Events ------------------------------------------------------------------------------------------


def test_stop_raises_opt_out_created_once(alice, alice_api):
    sender = make_sender(alice.account)

    _inbound(alice_api, sender.number, "STOP")
    _inbound(alice_api, sender.number, "stop")  # already opted out: no second opt-out, no second event

    [event] = _events(alice.account, "opt_out.created")
    opt_out = OptOut.objects.get(account=alice.account, number=OFF_NET)
    assert event.object_type == "opt_out" and event.object_id == str(opt_out.public_id)
    assert event.payload["number"] == OFF_NET and event.payload["via_number"] == sender.number
    assert event.payload["keyword"] == "STOP"


@pytest.mark.postgres
def test_two_stops_at_once_record_one_opt_out_with_one_event_and_both_are_stored(alice, transactional_db):
    sender = make_sender(alice.account)

    with held_transaction(lambda: services.message_receive(from_=OFF_NET, to=sender.number, text="STOP")) as held:
        thread, second = meanwhile(lambda: services.message_receive(from_=OFF_NET, to=sender.number, text="quit"))
    thread.join(10)

    assert "error" not in held and isinstance(second["value"], Message), second["value"]
    assert OptOut.objects.get(account=alice.account, number=OFF_NET).keyword == "STOP"
    assert len(_events(alice.account, "opt_out.created")) == 1
    assert Message.objects.filter(account=alice.account, direction="inbound").count() == 2


def test_start_lifts_the_opt_out_and_raises_opt_out_deleted(alice, alice_api):
    sender = make_sender(alice.account)
    _inbound(alice_api, sender.number, "STOP")
    opt_out = OptOut.objects.get(account=alice.account, number=OFF_NET)

    _inbound(alice_api, sender.number, "Start")

    assert not OptOut.objects.filter(account=alice.account, number=OFF_NET).exists()
    [event] = _events(alice.account, "opt_out.deleted")
    assert event.object_id == str(opt_out.public_id)
    assert event.payload["lifted_by"] == "consumer" and event.payload["keyword"] == "START"
    sent = alice_api.post("/api/v1/messages", {"from": sender.number, "to": OFF_NET, "text": "hi"}, format="json")
    assert sent.status_code == 201


def test_opt_out_deleted_names_the_number_start_was_texted_to(alice, alice_api):
    profile = make_sender(alice.account).profile
    first, second = make_sender(alice.account, profile), make_sender(alice.account, profile)
    _inbound(alice_api, first.number, "STOP")

    _inbound(alice_api, second.number, "unstop")

    [event] = _events(alice.account, "opt_out.deleted")
    assert (event.payload["keyword"], event.payload["via_number"]) == ("UNSTOP", second.number)


def test_the_event_catalogue_documents_every_field_of_the_opt_out_payloads(alice, alice_api):
    from telephony import event_types

    sender = make_sender(alice.account)
    _inbound(alice_api, sender.number, "STOP")
    _inbound(alice_api, sender.number, "START")
    opt_out = make_opt_out(alice.account)
    services.opt_out_remove(
        staff=User.objects.create_superuser(email="s@example.com", password="pw pw pw 1"), opt_out=opt_out
    )

    for type_ in ("opt_out.created", "opt_out.deleted"):
        documented = set(event_types.require(type_).schema["properties"])
        for event in _events(alice.account, type_):
            assert set(event.payload) <= documented, (type_, set(event.payload) - documented)


def test_start_without_an_opt_out_raises_nothing(alice, alice_api):
    sender = make_sender(alice.account)
    _inbound(alice_api, sender.number, "START")
    assert _events(alice.account, "opt_out.deleted") == []


def test_yes_replies_only_when_it_lifted_an_opt_out(alice, alice_api):
    sender = make_sender(alice.account)

    _inbound(alice_api, sender.number, "Yes")  # an answer in a conversation, not a resubscription
    assert not Message.objects.filter(account=alice.account, auto_reply="start").exists()

    _inbound(alice_api, sender.number, "STOP")
    _inbound(alice_api, sender.number, "yes")
    assert Message.objects.filter(account=alice.account, auto_reply="start").count() == 1
    assert not OptOut.objects.filter(account=alice.account, number=OFF_NET).exists()


def test_start_confirms_even_without_an_opt_out(alice, alice_api):
    sender = make_sender(alice.account)
    _inbound(alice_api, sender.number, "START")
    assert Message.objects.filter(account=alice.account, auto_reply="start").count() == 1


def test_a_webhook_subscribed_to_opt_outs_receives_stop_and_start(alice, alice_api, receiver):
    created = alice_api.post("/api/v1/webhooks", {"url": receiver.url, "event_types": ["opt_out.*"]}, format="json")
    assert created.status_code == 201, created.content
    sender = make_sender(alice.account)

    _inbound(alice_api, sender.number, "STOP")
    _inbound(alice_api, sender.number, "START")
    engine.drain()

    bodies = [json.loads(request.body) for request in receiver.requests]
    assert sorted(body["type"] for body in bodies) == ["opt_out.created", "opt_out.deleted"]  # sent in parallel
    assert all(body["data"]["number"] == OFF_NET for body in bodies)


def test_an_event_subscription_on_the_destination_matches_its_opt_out(alice, alice_api):
    response = alice_api.post(
        "/api/v1/event-subscriptions", {"event_types": ["opt_out.*"], "filters": {"number": OFF_NET}}, format="json"
    )
    assert response.status_code == 201, response.content
    make_opt_out(alice.account, OFF_NET)
    other = make_opt_out(alice.account, "+12125550199")

    [event, other_event] = _events(alice.account, "opt_out.created")

    assert other_event.object_id == str(other.public_id)
    rules = api_rules(alice.account.pk)
    assert rules_match(rules, event, timezone.now())
    assert not rules_match(rules, other_event, timezone.now())


def test_the_webhook_api_accepts_the_opt_out_event_types(alice_api):
    for event_types in (["opt_out.created"], ["opt_out.deleted"]):
        response = alice_api.post(
            "/api/v1/webhooks", {"url": "https://93.184.216.34/hooks", "event_types": event_types}, format="json"
        )
        assert response.status_code == 201, response.content
    listed = {entry["name"] for entry in alice_api.get("/api/v1/event-types").json()}
    assert {"opt_out.created", "opt_out.deleted"} <= listed


def test_stop_fails_the_messages_still_queued_to_it_and_they_are_never_sent(alice, alice_api, settings):
    settings.MESSAGING_RATE_LONG_CODE = 1.0  # one a second: the later sends wait for their slot
    sender = make_sender(alice.account)
    queued = [
        alice_api.post("/api/v1/messages", {"from": sender.number, "to": OFF_NET, "text": f"promo {i}"}, format="json")
        for i in range(3)
    ]
    other = alice_api.post(
        "/api/v1/messages", {"from": sender.number, "to": "+12125550199", "text": "x"}, format="json"
    )
    assert all(response.status_code == 201 for response in [*queued, other])

    _inbound(alice_api, sender.number, "STOP")
    services.messages_send_due(now=timezone.now() + timedelta(minutes=5))

    for response in queued:
        message = Message.objects.get(public_id=response.json()["id"])
        assert (message.status, message.error_code, message.sent_at) == ("failed", "opted_out", None)
        assert Event.objects.filter(object_id=str(message.public_id), type="message.failed").exists()
    # The STOP's own confirmation still goes, and so do messages to other destinations.
    assert Message.objects.get(account=alice.account, auto_reply="stop").status == "sent"
    assert Message.objects.get(public_id=other.json()["id"]).status == "sent"


@pytest.mark.postgres
def test_a_send_accepted_while_a_stop_commits_is_not_sent(alice, transactional_db):
    # The STOP cannot see the send (not committed yet) to fail it; the worker's claim fails it instead.
    sender = make_sender(alice.account, toll_free=True)

    def send():
        services.message_send(account=alice.account, actor=None, from_=sender.number, to=OFF_NET, text="promo")

    with held_transaction(send) as held:
        thread, _ = meanwhile(lambda: services.message_receive(from_=OFF_NET, to=sender.number, text="STOP"))
    thread.join(10)
    services.messages_send_due(now=timezone.now() + timedelta(minutes=5))

    assert "error" not in held
    promo = Message.objects.get(account=alice.account, text="promo")
    assert (promo.status, promo.error_code) == ("failed", "opted_out")


# --- Keywords ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,keyword",
    [
        *[(word, "stop") for word in ("STOP", "stopall", "Unsubscribe", "CANCEL", "end", "Quit")],
        *[(word, "start") for word in ("START", "yes", "UnStop")],
        *[(word, "help") for word in ("HELP", "info")],
        (" stop\n", "stop"),
        ("Stop.", "stop"),
        ("stop !", "stop"),
        ("Help?", "help"),
        ("\u201cSTOP\u201d", "stop"),
        ("\uff33\uff34\uff2f\uff30", "stop"),  # full-width, as some keyboards type it
        ("stop\u200b", "stop"),  # a zero-width space a phone appended
        ("stop the music", None),
        ("STOPPED", None),
        ("help me", None),
        ("", None),
    ],
)
def test_it_recognises_a_keyword_whatever_its_case_spaces_and_punctuation(text, keyword):
    assert services.keyword_of(text) == keyword


def test_a_stop_with_a_space_before_its_punctuation_opts_out(alice, alice_api):
    sender = make_sender(alice.account)
    _inbound(alice_api, sender.number, "Stop !")
    assert OptOut.objects.get(account=alice.account, number=OFF_NET).keyword == "STOP"


# --- Auto-replies obey the sending rules -------------------------------------------------------------


def test_help_to_a_long_code_without_an_approved_campaign_gets_no_reply(alice, alice_api):
    sender = make_sender(alice.account, campaign=make_campaign(alice.account, approved=False))

    inbound = _inbound(alice_api, sender.number, "HELP")

    assert not Message.objects.filter(account=alice.account, direction="outbound").exists()
    detail = alice_api.get(f"/api/v1/messages/{inbound['id']}").json()
    note = detail["history"][0]["note"]
    assert note.startswith("No automatic HELP reply") and "10DLC campaign" in note


def test_stop_to_a_long_code_without_an_approved_campaign_opts_out_without_a_reply(alice, alice_api):
    sender = make_sender(alice.account, campaign=make_campaign(alice.account, approved=False))

    _inbound(alice_api, sender.number, "STOP")

    assert OptOut.objects.filter(account=alice.account, number=OFF_NET).exists()
    assert len(_events(alice.account, "opt_out.created")) == 1
    assert not Message.objects.filter(account=alice.account, direction="outbound").exists()


def test_help_from_an_approved_long_code_replies_through_the_normal_send_path(alice, alice_api):
    sender = make_sender(alice.account)

    inbound = _inbound(alice_api, sender.number, "help")

    reply = Message.objects.get(account=alice.account, direction="outbound", auto_reply="help")
    assert reply.status == "queued" and reply.send_after is not None and reply.from_number == sender.number
    assert Event.objects.filter(object_id=str(reply.public_id), type="message.queued").exists()
    assert "note" not in Message.objects.get(public_id=inbound["id"]).history[0]


def test_a_toll_free_number_replies_without_a_campaign(alice, alice_api):
    sender = make_sender(alice.account, toll_free=True)
    _inbound(alice_api, sender.number, "HELP")
    assert Message.objects.filter(account=alice.account, auto_reply="help").exists()


# --- Portal and admin --------------------------------------------------------------------------------


def test_the_opt_out_page_lists_the_accounts_opt_outs_only(client, alice, charlie):
    make_opt_out(alice.account, "+12125550111")
    make_opt_out(charlie.account, "+12125550122")
    client.force_login(alice.user)

    response = client.get(reverse("optout-list", kwargs={"account": alice.account.slug}))

    assert response.status_code == 200
    body = response.content.decode()
    assert "+12125550111" in body and "+12125550122" not in body
    assert 'data-testid="optout-row"' in body
    filtered = client.get(reverse("optout-list", kwargs={"account": alice.account.slug}), {"number": "+12125550199"})
    assert "+12125550111" not in filtered.content.decode()


def test_charlie_cannot_open_account_as_opt_out_page(client, alice, charlie):
    make_opt_out(alice.account)
    client.force_login(charlie.user)
    assert client.get(reverse("optout-list", kwargs={"account": alice.account.slug})).status_code == 404


def test_staff_remove_an_opt_out_in_admin_with_its_event_and_a_log_entry(client, alice, charlie):
    staff = User.objects.create_superuser(email="staff@example.com", password="staff password 1")
    client.force_login(staff)
    opt_out = make_opt_out(alice.account)
    kept = make_opt_out(charlie.account)
    url = reverse("admin:telephony_optout_changelist")
    assert client.get(url).status_code == 200

    response = client.post(url, {"action": "remove", ACTION_CHECKBOX_NAME: [opt_out.pk]})

    assert response.status_code == 302
    assert not OptOut.objects.filter(pk=opt_out.pk).exists() and OptOut.objects.filter(pk=kept.pk).exists()
    [event] = _events(alice.account, "opt_out.deleted")
    assert event.payload["lifted_by"] == "staff" and event.payload["removed_by"] == "staff@example.com"
    assert LogEntry.objects.filter(user=staff, action_flag=DELETION, object_id=str(opt_out.pk)).exists()


def test_staff_who_may_only_view_opt_outs_cannot_remove_one(client, alice):
    from django.contrib.auth.models import Permission

    staff = User.objects.create_user(email="viewer@example.com", password="staff password 1", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_optout"))
    client.force_login(staff)
    opt_out = make_opt_out(alice.account)
    url = reverse("admin:telephony_optout_changelist")
    assert client.get(url).status_code == 200

    client.post(url, {"action": "remove", ACTION_CHECKBOX_NAME: [opt_out.pk]})

    assert OptOut.objects.filter(pk=opt_out.pk).exists()
    assert _events(alice.account, "opt_out.deleted") == []

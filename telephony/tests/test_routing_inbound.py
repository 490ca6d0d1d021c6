"""Inbound routing: number, account, screening, voice target and channel limits, each refusal recorded.

`route_inbound` is the decision a real SIP edge will ask for; `inbound_call` records it. Refused calls are
call records with their SIP code and reason, with the same events as any other call.
"""

from __future__ import annotations

import pytest

from telephony.engine.routing import inbound_call, route_inbound
from telephony.models import Call, CallerListEntry, Event
from telephony.services import profiles as profile_services
from telephony.services import sip as sip_services
from telephony.tests.engine_support import drive, event_types, next_number, number_for_app, place
from telephony.tests.isolation_sip import make_connection, make_domain, make_number
from tenants.models import Account

pytestmark = pytest.mark.django_db

FLOW = "<Response><Say>Hi</Say></Response>"


def screened_number(account, block_action: str, blacklist=(), whitelist=()):
    profile = profile_services.tn_profile_create(
        account=account, actor=None, name=f"Profile {next_number()}", block_action=block_action
    )
    for list_type, entries in (("blacklist", blacklist), ("whitelist", whitelist)):
        if entries:
            profile_services.caller_list_change(
                account=account, actor=None, profile=profile, list_type=list_type, add=list(entries)
            )
    number, _ = number_for_app(account, FLOW)
    number.tn_profile = profile
    number.save(update_fields=["tn_profile"])
    return number


def test_an_unknown_number_is_refused_with_404_and_nothing_recorded(alice):
    result = inbound_call("+12125550100", "+19995550000", source="simulated")

    assert result.call is None
    assert result.decision.sip_code == 404 and not result.decision.accepted
    assert Call.objects.count() == 0


def test_a_call_to_an_app_is_accepted_and_starts_ringing(alice):
    number, app = number_for_app(alice.account, FLOW)

    decision = route_inbound("+12125550100", number.number, source="simulated")
    assert decision.accepted and decision.target == "app" and decision.app == app

    call = inbound_call("+12125550100", number.number, source="simulated").call
    assert call.status == "ringing" and call.flow_state == "running" and call.app == app
    assert call.phone_number == number and call.direction == "inbound" and call.source == "simulated"
    assert call.document["root"]["tag"] == "Response"
    assert event_types(call) == ["call.initiated", "call.ringing"]


def test_numbers_are_matched_without_their_plus_or_separators(alice):
    number, _ = number_for_app(alice.account, FLOW)
    digits = number.number[1:]

    assert route_inbound("+12125550100", f"{digits[0]} ({digits[1:4]}) {digits[4:7]}-{digits[7:]}", "x").accepted


def test_a_blacklisted_caller_is_rejected_with_603(alice):
    number = screened_number(alice.account, "reject", blacklist=["+12125550100"])

    call = inbound_call("+12125550100", number.number, source="simulated").call

    assert call.status == "failed" and call.sip_code == 603 and call.q850_cause == 21
    assert call.end_reason.startswith("Blocked by TN profile screening: +12125550100 is on the blacklist")
    assert call.flow_state == "none" and call.ended_at
    assert event_types(call) == ["call.initiated", "call.completed"]
    completed = Event.objects.get(type="call.completed", object_id=str(call.public_id)).payload
    assert completed["state"] == "failed" and completed["sip_code"] == 603
    assert CallerListEntry.objects.get(value="+12125550100").hit_count == 1


def test_a_blocked_caller_gets_busy_when_the_profile_says_so(alice):
    number = screened_number(alice.account, "busy", blacklist=["+1212*"])

    call = inbound_call("+12125550100", number.number, source="simulated").call

    assert call.status == "busy" and call.sip_code == 486 and call.q850_cause == 17


def test_the_hangup_block_action_answers_then_hangs_up(alice):
    number = screened_number(alice.account, "hangup", whitelist=["+13105550100"])

    call = inbound_call("+12125550100", number.number, source="simulated").call

    assert call.status == "completed" and call.answered_at and call.sip_code is None
    assert "not on the whitelist" in call.end_reason


def test_a_whitelisted_caller_gets_through(alice):
    number = screened_number(alice.account, "reject", whitelist=["+12125550100"])

    assert drive(place(number)).status == "completed"


def test_a_number_without_voice_is_refused_with_403(alice):
    number, _ = number_for_app(alice.account, FLOW)
    number.voice_enabled = False
    number.save(update_fields=["voice_enabled"])

    call = inbound_call("+12125550100", number.number, source="simulated").call

    assert call.status == "failed" and call.sip_code == 403
    assert call.end_reason == f"Voice is not enabled on {number.number}."


def test_a_suspended_accounts_calls_are_refused(alice):
    number, _ = number_for_app(alice.account, FLOW)
    Account.objects.filter(pk=alice.account.pk).update(status="suspended")

    call = inbound_call("+12125550100", number.number, source="simulated").call

    assert call.status == "failed" and call.sip_code == 403 and call.end_reason == "The account is suspended."


def test_a_number_without_a_voice_target_or_with_an_inactive_app_is_refused_with_480(alice):
    bare = make_number(alice.account, next_number())
    number, app = number_for_app(alice.account, FLOW, is_active=False)

    assert inbound_call("+12125550100", bare.number, "simulated").call.end_reason.endswith("has no voice target.")
    refused = inbound_call("+12125550100", number.number, "simulated").call
    assert refused.sip_code == 480 and refused.end_reason == f"The app {app.name} is inactive."


def test_an_app_document_that_no_longer_validates_fails_the_call(alice):
    number, _ = number_for_app(alice.account, "<Response><Bogus/></Response>")

    call = inbound_call("+12125550100", number.number, "simulated").call

    assert call.status == "failed" and call.sip_code == 500
    assert call.end_reason.startswith("The flow document does not validate")


# --- SIP targets -----------------------------------------------------------------------------------------


def sip_user(account, *, online: bool):
    domain = make_domain(account)
    user = sip_services.sip_user_create(
        account=account, actor=None, domain=domain, login=f"u{next_number()[-4:]}", password="a long phone secret"
    )
    user.state = "online" if online else "offline"
    user.save(update_fields=["state"])
    return user


def test_a_number_routed_to_an_online_sip_user_rings_the_user(alice):
    user = sip_user(alice.account, online=True)
    number = make_number(alice.account, next_number(), sip_user=user)

    call = drive(place(number, hangup_after_ms=1_000_000))

    [b_leg] = call.children.all()
    assert b_leg.to_number == user.sip_uri and b_leg.sip_user == user
    assert b_leg.status == "completed" and call.status == "completed"


def test_a_number_routed_to_an_offline_sip_user_gets_no_answer(alice):
    user = sip_user(alice.account, online=False)
    number = make_number(alice.account, next_number(), sip_user=user)

    call = drive(place(number))

    [b_leg] = call.children.all()
    assert b_leg.status == "no-answer" and b_leg.sip_code == 480 and "offline" in b_leg.end_reason
    assert call.status == "no-answer" and call.sip_code == 480 and call.answered_at is None


def test_a_number_routed_to_a_sip_connection_is_sent_to_its_inbound_host(alice):
    connection = make_connection(alice.account)
    connection.inbound_host, connection.inbound_port, connection.inbound_transport = "pbx.example.com", 5080, "tcp"
    connection.save()
    number = make_number(alice.account, next_number(), sip_connection=connection)

    call = drive(place(number, hangup_after_ms=1_000_000))

    [b_leg] = call.children.all()
    assert b_leg.to_number == f"sip:{number.number}@pbx.example.com:5080;transport=tcp"
    assert b_leg.sip_connection == connection and b_leg.status == "completed"


def test_a_sip_connection_without_an_inbound_host_is_refused(alice):
    connection = make_connection(alice.account)
    number = make_number(alice.account, next_number(), sip_connection=connection)

    call = inbound_call("+12125550100", number.number, "simulated").call

    assert call.sip_code == 480 and "no inbound host" in call.end_reason


# --- Channel limits --------------------------------------------------------------------------------------


def test_an_app_at_its_channel_limit_refuses_with_486(alice):
    number, _ = number_for_app(alice.account, '<Response><Pause length="600000"/></Response>', channel_limit=1)

    first = inbound_call("+12125550100", number.number, "simulated").call
    second = inbound_call("+12125550101", number.number, "simulated").call

    assert first.status == "ringing"
    assert second.status == "busy" and second.sip_code == 486
    assert second.end_reason == "The app's channel limit (1 concurrent calls) is reached."


def test_the_account_channel_limit_counts_every_live_leg(alice, settings):
    settings.CALL_ACCOUNT_CHANNEL_LIMIT = 2
    number, _ = number_for_app(alice.account, '<Response><Pause length="600000"/></Response>')

    calls = [inbound_call(f"+1212555010{i}", number.number, "simulated").call for i in range(3)]

    assert [c.status for c in calls] == ["ringing", "ringing", "failed"]
    assert calls[2].sip_code == 503 and "account's channel limit (2" in calls[2].end_reason


def test_a_sip_connection_at_its_channel_limit_refuses_and_dial_legs_fail(alice):
    connection = make_connection(alice.account)
    connection.inbound_host, connection.channel_limit = "pbx.example.com", 1
    connection.save()
    number = make_number(alice.account, next_number(), sip_connection=connection)
    first = place(number)  # its B-leg is placed when the engine runs it
    from telephony.engine import runner

    runner.process_call(first.pk)
    second = inbound_call("+12125550199", number.number, "simulated").call

    assert first.children.get().status in ("initiated", "ringing", "in-progress")
    assert second.status == "busy" and "SIP connection's channel limit (1" in second.end_reason


def test_ended_calls_free_their_channels(alice):
    number, _ = number_for_app(alice.account, FLOW, channel_limit=1)

    drive(place(number))

    assert inbound_call("+12125550100", number.number, "simulated").call.status == "ringing"

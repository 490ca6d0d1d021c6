"""The simulated switch: deterministic far ends from rules, a speed factor, and the one entry point for its reports."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from telephony.engine import runner
from telephony.models import Call, CallWakeup, SimulatedLeg, SimulatorRule
from telephony.services.calls import switch_leg_event
from telephony.switch import get_switch
from telephony.switch.base import SwitchAdapter
from telephony.switch.simulated import SimulatedSwitch, behaviour_for
from telephony.tests.engine_support import drive, event_types, flow, number_for_app, place
from telephony.tests.isolation_sip import make_domain

pytestmark = pytest.mark.django_db

DIAL = "<Response><Dial><To>{target}</To></Dial></Response>"


def dial(account, target: str) -> tuple[Call, Call]:
    number, _ = number_for_app(account, DIAL.format(target=target))
    call = drive(place(number))
    return call, call.children.get()


def test_the_configured_adapter_is_the_simulated_switch_and_implements_the_whole_interface():
    switch = get_switch()

    assert isinstance(switch, SimulatedSwitch) and isinstance(switch, SwitchAdapter)
    assert switch.name == "simulated" and switch.time_scale() == 1000


def test_without_a_rule_a_phone_answers_after_a_second_of_ringing(alice, settings):
    settings.SIMULATED_SWITCH = {**settings.SIMULATED_SWITCH, "speed": 100}
    SimulatorRule.objects.create(match="+13105551000", hangup_after_ms=2000)

    _, b_leg = dial(alice.account, "+13105551000")

    assert b_leg.ringing_at and b_leg.answered_at
    assert b_leg.answered_at - b_leg.ringing_at >= timedelta(milliseconds=9)  # 900 ms of call time at 100x
    assert b_leg.ended_at - b_leg.answered_at >= timedelta(milliseconds=20)
    assert b_leg.switch_call_id.startswith("sim-")


@pytest.mark.parametrize(
    "rule,status,sip_code,cause",
    [
        ({"action": "busy"}, "busy", 486, 17),
        ({"action": "fail", "fail_cause": 38, "fail_sip_code": 502}, "failed", 502, 38),
        ({"action": "no-answer", "answer_after_ms": 2000}, "no-answer", 480, 19),
    ],
)
def test_rules_make_a_phone_busy_fail_or_not_answer(alice, rule, status, sip_code, cause):
    SimulatorRule.objects.create(match="+13105551001", **rule)

    call, b_leg = dial(alice.account, "+13105551001")

    assert (b_leg.status, b_leg.sip_code, b_leg.q850_cause) == (status, sip_code, cause)
    assert flow(call)[0]["reason"] == f"Dial {status}"


def test_an_exact_rule_beats_a_prefix_and_a_longer_prefix_a_shorter_one(alice, settings):
    SimulatorRule.objects.create(match="+1310*", action="busy")
    SimulatorRule.objects.create(match="+1310555*", action="fail")
    SimulatorRule.objects.create(match="+13105551002", action="answer")

    assert behaviour_for("+13105551002")["action"] == "answer"
    assert behaviour_for("+13105559999")["action"] == "fail"
    assert behaviour_for("+13109999999")["action"] == "busy"
    assert behaviour_for("+14155550000")["action"] == "answer"  # the default


def test_settings_rules_apply_when_no_database_rule_matches(settings):
    settings.SIMULATED_SWITCH = {
        **settings.SIMULATED_SWITCH,
        "rules": [{"match": "+1900*", "action": "busy"}],
        "default": {"action": "no-answer", "answer_after_ms": 0},
    }
    SimulatorRule.objects.create(match="+19005550000", action="answer")

    assert behaviour_for("+19005551111")["action"] == "busy"
    assert behaviour_for("+19005550000")["action"] == "answer"
    assert behaviour_for("+14155550000")["action"] == "no-answer"


def test_a_disabled_rule_is_ignored():
    SimulatorRule.objects.create(match="+13105551003", action="busy", enabled=False)

    assert behaviour_for("+13105551003")["action"] == "answer"


def test_sip_users_of_the_platform_answer_only_while_online(alice):
    domain = make_domain(alice.account)
    from telephony.services import sip as sip_services

    user = sip_services.sip_user_create(
        account=alice.account, actor=None, domain=domain, login="ann", password="a long phone secret"
    )

    assert behaviour_for(user.sip_uri)["action"] == "offline"
    user.state = "online"
    user.save(update_fields=["state"])
    assert behaviour_for(user.sip_uri)["action"] == "answer"
    assert behaviour_for(f"sip:nobody@{domain.domain}")["reason"] == "no such SIP user"
    assert behaviour_for("sip:bob@elsewhere.example.com")["action"] == "answer"  # not ours: the rules decide
    SimulatorRule.objects.create(match=f"sip:nobody@{domain.domain}", action="answer")
    assert behaviour_for(f"sip:nobody@{domain.domain}")["action"] == "answer"  # an exact rule wins


def test_a_callers_rule_presses_one_group_of_keys_per_gather(alice):
    caller = "+13105551004"
    SimulatorRule.objects.create(match=caller, digits="1|22#")
    number, _ = number_for_app(
        alice.account,
        '<Response><Gather dtmf_length="1"><DTMF value="1"><Meta name="first" value="ok"/></DTMF></Gather>'
        '<Gather><DTMF value="22"><Hangup tag="both"/></DTMF></Gather></Response>',
    )

    call = drive(place(number, from_number=caller))

    assert call.end_reason == "both"
    assert SimulatedLeg.objects.get(call=call).digit_groups_used == 2


def test_the_speed_factor_scales_every_timer(alice, settings):
    settings.SIMULATED_SWITCH = {**settings.SIMULATED_SWITCH, "speed": 20}
    number, _ = number_for_app(alice.account, '<Response><Pause length="2000"/></Response>')

    call = drive(place(number))

    assert call.ended_at - call.answered_at >= timedelta(milliseconds=95)  # 2 s / 20


# --- The entry point for switch reports ------------------------------------------------------------------------


def test_a_report_is_stored_as_a_wakeup_of_the_calls_a_leg(alice):
    number, _ = number_for_app(alice.account, '<Response><Pause length="600000"/></Response>')
    call = place(number)
    runner.process_call(call.pk)

    switch_leg_event(call, "hangup", cause=16)

    wakeup = CallWakeup.objects.get(root=call, kind="switch")
    assert wakeup.event == "hangup" and wakeup.leg_id == call.pk and wakeup.data == {"cause": 16}
    assert drive(call).status == "completed"


def test_duplicate_and_late_reports_are_ignored_with_a_log_line(alice, caplog):
    SimulatorRule.objects.create(match="+13105551005", hangup_after_ms=1000)
    call, b_leg = dial(alice.account, "+13105551005")
    before = event_types(b_leg)

    with caplog.at_level(logging.INFO, logger="telephony.engine"):
        switch_leg_event(b_leg, "answered")
        switch_leg_event(b_leg, "hangup")
        runner.process_call(call.pk)

    assert event_types(b_leg) == before
    assert Call.objects.get(pk=b_leg.pk).status == "completed"
    assert "late 'answered' for ended leg" in caplog.text
    assert not CallWakeup.objects.filter(root=call).exists()


def test_an_unknown_event_is_a_programming_error(alice):
    number, _ = number_for_app(alice.account, "<Response/>")

    with pytest.raises(ValueError, match="unknown switch event"):
        switch_leg_event(place(number), "exploded")

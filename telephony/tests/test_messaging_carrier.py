"""The simulated carrier's rules: database rows, then the settings' rules, then the default; exact beats prefix."""

from __future__ import annotations

import pytest

from telephony.carrier.simulated import rule_for
from telephony.models import SimulatedCarrierRule

pytestmark = pytest.mark.django_db


def test_without_rules_a_destination_is_delivered_after_the_default_delay(settings):
    settings.SIMULATED_CARRIER = {"default": {"action": "deliver", "after_ms": 123}, "rules": []}
    assert (rule_for("+12125550100")["action"], rule_for("+12125550100")["after_ms"]) == ("deliver", 123)


def test_settings_rules_apply_and_the_longest_prefix_wins(settings):
    settings.SIMULATED_CARRIER = {
        "default": {"action": "deliver", "after_ms": 0},
        "rules": [
            {"match": "+1212*", "action": "undelivered", "error_code": "30003"},
            {"match": "+1212555*", "action": "silent"},
        ],
    }
    assert rule_for("+12125550100")["action"] == "silent"
    assert rule_for("+12129990100") == {
        "action": "undelivered", "after_ms": 0, "error_code": "30003", "error_text": "", "match": "+1212*",
    }  # fmt: skip
    assert rule_for("+13105550100")["action"] == "deliver"


def test_a_database_rule_wins_over_the_settings_and_exact_beats_prefix(settings):
    settings.SIMULATED_CARRIER = {"default": {"action": "deliver"}, "rules": [{"match": "+1212*", "action": "silent"}]}
    SimulatedCarrierRule.objects.create(match="+1212*", action="fail", error_code="30006")
    SimulatedCarrierRule.objects.create(match="+12125550100", action="undelivered", after_ms=50)
    assert rule_for("+12125550100")["action"] == "undelivered"
    assert rule_for("+12125550101")["action"] == "fail"

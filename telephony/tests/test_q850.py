"""Q.850 cause names: every cause the platform itself reports is shown with its name, not a bare number."""

from __future__ import annotations

import re
from pathlib import Path

import telephony
from telephony.q850 import cause_name
from telephony.services.calls import END_DEFAULTS

SOURCE = Path(telephony.__file__).parent


def causes_in_the_code() -> set[int]:
    found = set()
    for path in SOURCE.rglob("*.py"):
        if "tests" in path.parts or "migrations" in path.parts:
            continue
        found.update(int(code) for code in re.findall(r"\bcause=(\d+)\b", path.read_text()))
    return found


def test_every_cause_the_platform_reports_has_a_name():
    reported = causes_in_the_code() | {cause for cause, _ in END_DEFAULTS.values()}

    assert {code: cause_name(code) for code in sorted(reported) if cause_name(code) is None} == {}


def test_it_names_unallocated_non_selected_and_invalid_format():
    assert (cause_name(1), cause_name(26), cause_name(28)) == (
        "UNALLOCATED_NUMBER",
        "NON_SELECTED_USER_CLEARING",
        "INVALID_NUMBER_FORMAT",
    )
    assert cause_name(None) is None and cause_name(999) is None

"""screen_caller: the decision a number's TN profile makes for an incoming caller ID, and its hit counters."""

from __future__ import annotations

import pytest
from django.db import connection

from telephony.models import CallerListEntry, PhoneNumber, TnProfile
from telephony.screening import NOT_ON_WHITELIST, Outcome, normalize_caller_id, screen_caller
from telephony.services.profiles import caller_list_change, tn_profile_create
from telephony.tests.isolation_profiles import make_phone_number

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["number alone", "number with its profile"])
def screened_number(request):
    """make(account, black=[...], white=[...], action=...) -> a number with such a profile, loaded the way the
    call engine may load it: alone (screening joins the profile row in) or with select_related (it does not)."""

    def make(account, *, black=(), white=(), action="reject"):
        profile = tn_profile_create(account=account, actor=None, name=f"Screen {action}", block_action=action)
        if black:
            caller_list_change(account=account, actor=None, profile=profile, list_type="blacklist", add=list(black))
        if white:
            caller_list_change(account=account, actor=None, profile=profile, list_type="whitelist", add=list(white))
        return load(make_phone_number(account, tn_profile=profile))

    def load(number):
        numbers = PhoneNumber.objects.all()
        if request.param == "number with its profile":
            numbers = numbers.select_related("tn_profile")
        return numbers.get(pk=number.pk)

    make.load = load
    return make


def entry(profile_number, list_type: str, caller_id: str) -> CallerListEntry:
    kind = "prefix" if caller_id.endswith("*") else "anonymous" if caller_id == "anonymous" else "number"
    return CallerListEntry.objects.get(
        profile=profile_number.tn_profile, list_type=list_type, kind=kind, value=caller_id.rstrip("*")
    )


# --- The semantics table -----------------------------------------------------------------------------

SEMANTICS = [
    # (case, blacklist, whitelist, caller, allowed, outcome, rule)
    ("blacklist only, listed", ["+12015550123"], [], "+12015550123", False, "blacklisted", "blacklist: +12015550123"),
    ("blacklist only, not listed", ["+12015550123"], [], "+12015550199", True, "no_match", None),
    ("whitelist only, listed", [], ["+12015550123"], "+12015550123", True, "whitelisted", "whitelist: +12015550123"),
    ("whitelist only, not listed", [], ["+12015550123"], "+12015550199", False, "not_whitelisted", NOT_ON_WHITELIST),
    (
        "on both: the blacklist wins",
        ["+12015550123"],
        ["+12015550123"],
        "+12015550123",
        False,
        "blacklisted",
        "blacklist: +12015550123",
    ),
    (
        "whitelisted prefix, blacklisted number",
        ["+12015550123"],
        ["+1201*"],
        "+12015550123",
        False,
        "blacklisted",
        "blacklist: +12015550123",
    ),
    (
        "whitelisted prefix, another number",
        ["+12015550123"],
        ["+1201*"],
        "+12015550124",
        True,
        "whitelisted",
        "whitelist: +1201*",
    ),
    ("prefix match", ["+1900*"], [], "+19005551234", False, "blacklisted", "blacklist: +1900*"),
    ("prefix does not match others", ["+1900*"], [], "+18005551234", True, "no_match", None),
    (
        "a prefix as long as the number",
        ["+19005551234*"],
        [],
        "+19005551234",
        False,
        "blacklisted",
        "blacklist: +19005551234*",
    ),
    (
        "the longest prefix is reported",
        ["+1*", "+1900*", "+1900555*"],
        [],
        "+19005551234",
        False,
        "blacklisted",
        "blacklist: +1900555*",
    ),
    (
        "an exact number outranks a prefix",
        ["+1900*", "+19005551234"],
        [],
        "+19005551234",
        False,
        "blacklisted",
        "blacklist: +19005551234",
    ),
    ("a number entry is not a prefix", ["+4930123456"], [], "+493012345678", True, "no_match", None),
    ("anonymous blacklisted", ["anonymous"], [], "", False, "blacklisted", "blacklist: anonymous"),
    (
        "anonymous not on a whitelist in use",
        [],
        ["+12015550123"],
        "restricted",
        False,
        "not_whitelisted",
        NOT_ON_WHITELIST,
    ),
    ("anonymous whitelisted", [], ["anonymous"], "Private", True, "whitelisted", "whitelist: anonymous"),
    ("anonymous with neither list matching", ["+12015550123"], [], "unknown", True, "no_match", None),
    ("empty lists", [], [], "+12015550123", True, "no_match", None),
    (
        "digits without + are E.164",
        ["+12015550123"],
        [],
        "12015550123",
        False,
        "blacklisted",
        "blacklist: +12015550123",
    ),
    (
        "formatted numbers are read",
        ["+12015550123"],
        [],
        " +1 (201) 555-0123 ",
        False,
        "blacklisted",
        "blacklist: +12015550123",
    ),
]


@pytest.mark.parametrize("case,black,white,caller,allowed,outcome,rule", SEMANTICS, ids=[c[0] for c in SEMANTICS])
def test_it_decides_by_the_screening_rules(alice, screened_number, case, black, white, caller, allowed, outcome, rule):
    number = screened_number(alice.account, black=black, white=white)

    decision = screen_caller(number, caller)

    assert (decision.allowed, decision.outcome, str(decision.rule) if decision.rule else None) == (
        allowed,
        outcome,
        rule,
    )


@pytest.mark.parametrize(
    "caller",
    [
        None,
        "",
        "  ",
        "anonymous",
        "Anonymous",
        "RESTRICTED",
        "unknown",
        "private",
        "Unavailable",
        "sip:someone@example.com",
        "+1-CALL-NOW",
        "++123",
        "+",
    ],
)
def test_it_treats_withheld_and_unreadable_caller_ids_as_anonymous(alice, screened_number, caller):
    number = screened_number(alice.account, black=["anonymous"])

    decision = screen_caller(number, caller)

    assert normalize_caller_id(caller) == "anonymous"
    assert (decision.allowed, decision.caller_id, str(decision.rule)) == (False, "anonymous", "blacklist: anonymous")


def test_it_lets_everyone_through_on_a_number_without_a_profile(alice, django_assert_num_queries):
    number = make_phone_number(alice.account)

    with django_assert_num_queries(0):
        decision = screen_caller(number, "+12015550123")

    assert (decision.allowed, decision.outcome, decision.action, decision.sip_code) == (True, "no_profile", None, None)


def test_it_lets_everyone_through_again_once_the_whitelist_is_emptied(alice, screened_number):
    number = screened_number(alice.account, white=["+12015550123"])
    assert not screen_caller(number, "+12015550199").allowed

    caller_list_change(
        account=alice.account, actor=None, profile=number.tn_profile, list_type="whitelist", remove=["+12015550123"]
    )

    assert screen_caller(screened_number.load(number), "+12015550199").outcome == Outcome.NO_MATCH


@pytest.mark.parametrize("action,sip_code", [("reject", 603), ("busy", 486), ("hangup", None)])
def test_it_blocks_with_the_profiles_action(alice, screened_number, action, sip_code):
    number = screened_number(alice.account, black=["+1900*"], action=action)

    blacklisted = screen_caller(number, "+19005551234")
    caller_list_change(
        account=alice.account, actor=None, profile=number.tn_profile, list_type="whitelist", add=["+12015550123"]
    )
    not_whitelisted = screen_caller(screened_number.load(number), "+447700900123")

    for decision in (blacklisted, not_whitelisted):
        assert (decision.allowed, decision.action, decision.sip_code) == (False, action, sip_code)


def test_it_sees_a_profile_change_on_the_next_call(alice, screened_number):
    number = screened_number(alice.account, black=["+1900*"], action="reject")
    TnProfile.objects.filter(pk=number.tn_profile_id).update(block_action="busy")

    assert screen_caller(screened_number.load(number), "+19005551234").sip_code == 486


def test_it_carries_the_matched_entry_and_its_note(alice, screened_number):
    number = screened_number(alice.account, black=[{"caller_id": "+1900*", "note": "premium-rate"}])

    decision = screen_caller(number, "+19005551234")

    assert decision.entry.list_type == "blacklist"
    assert (decision.entry.caller_id, decision.entry.kind, decision.entry.note) == ("+1900*", "prefix", "premium-rate")
    assert "+19005551234" in decision.reason and "+1900*" in decision.reason


def test_it_decides_in_one_query_and_counts_a_block_in_one_more(alice, screened_number, django_assert_num_queries):
    number = screened_number(alice.account, black=["+1900*"], white=["+1201*"])

    with django_assert_num_queries(1):
        screen_caller(number, "+12015550123")
    with django_assert_num_queries(1):
        screen_caller(number, "+447700900123")  # not on the whitelist: no entry to count
    with django_assert_num_queries(2):
        screen_caller(number, "+19005551234")


# --- Hit counters ------------------------------------------------------------------------------------


def test_it_counts_each_block_on_the_entry_that_caused_it(alice, screened_number):
    number = screened_number(alice.account, black=["+1900*", "+1900555*", "anonymous"])

    screen_caller(number, "+19005551234")
    screen_caller(number, "+19005559999")
    screen_caller(number, "+19001110000")
    screen_caller(number, "")

    assert entry(number, "blacklist", "+1900555*").hit_count == 2
    assert entry(number, "blacklist", "+1900*").hit_count == 1
    assert entry(number, "blacklist", "anonymous").hit_count == 1
    assert entry(number, "blacklist", "+1900555*").last_hit_at is not None


def test_it_does_not_count_whitelist_passes_or_not_whitelisted_blocks(alice, screened_number):
    number = screened_number(alice.account, white=["+1201*"])

    screen_caller(number, "+12015550123")
    screen_caller(number, "+447700900123")

    listed = entry(number, "whitelist", "+1201*")
    assert (listed.hit_count, listed.last_hit_at) == (0, None)


def test_it_counts_nothing_when_asked_not_to(alice, screened_number):
    number = screened_number(alice.account, black=["+1900*"])

    decision = screen_caller(number, "+19005551234", record_hit=False)

    assert not decision.allowed
    assert entry(number, "blacklist", "+1900*").hit_count == 0


@pytest.mark.postgres
def test_it_counts_blocks_outside_a_transaction_without_touching_the_connections_settings(
    transactional_db, alice, screened_number
):
    # Outside a transaction the counter's commit is made asynchronous for that one statement; the
    # connection's own synchronous_commit must be what it was afterwards.
    number = screened_number(alice.account, black=["+1900*"])
    assert not connection.in_atomic_block

    for _ in range(3):
        screen_caller(number, "+19005551234")

    assert entry(number, "blacklist", "+1900*").hit_count == 3
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"

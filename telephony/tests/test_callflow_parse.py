"""The call-flow document model: every tag parses into typed nodes with paths, and survives JSON."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, time

import pytest

from telephony.callflow import (
    TAGS,
    CallFlowInvalid,
    Document,
    NodeNotFound,
    TimeWindow,
    parse,
    schedule_matches,
    validate,
    value_matches,
)

# One document using every tag of the language, with the older dialect's spellings where there are some.
EVERYTHING = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Answer delay="250" tag="answered"/>
  <Meta name="greeting" value="Welcome"/>
  <Meta name="lang">en-GB</Meta>
  <Curl url="http://127.0.0.1:8080/crm/lookup?from={{from}}" method="post" timeout="2000" var="crm"
        body='{"caller": "{{from}}"}' tag="crm">
    <Header name="Authorization" value="Bearer abc"/>
    <Header name="Content-Type" value="application/json"/>
    <Error say="true"><Say>Our records are unavailable.</Say></Error>
  </Curl>
  <Call field="crm.json.tier" value="gold">
    <Say text="{{greeting}}, {{crm.json.name}}" type="wavenet" gender="female"
         lang="en-GB" code="en-GB-Wavenet-A" loop="2"/>
  </Call>
  <Call field="from" value="+1201*"><Say>Hello New Jersey</Say></Call>
  <Geo states="NJ, ny CA" county="Bergen"><Play url="http://127.0.0.1/nj.mp3" loop="3" leg="both"/></Geo>
  <Schedule dow="mon-fri" time="09:00:00-17:30:00" tz="America/New_York">
    <Play>http://127.0.0.1/open.wav</Play>
  </Schedule>
  <Scheduler dow="fri-mon" time="22:00-06:00"><Say>We are closed</Say></Scheduler>
  <Tone hz="350,440" don="2000" doff="4000" loop="2" volume="-6" timeout="12000" leg="bleg"/>
  <Pause length="1500" dtmf_stop="#*"/>
  <Gather numDigits="1" finishOnKey="*" timeout="4000" attempts="3" callback="http://127.0.0.1/menu" method="GET">
    <Say>Press 1 for sales, 2 to leave a message.</Say>
    <Pause length="500"/>
    <DTMF value="1">
      <Dial timeout="20000" callerId="12015550100" action="http://127.0.0.1/dialed" method="GET" tag="sales">
        <To statusCallback="http://127.0.0.1/status" statusCallbackMethod="get"
            statusCallbackEvent="initiated, ringing answered">+12015550123</To>
        <Sip>sip:sales@acme.sip.example.net</Sip>
        <To statusCallback="http://127.0.0.1/status">12015550124</To>
        <Error><Say>Nobody is free.</Say></Error>
      </Dial>
    </DTMF>
    <DTMF value="2">
      <Record tag="voicemail" asr="true" timeout="60000" action="http://127.0.0.1/recorded">
        <Say>Leave a message after the tone.</Say>
        <Tone hz="1000" timeout="500"/>
        <Pause length="60000"/>
      </Record>
    </DTMF>
    <Default><Say>Sorry, I did not get that.</Say></Default>
    <Error play="1"><Hangup tag="menu-failed"/></Error>
  </Gather>
  <Hold timeout="60000"/>
  <Unhold tag="back"/>
  <Play record="voicemail"/>
  <Callback url="http://127.0.0.1/next" method="patch" body="true" timeout="3000" tag="next">
    <Error><Say>Goodbye.</Say><Hangup/></Error>
  </Callback>
  <Hangup tag="normal"/>
</Response>
"""


@pytest.fixture(scope="module")
def everything():
    result = validate(EVERYTHING)
    assert result.errors == [], result.errors
    return result.document


def test_it_parses_every_tag_of_the_language(everything):
    used = {node.tag for node in everything.walk()}

    assert used == set(TAGS)


def test_it_resolves_tag_aliases_to_the_canonical_name(everything):
    assert everything.node_at("Response/Scheduler[0]").get("timezone") == "America/New_York"
    assert everything.node_at("Response/Scheduler[1]").get("dow") == ("sun", "mon", "fri", "sat")
    sip = everything.node_at("Response/Gather[0]/DTMF[0]/Dial[0]/To[1]")
    assert sip.tag == "To"
    assert sip.get("target") == "sip:sales@acme.sip.example.net"


def test_it_types_durations_counts_and_booleans(everything):
    answer = everything.node_at("Response/Answer[0]")
    tone = everything.node_at("Response/Tone[0]")
    record = everything.node_at("Response/Gather[0]/DTMF[1]/Record[0]")

    assert answer.attrs == {"delay": 250, "tag": "answered"}
    assert tone.attrs == {
        "hz": (350, 440), "don": 2000, "doff": 4000, "loop": 2, "volume": -6, "timeout": 12000, "leg": "bleg",
    }  # fmt: skip
    assert record.get("asr") is True
    assert record.get("timeout") == 60000
    assert everything.node_at("Response/Callback[0]").attrs == {
        "url": "http://127.0.0.1/next", "method": "PATCH", "body": True, "timeout": 3000, "tag": "next",
    }  # fmt: skip


def test_it_applies_defaults_and_leaves_optional_attributes_out(everything):
    say = everything.node_at("Response/Call[1]/Say[0]")
    hold = everything.node_at("Response/Hold[0]")

    assert say.attrs == {"text": "Hello New Jersey", "type": "Standard", "lang": "en-US", "loop": 1}
    assert say.get("gender") is None
    assert hold.get("timeout") == 60000
    assert parse("<Response><Hold/><Pause/><Tone hz='440'/></Response>").root.children[0].get("timeout") == 300_000
    pause = parse("<Response><Pause/></Response>").node_at("Pause[0]")
    assert pause.attrs == {"length": 1000}


def test_it_reads_the_older_gather_dialect_into_the_canonical_attributes(everything):
    gather = everything.node_at("Response/Gather[0]")

    assert gather.attrs == {
        "dtmf_length": 1, "dtmf_stop": "*", "timeout": 4000, "attempts": 3, "action": "http://127.0.0.1/menu",
        "method": "GET",
    }  # fmt: skip
    assert [c.tag for c in gather.commands] == ["Say", "Pause"]
    assert [c.get("value") for c in gather.clauses("DTMF")] == ["1", "2"]
    assert gather.clauses("Default")[0].commands[0].get("text") == "Sorry, I did not get that."
    assert gather.error.get("say") is True  # `play` is the older spelling of `say`


def test_opentact_gather_attributes_and_restcomm_action_mean_the_same(everything):
    for spelling in ('url="http://127.0.0.1/g"', 'action="http://127.0.0.1/g"', 'callback="http://127.0.0.1/g"'):
        gather = parse(f'<Response><Gather dtmf_length="4" dtmf_stop="#" {spelling}/></Response>').node_at("Gather[0]")
        assert gather.get("action") == "http://127.0.0.1/g"
        assert gather.get("dtmf_length") == 4


def test_it_types_dial_and_its_targets(everything):
    dial = everything.node_at("Response/Gather[0]/DTMF[0]/Dial[0]")
    first, _, third = dial.clauses("To")

    assert dial.attrs == {
        "timeout": 20000, "caller_id": "+12015550100", "action": "http://127.0.0.1/dialed", "method": "GET",
        "tag": "sales",
    }  # fmt: skip
    assert first.attrs == {
        "target": "+12015550123",
        "status_callback": "http://127.0.0.1/status",
        "status_callback_method": "GET",
        "status_callback_events": ("initiated", "ringing", "answered"),
    }
    # A URL without events gets the final one only (Restcomm), and a number without '+' is normalised.
    assert third.get("status_callback_events") == ("completed",)
    assert third.get("target") == "+12015550124"
    assert dial.error.commands[0].get("text") == "Nobody is free."


def test_it_types_conditions(everything):
    geo = everything.node_at("Response/Geo[0]")
    schedule = everything.node_at("Response/Scheduler[0]")
    night = everything.node_at("Response/Scheduler[1]")

    assert geo.attrs == {"states": ("NJ", "NY", "CA"), "county": "Bergen"}
    assert schedule.get("dow") == ("mon", "tue", "wed", "thu", "fri")
    assert schedule.get("time") == TimeWindow(time(9), time(17, 30))
    assert night.get("time").crosses_midnight
    assert everything.node_at("Response/Call[0]").attrs == {"field": "crm.json.tier", "value": "gold"}
    assert everything.node_at("Response/Call[1]").attrs == {"field": "from", "value": "+1201*"}


def test_it_keeps_text_content_in_the_attribute_the_tag_names_for_it(everything):
    assert everything.node_at("Response/Meta[1]").attrs == {"name": "lang", "value": "en-GB"}
    assert everything.node_at("Response/Scheduler[0]/Play[0]").get("url") == "http://127.0.0.1/open.wav"
    assert everything.node_at("Response/Play[0]").attrs == {"record": "voicemail", "loop": 1, "leg": "aleg"}


def test_it_types_curl_with_its_headers_and_variable(everything):
    curl = everything.node_at("Response/Curl[0]")

    assert curl.attrs == {
        "url": "http://127.0.0.1:8080/crm/lookup?from={{from}}", "method": "POST", "timeout": 2000, "var": "crm",
        "body": '{"caller": "{{from}}"}', "tag": "crm",
    }  # fmt: skip
    assert [(h.get("name"), h.get("value")) for h in curl.clauses("Header")] == [
        ("Authorization", "Bearer abc"),
        ("Content-Type", "application/json"),
    ]
    assert curl.error.get("say") is True


def test_every_node_knows_its_path_line_and_column(everything):
    say = everything.node_at("Response/Gather[0]/DTMF[1]/Record[0]/Say[0]")

    assert say.path == "Response/Gather[0]/DTMF[1]/Record[0]/Say[0]"
    assert (say.line, say.column) == (38, 9)
    assert everything.root.path == "Response"
    assert (everything.root.line, everything.root.column) == (2, 1)
    # Indexes count siblings of the same tag, aliases included: <Schedule> and <Scheduler> are Scheduler[0] and [1].
    assert [c.path for c in everything.root.children][:4] == [
        "Response/Answer[0]",
        "Response/Meta[0]",
        "Response/Meta[1]",
        "Response/Curl[0]",
    ]
    assert everything.node_at("Response/Scheduler[1]").line == 21


def test_node_at_finds_a_node_again_in_a_re_parsed_document(everything):
    again = parse(EVERYTHING)

    for node in everything.walk():
        assert again.node_at(node.path) == node
    assert again.node_at("Gather[0]/DTMF[0]/Dial[0]") == everything.node_at("Response/Gather[0]/DTMF[0]/Dial[0]")


def test_node_at_refuses_a_path_that_is_not_there(everything):
    with pytest.raises(NodeNotFound):
        everything.node_at("Response/Gather[0]/DTMF[7]")
    with pytest.raises(KeyError):
        everything.node_at("Response/Say[0]")


def test_the_json_form_round_trips(everything):
    stored = json.loads(json.dumps(everything.to_json()))

    again = Document.from_json(stored)

    assert again == everything
    assert stored["format"] == "callflow" and stored["version"] == 1
    assert stored["root"]["children"][0] == {
        "tag": "Answer", "attrs": {"delay": 250, "tag": "answered"}, "line": 3, "column": 3, "children": [],
    }  # fmt: skip
    assert again.node_at("Response/Scheduler[1]").get("time") == TimeWindow(time(22), time(6))
    assert again.node_at("Response/Tone[0]").get("hz") == (350, 440)


def test_it_refuses_json_of_another_format():
    with pytest.raises(ValueError):
        Document.from_json({"format": "callflow", "version": 99, "root": {}})


def test_nodes_are_immutable_and_picklable(everything):
    node = everything.node_at("Response/Answer[0]")

    with pytest.raises(AttributeError):
        node.tag = "Hangup"
    with pytest.raises(TypeError):
        node.attrs["delay"] = 0
    assert pickle.loads(pickle.dumps(everything)) == everything  # noqa: S301 - our own bytes


def test_next_after_follows_blocks_and_climbs_out_of_them(everything):
    def next_path(path):
        following = everything.next_after(path)
        return following.path if following else None

    assert next_path("Response/Answer[0]") == "Response/Meta[0]"
    # The end of a branch continues after the command that owns it.
    assert next_path("Response/Gather[0]/DTMF[0]/Dial[0]") == "Response/Hold[0]"
    assert next_path("Response/Gather[0]/DTMF[1]/Record[0]/Pause[0]") == "Response/Hold[0]"
    assert next_path("Response/Curl[0]/Error[0]/Say[0]") == "Response/Call[0]"
    assert next_path("Response/Call[0]/Say[0]") == "Response/Call[1]"
    assert next_path("Response/Hangup[0]") is None
    assert everything.parent_of("Response/Gather[0]/DTMF[1]").tag == "Gather"
    assert everything.parent_of(everything.root) is None


def test_parse_raises_with_errors_and_warnings():
    with pytest.raises(CallFlowInvalid) as invalid:
        parse("<Response><Say/><Hangup/><Pause/></Response>")

    assert [e.code for e in invalid.value.errors] == ["missing_attribute"]
    assert [w.code for w in invalid.value.warnings] == ["unreachable"]
    assert invalid.value.as_validation_error().message_dict == {
        "xml": ["Line 1, column 11: <Say> needs `text` (or text content)."]
    }


@pytest.mark.parametrize(
    "pattern,actual,expected",
    [
        ("+12015550123", "+12015550123", True),
        ("+12015550123", "12015550123", True),
        ("+12015550123", "+12015550124", False),
        ("+1201*", "+12015550123", True),
        ("+1201*", "12015550123", True),
        ("+1201*", "+12125550123", False),
        ("gold", "gold", True),
        ("gold", None, False),
    ],
)
def test_call_values_match_exactly_or_by_prefix(pattern, actual, expected):
    assert value_matches(pattern, actual) is expected


@pytest.mark.parametrize(
    "days,window,local,expected",
    [
        (("mon", "tue", "wed", "thu", "fri"), "09:00:00-17:00:00", datetime(2024, 6, 3, 9, 0), True),  # Monday
        (("mon", "tue", "wed", "thu", "fri"), "09:00:00-17:00:00", datetime(2024, 6, 3, 17, 0), False),
        (("mon", "tue", "wed", "thu", "fri"), "09:00:00-17:00:00", datetime(2024, 6, 8, 10, 0), False),  # Saturday
        (("fri",), "22:00:00-02:00:00", datetime(2024, 6, 7, 23, 0), True),  # Friday night
        (("fri",), "22:00:00-02:00:00", datetime(2024, 6, 8, 1, 0), True),  # Saturday early: Friday's window
        (("fri",), "22:00:00-02:00:00", datetime(2024, 6, 7, 1, 0), False),  # Friday early: Thursday's window
        (None, "00:00:00-24:00:00", datetime(2024, 6, 7, 1, 0), True),
        (("sun",), None, datetime(2024, 6, 9, 12, 0), True),
    ],
)
def test_schedules_match_days_and_windows_that_may_cross_midnight(days, window, local, expected):
    parsed = TAGS["Scheduler"].attr("time").type.parse(window) if window else None

    assert schedule_matches(days, parsed, local) is expected

"""What the validator reports about a call-flow document: each kind of mistake, where it is, and warnings."""

from __future__ import annotations

import pytest

from telephony.callflow import validate


def issues(source: str, **kwargs) -> list[tuple]:
    result = validate(source, **kwargs)
    return [(i.severity, i.code, i.line, i.column, i.path, i.attribute) for i in result.errors + result.warnings]


def one(source: str, **kwargs):
    result = validate(source, **kwargs)
    found = result.errors + result.warnings
    assert len(found) == 1, found
    return found[0]


# --- Errors, one per kind, each at its element ---------------------------------------------------------


def test_it_reports_an_unknown_tag_with_a_suggestion():
    error = one("<Response>\n  <Answer/>\n  <Sya>Hello</Sya>\n</Response>")

    assert (error.code, error.line, error.column) == ("unknown_tag", 3, 3)
    assert error.message == "Unknown tag <Sya>; did you mean <Say>?"


def test_tag_names_are_case_sensitive_and_the_message_says_so():
    error = one("<Response><hangup/></Response>")

    assert error.code == "unknown_tag"
    assert error.message == "Unknown tag <hangup>; did you mean <Hangup>?"


def test_the_root_must_be_response():
    error = one("<response><Hangup/></response>")

    assert (error.code, error.line, error.column) == ("bad_root", 1, 1)
    assert error.message == "The root element must be <Response>, not <response> (names are case-sensitive)."


def test_it_reports_an_unknown_attribute_with_the_attributes_it_takes():
    error = one('<Response>\n    <Say voice="alice">Hi</Say>\n</Response>')

    assert (error.code, error.line, error.column, error.attribute) == ("unknown_attribute", 2, 5, "voice")
    assert error.message == "Unknown attribute `voice` on <Say>; <Say> takes text, type, gender, lang, code, loop, tag."


def test_it_suggests_the_spelling_of_an_older_attribute():
    error = one('<Response><Gather numdigits="1"><Default/></Gather></Response>')

    assert error.message == "Unknown attribute `numdigits` on <Gather>; did you mean `numDigits`?"


def test_it_reports_a_missing_required_attribute():
    error = one('<Response>\n<Callback method="GET"/>\n</Response>')

    assert (error.code, error.line, error.column, error.attribute) == ("missing_attribute", 2, 1, "url")
    assert error.message == "<Callback> needs the attribute `url`."
    assert error.path == "Response/Callback[0]"


def test_it_reports_a_missing_text_that_may_be_content_or_attribute():
    error = one("<Response><Say>   </Say></Response>")

    assert error.code == "missing_attribute"
    assert error.message == "<Say> needs `text` (or text content)."


@pytest.mark.parametrize(
    "element,attribute,message",
    [
        ('<Pause length="1.5s"/>', "length",
         "`length` on <Pause> must be a whole number of milliseconds, e.g. 5000 for 5 seconds (got '1.5s')."),
        ('<Pause length="-5"/>', "length",
         "`length` on <Pause> must be a whole number of milliseconds, e.g. 5000 for 5 seconds (got '-5')."),
        ('<Hold timeout="99999999"/>', "timeout",
         "`timeout` on <Hold> must be between 0 and 3600000 milliseconds (got 99999999)."),
        ('<Gather dtmf_length="0"><Default/></Gather>', "dtmf_length",
         "`dtmf_length` on <Gather> must be a whole number from 1 to 64 (got '0')."),
        ('<Gather finishOnKey="x"><Default/></Gather>', "finishOnKey",
         "`finishOnKey` on <Gather> must be DTMF keys (0-9, * and #), at most 12 (got 'x')."),
        ('<Say loop="0">Hi</Say>', "loop", "`loop` on <Say> must be a whole number from 1 to 100 (got '0')."),
        ('<Play leg="cleg">http://127.0.0.1/a.mp3</Play>', "leg",
         "`leg` on <Play> must be one of aleg, bleg, both (got 'cleg')."),
        ('<Record asr="maybe"/>', "asr", "`asr` on <Record> must be true or false (got 'maybe')."),
        ('<Callback url="http://127.0.0.1/x" method="PUT"/>', "method",
         "`method` on <Callback> must be one of POST, GET, PATCH, DELETE (got 'PUT')."),
        ('<Tone hz="440,abc"/>', "hz", "`hz` on <Tone> must be frequencies in Hz from 1 to 20000 (got 'abc')."),
        ('<Geo states="NJ,XX"/>', "states", "`states` on <Geo> must be one of AL, AK, AZ, AR, CA, CO, CT, DE, FL, GA, "
         "HI, ID, IL, IN, IA, KS, KY, LA, ME, MD, MA, MI, MN, MS, MO, MT, NE, NV, NH, NJ, NM, NY, NC, ND, OH, OK, OR, "
         "PA, RI, SC, SD, TN, TX, UT, VT, VA, WA, WV, WI, WY, DC, PR, VI, GU, AS, MP (got 'XX')."),
        ('<Scheduler dow="mon-funday"/>', "dow",
         "`dow` on <Scheduler> must list days (sun, mon, tue, wed, thu, fri, sat) or ranges like mon-fri "
         "(got 'mon-funday')."),
        ('<Scheduler time="09:00-09:00"/>', "time", "`time` on <Scheduler> must not start and end at the same time; "
         "use 00:00:00-24:00:00 for the whole day."),
        ('<Scheduler time="9am-5pm"/>', "time",
         "`time` on <Scheduler> must be a window HH:MM:SS-HH:MM:SS, e.g. 09:00:00-17:30:00 (got '9am-5pm')."),
        ('<Scheduler timezone="Mars/Olympus"/>', "timezone",
         "`timezone` on <Scheduler> must be an IANA time zone such as America/New_York (got 'Mars/Olympus')."),
        ('<Dial><To>555-1234</To></Dial>', "target", "`target` on <To> must be an E.164 number such as +12015550123 "
         "or a SIP URI such as sip:alice@example.com (got '555-1234')."),
        ('<Dial callerId="bob"><To>+12015550123</To></Dial>', "callerId",
         "`callerId` on <Dial> must be an E.164 number such as +12015550123 (got 'bob')."),
        ('<Meta name="2fast" value="x"/>', "name",
         "`name` on <Meta> must be a name of letters, digits and _, not starting with a digit (got '2fast')."),
        ('<Meta name="from" value="x"/>', "name",
         "`name` on <Meta> cannot be 'from', a built-in variable (app, call, from, tn, to)."),
        ('<Curl url="http://127.0.0.1/x"><Header name="Host" value="evil"/></Curl>', "name",
         "`name` on <Header> cannot be Host: the platform sets that header itself."),
        ('<Curl url="http://127.0.0.1/x"><Header name="X-A" value="a&#10;b"/></Curl>', "value",
         "`value` on <Header> must be on one line."),
        ('<Pause length="{{delay}}"/>', "length",
         "`length` on <Pause> cannot hold {{variables}}: it is checked when the document is saved."),
    ],
)  # fmt: skip
def test_it_reports_bad_values_in_plain_words(element, attribute, message):
    result = validate(f"<Response>\n  {element}\n</Response>")
    error = next(e for e in result.errors if e.code == "bad_value")

    assert error.message == message
    assert error.attribute == attribute
    assert error.line == 2 and error.column >= 3


@pytest.mark.parametrize(
    "value,valid",
    [("+12015550123", True), ("12015550123", True), ("+1201*", True), ("sip:alice@example.com", True),
     ("anonymous", True), ("{{vip_number}}", True), ("201-555-0123", False), ("+1201*5", False), ("alice", False)],
)  # fmt: skip
def test_a_call_on_to_or_from_compares_numbers(value, valid):
    result = validate(f'<Response><Meta name="vip_number" value="+1"/><Call field="from" value="{value}"/></Response>')

    assert result.valid is valid
    if not valid:
        assert result.errors[0].message == (
            "`value` on <Call> must be an E.164 number, a prefix such as +1201*, a SIP URI or anonymous when `field` "
            f"is from (got {value!r})."
        )


def test_a_call_on_another_variable_compares_any_text():
    assert validate('<Response><Meta name="tier" value="gold"/><Call field="tier" value="gold *"/></Response>').valid


def test_a_bad_value_is_not_also_reported_missing():
    assert issues('<Response><Gather><DTMF value="1a"/></Gather></Response>') == [
        ("error", "bad_value", 1, 19, "Response/Gather[0]/DTMF[0]", "value")
    ]


def test_it_reports_a_child_in_the_wrong_place():
    error = one("<Response>\n  <Dial><To>+12015550123</To><Say>Hi</Say></Dial>\n</Response>")

    assert (error.code, error.line, error.column) == ("child_not_allowed", 2, 30)
    assert error.message == "<Say> is not allowed inside <Dial>, which may contain <Error>, <To>."


def test_a_clause_outside_its_owner_says_where_it_belongs():
    result = validate('<Response><DTMF value="1"><Hangup/></DTMF><Error/></Response>')

    assert [e.message for e in result.errors] == [
        "<DTMF> is not allowed inside <Response>; it belongs inside <Gather>.",
        "<Error> is not allowed inside <Response>; it belongs inside <Answer>, <Callback>, <Curl>, <Dial>, <Gather>, "
        "<Hold>, <Play>, <Record>, <Say>, <Tone>, <Unhold>.",
    ]


def test_it_reports_a_second_error_block_and_a_dial_without_targets():
    result = validate("<Response>\n<Say>Hi<Error/><Error/></Say>\n<Dial></Dial>\n</Response>")

    assert [(e.code, e.line, e.column) for e in result.errors] == [
        ("duplicate_child", 2, 16),
        ("missing_child", 3, 1),
    ]
    assert result.errors[0].message == "<Say> may contain at most one <Error>."
    assert result.errors[1].message == "<Dial> needs at least one <To> inside."


def test_dial_rings_at_most_ten_targets():
    targets = "".join(f"<To>+1201555{i:04d}</To>" for i in range(11))

    error = one(f"<Response><Dial>{targets}</Dial></Response>")

    assert error.code == "duplicate_child"
    assert error.message == "<Dial> may contain at most 10 <To>."


def test_it_reports_text_where_none_is_allowed_at_the_text():
    error = one("<Response>\n  <Hangup>\n     now</Hangup>\n</Response>")

    assert (error.code, error.line, error.column) == ("unexpected_text", 3, 6)


def test_it_reports_two_spellings_of_one_attribute():
    error = one('<Response><Gather url="http://127.0.0.1/a" action="http://127.0.0.1/b"/></Response>')

    assert error.code == "duplicate_attribute"
    assert error.message == "`action` and `url` on <Gather> are the same attribute; give one."


def test_it_reports_text_given_twice():
    error = one('<Response><Say text="Hello">Hi</Say></Response>')

    assert error.code == "conflicting_attributes"
    assert error.message == "<Say> takes `text` as an attribute or as text content, not both."


def test_play_takes_a_url_or_a_recording_not_both():
    error = one('<Response><Play url="http://127.0.0.1/a.mp3" record="vm"/></Response>')

    assert error.code == "conflicting_attributes"
    assert error.message == "<Play> takes `url` or `record`, not several."


def test_it_reports_two_branches_for_the_same_digits():
    error = one('<Response><Gather>\n<DTMF value="1"/>\n<DTMF value="1"/>\n</Gather></Response>')

    assert (error.code, error.line, error.column) == ("duplicate_dtmf", 3, 1)
    assert error.message == "Another <DTMF> of this <Gather> (line 2) already has value '1'."


def test_it_collects_every_error_of_a_document_in_order():
    result = validate('<Response>\n<Say/>\n<Pause length="x"/>\n<Nope/>\n</Response>')

    assert [(e.code, e.line) for e in result.errors] == [
        ("missing_attribute", 2),
        ("bad_value", 3),
        ("unknown_tag", 4),
    ]


# --- URLs ---------------------------------------------------------------------------------------------


@pytest.fixture
def strict(settings):
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = False
    settings.OUTBOUND_URL_ALLOWED_NETWORKS = []


@pytest.mark.parametrize(
    "element,attribute",
    [
        ('<Play url="{}"/>', "url"),
        ("<Play>{}</Play>", "url"),
        ('<Callback url="{}"/>', "url"),
        ('<Curl url="{}"/>', "url"),
        ('<Gather action="{}"/>', "action"),
        ('<Gather url="{}"/>', "url"),
        ('<Dial action="{}"><To>+12015550123</To></Dial>', "action"),
        ('<Dial><To statusCallback="{}">+12015550123</To></Dial>', "statusCallback"),
        ('<Record action="{}"/>', "action"),
    ],
)
def test_every_url_goes_through_the_outbound_url_policy(strict, element, attribute):
    result = validate(f"<Response>{element.format('http://169.254.169.254/latest/meta-data')}</Response>")

    error = result.errors[0]
    assert error.code == "url_forbidden_address"
    assert error.attribute == attribute
    assert "link-local" in error.message


@pytest.mark.parametrize(
    "url,code",
    [
        ("ftp://127.0.0.1/x", "url_scheme"),
        ("http://user:pw@127.0.0.1/x", "url_credentials"),
        ("/relative/path", "url_scheme"),
        ("http:///nohost", "url_invalid"),
    ],
)
def test_the_shape_of_a_url_is_checked_even_without_resolving(url, code):
    error = one(f'<Response><Callback url="{url}"/></Response>', resolve_urls=False)

    assert error.code == code
    assert error.message.startswith("`url` on <Callback>: ")


def test_resolution_can_be_left_to_call_time(strict):
    assert validate('<Response><Callback url="http://127.0.0.1/x"/></Response>', resolve_urls=False).valid
    assert not validate('<Response><Callback url="http://127.0.0.1/x"/></Response>').valid


def test_an_unresolvable_host_is_an_error(strict):
    error = one('<Response><Callback url="http://no-such-host.invalid/x"/></Response>')

    assert error.code == "url_unresolvable"


def test_loopback_urls_pass_when_the_setting_allows_them():
    assert validate('<Response><Callback url="http://127.0.0.1:8000/flow"/></Response>').valid


def test_only_the_first_hosts_are_resolved_now():
    callbacks = "".join(f'<Curl url="http://127.0.0.{i}/x"/>' for i in range(1, 13))

    result = validate(f"<Response>{callbacks}</Response>")

    assert result.valid
    assert [(w.code, w.path) for w in result.warnings] == [("url_not_resolved", "Response/Curl[10]")]


def test_variables_may_be_in_a_urls_path_and_query_but_not_its_host():
    ok = validate('<Response><Curl url="http://127.0.0.1/customers/{{from}}?tn={{tn}}"/></Response>')
    in_host = one('<Response><Curl url="http://{{from}}.example.com/x"/></Response>')
    in_scheme = validate('<Response><Meta name="s" value="http"/><Curl url="{{s}}://127.0.0.1/x"/></Response>')

    assert ok.valid and ok.warnings == []
    assert in_host.code == "url_variable_host"
    assert in_host.message == (
        "`url` on <Curl>: variables may be used in a URL's path and query, not in its scheme or host."
    )
    assert in_scheme.errors[0].code == "url_variable_host"


# --- Warnings -------------------------------------------------------------------------------------------


def test_it_warns_about_commands_after_hangup():
    result = validate("<Response>\n  <Hangup/>\n  <Say>Bye</Say>\n  <Pause/>\n</Response>")

    assert result.valid
    assert [(w.code, w.line, w.column, w.path) for w in result.warnings] == [("unreachable", 3, 3, "Response/Say[0]")]
    assert result.warnings[0].message == "<Say> and the 1 after it never run: the <Hangup> on line 2 ends the call."


def test_it_warns_about_unreachable_commands_inside_branches_too():
    result = validate('<Response><Gather><DTMF value="1"><Hangup/><Say>x</Say></DTMF></Gather><Say>y</Say></Response>')

    assert [(w.code, w.path) for w in result.warnings] == [("unreachable", "Response/Gather[0]/DTMF[0]/Say[0]")]


def test_a_hangup_in_a_branch_does_not_make_what_follows_the_branch_unreachable():
    assert validate('<Response><Call field="to" value="+1*"><Hangup/></Call><Say>Hi</Say></Response>').warnings == []


def test_commands_after_a_callback_are_reachable_when_it_fails():
    assert validate('<Response><Callback url="http://127.0.0.1/x"/><Say>Hi</Say></Response>').warnings == []


@pytest.mark.parametrize(
    "gather",
    [
        "<Gather/>",
        '<Gather numDigits="4" timeout="5000"><Say>Enter your PIN</Say></Gather>',
        "<Gather><Error><Hangup/></Error></Gather>",
    ],
)
def test_it_warns_about_a_gather_with_no_way_forward(gather):
    warning = one(f"<Response>\n  {gather}\n</Response>")

    assert (warning.severity, warning.code, warning.line, warning.column) == ("warning", "gather_no_way_forward", 2, 3)
    assert warning.message == (
        "This <Gather> has no `action` URL, no <DTMF> and no <Default>: the caller's keys are thrown away."
    )


@pytest.mark.parametrize(
    "gather",
    [
        '<Gather action="http://127.0.0.1/x"/>',
        '<Gather callback="http://127.0.0.1/x"/>',
        '<Gather><DTMF value="1"><Say>One</Say></DTMF></Gather>',
        "<Gather><Default><Say>Anything</Say></Default></Gather>",
    ],
)
def test_a_gather_with_an_action_a_branch_or_a_default_has_a_way_forward(gather):
    assert validate(f"<Response>{gather}</Response>").warnings == []


def test_it_warns_about_branches_that_can_never_be_entered():
    result = validate(
        '<Response><Gather numDigits="2" finishOnKey="#">'
        '<DTMF value="123"/><DTMF value="1#"/><DTMF value="12"/></Gather></Response>'
    )

    assert [(w.code, w.path) for w in result.warnings] == [
        ("dtmf_unreachable", "Response/Gather[0]/DTMF[0]"),
        ("dtmf_unreachable", "Response/Gather[0]/DTMF[1]"),
    ]


@pytest.mark.parametrize(
    "element,suggestion",
    [
        ('<Dial timeout="30"><To>+12015550123</To></Dial>', None),
        ('<Gather timeout="5"><Default/></Gather>', "`timeout` on <Gather> is 5 ms; durations are in milliseconds "
         "(did you mean 5000?)."),
        ('<Callback url="http://127.0.0.1/x" timeout="200"/>', "`timeout` on <Callback> is 200 ms; durations are in "
         "milliseconds (did you mean 200000?)."),
    ],
)  # fmt: skip
def test_it_warns_about_durations_that_look_like_seconds(element, suggestion):
    result = validate(f"<Response>{element}</Response>")

    if suggestion is None:  # below Dial's minimum ring time: an error, with the unit in it
        assert result.errors[0].message == (
            "`timeout` on <Dial> must be between 1000 and 600000 milliseconds (got 30)."
        )
    else:
        assert [(w.code, w.message) for w in result.warnings] == [("suspicious_duration", suggestion)]


def test_it_warns_about_status_events_without_a_url():
    warning = one('<Response><Dial><To statusCallbackEvent="ringing">+12015550123</To></Dial></Response>')

    assert (warning.code, warning.attribute) == ("unused_status_events", "status_callback_events")


def test_it_warns_about_an_empty_flow():
    assert one("<Response/>").code == "empty_flow"


def test_it_caps_the_number_of_issues():
    result = validate("<Response>" + "<Say/>" * 150 + "</Response>")

    assert len(result.errors) == 100
    assert result.warnings[-1].code == "too_many_issues"
    assert result.warnings[-1].message == "50 more problems were not listed."


# --- Variables -------------------------------------------------------------------------------------------


def test_variables_set_earlier_by_meta_and_curl_are_defined():
    result = validate(
        "<Response>"
        '<Meta name="greeting">Hello {{from}} on {{tn}}, call {{call}} of app {{app}} to {{to}}</Meta>'
        '<Curl url="http://127.0.0.1/crm?c={{call}}" var="crm"/>'
        "<Say>{{greeting}} {{ crm.json.customer.name }} ({{crm.status}}, {{crm.body}}, {{crm}})</Say>"
        '<Call field="crm.json.vip" value="{{greeting}}"><Hangup/></Call>'
        '<Call field="{{crm.status}}" value="404"><Hangup/></Call>'
        "</Response>"
    )

    assert result.valid
    assert result.warnings == []


def test_it_warns_about_variables_not_set_earlier_in_the_document():
    result = validate(
        "<Response>\n"
        "<Say>Hi {{name}}</Say>\n"
        '<Meta name="name" value="Ann"/>\n'
        '<Curl url="http://127.0.0.1/x" var="crm"><Header name="X-Last" value="{{crm.status}}"/></Curl>\n'
        '<Call field="later" value="1"><Hangup/></Call>\n'
        "</Response>"
    )

    assert result.valid
    assert [(w.code, w.line, w.attribute) for w in result.warnings] == [
        ("undefined_variable", 2, "text"),
        ("undefined_variable", 4, "value"),
        ("undefined_variable", 5, "field"),
    ]
    assert result.warnings[0].message == (
        "{{name}} is not set earlier in this document (by <Meta name> or <Curl var>); unless an earlier document "
        "of the call set it, it is empty."
    )


@pytest.mark.parametrize(
    "say,message",
    [
        ("{{from.country}}", "{{from.country}}: from is a built-in variable and has no fields."),
        ("{{crm.headers}}", "{{crm.headers}}: the response of <Curl var='crm'> is {{crm}}, {{crm}}.status, "
         "{{crm}}.body and {{crm}}.json.<key>."),
        ("{{who.first}}", "{{who.first}}: who is a <Meta> variable and has no fields."),
        ("Hi {{name", "`text` on <Say> has an unclosed {{ or }}."),
        ("Hi {{first name}}", "`text` on <Say>: {{first name}} is not a variable name (letters, digits, _ and dots)."),
    ],
)  # fmt: skip
def test_it_reports_malformed_variable_references(say, message):
    result = validate(
        f'<Response><Meta name="who" value="x"/><Curl url="http://127.0.0.1/x" var="crm"/><Say>{say}</Say></Response>'
    )

    assert [(e.code, e.message) for e in result.errors] == [("bad_variable", message)]

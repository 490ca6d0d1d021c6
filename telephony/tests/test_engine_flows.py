"""Call flows run by the engine, command by command, on the simulated switch (1000x speed) and real local servers.

Each test places a call through the real inbound path, drives the real engine in this process until the call
ends (engine_support.drive: what the Celery task runs), and asserts what a customer would see: the call's
record, its call.* and call.flow events, and the requests their servers received.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from telephony.models import Call, CallHttpRequest, Event, SimulatorRule
from telephony.tests.engine_support import (
    CustomerServer,
    commands,
    drive,
    event_types,
    flow,
    number_for_app,
    place,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def server():
    customer = CustomerServer()
    yield customer
    customer.stop()


def run(account, xml: str, **kwargs) -> Call:
    number, _ = number_for_app(account, xml)
    return drive(place(number, **kwargs))


def legs(call: Call) -> list[Call]:
    return list(Call.objects.filter(parent=call).order_by("id"))


# --- The call's lifecycle ---------------------------------------------------------------------------------


def test_it_answers_runs_the_flow_and_hangs_up_with_every_leg_event(alice):
    call = run(alice.account, "<Response><Say>Hello</Say></Response>")

    assert call.status == "completed" and call.q850_cause == 16
    assert call.answered_at and call.ended_at and call.flow_state == "done"
    assert event_types(call) == ["call.initiated", "call.ringing", "call.answered", "call.hangup", "call.completed"]
    assert commands(call) == ["Say:ok"]
    completed = Event.objects.get(type="call.completed", object_id=str(call.public_id)).payload
    assert completed["state"] == "completed" and completed["hangup_cause_text"] == "NORMAL_CLEARING"
    assert completed["duration"] == call.duration and completed["direction"] == "inbound"


def test_every_command_raises_a_call_flow_event_with_its_path_and_reason(alice):
    call = run(alice.account, '<Response><Answer/><Meta name="x" value="1"/><Say tag="hi">Hi</Say><Hangup/></Response>')

    events = flow(call)
    assert [(e["command"], e["path"], e["success"]) for e in events] == [
        ("Answer", "Response/Answer[0]", True),
        ("Meta", "Response/Meta[0]", True),
        ("Say", "Response/Say[0]", True),
        ("Hangup", "Response/Hangup[0]", True),
    ]
    assert events[2]["tag"] == "hi" and events[2]["message"] == "[success] command Say[0], reason: Said 1 words"
    assert all(e["started_at"] <= e["ended_at"] for e in events)


def test_hangup_tag_becomes_the_end_reason(alice):
    call = run(alice.account, '<Response><Hangup tag="closed for lunch"/><Say>never</Say></Response>')

    assert call.end_reason == "closed for lunch" and call.tag == "closed for lunch"
    assert commands(call) == ["Hangup:ok"]


def test_an_unanswered_call_whose_flow_ends_is_rejected(alice):
    number, _ = number_for_app(alice.account, "<Response><Hangup/></Response>", auto_answer=False)
    call = drive(place(number))

    assert call.status == "failed" and call.sip_code == 603 and call.answered_at is None


# --- Answer, Pause, media, Hold -----------------------------------------------------------------------------


def test_answer_waits_for_its_delay(alice, settings):
    settings.SIMULATED_SWITCH = {**settings.SIMULATED_SWITCH, "speed": 100}
    number, _ = number_for_app(alice.account, '<Response><Answer delay="2000"/><Hangup/></Response>', auto_answer=False)
    call = drive(place(number))

    assert (call.answered_at - call.ringing_at) >= timedelta(milliseconds=20)  # 2 s of call time at 100x
    assert commands(call) == ["Answer:ok", "Hangup:ok"]


def test_pause_lasts_its_length_at_the_switch_speed(alice, settings):
    settings.SIMULATED_SWITCH = {**settings.SIMULATED_SWITCH, "speed": 100}
    call = run(alice.account, '<Response><Pause length="5000"/></Response>')

    pause = flow(call)[0]
    took = timezone.datetime.fromisoformat(pause["ended_at"]) - timezone.datetime.fromisoformat(pause["started_at"])
    assert timedelta(milliseconds=45) <= took < timedelta(seconds=2)


def test_a_key_in_dtmf_stop_ends_a_pause_early(alice):
    call = run(
        alice.account, '<Response><Pause length="600000" dtmf_stop="#"/><Say>after</Say></Response>', digits="5#"
    )

    assert commands(call) == ["Pause:ok", "Say:ok"]
    assert flow(call)[0]["reason"] == "Pause ended by key #"


def test_say_play_and_tone_wait_for_the_switch(alice):
    call = run(
        alice.account,
        '<Response><Say loop="2">One two</Say><Play>https://media.example.com/a.mp3</Play>'
        '<Tone hz="440,480" don="200" doff="100" loop="2"/></Response>',
    )

    assert commands(call) == ["Say:ok", "Play:ok", "Tone:ok"]


def test_play_to_the_b_leg_without_one_fails_and_runs_the_error_block(alice):
    call = run(
        alice.account,
        '<Response><Play leg="bleg" url="https://media.example.com/a.mp3"><Error><Meta name="e" value="1"/>'
        "</Error></Play><Say>next</Say></Response>",
    )

    assert commands(call) == ["Play:fail", "Meta:ok", "Say:ok"]
    assert "no connected B-leg" in flow(call)[0]["reason"]


def test_error_with_say_speaks_the_reason_then_continues(alice):
    call = run(
        alice.account,
        '<Response><Play record="nothing"><Error say="true"/></Play><Hangup tag="after"/></Response>',
    )

    assert commands(call) == ["Play:fail", "Hangup:ok"]
    assert call.end_reason == "after"


def test_hold_and_unhold(alice):
    call = run(alice.account, '<Response><Hold timeout="60000"/><Say>on hold</Say><Unhold/><Unhold/></Response>')

    assert commands(call) == ["Hold:ok", "Say:ok", "Unhold:ok", "Unhold:ok"]
    assert [e["reason"] for e in flow(call)][2:] == ["Taken off hold", "Not on hold"]


# --- Variables and conditions -----------------------------------------------------------------------------


def test_meta_variables_fill_templates_and_conditions(alice):
    call = run(
        alice.account,
        '<Response><Meta name="vip" value="yes"/><Meta name="greeting">Hello {{from}}</Meta>'
        '<Call field="vip" value="yes"><Say>{{greeting}}</Say></Call>'
        '<Call field="vip" value="no"><Hangup tag="wrong"/></Call><Hangup tag="right"/></Response>',
    )

    assert commands(call) == ["Meta:ok", "Meta:ok", "Call:ok", "Say:ok", "Call:ok", "Hangup:ok"]
    assert call.end_reason == "right"
    assert call.variables["meta"] == {"vip": "yes", "greeting": "Hello +12125550100"}


def test_call_compares_the_called_number_with_a_prefix(alice):
    call = run(alice.account, '<Response><Call field="to" value="+1201*"><Hangup tag="nj"/></Call></Response>')

    assert call.end_reason == "nj"
    assert flow(call)[0]["reason"].startswith(f"to={call.to_number} matches +1201*")


def test_geo_runs_its_children_for_callers_from_the_listed_states(alice):
    xml = '<Response><Geo states="NJ,NY"><Hangup tag="local"/></Geo><Hangup tag="far"/></Response>'

    assert run(alice.account, xml, from_number="+12125550100").end_reason == "local"  # 212: New York
    assert run(alice.account, xml, from_number="+13105550100").end_reason == "far"  # 310: California
    assert run(alice.account, xml, from_number="+442071234567").end_reason == "far"


def _window(start: timedelta, end: timedelta) -> str:
    now = timezone.now()
    return f"{(now + start):%H:%M:%S}-{(now + end):%H:%M:%S}"


def test_scheduler_runs_its_children_inside_its_window(alice):
    xml = (
        f'<Response><Scheduler time="{_window(timedelta(minutes=-30), timedelta(minutes=30))}" timezone="UTC">'
        '<Hangup tag="open"/></Scheduler><Hangup tag="closed"/></Response>'
    )

    call = run(alice.account, xml)

    assert call.end_reason == "open"
    assert "inside the schedule" in flow(call)[0]["reason"]


def test_scheduler_skips_its_children_outside_its_window(alice):
    xml = (
        f'<Response><Scheduler time="{_window(timedelta(hours=2), timedelta(hours=3))}">'
        '<Hangup tag="open"/></Scheduler><Hangup tag="closed"/></Response>'
    )

    call = run(alice.account, xml)

    assert call.end_reason == "closed"
    assert "outside the schedule" in flow(call)[0]["reason"]


def test_scheduler_reads_the_day_of_the_week_in_the_apps_time_zone(alice):
    today = timezone.now().astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo")).strftime("%a").lower()
    number, _ = number_for_app(
        alice.account,
        f'<Response><Scheduler dow="{today}"><Hangup tag="today"/></Scheduler><Hangup tag="not"/></Response>',
        time_zone="Asia/Tokyo",
    )

    assert drive(place(number)).end_reason == "today"


# --- Gather ------------------------------------------------------------------------------------------------

MENU = (
    '<Response><Gather dtmf_length="1" timeout="3000"><Say>Press 1 for sales, 2 for support</Say>'
    '<DTMF value="1"><Hangup tag="sales"/></DTMF><DTMF value="2"><Hangup tag="support"/></DTMF>'
    '<Default><Hangup tag="default"/></Default></Gather><Hangup tag="after"/></Response>'
)


def test_gather_runs_the_branch_of_the_keys_pressed(alice):
    assert run(alice.account, MENU, digits="2").end_reason == "support"


def test_gather_without_input_times_out_to_its_default(alice):
    call = run(alice.account, MENU)

    assert call.end_reason == "default"
    gather = next(e for e in flow(call) if e["command"] == "Gather")
    assert gather["reason"] == "No input after 1 attempt(s): Default"


def test_gather_stops_at_the_stop_key_and_tries_again_after_no_input(alice):
    xml = (
        '<Response><Gather attempts="2" timeout="2000"><DTMF value="42"><Hangup tag="ok"/></DTMF></Gather>'
        '<Hangup tag="gave up"/></Response>'
    )

    assert run(alice.account, xml, digits="|42#").end_reason == "ok"  # nothing at the first attempt
    assert run(alice.account, xml, digits="#|#").end_reason == "gave up"


def test_a_key_during_the_prompts_interrupts_them(alice):
    SimulatorRule.objects.create(match="+13105550010", digits="3", digits_after_ms=0)  # presses at once
    call = run(
        alice.account,
        '<Response><Gather dtmf_length="1"><Say loop="20">A very long menu that the caller does not wait for</Say>'
        '<Say>And more</Say><DTMF value="3"><Hangup tag="three"/></DTMF></Gather></Response>',
        from_number="+13105550010",
    )

    assert call.end_reason == "three"
    assert [e["reason"] for e in flow(call) if e["command"] == "Say"] == ["Interrupted by a key"]


def test_gather_action_gets_the_digits_and_its_xml_replaces_the_flow(alice, server):
    url = server.route("/menu", '<Response><Hangup tag="from action"/></Response>')
    call = run(
        alice.account,
        f'<Response><Gather action="{url}" tag="menu"><Say>Enter your code</Say></Gather>'
        '<Hangup tag="not reached"/></Response>',
        digits="1234#",
    )

    assert call.end_reason == "from action"
    [hit] = server.to("/menu")
    assert hit.method == "POST"
    assert hit.params["Digits"] == "1234" and hit.params["dtmf"] == "1234" and hit.params["tag"] == "menu"
    assert hit.params["call"] == str(call.public_id) and hit.params["CallSid"] == str(call.public_id)
    assert hit.params["from"] == "+12125550100" and hit.params["tn"] == call.to_number
    assert hit.params["state"] == "live" and hit.params["CallStatus"] == "in-progress"


# --- Callback, Curl and fetched documents -------------------------------------------------------------------


def test_callback_fetches_xml_that_replaces_the_rest_of_the_flow(alice, server):
    url = server.route("/flow", '<Response><Say>From the server</Say><Hangup tag="server"/></Response>')
    call = run(
        alice.account,
        f'<Response><Meta name="customer" value="42"/><Callback url="{url}" tag="step1"/>'
        '<Hangup tag="not reached"/></Response>',
    )

    assert commands(call) == ["Meta:ok", "Callback:ok", "Say:ok", "Hangup:ok"]
    assert call.end_reason == "server"
    [hit] = server.to("/flow")
    assert hit.params["tag"] == "step1" and hit.params["customer"] == "42"
    assert hit.params["sca"] == str(call.app.public_id)
    request = CallHttpRequest.objects.get(call=call)
    assert request.purpose == "callback" and request.outcome == "ok" and request.response_status == 200
    assert len(request.attempts) == 1 and request.command_path == "Response/Callback[0]"


def test_a_callback_that_times_out_runs_its_error_block(alice, server):
    url = server.route("/slow", "<Response/>", delay=1.0)
    call = run(
        alice.account,
        f'<Response><Callback url="{url}" timeout="200"><Error><Say>Sorry</Say><Hangup tag="error"/></Error>'
        "</Callback></Response>",
    )

    assert commands(call) == ["Callback:fail", "Say:ok", "Hangup:ok"]
    assert call.end_reason == "error"
    request = CallHttpRequest.objects.get(call=call)
    assert request.outcome == "timeout" and len(request.attempts) == 1  # a timeout is never retried


def test_a_callback_returning_invalid_xml_is_an_error_branch(alice, server):
    url = server.route("/bad", "<Response><Bogus/></Response>")
    call = run(
        alice.account, f'<Response><Callback url="{url}"><Error><Hangup tag="bad xml"/></Error></Callback></Response>'
    )

    assert call.end_reason == "bad xml"
    assert "not valid" in flow(call)[0]["reason"]
    assert CallHttpRequest.objects.get(call=call).outcome == "invalid_xml"


def test_a_failed_callback_without_error_block_uses_the_apps_fallback_url(alice, server):
    down = server.route("/down", "oops", status=500)
    fallback = server.route("/fallback", '<Response><Hangup tag="fallback"/></Response>')
    number, _ = number_for_app(alice.account, f'<Response><Callback url="{down}"/></Response>', fallback_url=fallback)

    call = drive(place(number))

    assert call.end_reason == "fallback"
    assert list(CallHttpRequest.objects.filter(call=call).values_list("purpose", "outcome")) == [
        ("callback", "http_error"),
        ("fallback_url", "ok"),
    ]


def test_a_failed_callback_with_nothing_to_fall_back_on_hangs_up_with_the_reason(alice, server):
    down = server.route("/down", "oops", status=503)
    call = run(alice.account, f'<Response><Answer/><Callback url="{down}"/><Say>not reached</Say></Response>')

    assert call.status == "completed"
    assert call.end_reason == "Callback: HTTP 503"
    assert commands(call) == ["Answer:ok", "Callback:fail"]


def test_a_refused_connection_is_retried_once_within_the_timeout(alice):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/x"
    call = run(
        alice.account, f'<Response><Callback url="{url}"><Error><Hangup tag="down"/></Error></Callback></Response>'
    )

    assert call.end_reason == "down"
    request = CallHttpRequest.objects.get(call=call)
    assert request.outcome == "connect" and len(request.attempts) == 2


def test_curl_keeps_the_response_for_later_commands(alice, server):
    url = server.route("/crm", '{"customer": {"name": "Ada", "vip": true}}', content_type="application/json")
    call = run(
        alice.account,
        f'<Response><Curl url="{url}?caller={{{{from}}}}" var="crm"><Header name="X-Key" value="k-{{{{call}}}}"/>'
        '</Curl><Call field="crm.json.customer.vip" value="true"><Say>Hi {{crm.json.customer.name}}</Say>'
        '<Hangup tag="{{crm.status}}"/></Call></Response>'.replace('tag="{{crm.status}}"', 'tag="vip"'),
    )

    assert commands(call) == ["Curl:ok", "Call:ok", "Say:ok", "Hangup:ok"]
    [hit] = server.to("/crm")
    assert hit.method == "GET" and hit.query["caller"] == "+12125550100"
    assert hit.headers["x-key"] == f"k-{call.public_id}"
    assert call.variables["curl"]["crm"]["status"] == 200


def test_a_failing_curl_runs_its_error_block_and_the_flow_continues(alice, server):
    url = server.route("/crm", "no", status=404)
    call = run(
        alice.account,
        f'<Response><Curl url="{url}" method="POST" body="x=1"><Error><Meta name="e" value="1"/></Error></Curl>'
        '<Hangup tag="went on"/></Response>',
    )

    assert commands(call) == ["Curl:fail", "Meta:ok", "Hangup:ok"]
    assert call.end_reason == "went on"
    assert server.to("/crm")[0].form == {"_body": "x=1"}


def test_an_app_in_url_mode_uses_its_fallback_when_the_primary_url_is_down(alice, server):
    primary = server.route("/primary", "down", status=502)
    fallback = server.route("/fallback", '<Response><Say>Backup flow</Say><Hangup tag="backup"/></Response>')
    number, app = number_for_app(alice.account, mode="url", call_flow_url=primary, fallback_url=fallback)

    call = drive(place(number))

    assert call.end_reason == "backup"
    assert [h.path for h in server.hits] == ["/primary", "/fallback"]
    first = server.hits[0]
    assert first.params["from"] == "+12125550100" and first.params["to"] == call.to_number
    assert first.params["state"] == "ringing" and first.params["sca"] == str(app.public_id)


def test_an_app_in_url_mode_whose_urls_both_fail_is_refused_with_the_reasons(alice, server):
    primary = server.route("/primary", "<Response><Nope/></Response>")
    number, _ = number_for_app(alice.account, mode="url", call_flow_url=primary)

    call = drive(place(number))

    assert call.status == "failed" and call.sip_code == 500
    assert call.end_reason.startswith("Could not get the flow: call_flow_url: the XML returned is not valid")


def test_a_flow_that_keeps_fetching_itself_is_stopped(alice, server, settings):
    settings.ENGINE_MAX_REQUESTS = 5
    url = server.url("/loop")
    server.route("/loop", f'<Response><Callback url="{url}"/></Response>')
    call = run(alice.account, f'<Response><Answer/><Callback url="{url}"/></Response>')

    assert call.status == "completed"
    assert "already made 5 requests" in call.end_reason
    assert len(server.to("/loop")) == 5


# --- Dial ---------------------------------------------------------------------------------------------------


def test_dial_bridges_the_answering_callee_and_continues_when_they_hang_up(alice):
    SimulatorRule.objects.create(match="+13105550001", answer_after_ms=500, hangup_after_ms=5000)
    call = run(alice.account, "<Response><Dial><To>+13105550001</To></Dial><Hangup tag='after dial'/></Response>")

    [b_leg] = legs(call)
    assert b_leg.direction == "outbound-dial" and b_leg.status == "completed" and b_leg.answered_at
    assert b_leg.from_number == call.from_number and b_leg.source == "simulated"
    assert event_types(b_leg) == ["call.initiated", "call.ringing", "call.answered", "call.hangup", "call.completed"]
    assert "call.bridged" in event_types(call)
    assert call.end_reason == "after dial"
    dial = flow(call)[0]
    assert dial["success"] and dial["reason"].startswith("Dial completed after")


def test_dial_to_a_busy_destination_calls_the_action_which_returns_a_fallback_dial(alice, server):
    SimulatorRule.objects.create(match="+13105550002", action="busy")
    SimulatorRule.objects.create(match="+13105550003", hangup_after_ms=1000)
    action = server.route("/dial-action", "<Response><Dial><To>+13105550003</To></Dial></Response>")
    call = run(
        alice.account,
        f'<Response><Dial action="{action}"><To>+13105550002</To></Dial><Hangup tag="not reached"/></Response>',
    )

    busy, fallback = legs(call)
    assert busy.status == "busy" and busy.sip_code == 486 and busy.q850_cause == 17
    assert fallback.status == "completed"
    # Restcomm: the caller's leg completes normally although the callee was busy.
    assert call.status == "completed"
    [hit] = server.to("/dial-action")
    assert hit.params["DialCallStatus"] == "busy" and hit.params["DialCallSid"] == str(busy.public_id)
    assert hit.params["DialCallDuration"] == "0" and hit.params["CallStatus"] == "in-progress"
    assert commands(call) == ["Dial:ok", "Dial:ok"]


def test_dial_without_answer_gives_up_after_its_timeout(alice):
    SimulatorRule.objects.create(match="+13105550004", action="no-answer", answer_after_ms=0)
    call = run(alice.account, '<Response><Dial timeout="5000"><To>+13105550004</To></Dial></Response>')

    [b_leg] = legs(call)
    assert b_leg.status == "no-answer" and b_leg.q850_cause == 19
    assert flow(call)[0]["reason"] == "Dial no-answer"


def test_dial_rings_every_target_and_the_first_to_answer_wins(alice):
    SimulatorRule.objects.create(match="+13105550005", answer_after_ms=20000)
    SimulatorRule.objects.create(match="+13105550006", answer_after_ms=500, hangup_after_ms=1000)
    call = run(
        alice.account, '<Response><Dial timeout="60000"><To>+13105550005</To><To>+13105550006</To></Dial></Response>'
    )

    slow, fast = legs(call)
    assert fast.status == "completed" and fast.answered_at
    assert slow.status == "canceled" and slow.q850_cause == 26 and slow.answered_at is None


def test_a_failing_dial_without_action_runs_its_error_block(alice):
    SimulatorRule.objects.create(match="+13105550007", action="fail", fail_cause=38, fail_sip_code=503)
    call = run(
        alice.account,
        "<Response><Dial><To>+13105550007</To><Error><Hangup tag='unreachable'/></Error></Dial></Response>",
    )

    [b_leg] = legs(call)
    assert b_leg.status == "failed" and b_leg.q850_cause == 38
    assert call.end_reason == "unreachable"
    assert commands(call) == ["Dial:fail", "Hangup:ok"]


def test_when_the_caller_hangs_up_the_dialed_leg_ends_too(alice):
    SimulatorRule.objects.create(match="+13105550008", answer_after_ms=100)
    call = run(
        alice.account,
        "<Response><Dial><To>+13105550008</To></Dial><Say>never</Say></Response>",
        hangup_after_ms=1_000_000,
    )

    [b_leg] = legs(call)
    assert call.status == "completed" and call.end_reason == "The caller hung up."
    assert b_leg.status == "completed" and b_leg.end_reason == "The caller hung up."
    assert commands(call) == []  # the Dial never finished


def test_a_caller_who_hangs_up_while_it_rings_cancels_the_call(alice, settings):
    settings.SIMULATED_SWITCH = {**settings.SIMULATED_SWITCH, "speed": 100}
    SimulatorRule.objects.create(match="+13105550009", action="no-answer", answer_after_ms=0)
    number, _ = number_for_app(
        alice.account, '<Response><Dial timeout="600000"><To>+13105550009</To></Dial></Response>', auto_answer=False
    )
    call = drive(place(number, hangup_after_ms=100_000))

    [b_leg] = legs(call)
    assert call.status == "canceled" and b_leg.status == "canceled"


def test_dial_to_a_variable_target_that_is_not_a_number_fails_the_leg(alice):
    call = run(alice.account, '<Response><Meta name="t" value="nope"/><Dial><To>{{t}}</To></Dial></Response>')

    [b_leg] = legs(call)
    assert b_leg.status == "failed" and b_leg.sip_code == 484
    assert flow(call)[1]["reason"] == "Dial failed"


# --- Record -------------------------------------------------------------------------------------------------


def test_record_records_while_its_children_run_and_sends_the_recording_to_its_action(alice, server):
    action = server.route("/recorded", '<Response><Play record="msg"/><Hangup tag="done"/></Response>')
    call = run(
        alice.account,
        f'<Response><Record tag="msg" asr="true" action="{action}"><Say>Leave a message</Say>'
        '<Pause length="3000"/></Record><Hangup tag="not reached"/></Response>',
    )

    assert commands(call) == ["Record:ok", "Say:ok", "Pause:ok", "Record:ok", "Play:ok", "Hangup:ok"]
    [hit] = server.to("/recorded")
    assert hit.params["RecordingUrl"].endswith(".wav") and int(hit.params["RecordingDuration"]) >= 3
    recording = Event.objects.get(type="recording.available").payload
    assert recording["call_id"] == str(call.public_id) and recording["tag"] == "msg"
    assert recording["url"] == hit.params["RecordingUrl"]
    assert Event.objects.filter(type="recording.transcript_available").count() == 1
    assert call.end_reason == "done"


def test_record_without_children_stops_after_its_timeout(alice):
    call = run(alice.account, '<Response><Record timeout="4000"/><Hangup tag="after"/></Response>')

    assert commands(call) == ["Record:ok", "Hangup:ok"]
    assert flow(call)[0]["reason"] == "Recorded 4 s"


# --- Limits and bookkeeping -----------------------------------------------------------------------------------


def test_a_call_is_hung_up_at_the_apps_maximum_length(alice, settings):
    settings.SIMULATED_SWITCH = {**settings.SIMULATED_SWITCH, "speed": 100}
    number, _ = number_for_app(alice.account, '<Response><Pause length="600000"/></Response>', max_call_length_s=30)
    call = drive(place(number))

    assert call.status == "completed" and call.q850_cause == 102
    assert call.end_reason == "The call reached its maximum length (30 s)."
    assert timedelta(milliseconds=300) <= call.ended_at - call.created_at < timedelta(seconds=3)


def test_a_runaway_flow_is_stopped_after_the_maximum_number_of_commands(alice, settings):
    settings.ENGINE_MAX_STEPS = 20
    call = run(alice.account, "<Response>" + "<Meta name='x' value='1'/>" * 30 + "</Response>")

    assert call.status == "completed" and "more than 20 commands" in call.end_reason
    assert len(flow(call)) == 20


def test_the_call_keeps_its_document_and_position_while_it_waits(alice):
    number, _ = number_for_app(alice.account, '<Response><Say>hi</Say><Pause length="600000"/></Response>')
    call = place(number)
    from telephony.engine import runner

    for _ in range(20):
        runner.process_call(call.pk)
        call.refresh_from_db()
        if call.flow_state == "waiting" and call.position == "Response/Pause[0]":
            break
    assert call.flow_state == "waiting" and call.position == "Response/Pause[0]"
    assert call.flow_wait["kind"] == "pause" and call.flow_wait["token"]
    assert call.document["root"]["tag"] == "Response" and call.engine_steps == 2
    assert call.engine_claimed_until is None


def test_a_legs_events_are_numbered_in_order_and_reach_subscribed_endpoints(alice):
    from telephony.models import Delivery
    from telephony.tests.isolation_events import make_endpoint

    calls_only = make_endpoint(alice.account, event_types=["call.answered", "call.completed"])
    everything = make_endpoint(alice.account, event_types=["*"])
    call = run(alice.account, "<Response><Say>One</Say><Say>Two</Say></Response>")

    events = list(Event.objects.filter(object_id=str(call.public_id)).order_by("sequence"))
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events] == [
        "call.initiated", "call.ringing", "call.answered", "call.flow", "call.flow", "call.hangup", "call.completed"
    ]  # fmt: skip
    assert Delivery.objects.filter(endpoint=calls_only).count() == 2
    assert Delivery.objects.filter(endpoint=everything).count() == len(events)


# --- Durability bookkeeping (the worker-process versions are in test_engine_worker.py) ---------------------


def test_the_sweeper_queues_calls_with_overdue_wakeups_and_calls_whose_worker_died(alice):
    from telephony.engine import runner
    from telephony.models import CallWakeup

    number, _ = number_for_app(alice.account, '<Response><Pause length="600000"/></Response>')
    waiting = place(number)
    runner.process_call(waiting.pk)
    stuck = place(number)
    past = timezone.now() - timedelta(seconds=5)
    CallWakeup.objects.filter(root=waiting, kind="timer").update(due_at=past)
    Call.objects.filter(pk=stuck.pk).update(engine_claimed_until=past)  # its worker died mid-step

    assert runner.sweep() == 2
    assert runner.sweep() == 0  # queued a moment ago: not again (a backlog must not be buried under duplicates)
    assert drive(stuck).status == "completed"


def test_a_step_whose_claim_was_taken_over_writes_nothing(alice):
    from telephony.engine import runner

    number, _ = number_for_app(alice.account, "<Response><Say>Hi</Say></Response>")
    call = place(number)
    lease = runner.claim(call.pk)
    Call.objects.filter(pk=call.pk).update(engine_claimed_until=lease + timedelta(seconds=1))  # another worker's

    with pytest.raises(runner.LostClaim):
        runner.Step(call.pk, lease).run()

    assert Call.objects.get(pk=call.pk).status == "ringing"
    assert event_types(call) == ["call.initiated", "call.ringing"]


def test_a_claim_loads_the_call_as_the_orm_does_with_the_wakeups_that_are_due(alice):
    from telephony.engine import claims
    from telephony.models import CallWakeup

    number, app = number_for_app(alice.account, "<Response><Say>Hi</Say></Response>")
    call = place(number)
    due = CallWakeup.objects.create(
        root=call, leg=call, kind="switch", event="dtmf", data={"op": "x", "digits": "1"},
        due_at=timezone.now() - timedelta(seconds=1),
    )  # fmt: skip

    claimed = claims.claim_and_load(call.pk)

    expected = Call.objects.select_related(*claims.LOADED_RELATIONS).get(pk=call.pk)
    assert claimed is not None and claimed.root.engine_claimed_until == claimed.lease
    for field in Call._meta.concrete_fields:
        assert getattr(claimed.root, field.attname) == getattr(expected, field.attname), field.name
    assert (claimed.root.account.name, claimed.root.app.xml) == (alice.account.name, app.xml)
    assert claimed.root.phone_number.number == number.number and claimed.root.sip_user is None
    # The length limit lies hours ahead: only the key press is due.
    assert [(w.pk, w.leg_id, w.event, w.data, w.due_at) for w in claimed.wakeups] == [
        (due.pk, call.pk, "dtmf", {"op": "x", "digits": "1"}, due.due_at)
    ]
    assert claims.claim_and_load(call.pk) is None  # claimed: nobody else gets it


class ExplodingSwitch:
    """A broken adapter (raises on say), to see a crashing step end the call instead of leaving it stuck."""

    def __new__(cls):
        from telephony.switch.simulated import SimulatedSwitch

        class Exploding(SimulatedSwitch):
            def say(self, leg, **kwargs):
                raise RuntimeError("the switch is broken")

        return Exploding()


def test_a_step_that_crashes_ends_the_call_with_the_reason(alice, settings):
    settings.SWITCH_ADAPTER = f"{__name__}.ExplodingSwitch"
    call = run(alice.account, "<Response><Say>Hi</Say></Response>")

    assert call.status == "failed" and call.sip_code == 500
    assert call.end_reason == "The call engine failed: RuntimeError" and call.flow_state == "done"

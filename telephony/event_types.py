"""The event catalogue: every event type the product emits, with a description and the JSON schema of its `data`.

`event_emit` refuses a type that is not here, so the catalogue cannot fall behind the code. An entry is a
concrete name (`call.ringing`) or a family (`sip_user.*`) whose members share one schema; provisioning
changes are families because every audited configuration change also becomes an event, and the verbs
grow with the product. Published as `GET /api/v1/event-types` and in the OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

NAME_PATTERN = r"^[a-z][a-z0-9_]*\.([a-z][a-z0-9_]*|\*)$"


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    schema: dict
    example: dict = field(default_factory=dict)

    @property
    def is_family(self) -> bool:
        return self.name.endswith(".*")

    @property
    def prefix(self) -> str:
        return self.name.split(".", 1)[0]


def _object(properties: dict, required: list[str] | None = None, description: str = "") -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": True}
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


UUID = {"type": "string", "format": "uuid"}
TIME = {"type": "string", "format": "date-time"}
E164 = {"type": "string", "description": "E.164 number, e.g. +12015550123, or a SIP URI."}
NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}

# --- Calls -----------------------------------------------------------------------------------------

CALL = _object(
    {
        "call_id": UUID,
        "parent_call_id": {**UUID, "nullable": True, "description": "The A-leg, on a B-leg."},
        "direction": {"type": "string", "enum": ["inbound", "outbound-api", "outbound-dial"]},
        "from": E164,
        "to": E164,
        "state": {
            "type": "string",
            "enum": ["initiated", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"],
        },
        "duration": {"type": "integer", "description": "Seconds, once the call has ended.", "nullable": True},
        "number_id": {**UUID, "nullable": True},
        "call_control_app_id": {**UUID, "nullable": True},
        "sip_user_id": {**UUID, "nullable": True},
        "created_at": TIME,
        "answered_at": NULLABLE_TIME,
        "ended_at": NULLABLE_TIME,
        "hangup_cause": {"type": "integer", "nullable": True, "description": "Q.850 cause, e.g. 16, 17, 19."},
        "hangup_cause_text": {"type": "string", "nullable": True, "description": "e.g. NORMAL_CLEARING."},
    },
    ["call_id", "direction", "from", "to", "state"],
    "A call leg as it stands when the event is raised.",
)
CALL_EXAMPLE = {
    "call_id": "6c1f0a64-9a0e-4a3c-9d7a-2f8f5d0d1b11",
    "parent_call_id": None,
    "direction": "inbound",
    "from": "+12015550123",
    "to": "+12015550199",
    "state": "ringing",
    "duration": None,
    "created_at": "2025-01-01T12:00:00Z",
}
CALL_BRIDGED = _object(
    {**CALL["properties"], "bridged_call_id": UUID}, ["call_id", "bridged_call_id"], "Two legs joined together."
)
CALL_QUEUED = _object(
    {**CALL["properties"], "dispatch_at": {"type": "string", "format": "date-time"}},
    ["call_id", "dispatch_at"],
    "An outbound call, queued for dispatch at the account's pace.",
)
CALL_CONTROL = _object(
    {
        "call_id": UUID,
        "action": {"type": "string", "enum": ["hangup", "redirect", "play", "send_digits", "bridge"]},
        "actor": {"type": "string", "description": "Who asked: the API key or the user."},
        "flow": {"type": "string", "enum": ["xml", "url"], "description": "redirect: what replaces the flow."},
        "url": {"type": "string", "description": "redirect to a URL, or play: the audio file."},
        "loop": {"type": "integer"},
        "digits": {"type": "string"},
        "bridged_call_id": UUID,
    },
    ["call_id", "action"],
    "A control action asked of a live call.",
)
CALL_FLOW = _object(
    {
        "call_id": UUID,
        "command": {"type": "string", "description": "The XML command, e.g. Answer, Dial, Gather."},
        "path": {"type": "string", "description": "Where in the document, e.g. Response/Gather[0]/Say[1]."},
        "tag": {"type": "string", "nullable": True},
        "success": {"type": "boolean"},
        "reason": {"type": "string"},
        "error": {"type": "string", "nullable": True},
    },
    ["call_id", "command", "success"],
    "One executed call-flow command.",
)

# --- Messages --------------------------------------------------------------------------------------

MESSAGE = _object(
    {
        "message_id": UUID,
        "direction": {"type": "string", "enum": ["inbound", "outbound"]},
        "from": E164,
        "to": E164,
        "text": {"type": "string"},
        "state": {
            "type": "string",
            "enum": ["queued", "sending", "sent", "delivered", "failed", "undelivered", "received"],
        },
        "encoding": {"type": "string", "enum": ["GSM-7", "UCS-2"]},
        "segments": {"type": "integer"},
        "thread_id": {**UUID, "description": "The conversation: the same for both directions between two numbers."},
        "messaging_profile_id": {**UUID, "nullable": True},
        "error_code": {"type": "string", "nullable": True},
        "error_text": {"type": "string", "nullable": True},
        "created_at": TIME,
        "sent_at": NULLABLE_TIME,
        "finished_at": NULLABLE_TIME,
    },
    ["message_id", "direction", "from", "to", "state"],
    "An SMS as it stands when the event is raised.",
)
MESSAGE_EXAMPLE = {
    "message_id": "0b7e3b9e-2a55-4c39-a3a4-5a2f1f4f6d10",
    "direction": "outbound",
    "from": "+12015550123",
    "to": "+12015550199",
    "text": "Your code is 1234",
    "state": "sent",
    "encoding": "GSM-7",
    "segments": 1,
    "thread_id": "9d5c3a1e-7b2f-5e4d-8c6a-1f0e2d3c4b5a",
}

OPT_OUT = _object(
    {
        "opt_out_id": UUID,
        "number": {**E164, "description": "The destination that opted out: no message of the account may go to it."},
        "keyword": {"type": "string", "description": "What it texted, e.g. STOP, UNSUBSCRIBE (or START to lift)."},
        "via_number": {
            **E164,
            "description": "The account's number the keyword was texted to (START's, on opt_out.deleted by the "
            "destination).",
        },
        "created_at": TIME,
        "lifted_by": {
            "type": "string",
            "enum": ["consumer", "staff"],
            "description": "On opt_out.deleted: the destination texted START, or staff removed it.",
        },
        "removed_by": {"type": "string", "description": "On opt_out.deleted by staff: who removed it."},
    },
    ["opt_out_id", "number", "keyword"],
    "An opt-out (a destination that texted STOP to one of the account's numbers).",
)
OPT_OUT_EXAMPLE = {
    "opt_out_id": "2b9d6e4f-8a1c-4f3e-b7d2-6c5a4b3e2d1f",
    "number": "+12125550100",
    "keyword": "STOP",
    "via_number": "+12015550123",
    "created_at": "2025-01-01T12:00:00Z",
}

# --- Recordings ------------------------------------------------------------------------------------

RECORDING = _object(
    {
        "recording_id": UUID,
        "call_id": UUID,
        "tag": {"type": "string", "nullable": True},
        "url": {"type": "string", "format": "uri"},
        "duration": {"type": "integer", "description": "Seconds."},
        "format": {"type": "string", "enum": ["wav", "mp3"]},
    },
    ["recording_id", "call_id", "url"],
)
TRANSCRIPT = _object(
    {"recording_id": UUID, "call_id": UUID, "text": {"type": "string"}, "language": {"type": "string"}},
    ["recording_id", "text"],
)

# --- Bulk calls ------------------------------------------------------------------------------------

BULK_CALL = _object(
    {
        "bulk_call_id": UUID,
        "status": {"type": "string", "enum": ["running", "paused", "completed", "canceled"]},
        "from": E164,
        "total": {"type": "integer", "description": "Destinations accepted (do-not-call ones included)."},
        "invalid": {"type": "integer", "description": "Destinations refused when the bulk call was accepted."},
        "counts": _object(
            {
                "pending": {"type": "integer", "description": "Not called yet, or waiting for a retry."},
                "calling": {"type": "integer"},
                "completed": {"type": "integer"},
                "busy": {"type": "integer"},
                "no-answer": {"type": "integer"},
                "failed": {"type": "integer"},
                "canceled": {"type": "integer"},
                "do-not-call": {"type": "integer"},
            },
            description="Destinations by where they stand: final outcomes, in flight, still to call.",
        ),
        "done": {"type": "integer", "description": "Destinations with a final outcome."},
    },
    ["bulk_call_id", "status", "counts"],
    "A bulk call (campaign) and its progress.",
)
BULK_CALL_EXAMPLE = {
    "bulk_call_id": "5a0c9e1d-3b7f-4c2a-9e8d-1f2a3b4c5d6e",
    "status": "running",
    "from": "+12015550123",
    "total": 3,
    "invalid": 1,
    "counts": {"pending": 1, "calling": 1, "completed": 1, "busy": 0, "no-answer": 0, "failed": 0, "canceled": 0,
               "do-not-call": 0},
    "done": 1,
}  # fmt: skip

# --- Provisioning (every audited configuration change) --------------------------------------------

PROVISIONING = _object(
    {
        "object": _object(
            {
                "type": {"type": "string", "description": "e.g. number, sip_user, api_key."},
                "id": {"type": "string"},
                "repr": {"type": "string", "description": "How the object reads to people, e.g. +12015550123."},
            },
            ["type", "id"],
        ),
        "before": {"type": "object", "nullable": True, "description": "The changed fields before the change."},
        "after": {"type": "object", "nullable": True, "description": "The changed fields after the change."},
        "actor": _object(
            {
                "type": {"type": "string", "enum": ["user", "api_key", "system"]},
                "id": {"type": "string", "nullable": True},
                "label": {"type": "string"},
            },
            ["type", "label"],
            "Who made the change.",
        ),
    },
    ["object", "actor"],
    "A configuration change, with the same before/after as the account's audit log.",
)


def _provisioning_example(object_type: str, repr_: str, after: dict) -> dict:
    return {
        "object": {"type": object_type, "id": "3f1e2d4c-5b6a-4789-8abc-def012345678", "repr": repr_},
        "before": None,
        "after": after,
        "actor": {"type": "api_key", "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "label": "API key ci (pk_live_…)"},
    }


def _provisioning(name: str, description: str, repr_: str = "", after: dict | None = None) -> EventType:
    object_type = name.split(".", 1)[0]
    return EventType(
        name, description, PROVISIONING, _provisioning_example(object_type, repr_ or object_type, after or {})
    )


CATALOGUE: tuple[EventType, ...] = (
    # Calls: Restcomm's call-progress vocabulary, one event per leg state, plus Opentact's call-flow events.
    EventType("call.initiated", "A call leg was created (inbound arrived, or outbound started).", CALL, CALL_EXAMPLE),
    EventType("call.ringing", "The far end is ringing.", CALL, {**CALL_EXAMPLE, "state": "ringing"}),
    EventType("call.answered", "The leg was answered (Restcomm: in-progress).", CALL,
              {**CALL_EXAMPLE, "state": "in-progress", "answered_at": "2025-01-01T12:00:04Z"}),
    EventType("call.bridged", "Two legs were joined.", CALL_BRIDGED,
              {**CALL_EXAMPLE, "state": "in-progress", "bridged_call_id": "7d2e1b75-0b1f-4b4d-8e8b-3a9f6e1e2c22"}),
    EventType("call.hangup", "A party hung up; `hangup_cause` says why.", CALL,
              {**CALL_EXAMPLE, "state": "completed", "hangup_cause": 16, "hangup_cause_text": "NORMAL_CLEARING"}),
    EventType("call.completed", "The leg ended and its final state and duration are known (completed, busy, "
              "failed, no-answer or canceled).", CALL, {**CALL_EXAMPLE, "state": "completed", "duration": 42}),
    EventType("call.flow", "One call-flow XML command ran, successfully or not.", CALL_FLOW, {
        "call_id": CALL_EXAMPLE["call_id"], "command": "Answer", "path": "Response/Answer[0]", "success": True,
        "reason": "Call answered"}),
    EventType("call.queued", "An outbound call was accepted and waits for its dispatch slot (`dispatch_at`).",
              CALL_QUEUED, {**CALL_EXAMPLE, "direction": "outbound-api", "state": "queued",
                            "dispatch_at": "2025-01-01T12:00:01Z"}),
    EventType("call.control", "A live call was acted on through the API: hangup, redirect, play, send_digits or "
              "bridge (the engine applies it next).", CALL_CONTROL, {
        "call_id": CALL_EXAMPLE["call_id"], "action": "hangup", "actor": "API key ci (pk_live_…)"}),
    # Messages.
    EventType("message.queued", "An outbound message was accepted and waits for its sender's throughput slot.",
              MESSAGE, {**MESSAGE_EXAMPLE, "state": "queued"}),
    EventType("message.sending", "An outbound message is being handed to the carrier.", MESSAGE,
              {**MESSAGE_EXAMPLE, "state": "sending"}),
    EventType("message.sent", "An outbound message was handed to the carrier.", MESSAGE, MESSAGE_EXAMPLE),
    EventType("message.delivered", "The carrier confirmed delivery to the handset.", MESSAGE,
              {**MESSAGE_EXAMPLE, "state": "delivered"}),
    EventType("message.failed", "An outbound message could not be sent (refused by the carrier, or failed there).",
              MESSAGE, {**MESSAGE_EXAMPLE, "state": "failed", "error_code": "30006",
                        "error_text": "Landline or unreachable carrier"}),
    EventType("message.undelivered", "The carrier accepted the message but could not deliver it to the handset.",
              MESSAGE, {**MESSAGE_EXAMPLE, "state": "undelivered", "error_code": "30003",
                        "error_text": "Unreachable destination handset"}),
    EventType("message.received", "An inbound message arrived on one of the account's numbers.", MESSAGE,
              {**MESSAGE_EXAMPLE, "direction": "inbound", "state": "received"}),
    EventType("opt_out.created", "A destination texted STOP (or a synonym) to one of the account's numbers: "
              "messages to it are refused with `opted_out` until it texts START, and those still queued to it "
              "fail with `opted_out`.", OPT_OUT, OPT_OUT_EXAMPLE),
    EventType("opt_out.deleted", "An opt-out was lifted: the destination texted START (`lifted_by: consumer`) or "
              "staff removed it (`lifted_by: staff`).", OPT_OUT,
              {**OPT_OUT_EXAMPLE, "keyword": "START", "lifted_by": "consumer"}),
    # Recordings.
    EventType("recording.available", "A call recording finished and can be downloaded.", RECORDING, {
        "recording_id": "1d3c5b7a-9e8f-4a6b-8c4d-2e0f1a3b5c7d", "call_id": CALL_EXAMPLE["call_id"],
        "url": "https://media.example.net/recordings/1d3c5b7a.mp3", "duration": 30, "format": "mp3"}),
    EventType("recording.transcript_available", "The transcript of a recording is ready.", TRANSCRIPT, {
        "recording_id": "1d3c5b7a-9e8f-4a6b-8c4d-2e0f1a3b5c7d", "text": "Hello", "language": "en-US"}),
    # Numbers and orders.
    _provisioning("number.ordered", "A number was bought and now belongs to the account.", "+12015550123",
                  {"number": "+12015550123", "voice_enabled": True, "sms_enabled": False}),
    _provisioning("number.released", "A number left the account.", "+12015550123", {"status": "released"}),
    _provisioning("number.updated", "A number's settings changed (voice target, callbacks, autorenew...).",
                  "+12015550123"),
    _provisioning("number.renewed", "A number's lease was renewed for another period.", "+12015550123"),
    _provisioning("number.*", "Any other change to a number."),
    _provisioning("outbound_policy.updated", "Staff changed the account's outbound calling policy (pace, "
                  "concurrent calls, queue wait, allowed countries, premium rate).", "Outbound policy of Acme",
                  {"calls_per_second": 5.0, "allowed_countries": ["US", "CA"]}),
    _provisioning("number_order.created", "An order for numbers was placed; `after.items` has each outcome."),
    _provisioning("number_order.*", "Any other change to a number order."),
    # The other provisioning resources: families, one generic schema each.
    _provisioning("messaging_profile.*", "A messaging profile was created, changed or deleted.", "Notifications"),
    _provisioning("brand.*", "A 10DLC brand was submitted, approved (brand.approved), rejected (brand.rejected) or "
                  "deleted (brand.deleted).", "Acme"),
    _provisioning("campaign.*", "A 10DLC campaign was submitted, changed, approved (campaign.approved), rejected "
                  "(campaign.rejected) or deleted (campaign.deleted).", "Order updates"),
    _provisioning("tn_profile.*", "A TN profile was created, changed (including its caller lists) or deleted."),
    _provisioning("sip_connection.*", "A SIP connection (trunk) was created, changed, had its numbers or password "
                  "changed, or was deleted."),
    _provisioning("sip_domain.*", "A SIP domain was created, changed or deleted."),
    _provisioning("sip_user.*", "A SIP user was created, changed, had its password changed, or was deleted."),
    _provisioning("sip_invite.*", "A SIP user invite was created, used or revoked."),
    _provisioning("call_control_app.*", "A call-control app was created, changed or deleted."),
    _provisioning("member.*", "A person was added to the account, had their role changed, or was removed."),
    _provisioning("api_key.*", "An API key was created or revoked."),
    _provisioning("account.*", "The account was created, suspended, reactivated or changed."),
    # Bulk calls.
    EventType("bulk_call.created", "A bulk call was accepted and starts calling in its window.", BULK_CALL,
              BULK_CALL_EXAMPLE),
    EventType("bulk_call.progress", "A bulk call's counts changed (at most about once a second).", BULK_CALL,
              BULK_CALL_EXAMPLE),
    EventType("bulk_call.paused", "A bulk call was paused: calls in flight finish, no new ones start.", BULK_CALL,
              {**BULK_CALL_EXAMPLE, "status": "paused"}),
    EventType("bulk_call.resumed", "A paused bulk call was resumed.", BULK_CALL, BULK_CALL_EXAMPLE),
    EventType("bulk_call.canceled", "A bulk call was canceled: destinations not called yet never will be.",
              BULK_CALL, {**BULK_CALL_EXAMPLE, "status": "canceled"}),
    EventType("bulk_call.completed", "Every destination of a bulk call has a final outcome.", BULK_CALL,
              {**BULK_CALL_EXAMPLE, "status": "completed"}),
    _provisioning("extension_hook.*", "A SIP user's event hook (VoipNow CallAPI Events) was added, edited or "
                  "removed.", "dial-in → POST https://example.com/hook"),
    _provisioning("web_callback_settings.*", "The account's web callback settings changed."),
    # Webhooks themselves.
    _provisioning("endpoint.disabled", "A webhook endpoint was disabled: it answered 410 Gone, or failed every "
                  "attempt for days. Owners are emailed too.", "https://example.com/hooks",
                  {"enabled": False, "reason": "failing"}),
    _provisioning("endpoint.*", "A webhook endpoint was created, changed, had its secret rotated, or was deleted.",
                  "https://example.com/hooks"),
    _provisioning("delivery.*", "A person re-sent a delivery (POST /api/v1/deliveries/{id}/replay)."),
    _provisioning("callback_secret.*", "The account's callback signing secret was rotated (POST "
                  "/api/v1/callback-signing-secret/rotate).", "callback signing secret"),
    _provisioning("event_subscription.*", "A websocket event subscription was created, changed or deleted."),
    EventType("webhook.test", "A sample sent by POST /api/v1/webhooks/{id}/test; never raised by a real change.",
              _object({"message": {"type": "string"}}), {"message": "This is a test event."}),
)  # fmt: skip

_BY_NAME = {entry.name: entry for entry in CATALOGUE}


def lookup(name: str) -> EventType | None:
    """The catalogue entry for a concrete event type: its own, else its family's."""
    entry = _BY_NAME.get(name)
    if entry is not None:
        return entry
    if "." not in name or name.endswith(".*"):
        return None
    return _BY_NAME.get(f"{name.split('.', 1)[0]}.*")


def require(name: str) -> EventType:
    entry = lookup(name)
    if entry is None:
        # A programming error, not bad input: every type the code emits must be in the catalogue.
        raise ValueError(f"Event type {name!r} is not in the catalogue (telephony/event_types.py).")
    return entry


@cache
def prefixes() -> frozenset[str]:
    return frozenset(entry.prefix for entry in CATALOGUE)


def pattern_is_known(pattern: str) -> bool:
    """Whether an endpoint's filter (`*`, `call.*`, `number.ordered`) can ever match a catalogued type."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return pattern[:-2] in prefixes()
    return lookup(pattern) is not None


def matches(pattern: str, name: str) -> bool:
    if pattern == "*" or pattern == name:
        return True
    return pattern.endswith(".*") and name.startswith(pattern[:-1])


def matches_any(patterns, name: str) -> bool:
    return any(matches(pattern, name) for pattern in patterns)


def data_schema_for_openapi() -> dict:
    """The `data` of an event, documented as one of the catalogue's schemas (each titled with its type)."""
    variants = []
    for entry in CATALOGUE:
        variants.append({**entry.schema, "title": entry.name, "description": entry.description})
    return {
        "oneOf": variants,
        "description": "Depends on `type`; see GET /api/v1/event-types for each type's schema and an example.",
    }

"""The call-flow language as data: every tag, its aliases, its attributes (type, default, aliases) and children.

This table is the specification. The validator checks documents against it, the model types attribute values
with it, and the JSON form of a document is read back through it. Adding an attribute is a row here; rules
that tie several attributes or elements together (Gather's ways forward, unreachable commands, variables)
live in validator.py.

Units: every duration is an integer number of **milliseconds** (the Opentact dialect). Restcomm and Twilio
write Dial and Gather `timeout` in seconds; here `timeout="30"` is 30 ms, and the validator warns about such
suspiciously short values.

Variables: `{{name}}` in the attributes marked templated (free text, `<To>` targets, `<Call value>`, and URLs
after their host) is replaced when the command runs. Everything else is checked now and must be literal.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import time
from functools import cached_property
from typing import Any

# --- Value types ---------------------------------------------------------------------------------------


class BadValue(ValueError):
    """A value an attribute does not accept; the message completes "`<attr>` on <Tag> ..."."""


VARIABLE_REF = re.compile(r"\{\{(.*?)\}\}", re.S)
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
VARIABLE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*$")
# Always defined while a call runs; the engine fills them in. `to` and `from` are what `<Call field>` compares.
BUILTIN_VARIABLES = frozenset({"call", "from", "to", "tn", "app"})


def has_variables(value: str) -> bool:
    return "{{" in value


@dataclass(frozen=True)
class ValueType:
    """How an attribute's text becomes a typed value. `templated` values may hold `{{variables}}`."""

    describe: str = "a value"
    templated: bool = False

    def parse(self, raw: str) -> Any:
        return raw

    def to_json(self, value: Any) -> Any:
        return value

    def from_json(self, value: Any) -> Any:
        return value


@dataclass(frozen=True)
class Text(ValueType):
    describe: str = "text"
    max_length: int = 4000
    single_line: bool = False

    def parse(self, raw: str) -> str:
        if len(raw) > self.max_length:
            raise BadValue(f"is longer than {self.max_length} characters")
        if self.single_line and ("\r" in raw or "\n" in raw):
            raise BadValue("must be on one line")
        return raw


@dataclass(frozen=True)
class Duration(ValueType):
    """Milliseconds, as a whole number. Below `warn_below` the value is most likely meant as seconds."""

    describe: str = "a duration in milliseconds"
    min: int = 0
    max: int = 3_600_000
    warn_below: int | None = None

    def parse(self, raw: str) -> int:
        value = raw.strip()
        if not re.fullmatch(r"[0-9]{1,9}", value):
            raise BadValue(f"must be a whole number of milliseconds, e.g. 5000 for 5 seconds (got {raw!r})")
        number = int(value)
        if not self.min <= number <= self.max:
            raise BadValue(f"must be between {self.min} and {self.max} milliseconds (got {number})")
        return number


@dataclass(frozen=True)
class Count(ValueType):
    describe: str = "a whole number"
    min: int = 1
    max: int = 100

    def parse(self, raw: str) -> int:
        value = raw.strip()
        if not re.fullmatch(r"[0-9]{1,6}", value) or not self.min <= int(value) <= self.max:
            raise BadValue(f"must be a whole number from {self.min} to {self.max} (got {raw!r})")
        return int(value)


@dataclass(frozen=True)
class Decibels(ValueType):
    describe: str = "a gain in dB"
    min: int = -60
    max: int = 20

    def parse(self, raw: str) -> int:
        value = raw.strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,3}", value) or not self.min <= int(value) <= self.max:
            raise BadValue(f"must be a whole number of dB from {self.min} to {self.max} (got {raw!r})")
        return int(value)


@dataclass(frozen=True)
class Digits(ValueType):
    """DTMF keys as a string: 0-9, * and #. `allow_empty` for "no key" (e.g. finishOnKey="")."""

    describe: str = "DTMF digits"
    max_length: int = 64
    allow_empty: bool = False

    def parse(self, raw: str) -> str:
        value = raw.strip()
        if not value and self.allow_empty:
            return ""
        if not re.fullmatch(r"[0-9*#]+", value) or len(value) > self.max_length:
            raise BadValue(f"must be DTMF keys (0-9, * and #), at most {self.max_length} (got {raw!r})")
        return value


@dataclass(frozen=True)
class Boolean(ValueType):
    describe: str = "true or false"

    def parse(self, raw: str) -> bool:
        value = raw.strip().lower()
        if value in ("true", "1", "yes"):
            return True
        if value in ("false", "0", "no"):
            return False
        raise BadValue(f"must be true or false (got {raw!r})")


@dataclass(frozen=True)
class Choice(ValueType):
    """One of a few words, matched without regard to case and stored in the spelling of `options`."""

    options: tuple[str, ...] = ()

    def parse(self, raw: str) -> str:
        for option in self.options:
            if raw.strip().lower() == option.lower():
                return option
        raise BadValue(f"must be one of {', '.join(self.options)} (got {raw!r})")


@dataclass(frozen=True)
class Url(ValueType):
    """An absolute http(s) URL, checked against the outbound URL policy by the validator, not here."""

    describe: str = "an http(s) URL"
    templated: bool = True

    def parse(self, raw: str) -> str:
        value = raw.strip()
        if not value:
            raise BadValue("must be an http:// or https:// URL")
        return value


@dataclass(frozen=True)
class ListOf(ValueType):
    """Items separated by commas and/or spaces ("NJ,CA", "NJ CA", "NJ, CA"), stored as a tuple."""

    item: ValueType = field(default_factory=ValueType)
    min_items: int = 1
    max_items: int = 50
    unique: bool = True

    def parse(self, raw: str) -> tuple:
        parts = [p for p in re.split(r"[,\s]+", raw.strip()) if p]
        if not self.min_items <= len(parts) <= self.max_items:
            raise BadValue(f"must list {self.min_items} to {self.max_items} items, separated by commas or spaces")
        values = [self.item.parse(p) for p in parts]
        if self.unique:
            values = list(dict.fromkeys(values))
        return tuple(values)

    def to_json(self, value: tuple) -> list:
        return [self.item.to_json(v) for v in value]

    def from_json(self, value: list) -> tuple:
        return tuple(self.item.from_json(v) for v in value)


@dataclass(frozen=True)
class Frequency(ValueType):
    describe: str = "a frequency in Hz"

    def parse(self, raw: str) -> int:
        if not re.fullmatch(r"[0-9]{1,5}", raw) or not 1 <= int(raw) <= 20000:
            raise BadValue(f"must be frequencies in Hz from 1 to 20000 (got {raw!r})")
        return int(raw)


E164 = re.compile(r"^\+?[1-9][0-9]{6,14}$")
SIP_URI = re.compile(r"^sips?:[^@\s<>\"]+@[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(;[^\s<>\"]*)?$", re.I)


def normalize_number(value: str) -> str:
    """'12015550123' and '+12015550123' are the same E.164 number; the model stores the '+' form."""
    return value if value.startswith("+") else f"+{value}"


@dataclass(frozen=True)
class PhoneNumber(ValueType):
    describe: str = "an E.164 number"

    def parse(self, raw: str) -> str:
        value = raw.strip()
        if not E164.match(value):
            raise BadValue(f"must be an E.164 number such as +12015550123 (got {raw!r})")
        return normalize_number(value)


@dataclass(frozen=True)
class DialTarget(ValueType):
    """What a <To> rings: an E.164 number or a SIP URI `sip:user@domain`; a `{{variable}}` is checked at run time."""

    describe: str = "an E.164 number or SIP URI"
    templated: bool = True

    def parse(self, raw: str) -> str:
        value = raw.strip()
        if has_variables(value):
            return value
        if E164.match(value):
            return normalize_number(value)
        if SIP_URI.match(value):
            scheme, rest = value.split(":", 1)
            return f"{scheme.lower()}:{rest}"
        raise BadValue(
            f"must be an E.164 number such as +12015550123 or a SIP URI such as sip:alice@example.com (got {raw!r})"
        )


@dataclass(frozen=True)
class VariableName(ValueType):
    """A name `<Meta>` or `<Curl var>` defines: letters, digits and _, not a built-in name."""

    describe: str = "a variable name"

    def parse(self, raw: str) -> str:
        value = raw.strip()
        if not VARIABLE_NAME.match(value) or len(value) > 64:
            raise BadValue(f"must be a name of letters, digits and _, not starting with a digit (got {raw!r})")
        if value in BUILTIN_VARIABLES:
            raise BadValue(f"cannot be {value!r}, a built-in variable ({', '.join(sorted(BUILTIN_VARIABLES))})")
        return value


@dataclass(frozen=True)
class VariablePath(ValueType):
    """What `<Call field>` compares: `to`, `from`, another built-in, a <Meta> name or a Curl result path."""

    describe: str = "a variable"

    def parse(self, raw: str) -> str:
        value = raw.strip()
        if value.startswith("{{") and value.endswith("}}"):
            value = value[2:-2].strip()
        if not VARIABLE_PATH.match(value) or len(value) > 200:
            raise BadValue(f"must be to, from, or the name of a variable, e.g. crm.json.vip (got {raw!r})")
        return value


DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_NAMES = {name: i for i, name in enumerate(DAYS)} | {
    full: i for i, full in enumerate(("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"))
}


@dataclass(frozen=True)
class DayList(ValueType):
    """Days of the week: "mon,wed", "mon-fri", "fri-mon" (a range may wrap past Saturday), stored in week order."""

    describe: str = "days of the week"

    def parse(self, raw: str) -> tuple[str, ...]:
        days: set[int] = set()
        parts = [p for p in re.split(r"[,\s]+", raw.strip().lower()) if p]
        if not parts:
            raise BadValue("must list days such as mon-fri or sat,sun")
        for part in parts:
            first, _, last = part.partition("-")
            if first not in _DAY_NAMES or (last and last not in _DAY_NAMES):
                raise BadValue(
                    f"must list days (sun, mon, tue, wed, thu, fri, sat) or ranges like mon-fri (got {part!r})"
                )
            start, end = _DAY_NAMES[first], _DAY_NAMES[last or first]
            day = start
            days.add(day)
            while day != end:
                day = (day + 1) % 7
                days.add(day)
        return tuple(DAYS[d] for d in sorted(days))

    def to_json(self, value: tuple) -> list:
        return list(value)

    def from_json(self, value: list) -> tuple:
        return tuple(value)


@dataclass(frozen=True)
class TimeWindow:
    """A daily window [start, end); when end <= start it crosses midnight and belongs to the day it starts on."""

    start: time
    end: time

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def __str__(self) -> str:
        return f"{self.start:%H:%M:%S}-{self.end:%H:%M:%S}"


_CLOCK = r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?"


@dataclass(frozen=True)
class TimeWindowType(ValueType):
    describe: str = "a time window HH:MM:SS-HH:MM:SS"

    def parse(self, raw: str) -> TimeWindow:
        match = re.fullmatch(rf"\s*{_CLOCK}\s*-\s*(24:00(?::00)?|{_CLOCK})\s*", raw)
        if not match:
            raise BadValue(f"must be a window HH:MM:SS-HH:MM:SS, e.g. 09:00:00-17:30:00 (got {raw!r})")
        start = time(int(match[1]), int(match[2]), int(match[3] or 0))
        end = time(0) if match[4].startswith("24") else time(int(match[5]), int(match[6]), int(match[7] or 0))
        if start == end and not match[4].startswith("24"):
            raise BadValue("must not start and end at the same time; use 00:00:00-24:00:00 for the whole day")
        return TimeWindow(start, end)

    def to_json(self, value: TimeWindow) -> str:
        return str(value)

    def from_json(self, value: str) -> TimeWindow:
        start, end = value.split("-")
        return TimeWindow(time.fromisoformat(start), time.fromisoformat(end))


@dataclass(frozen=True)
class TimeZone(ValueType):
    describe: str = "an IANA time zone"

    def parse(self, raw: str) -> str:
        value = raw.strip()
        try:
            if not value or ".." in value or value.startswith("/"):
                raise ValueError(value)
            zoneinfo.ZoneInfo(value)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
            raise BadValue(f"must be an IANA time zone such as America/New_York (got {raw!r})") from exc
        return value


# The 50 states, DC and the territories with US area codes.
US_STATES = (
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN",
    "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV",
    "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN",
    "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "DC", "PR", "VI", "GU", "AS", "MP",
)  # fmt: skip


@dataclass(frozen=True)
class Language(ValueType):
    describe: str = "a language tag such as en-US"

    def parse(self, raw: str) -> str:
        value = raw.strip()
        if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}", value):
            raise BadValue(f"must be a language tag such as en-US (got {raw!r})")
        return value


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
# Set by the HTTP client itself; a document must not be able to smuggle them.
FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
     "proxy-authorization", "proxy-connection"}
)  # fmt: skip


@dataclass(frozen=True)
class HeaderName(ValueType):
    describe: str = "an HTTP header name"

    def parse(self, raw: str) -> str:
        value = raw.strip()
        if not _TOKEN.match(value):
            raise BadValue(f"must be an HTTP header name such as X-Api-Key (got {raw!r})")
        if value.lower() in FORBIDDEN_HEADERS:
            raise BadValue(f"cannot be {value}: the platform sets that header itself")
        return value


# --- Attributes and tags ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attr:
    """One attribute of a tag. `aliases` are other spellings accepted on input; the model uses `name`."""

    name: str
    type: ValueType
    required: bool = False
    default: Any = None
    aliases: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Tag:
    """One element of the language.

    kind: "root" (Response), "command" (runs in sequence inside a block) or "clause" (a structural part of its
    parent: To, DTMF, Default, Error, Header). `children` are the canonical names allowed inside, with
    `max_children`/`min_children` bounds per name. `text` names the attribute the element's text content fills
    (`<Say>Hi</Say>` is `<Say text="Hi"/>`); elements without it may hold no text. `one_of`: groups of
    attributes of which exactly one must be given (text content counting as its attribute).
    """

    name: str
    doc: str
    kind: str = "command"
    aliases: tuple[str, ...] = ()
    attrs: tuple[Attr, ...] = ()
    children: frozenset[str] = frozenset()
    max_children: dict[str, int] = field(default_factory=dict)
    min_children: dict[str, int] = field(default_factory=dict)
    text: str | None = None
    one_of: tuple[tuple[str, ...], ...] = ()

    def attr(self, name: str) -> Attr | None:
        return self._by_name.get(name)

    def resolve_attr(self, written: str) -> Attr | None:
        """The attribute a written name means, aliases included."""
        return self._by_spelling.get(written)

    # Lookups run for every attribute of every element; the table never changes, so each is built once.
    @cached_property
    def _by_name(self) -> dict[str, Attr]:
        return {a.name: a for a in self.attrs}

    @cached_property
    def _by_spelling(self) -> dict[str, Attr]:
        return {spelling: a for a in self.attrs for spelling in (a.name, *a.aliases)}

    @property
    def accepts_error(self) -> bool:
        return "Error" in self.children


TAG = Attr("tag", Text(max_length=200, single_line=True), doc="Echoed in call-flow events and callbacks.")
LOOP = Attr("loop", Count(min=1, max=100), default=1, doc="How many times to play; 1 to 100.")
LEG = Attr("leg", Choice(options=("aleg", "bleg", "both")), default="aleg", doc="Caller, callee, or both.")
ACTION = Attr(
    "action",
    Url(),
    doc="Restcomm action URL: called when the command ends; the XML it returns replaces the rest of the flow.",
)
ACTION_METHOD = Attr("method", Choice(options=("POST", "GET")), default="POST", doc="Method of the action request.")

COMMANDS = frozenset(
    {"Answer", "Hangup", "Pause", "Say", "Play", "Tone", "Hold", "Unhold", "Record", "Dial", "Gather", "Call", "Geo",
     "Scheduler", "Meta", "Callback", "Curl"}
)  # fmt: skip
# What a Gather may play while it waits for the first key.
PROMPTS = frozenset({"Say", "Play", "Tone", "Pause"})
ONE_ERROR = {"Error": 1}


def _tags(*specs: Tag) -> dict[str, Tag]:
    return {spec.name: spec for spec in specs}


TAGS: dict[str, Tag] = _tags(
    Tag(
        "Response",
        "The document's root: its commands run in order; when the last one ends the call is hung up.",
        kind="root",
        children=COMMANDS,
    ),
    Tag(
        "Answer",
        "Answer the call (an unanswered inbound call is answered by the first command that needs media).",
        attrs=(Attr("delay", Duration(max=60_000), default=0, doc="Wait this long before answering."), TAG),
        children=frozenset({"Error"}),
        max_children=ONE_ERROR,
    ),
    Tag(
        "Hangup",
        "End the call. Commands after it in the same block never run. `tag` becomes the hangup reason.",
        attrs=(TAG,),
    ),
    Tag(
        "Pause",
        "Silence for `length` ms; a key in `dtmf_stop` ends it early.",
        attrs=(
            Attr("length", Duration(), default=1000),
            Attr("dtmf_stop", Digits(max_length=12), doc="Any of these keys ends the pause."),
            TAG,
        ),
    ),
    Tag(
        "Say",
        "Speak text (content or `text`; `{{variables}}` allowed).",
        attrs=(
            Attr("text", Text(templated=True)),
            Attr("type", Choice(options=("Standard", "WaveNet")), default="Standard"),
            Attr("gender", Choice(options=("MALE", "FEMALE"))),
            Attr("lang", Language(), default="en-US"),
            Attr("code", Text(max_length=100, single_line=True), doc="A voice name of the TTS engine."),
            LOOP,
            TAG,
        ),
        children=frozenset({"Error"}),
        max_children=ONE_ERROR,
        text="text",
        one_of=(("text",),),
    ),
    Tag(
        "Play",
        "Play a media file (`url` or content, mp3/wav, fetched under the outbound URL policy) or an earlier recording.",
        attrs=(
            Attr("url", Url()),
            Attr("record", Text(max_length=200, single_line=True), doc="The `tag` of an earlier <Record>."),
            LOOP,
            LEG,
            TAG,
        ),
        children=frozenset({"Error"}),
        max_children=ONE_ERROR,
        text="url",
        one_of=(("url", "record"),),
    ),
    Tag(
        "Tone",
        "Play a tone: the `hz` frequencies mixed, `don` ms on and `doff` ms off (continuous without `don`).",
        attrs=(
            Attr("hz", ListOf(item=Frequency(), max_items=4, unique=False), required=True),
            Attr("don", Duration(max=60_000)),
            Attr("doff", Duration(max=60_000)),
            LOOP,
            Attr("volume", Decibels(), default=0),
            Attr("timeout", Duration(), default=30_000, doc="The tone stops after this long at the latest."),
            LEG,
            TAG,
        ),
        children=frozenset({"Error"}),
        max_children=ONE_ERROR,
    ),
    Tag(
        "Hold",
        "Put the other leg on hold; it is taken off hold by <Unhold> or after `timeout` ms.",
        attrs=(Attr("timeout", Duration(warn_below=1000), default=300_000), TAG),
        children=frozenset({"Error"}),
        max_children=ONE_ERROR,
    ),
    Tag(
        "Unhold",
        "Take the other leg off hold.",
        attrs=(TAG,),
        children=frozenset({"Error"}),
        max_children=ONE_ERROR,
    ),
    Tag(
        "Record",
        "Record the call while its child commands run (without children: for `timeout` ms, or until the call "
        "ends). `asr` also transcribes. With `action`, the recording's URL and length are sent there and the XML "
        "returned replaces the rest of the flow.",
        attrs=(
            TAG,
            Attr("asr", Boolean(), default=False, doc="Transcribe the recording."),
            Attr("timeout", Duration(max=14_400_000, warn_below=1000), doc="Longest recording."),
            ACTION,
            ACTION_METHOD,
        ),
        children=(COMMANDS - {"Record"}) | {"Error"},
        max_children=ONE_ERROR,
    ),
    Tag(
        "Dial",
        "Ring every <To> at once; the first to answer is bridged and the others stop ringing. When the callee "
        "hangs up the flow continues after <Dial> (or with the XML `action` returns); when the caller hangs up the "
        "callee's leg ends. `timeout` is in ms (Restcomm's is in seconds).",
        attrs=(
            Attr("timeout", Duration(min=1000, max=600_000, warn_below=5000), default=30_000, doc="Ring time."),
            Attr("caller_id", PhoneNumber(), aliases=("callerId",), doc="Caller ID shown to the callee."),
            ACTION,
            ACTION_METHOD,
            TAG,
        ),
        children=frozenset({"To", "Error"}),
        max_children={"Error": 1, "To": 10},
        min_children={"To": 1},
    ),
    Tag(
        "To",
        "One target of a <Dial>: an E.164 number or `sip:user@domain` (content, or `target`/`number`/`uri`). Status "
        "callbacks per leg: `status_callback` gets the events listed (default: completed only), no response used.",
        kind="clause",
        aliases=("Sip",),
        attrs=(
            Attr("target", DialTarget(), aliases=("number", "uri")),
            Attr("status_callback", Url(), aliases=("statusCallback",)),
            Attr(
                "status_callback_method",
                Choice(options=("POST", "GET")),
                default="POST",
                aliases=("statusCallbackMethod",),
            ),
            Attr(
                "status_callback_events",
                ListOf(item=Choice(options=("initiated", "ringing", "answered", "completed")), max_items=4),
                aliases=("statusCallbackEvent", "statusCallbackEvents", "status_callback_event"),
            ),
        ),
        text="target",
        one_of=(("target",),),
    ),
    Tag(
        "Gather",
        "Collect DTMF keys; see validator.py for how digits choose a way forward. Older dialect attributes are "
        "aliases: numDigits, finishOnKey, callback (and Restcomm's url/action). `timeout` is in ms.",
        attrs=(
            Attr("dtmf_length", Count(min=1, max=64), aliases=("numDigits",), doc="Stop after this many keys."),
            Attr(
                "dtmf_stop",
                Digits(max_length=12, allow_empty=True),
                default="#",
                aliases=("finishOnKey",),
                doc="A key that ends input (not part of the digits); empty for none.",
            ),
            Attr(
                "timeout",
                Duration(max=600_000, warn_below=500),
                default=5000,
                doc="Silence that ends an attempt, from the end of the prompts or the last key.",
            ),
            Attr("attempts", Count(min=1, max=10), default=1, doc="Attempts before giving up."),
            Attr(
                "action",
                Url(),
                aliases=("url", "callback"),
                doc="Gets the digits (dtmf, from, tn, state, sca, call); the XML it returns replaces the rest.",
            ),
            ACTION_METHOD,
            TAG,
        ),
        children=PROMPTS | {"DTMF", "Default", "Error"},
        max_children={"Error": 1, "Default": 1, "DTMF": 100},
    ),
    Tag(
        "DTMF",
        "A Gather branch: its commands run when the digits equal `value`.",
        kind="clause",
        attrs=(Attr("value", Digits(), required=True),),
        children=COMMANDS,
    ),
    Tag(
        "Default",
        "A Gather branch for digits no <DTMF> matched, and for no input after the last attempt.",
        kind="clause",
        children=COMMANDS,
    ),
    Tag(
        "Call",
        "Run the children only when the call's `field` (to, from, or any variable) equals `value`; a trailing "
        "`*` matches a prefix (`+1201*`). Otherwise continue after it.",
        attrs=(
            Attr("field", VariablePath(), required=True),
            Attr("value", Text(max_length=500, single_line=True, templated=True), required=True),
            TAG,
        ),
        children=COMMANDS,
    ),
    Tag(
        "Geo",
        "Run the children only when the caller ID is from one of `states` (US, from its area code), and `county`.",
        attrs=(
            Attr("states", ListOf(item=Choice(options=US_STATES), max_items=len(US_STATES)), required=True),
            Attr("county", Text(max_length=100, single_line=True)),
            TAG,
        ),
        children=COMMANDS,
    ),
    Tag(
        "Scheduler",
        "Run the children only on the days `dow` and within the daily `time` window, in the app's time zone "
        "(or `timezone`). Either may be left out (every day / all day).",
        aliases=("Schedule",),
        attrs=(
            Attr("dow", DayList()),
            Attr("time", TimeWindowType()),
            Attr("timezone", TimeZone(), aliases=("tz",)),
            TAG,
        ),
        children=COMMANDS,
    ),
    Tag(
        "Meta",
        "Set the variable `name` to `value` (or the content; `{{variables}}` allowed), for later commands and for "
        "the data sent to callback URLs.",
        attrs=(Attr("name", VariableName(), required=True), Attr("value", Text(templated=True), default="")),
        text="value",
    ),
    Tag(
        "Callback",
        "Fetch call-flow XML from `url` and run it in place of the rest of this flow. On a failed request, a "
        "non-2xx answer, a timeout or XML that does not validate, <Error> runs and the flow continues after it.",
        attrs=(
            Attr("url", Url(), required=True),
            Attr("method", Choice(options=("POST", "GET", "PATCH", "DELETE")), default="POST"),
            Attr("body", Boolean(), default=False, doc="Include the app's data in the request body."),
            Attr("timeout", Duration(min=100, max=30_000, warn_below=500), default=5000),
            TAG,
        ),
        children=frozenset({"Error"}),
        max_children=ONE_ERROR,
    ),
    Tag(
        "Curl",
        'An HTTP request during the call. With `var="crm"` the response is kept as {{crm.status}}, {{crm.body}} '
        "and, for a JSON body, {{crm.json.<key>...}}. Headers are <Header> children. A failed request, timeout "
        "or non-2xx status runs <Error>; the flow then continues.",
        attrs=(
            Attr("url", Url(), required=True),
            Attr("method", Choice(options=("GET", "POST", "PUT", "PATCH", "DELETE")), default="GET"),
            Attr("timeout", Duration(min=100, max=30_000, warn_below=500), default=5000),
            Attr("body", Text(max_length=65_536, templated=True)),
            Attr("var", VariableName(), aliases=("variable",), doc="Where the response is kept."),
            TAG,
        ),
        children=frozenset({"Header", "Error"}),
        max_children={"Error": 1, "Header": 50},
    ),
    Tag(
        "Header",
        "A request header of a <Curl>.",
        kind="clause",
        attrs=(
            Attr("name", HeaderName(), required=True),
            Attr("value", Text(max_length=4000, single_line=True, templated=True), required=True),
        ),
    ),
    Tag(
        "Error",
        "Runs when its parent command fails; `say` (or `play`) first speaks the reason. Then the flow continues "
        "after the failed command.",
        kind="clause",
        attrs=(Attr("say", Boolean(), default=False, aliases=("play",)),),
        children=COMMANDS,
    ),
)

# Every accepted spelling of a tag -> its canonical name.
TAG_NAMES: dict[str, str] = {alias: spec.name for spec in TAGS.values() for alias in (spec.name, *spec.aliases)}

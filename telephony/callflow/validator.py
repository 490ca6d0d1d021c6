"""Validation of call-flow documents against the tag table, and the rules that span several elements.

`validate(source)` returns a `Result` (valid, errors, warnings, and the `Document` when valid); `parse(source)`
returns the `Document` or raises `CallFlowInvalid`. Both collect every problem they can find in one pass
(up to MAX_ISSUES of each kind), in document order.

URLs: every URL attribute (Play url, Callback url, Curl url, Gather/Dial/Record action, To status_callback)
goes through the outbound URL policy. The shape (scheme, credentials, port) is always checked; with
`resolve_urls=True` (the default) the host is also resolved and its addresses checked, at most
MAX_RESOLVED_HOSTS distinct hosts per document (the others get a `url_not_resolved` warning; the HTTP client
checks every address again at connect time anyway). Variables may appear in a URL's path and query, never in
its scheme, host or port: a Curl response must not be able to choose which host the platform calls.

Gather, precisely (the engine implements this; the validator's warnings follow from it):
- An attempt plays the prompts (its Say/Play/Tone/Pause children), then collects keys until `dtmf_length` keys,
  a `dtmf_stop` key (not part of the digits), or `timeout` ms without a key.
- Digits equal to a <DTMF value> run that branch; then the flow continues after the Gather.
- Other digits run <Default> if there is one; otherwise they go to `action` if there is one (its XML replaces
  the rest of the flow); otherwise the attempt failed.
- No digits, or a failed attempt: the next attempt, up to `attempts`. After the last one, <Default> runs if
  there is one, else the flow continues after the Gather. `action` is never called without digits.
- <Error> runs when the Gather itself fails (a prompt cannot be played, the action request fails).
"No way forward" (warning gather_no_way_forward): a Gather with no `action` (url/callback), no <DTMF> and no
<Default>. Whatever the caller presses is collected and thrown away.

Unreachable (warning): commands after a <Hangup> in the same block. Commands after a <Callback> or a command
with `action` are not unreachable: they run when the request fails.

Variables (warning undefined_variable): `{{name}}` and `<Call field>` must name a built-in (call, from, to, tn,
app), a <Meta name> earlier in document order, or `x`, `x.status`, `x.body`, `x.json...` of an earlier
<Curl var="x">. Earlier in document order is an approximation of "set at run time" (a definition inside a
branch that did not run leaves the variable empty), and a document fetched by <Callback> or an `action` URL
runs with the variables its predecessors set, which this document cannot see. Hence a warning, not an error.
Curl defines its variable once its request is done, so its own url, body and <Header>s cannot use it; the
keys under `x.json` come from the response and are not checked.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from telephony import urlpolicy
from telephony.callflow.errors import CallFlowInvalid, Issue
from telephony.callflow.model import Attrs, Document, Node, child_path
from telephony.callflow.parser import Limits, RawElement, read
from telephony.callflow.tags import (
    BUILTIN_VARIABLES,
    COMMANDS,
    SIP_URI,
    TAG_NAMES,
    TAGS,
    VARIABLE_PATH,
    VARIABLE_REF,
    Attr,
    BadValue,
    Duration,
    Tag,
    Url,
    VariablePath,
    has_variables,
)

MAX_ISSUES = 100
MAX_RESOLVED_HOSTS = 10
CURL_FIELDS = ("status", "body", "json")


@dataclass
class Result:
    """The outcome of validating one document."""

    errors: list[Issue]
    warnings: list[Issue]
    document: Document | None = None

    @property
    def valid(self) -> bool:
        return not self.errors


def parse(source: str | bytes, *, resolve_urls: bool = True, limits: Limits | None = None) -> Document:
    """The Document of a valid call flow; CallFlowInvalid (with errors and warnings) otherwise."""
    result = validate(source, resolve_urls=resolve_urls, limits=limits)
    if not result.valid:
        raise CallFlowInvalid(result.errors, result.warnings)
    return result.document


def validate(source: str | bytes, *, resolve_urls: bool = True, limits: Limits | None = None) -> Result:
    try:
        raw = read(source, limits)
    except CallFlowInvalid as invalid:
        return Result(invalid.errors, [])
    checker = _Checker(resolve_urls=resolve_urls)
    if raw.name != "Response":
        hint = " (names are case-sensitive)" if raw.name.lower() == "response" else ""
        checker.error("bad_root", f"The root element must be <Response>, not <{raw.name}>{hint}.", raw.line, raw.column)
        return checker.result(None)
    root = checker.build(raw, None, None, {})
    checker.check_blocks(root)
    checker.check_variables(root)
    if not raw.children:
        checker.warning("empty_flow", "<Response> has no commands; the call is hung up at once.", root)
    return checker.result(root)


def _suggest(name: str, candidates: list[str]) -> str | None:
    """The candidate someone who wrote `name` most likely meant, if one is close enough."""
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


def _list_tags(names) -> str:
    return ", ".join(f"<{n}>" for n in sorted(names))


@dataclass
class _Checker:
    resolve_urls: bool
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    dropped: int = 0
    # (host, port) -> None when callable, else (code, message); resolution is the slow part of validation.
    hosts: dict[tuple[str, int], tuple[str, str] | None] = field(default_factory=dict)
    unresolved_warned: bool = False

    # --- Reporting -----------------------------------------------------------------------------------

    def _add(self, bucket: list[Issue], issue: Issue) -> None:
        if len(bucket) >= MAX_ISSUES:
            self.dropped += 1
            return
        bucket.append(issue)

    def error(self, code, message, line, column, path=None, attribute=None) -> None:
        self._add(self.errors, Issue("error", code, message, line, column, path, attribute))

    def warning(self, code, message, node: Node, attribute=None) -> None:
        self._add(self.warnings, Issue("warning", code, message, node.line, node.column, node.path, attribute))

    def result(self, root: Node | None) -> Result:
        position = lambda issue: (issue.line, issue.column)  # noqa: E731
        errors, warnings = sorted(self.errors, key=position), sorted(self.warnings, key=position)
        if self.dropped:
            warnings.append(Issue("warning", "too_many_issues", f"{self.dropped} more problems were not listed.", 1, 1))
        document = Document(root) if root is not None and not errors else None
        return Result(errors, warnings, document)

    # --- Elements --------------------------------------------------------------------------------------

    def build(self, raw: RawElement, parent: Tag | None, parent_path: str | None, seen: dict[str, int]) -> Node | None:
        """The Node of a known element (None for an unknown one), reporting what is wrong with it."""
        canonical = TAG_NAMES.get(raw.name)
        where = (raw.line, raw.column)
        if canonical is None:
            path = f"{parent_path}/{raw.name}" if parent_path else raw.name
            suggestion = _suggest(raw.name, list(TAG_NAMES))
            if raw.name.startswith("{"):
                message = f"Unknown tag <{raw.name}> (namespaces are not used)."
            elif suggestion:
                message = f"Unknown tag <{raw.name}>; did you mean <{suggestion}>?"
            else:
                message = f"Unknown tag <{raw.name}>."
            self.error("unknown_tag", message, *where, path)
            return None
        spec = TAGS[canonical]
        path = child_path(parent_path, canonical, seen)
        if parent is not None and canonical not in parent.children:
            self.error("child_not_allowed", self._not_allowed(spec, parent), *where, path)

        values, written = self._attributes(raw, spec, path)
        if raw.text and spec.text:
            written.add(spec.text)
        self._text(raw, spec, path, values)
        for attr in spec.attrs:
            if attr.name not in values:
                if attr.required and attr.name not in written:
                    self.error(
                        "missing_attribute", f"<{raw.name}> needs the attribute `{attr.name}`.", *where, path, attr.name
                    )
                elif attr.default is not None:
                    values[attr.name] = attr.default
        for group in spec.one_of:
            given = [name for name in group if values.get(name) is not None]
            label = " or ".join(f"`{n}`" for n in group)
            if not given and not written.intersection(group):
                wanted = " or ".join(f"`{n}` (or text content)" if n == spec.text else f"`{n}`" for n in group)
                self.error("missing_attribute", f"<{raw.name}> needs {wanted}.", *where, path, group[0])
            elif len(given) > 1:
                self.error(
                    "conflicting_attributes", f"<{raw.name}> takes {label}, not several.", *where, path, given[1]
                )
        if canonical == "To":
            self._finish_to(raw, values, path)
        elif canonical == "Call":
            self._check_call_value(raw, values, path)

        children: list[Node] = []
        counts: dict[str, int] = {}
        child_seen: dict[str, int] = {}
        for raw_child in raw.children:
            child = self.build(raw_child, spec, path, child_seen)
            if child is None:
                continue
            counts[child.tag] = counts.get(child.tag, 0) + 1
            limit = spec.max_children.get(child.tag)
            if limit is not None and counts[child.tag] == limit + 1:
                many = "one" if limit == 1 else f"{limit}"
                self.error(
                    "duplicate_child",
                    f"<{raw.name}> may contain at most {many} <{child.tag}>.",
                    child.line,
                    child.column,
                    child.path,
                )
            children.append(child)
        for tag, minimum in spec.min_children.items():
            if counts.get(tag, 0) < minimum:
                self.error("missing_child", f"<{raw.name}> needs at least one <{tag}> inside.", *where, path)

        node = Node(canonical, Attrs(values), tuple(children), raw.line, raw.column, path)
        if canonical == "Gather":
            self._check_gather(node)
        return node

    def _not_allowed(self, spec: Tag, parent: Tag) -> str:
        message = f"<{spec.name}> is not allowed inside <{parent.name}>"
        if spec.kind == "clause":
            owners = [t.name for t in TAGS.values() if spec.name in t.children]
            return f"{message}; it belongs inside {_list_tags(owners)}."
        if parent.children >= COMMANDS:
            return f"{message}."
        return f"{message}, which may contain {_list_tags(parent.children)}."

    def _attributes(self, raw: RawElement, spec: Tag, path: str) -> tuple[dict, set[str]]:
        """The typed values of the valid attributes, and the canonical names of all that were written."""
        values: dict = {}
        written_as: dict[str, str] = {}
        where = (raw.line, raw.column)
        for written, text in raw.attrs.items():
            attr = spec.resolve_attr(written)
            if attr is None:
                suggestion = _suggest(written, [n for a in spec.attrs for n in (a.name, *a.aliases)])
                if suggestion:
                    hint = f"did you mean `{suggestion}`?"
                elif spec.attrs:
                    hint = f"<{raw.name}> takes {', '.join(a.name for a in spec.attrs)}."
                else:
                    hint = f"<{raw.name}> takes no attributes."
                message = f"Unknown attribute `{written}` on <{raw.name}>; {hint}"
                self.error("unknown_attribute", message, *where, path, written)
                continue
            if attr.name in written_as:
                self.error(
                    "duplicate_attribute",
                    f"`{written}` and `{written_as[attr.name]}` on <{raw.name}> are the same attribute; give one.",
                    *where,
                    path,
                    written,
                )
                continue
            written_as[attr.name] = written
            value = self._value(raw, spec, attr, written, text, path, where)
            if value is not None:
                values[attr.name] = value
        return values, set(written_as)

    def _text(self, raw: RawElement, spec: Tag, path: str, values: dict) -> None:
        text = raw.text
        if not text:
            return
        where = (raw.text_line, raw.text_column)
        if spec.text is None:
            self.error("unexpected_text", f"Text is not allowed inside <{raw.name}>.", *where, path)
            return
        if spec.text in values or any(a.name == spec.text for a in map(spec.resolve_attr, raw.attrs) if a):
            self.error(
                "conflicting_attributes",
                f"<{raw.name}> takes `{spec.text}` as an attribute or as text content, not both.",
                *where,
                path,
                spec.text,
            )
            return
        value = self._value(raw, spec, spec.attr(spec.text), spec.text, text, path, where)
        if value is not None:
            values[spec.text] = value

    def _value(self, raw, spec: Tag, attr: Attr, written: str, text: str, path: str, where):
        """The typed value of one attribute, or None after reporting why it is not acceptable."""
        label = f"`{written}` on <{raw.name}>"
        if has_variables(text) or "}}" in text:
            if not attr.type.templated and not isinstance(attr.type, VariablePath):
                self.error(
                    "bad_value",
                    f"{label} cannot hold {{{{variables}}}}: it is checked when the document is saved.",
                    *where,
                    path,
                    written,
                )
                return None
            if attr.type.templated and not self._variable_syntax(text, label, where, path, written):
                return None
        try:
            value = attr.type.parse(text)
        except BadValue as exc:
            self.error("bad_value", f"{label} {exc}.", *where, path, written)
            return None
        if isinstance(attr.type, Duration) and attr.type.warn_below is not None and value < attr.type.warn_below:
            self._add(
                self.warnings,
                Issue(
                    "warning",
                    "suspicious_duration",
                    f"{label} is {value} ms; durations are in milliseconds (did you mean {value * 1000}?).",
                    *where,
                    path,
                    written,
                ),
            )
        if isinstance(attr.type, Url):
            self._check_url(value, label, where, path, written)
        return value

    def _variable_syntax(self, text: str, label: str, where, path: str, written: str) -> bool:
        stripped = VARIABLE_REF.sub("", text)
        if "{{" in stripped or "}}" in stripped:
            self.error("bad_variable", f"{label} has an unclosed {{{{ or }}}}.", *where, path, written)
            return False
        for name in VARIABLE_REF.findall(text):
            if not VARIABLE_PATH.match(name.strip()):
                self.error(
                    "bad_variable",
                    f"{label}: {{{{{name}}}}} is not a variable name (letters, digits, _ and dots).",
                    *where,
                    path,
                    written,
                )
                return False
        return True

    def _check_url(self, url: str, label: str, where, path: str, written: str) -> None:
        if has_variables(url):
            authority = re.match(r"^[^:/?#]*:?/*[^/?#]*", url)[0]
            if has_variables(authority):
                self.error(
                    "url_variable_host",
                    f"{label}: variables may be used in a URL's path and query, not in its scheme or host.",
                    *where,
                    path,
                    written,
                )
                return
            url = VARIABLE_REF.sub("x", url)
        try:
            _, host, port = urlpolicy.check_url_shape(url)
        except urlpolicy.UrlRefused as refused:
            self.error(refused.code, f"{label}: {refused.messages[0]}", *where, path, written)
            return
        if not self.resolve_urls:
            return
        key = (host.lower(), port)
        if key not in self.hosts:
            if len(self.hosts) >= MAX_RESOLVED_HOSTS:
                if not self.unresolved_warned:
                    self.unresolved_warned = True
                    self._add(
                        self.warnings,
                        Issue(
                            "warning",
                            "url_not_resolved",
                            f"Only the first {MAX_RESOLVED_HOSTS} hosts were checked now; the others are checked "
                            "when they are called.",
                            *where,
                            path,
                            written,
                        ),
                    )
                return
            try:
                urlpolicy.validate_customer_url(url)
                self.hosts[key] = None
            except urlpolicy.UrlRefused as refused:
                self.hosts[key] = (refused.code, refused.messages[0])
        refusal = self.hosts[key]
        if refusal is not None:
            self.error(refusal[0], f"{label}: {refusal[1]}", *where, path, written)

    def _finish_to(self, raw: RawElement, values: dict, path: str) -> None:
        # Restcomm: a status callback URL without events gets the final event only.
        if values.get("status_callback") and "status_callback_events" not in values:
            values["status_callback_events"] = ("completed",)
        elif "status_callback_events" in values and not values.get("status_callback"):
            self._add(
                self.warnings,
                Issue(
                    "warning",
                    "unused_status_events",
                    f"<{raw.name}> lists status callback events but has no `statusCallback` URL to send them to.",
                    raw.line,
                    raw.column,
                    path,
                    "status_callback_events",
                ),
            )

    def _check_call_value(self, raw: RawElement, values: dict, path: str) -> None:
        # A caller or called number is compared as E.164 (with or without its '+'), or by a prefix ending in '*';
        # anything else there can never match, which is a mistake worth an error.
        value = values.get("value")
        if values.get("field") not in ("to", "from") or value is None or has_variables(value):
            return
        if not (re.fullmatch(r"\+?[0-9]{1,15}\*?", value) or SIP_URI.match(value) or value == "anonymous"):
            self.error(
                "bad_value",
                f"`value` on <{raw.name}> must be an E.164 number, a prefix such as +1201*, a SIP URI or anonymous "
                f"when `field` is {values['field']} (got {value!r}).",
                raw.line,
                raw.column,
                path,
                "value",
            )

    # --- Rules across elements ---------------------------------------------------------------------------

    def _check_gather(self, gather: Node) -> None:
        branches = gather.clauses("DTMF")
        if not branches and not gather.clauses("Default") and not gather.get("action"):
            self.warning(
                "gather_no_way_forward",
                "This <Gather> has no `action` URL, no <DTMF> and no <Default>: the caller's keys are thrown away.",
                gather,
            )
        values: dict[str, Node] = {}
        length, stop = gather.get("dtmf_length"), gather.get("dtmf_stop") or ""
        for branch in branches:
            value = branch.get("value")
            if value is None:
                continue
            if value in values:
                self.error(
                    "duplicate_dtmf",
                    f"Another <DTMF> of this <Gather> (line {values[value].line}) already has value {value!r}.",
                    branch.line,
                    branch.column,
                    branch.path,
                    "value",
                )
            values.setdefault(value, branch)
            if length is not None and len(value) > length:
                self.warning(
                    "dtmf_unreachable",
                    f"value {value!r} has more than dtmf_length={length} keys; it can never be entered.",
                    branch,
                    "value",
                )
            elif any(key in stop for key in value):
                self.warning(
                    "dtmf_unreachable",
                    f"value {value!r} contains the dtmf_stop key {stop!r}, which ends input; it can never be entered.",
                    branch,
                    "value",
                )

    def check_blocks(self, node: Node) -> None:
        """Unreachable commands after a <Hangup>, block by block."""
        block = node.commands
        for position, command in enumerate(block):
            if command.tag == "Hangup" and position + 1 < len(block):
                rest = block[position + 1 :]
                more = f" and the {len(rest) - 1} after it" if len(rest) > 1 else ""
                self.warning(
                    "unreachable",
                    f"<{rest[0].tag}>{more} never run: the <Hangup> on line {command.line} ends the call.",
                    rest[0],
                )
                break
        for child in node.children:
            self.check_blocks(child)

    def check_variables(self, root: Node) -> None:
        defined: dict[str, str] = dict.fromkeys(BUILTIN_VARIABLES, "builtin")

        def check(node: Node, name: str, attribute: str) -> None:
            head, _, rest = name.partition(".")
            kind = defined.get(head)
            if kind is None:
                self.warning(
                    "undefined_variable",
                    f"{{{{{name}}}}} is not set earlier in this document (by <Meta name> or <Curl var>); "
                    "unless an earlier document of the call set it, it is empty.",
                    node,
                    attribute,
                )
            elif rest and kind != "curl":
                what = "a built-in variable" if kind == "builtin" else "a <Meta> variable"
                self.error(
                    "bad_variable",
                    f"{{{{{name}}}}}: {head} is {what} and has no fields.",
                    node.line,
                    node.column,
                    node.path,
                    attribute,
                )
            elif rest and rest.split(".")[0] not in CURL_FIELDS:
                self.error(
                    "bad_variable",
                    f"{{{{{name}}}}}: the response of <Curl var={head!r}> is {{{{{head}}}}}, {{{{{head}}}}}.status, "
                    f"{{{{{head}}}}}.body and {{{{{head}}}}}.json.<key>.",
                    node.line,
                    node.column,
                    node.path,
                    attribute,
                )

        def visit(node: Node) -> None:
            for name, value in node.attrs.items():
                attr = node.spec.attr(name)
                if isinstance(attr.type, VariablePath):
                    check(node, value, name)
                elif attr.type.templated and isinstance(value, str):
                    for ref in VARIABLE_REF.findall(value):
                        check(node, ref.strip(), name)
            for child in node.children:
                visit(child)
            if node.tag == "Meta" and node.get("name"):
                defined[node.get("name")] = "meta"
            elif node.tag == "Curl" and node.get("var"):
                defined[node.get("var")] = "curl"

        visit(root)

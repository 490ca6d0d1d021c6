"""A call's variables and `{{name}}` substitution, as telephony/callflow/model.py defines them.

`Call.variables` holds {"meta": {name: value}, "curl": {var: {"status", "body", "json"}}, "recordings":
{tag: url}, "engine": {...}}: what <Meta> set (these are also sent to callback URLs), what each
<Curl var> received, the recordings made so far, and the engine's own bookkeeping (never shown to flows).

Built-ins: call (the call's id), from, to, tn (the number called, or the caller's number on outbound calls),
app (the app's id). `{{x}}` is a Meta value or a Curl body; `{{x.status}}`, `{{x.body}}`, and `{{x.json.a.0.b}}`
walk a Curl response. Unset names are "".
"""

from __future__ import annotations

import json
from urllib.parse import quote

from telephony.callflow.tags import VARIABLE_REF


def tn_of(call) -> str:
    if call.phone_number_id:
        return call.phone_number.number
    return call.to_number if call.direction == "inbound" else call.from_number


def builtins(call) -> dict[str, str]:
    return {
        "call": str(call.public_id),
        "from": call.from_number,
        "to": call.to_number,
        "tn": tn_of(call),
        "app": str(call.app.public_id) if call.app_id else "",
    }


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _walk(value, parts: list[str]):
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None
    return value


def lookup(variables: dict, call, name: str) -> str:
    name = name.strip()
    head, _, rest = name.partition(".")
    if not rest:
        if head in ("call", "from", "to", "tn", "app"):
            return builtins(call)[head]
        meta = variables.get("meta", {})
        if head in meta:
            return _text(meta[head])
        curl = variables.get("curl", {}).get(head)
        return _text(curl.get("body")) if curl else ""
    curl = variables.get("curl", {}).get(head)
    if not curl:
        return ""
    field, _, path = rest.partition(".")
    if field == "status":
        return _text(curl.get("status"))
    if field == "body":
        return _text(curl.get("body"))
    if field == "json":
        return _text(_walk(curl.get("json"), path.split(".") if path else []))
    return ""


def render(template: str | None, variables: dict, call, *, url: bool = False) -> str:
    """`template` with each {{name}} replaced; in a URL the values are percent-encoded."""
    if not template or "{{" not in template:
        return template or ""

    def replace(match) -> str:
        value = lookup(variables, call, match.group(1))
        return quote(value, safe="") if url else value

    return VARIABLE_REF.sub(replace, template)


def meta(variables: dict) -> dict[str, str]:
    return {name: _text(value) for name, value in variables.get("meta", {}).items()}

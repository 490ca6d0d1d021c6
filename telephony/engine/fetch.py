"""Requests the engine makes to customers' servers during a call, through telephony.http (the outbound policy).

Every request is recorded as a CallHttpRequest with each attempt. The rules:
- the XML's `timeout` (or the app's call_flow_timeout_ms, or ENGINE_ACTION_TIMEOUT_MS for action URLs) bounds
  the whole request, retries included;
- only a failure to connect is retried (once, if time remains): a timeout or an error status may mean the
  server acted on the request, and a call cannot wait for a second full timeout;
- parameters go in the query string for GET and as a form body (application/x-www-form-urlencoded) otherwise,
  the convention of Restcomm's and Twilio's action URLs;
- a document fetched to run (call_flow_url, fallback, Callback, actions) must be a 2xx answer whose body
  validates as call-flow XML; anything else is a failure of the command that fetched it (outcome
  `invalid_xml` with the first error), never a crash.
The worker's claim on the call is extended to cover the request before it is sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.utils import timezone

from telephony import http
from telephony.callflow import CallFlowInvalid, Document
from telephony.engine.documents import parse_fetched
from telephony.models import CallHttpRequest

EXCERPT = 2000


@dataclass
class HttpOutcome:
    ok: bool
    status: int | None
    body: bytes
    headers: dict
    error: str  # why it failed, for people ("" when ok)
    outcome: str  # ok, http_error, timeout, refused, connect, protocol, invalid_xml, limit

    @property
    def text(self) -> str:
        charset = "utf-8"
        content_type = self.headers.get("content-type", "")
        if "charset=" in content_type:
            charset = content_type.split("charset=", 1)[1].split(";", 1)[0].strip() or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


def request(
    step,
    *,
    purpose: str,
    url: str,
    method: str,
    timeout_ms: int,
    params: dict[str, str] | None = None,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    path: str = "",
    max_body: int = http.MAX_BODY_READ,
) -> HttpOutcome:
    """One request (and at most one retry after a connect failure), recorded on the call."""
    call = step.root
    engine = step.engine
    engine["requests"] = engine.get("requests", 0) + 1
    method = method.upper()
    headers = dict(headers or {})
    content: str | None = body
    target = url
    if params is not None:
        encoded = urlencode(params)
        if method == "GET":
            target = f"{url}{'&' if '?' in url else '?'}{encoded}" if encoded else url
        else:
            content = encoded
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    record = CallHttpRequest(
        account=call.account,
        call=call,
        purpose=purpose[:32],
        command_path=path[:500],
        method=method,
        url=target[:2000],
        request_body=(content or "")[:EXCERPT],
        attempts=[],
        outcome="",
        created_at=timezone.now(),
    )
    step.effects.http.append(record)
    if engine["requests"] > settings.ENGINE_MAX_REQUESTS:
        record.outcome = "limit"
        error = f"this call already made {settings.ENGINE_MAX_REQUESTS} requests to customer servers"
        return HttpOutcome(False, None, b"", {}, error, "limit")

    timeout = max(0.05, timeout_ms / 1000)
    deadline = time.monotonic() + timeout
    step.extend_claim(timeout)
    result = None
    for attempt in range(2):
        remaining = deadline - time.monotonic()
        if attempt and remaining < 0.05:
            break
        at = timezone.now()
        result = http.request(
            method,
            target,
            headers=headers,
            content=content,
            timeout=remaining,
            connect_timeout=min(remaining, http.CONNECT_TIMEOUT),
            max_body=max_body,
        )
        record.attempts.append(
            {
                "at": at.isoformat(),
                "duration_ms": round(result.duration * 1000, 1),
                "status_code": result.status_code,
                "error": result.error,
            }
        )
        if result.error_kind != "connect":
            break
    record.response_status = result.status_code
    record.response_excerpt = result.body[:EXCERPT].decode("utf-8", errors="replace") if result.body else ""
    if result.status_code is None:
        record.outcome = result.error_kind or "protocol"
        return HttpOutcome(False, None, b"", {}, f"{result.error_kind}: {result.error}", record.outcome)
    if not result.ok:
        record.outcome = "http_error"
        return HttpOutcome(
            False, result.status_code, result.body, dict(result.headers), f"HTTP {result.status_code}", "http_error"
        )
    record.outcome = "ok"
    return HttpOutcome(True, result.status_code, result.body, dict(result.headers), "", "ok")


def fetch_document(
    step, *, purpose: str, url: str, method: str, timeout_ms: int, params: dict[str, str], path: str = ""
) -> tuple[Document | None, str]:
    """A call-flow document from a customer's server, or None and why not."""
    outcome = request(
        step,
        purpose=purpose,
        url=url,
        method=method,
        timeout_ms=timeout_ms,
        params=params,
        headers={"Accept": "application/xml, text/xml"},
        path=path,
        max_body=settings.CALLFLOW_MAX_BYTES + 1,
    )
    if not outcome.ok:
        return None, outcome.error
    record = step.effects.http[-1]
    try:
        return parse_fetched(outcome.text), ""
    except CallFlowInvalid as invalid:
        record.outcome = "invalid_xml"
        return None, f"the XML returned is not valid: {invalid}"

"""The internal endpoints Kamailio calls (docker/kamailio/kamailio.cfg.tmpl). Not part of the public API.

Authenticated only by the shared secret in X-Sip-Edge-Secret (compared in constant time); no session, so
no CSRF; not in the OpenAPI schema. Requests are form-encoded (what Kamailio's http_client sends easily),
answers JSON (what its jansson module reads).
"""

from __future__ import annotations

import base64
import hmac
import logging
import time
from urllib.parse import parse_qsl

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from telephony.edge.config import edge_secret
from telephony.edge.routing import InviteRequest
from telephony.services import sip_edge

logger = logging.getLogger("telephony.edge")

SECRET_HEADER = "X-Sip-Edge-Secret"  # noqa: S105 - a header name, not a secret
MAX_EVENTS = 1000


def _authorized(request: HttpRequest) -> bool:
    given = request.headers.get(SECRET_HEADER, "") or _basic_password(request)
    return bool(given) and hmac.compare_digest(given.encode(), edge_secret().encode())


def _basic_password(request: HttpRequest) -> str:
    """The password of HTTP basic credentials: how Kamailio's named HTTP connections (httpcon, the ones it keeps
    open between requests) carry the secret, since they cannot add a header."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(encoded, validate=True).decode().partition(":")[2]
    except (ValueError, UnicodeDecodeError):
        return ""


def internal(view):
    """CSRF-exempt, POST only, and 403 without the shared secret."""

    @csrf_exempt
    @require_POST
    def wrapped(request: HttpRequest):
        if not _authorized(request):
            logger.warning("SIP edge endpoint %s called without the shared secret from %s", request.path,
                           request.META.get("REMOTE_ADDR"))  # fmt: skip
            return JsonResponse({"error": {"code": "forbidden", "message": "Shared secret required."}}, status=403)
        return view(request)

    wrapped.__name__ = view.__name__
    return wrapped


@internal
def route(request: HttpRequest):
    started, cpu = time.perf_counter(), time.thread_time()
    answer = sip_edge.edge_route(InviteRequest.from_post(request.POST))
    if answer.action == "reply":
        logger.info("INVITE %s refused %s: %s", request.POST.get("call_id", ""), answer.code, answer.reason)
    response = JsonResponse(answer.as_json())
    # The decision's own time and CPU (this thread's), for bench/bench_sip.py and anyone tracing slow INVITEs:
    # what the portal spends, apart from the HTTP server's queueing and Kamailio's.
    response["Server-Timing"] = (
        f"decide;dur={(time.perf_counter() - started) * 1000:.2f}, cpu;dur={(time.thread_time() - cpu) * 1000:.2f}"
    )
    return response


@internal
def dial_outcome(request: HttpRequest):
    try:
        code = int(request.POST.get("code") or 500)
    except ValueError:
        code = 500
    if not 100 <= code <= 699:  # not a SIP status: it would not fit the call record's sip_code
        code = 500
    answer = sip_edge.edge_dial_outcome(
        call_id=request.POST.get("call_id", ""),
        code=code,
        canceled=request.POST.get("canceled") == "1",
        at=request.POST.get("at"),
    )
    return JsonResponse(answer.as_json())


@internal
def events(request: HttpRequest):
    # One query string per line (Kamailio's batch); the body is read raw whatever the content type says.
    lines = request.body.decode("utf-8", errors="replace").splitlines()[:MAX_EVENTS]
    parsed = [dict(parse_qsl(line, keep_blank_values=True)) for line in lines if line.strip()]
    applied = sip_edge.edge_call_events(parsed)
    return JsonResponse({"received": len(parsed), "applied": applied})

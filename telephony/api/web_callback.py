"""/api/v1/web-callback: the URL an Acrobits softphone is pointed at (`wcb_url`).

Public on purpose (the softphone has no API key): the request carries the SIP user's credentials, which name
the account. GET with a query string, or POST form-encoded or JSON (`wcb_postData`, `wcb_contentType`). The
answer is 200 with a `message` on success; a failure is non-2xx with a `message`, in the format the request's
Accept asks for (JSON, XML or form-encoded; JSON by default), which the softphone shows to the user.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from telephony.services import web_callback as service

PARAMETERS = [
    OpenApiParameter("username", OpenApiTypes.STR, description="login@domain, or the login with `domain`."),
    OpenApiParameter("domain", OpenApiTypes.STR, description="The SIP domain, when `username` is a bare login."),
    OpenApiParameter("password", OpenApiTypes.STR, description="The SIP password (HTTPS only)."),
    OpenApiParameter("targetNumber", OpenApiTypes.STR, description="The number to call; alias `to`."),
    OpenApiParameter("callbackNumber", OpenApiTypes.STR, description="The number to ring back; alias `callback`."),
]
RESPONSES = {
    200: OpenApiResponse(OpenApiTypes.OBJECT, description="Accepted: `message`, `call_id` of the first leg."),
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="A number is missing or not a number: `message`."),
    401: OpenApiResponse(OpenApiTypes.OBJECT, description="Wrong username or password: `message`."),
    403: OpenApiResponse(OpenApiTypes.OBJECT, description="Not allowed (destination, limit, no caller ID...)."),
    429: OpenApiResponse(OpenApiTypes.OBJECT, description="Too many failed sign-ins; see `Retry-After`."),
}


def _pick(data, *names: str) -> str:
    for name in names:
        value = data.get(name)
        if value not in (None, ""):
            return str(value)
    return ""


def _client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def render(request, status: int, body: dict) -> HttpResponse:
    """The body in the format the softphone asked for: XML or form-encoded if it says so, JSON otherwise."""
    accept = request.META.get("HTTP_ACCEPT", "").lower()
    if "xml" in accept and "json" not in accept:
        inner = "".join(f"<{key}>{escape(str(value))}</{key}>" for key, value in body.items())
        content, content_type = f'<?xml version="1.0" encoding="UTF-8"?><response>{inner}</response>', "application/xml"
    elif "application/x-www-form-urlencoded" in accept and "json" not in accept:
        content, content_type = urlencode(body), "application/x-www-form-urlencoded"
    else:
        content, content_type = json.dumps(body), "application/json"
    response = HttpResponse(content, status=status, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


def _params(request) -> dict:
    """GET: the query string. POST: the JSON or form body (by Content-Type), over the query string."""
    params = dict(request.GET.items())
    if request.method == "POST":
        body = request.body
        content_type = request.META.get("CONTENT_TYPE", "").lower()
        if "json" in content_type or body.lstrip()[:1] == b"{":
            try:
                data = json.loads(body or b"{}")
            except ValueError as exc:
                raise service.WebCallbackRefused(400, "The body is not valid JSON.", "invalid_body") from exc
            if not isinstance(data, dict):
                raise service.WebCallbackRefused(400, "The body must be a JSON object.", "invalid_body")
            params.update({key: value for key, value in data.items() if value is not None})
        else:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


class WebCallbackView(APIView):
    """Acrobits web callback: ring the user back, then connect them to the number they dialed."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def perform_content_negotiation(self, request, force=False):
        # The answer's format follows Acrobits' list (JSON, XML, form), chosen in `render`; DRF's own
        # negotiation would refuse an Accept it has no renderer for before the view runs.
        renderer = self.get_renderers()[0]
        return renderer, renderer.media_type

    @extend_schema(
        summary="Web callback (Acrobits Cloud Softphone): call me back and connect me",
        parameters=PARAMETERS,
        responses=RESPONSES,
        auth=[],
    )
    def get(self, request):
        return self.handle(request._request)

    @extend_schema(
        summary="Web callback with a form-encoded or JSON body (wcb_postData)",
        request={"application/json": OpenApiTypes.OBJECT, "application/x-www-form-urlencoded": OpenApiTypes.OBJECT},
        responses=RESPONSES,
        auth=[],
    )
    def post(self, request):
        return self.handle(request._request)

    def handle(self, request) -> HttpResponse:
        try:
            params = _params(request)
            password = _pick(params, "password", "p")
            if password and settings.WEB_CALLBACK_REQUIRE_HTTPS and not request.is_secure():
                raise service.WebCallbackRefused(403, "Passwords are only accepted over HTTPS.", "https_required")
            user = service.authenticate(
                username=_pick(params, "username", "u", "login"),
                domain=_pick(params, "domain"),
                password=password,
                address=_client_address(request),
            )
            placed = service.web_callback_place(
                sip_user=user,
                target=_pick(params, "targetNumber", "to", "target"),
                callback=_pick(params, "callbackNumber", "callback"),
            )
        except service.WebCallbackRefused as refused:
            response = render(request, refused.status, {"message": refused.message, "code": refused.code})
            if refused.status == 429:
                response["Retry-After"] = str(service.FAILURE_WINDOW_S)
            return response
        message = f"Waiting for the call: {placed.first} rings first, then {placed.second} is connected."
        return render(request, 200, {"message": message, "call_id": str(placed.call.public_id)})


urlpatterns = [path("web-callback", WebCallbackView.as_view(), name="web-callback")]

"""API wiring: the router, pagination, and the one error body every failure uses.

Every error, from validation to a crash, answers
`{"error": {"code": "<machine code>", "message": "<for people>", "fields": {"<field>": ["..."]}}}`.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, pagination, serializers, status
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

logger = logging.getLogger(__name__)

router = DefaultRouter(trailing_slash=False)
router.include_root_view = False
router.include_format_suffixes = False


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error details as {"field": [...], "items.2.number": [...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def _first_code(detail) -> str | None:
    if isinstance(detail, dict):
        for value in detail.values():
            code = _first_code(value)
            if code:
                return code
    elif isinstance(detail, list):
        for value in detail:
            code = _first_code(value)
            if code:
                return code
    elif isinstance(detail, exceptions.ErrorDetail):
        return detail.code
    return None


GENERIC_CODES = (None, "invalid", "required", "null", "blank")


def error_summary(detail) -> tuple[str, str | None, str]:
    """A validation error's (code, field, message) as the error body gives them; field None when it names none.

    For places that report several errors in one answer (a batch's refused items) in the same words.
    """
    fields = _flatten(detail)
    field, messages = next(iter(fields.items()))
    code = _first_code(detail)
    # Field-level codes such as "required" or "invalid" describe the field; the body's code is the kind.
    return (
        ("validation_error" if code in GENERIC_CODES else code),
        (None if field == "non_field_errors" else field),
        messages[0],
    )


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


def exception_handler(exc, context) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, RequestDataTooBig):
        # Django refuses to read a body over DATA_UPLOAD_MAX_MEMORY_SIZE; the client sent too much, not our fault.
        exc = RequestTooLarge(
            f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes, the most one request may carry."
        )
    elif isinstance(exc, DjangoValidationError):
        # Services validate with Django's ValidationError; it becomes the same 400 as a serializer's.
        exc = exceptions.ValidationError(detail=serializers.as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.ValidationError):
        code, field, message = error_summary(exc.detail)
        body = error_body(code, message if field is None else f"{field}: {message}", _flatten(exc.detail))
        return Response(body, status=exc.status_code)

    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        detail = exc.detail
        code = _first_code(detail) or exc.default_code
        if isinstance(exc, exceptions.Throttled):
            code = "rate_limited"
            detail = f"Too many requests. Try again in {headers.get('Retry-After', 'a few')} seconds."
        elif isinstance(exc, exceptions.NotFound):
            code, detail = "not_found", "Not found."
        elif isinstance(exc, exceptions.MethodNotAllowed):
            code = "method_not_allowed"
        fields = _flatten(detail) if isinstance(detail, (dict, list)) else {}
        message = str(detail) if not isinstance(detail, (dict, list)) else next(iter(fields.values()))[0]
        return Response(error_body(code, message, fields), status=exc.status_code, headers=headers)

    logger.exception("Unhandled API error", exc_info=exc)
    return Response(
        error_body("server_error", "Something went wrong on our side; it has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def api_not_found(request, exception=None):
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def api_server_error(request):
    return JsonResponse(error_body("server_error", "Something went wrong on our side; it has been logged."), status=500)


class PagePagination(pagination.PageNumberPagination):
    """page/limit pagination for the account's configuration lists."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


class CursorPagination(pagination.CursorPagination):
    """Opaque cursors for large append-only tables (calls, messages, events): stable under inserts."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500
    ordering = ("-created_at", "-id")


ErrorResponse = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
            },
        )
    },
)

# The responses every authenticated endpoint can give besides its own, for the OpenAPI document.
COMMON_ERRORS = {
    400: OpenApiResponse(ErrorResponse, description="Validation error; `fields` names the offending fields."),
    401: OpenApiResponse(ErrorResponse, description="Missing, unknown, revoked or expired credential."),
    403: OpenApiResponse(ErrorResponse, description="Suspended account, or the credential may not do this."),
    404: OpenApiResponse(ErrorResponse, description="No such object in this account."),
    429: OpenApiResponse(ErrorResponse, description="Rate limited; see `Retry-After`."),
}

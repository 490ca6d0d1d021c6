"""API for call-flow documents: POST /call-flows/validate, which the portal's app editor calls as people type.

A document that does not validate is an answer, not an API error: 200 with `valid: false` and the issues,
each with its line and column. Only a request without a string `xml` is a 400. A document over
CALLFLOW_MAX_BYTES is such an answer too (`document_too_large`); a request body over Django's
DATA_UPLOAD_MAX_MEMORY_SIZE is refused with 413 before it is parsed as JSON.

Validating changes nothing, so viewers and read-only API keys may use it. The viewset has no model and is
mounted with a plain path, not on the router (the router's resources are objects with ids).
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.urls import path
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response

from portal.api import COMMON_ERRORS, ErrorResponse
from telephony import callflow
from tenants.credentials import AccountCredential
from tenants.permissions import AccountSuspended
from tenants.scoping import AccountScopedViewSet


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."


class MayValidate(permissions.BasePermission):
    """Any credential of an active account: validation reads nothing of the account and writes nothing."""

    def has_permission(self, request, view) -> bool:
        credential = request.auth
        if not isinstance(credential, AccountCredential):
            raise exceptions.NotAuthenticated()
        if not credential.account.is_active:
            raise AccountSuspended()
        return True


class StrictStringField(serializers.CharField):
    """A JSON string; DRF's CharField would also take a number and turn it into text."""

    default_error_messages = {"invalid": "Must be a string holding the XML document."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class CallFlowValidateSerializer(serializers.Serializer):
    xml = StrictStringField(
        allow_blank=True,
        trim_whitespace=False,
        help_text="The call-flow document, `<Response>...</Response>`.",
    )


class CallFlowIssueSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A stable machine code, e.g. `unknown_attribute`, `unreachable`.")
    message = serializers.CharField()
    line = serializers.IntegerField(help_text="1-based line of the element concerned.")
    column = serializers.IntegerField(help_text="1-based column of the element's `<`.")
    path = serializers.CharField(
        allow_null=True, help_text="The element's path, e.g. `Response/Gather[0]/DTMF[1]`; null for XML errors."
    )
    attribute = serializers.CharField(allow_null=True, help_text="The attribute concerned, as written, if any.")


class CallFlowValidationSerializer(serializers.Serializer):
    valid = serializers.BooleanField(help_text="False when there is at least one error; warnings do not count.")
    errors = CallFlowIssueSerializer(many=True)
    warnings = CallFlowIssueSerializer(many=True)


_EXAMPLE_XML = (
    '<Response>\n  <Gather numDigits="1" timeout="5s">\n    <Say>Press 1 for sales</Say>\n'
    '    <DTMF value="1"><Dial><To>+12015550123</To></Dial></DTMF>\n  </Gather>\n'
    "  <Hangup/>\n  <Say>Goodbye</Say>\n</Response>"
)

_EXAMPLE_ANSWER = {
    "valid": False,
    "errors": [
        {
            "code": "bad_value",
            "message": "`timeout` on <Gather> must be a whole number of milliseconds, e.g. 5000 for 5 seconds "
            "(got '5s').",
            "line": 2,
            "column": 3,
            "path": "Response/Gather[0]",
            "attribute": "timeout",
        }
    ],
    "warnings": [
        {
            "code": "unreachable",
            "message": "<Say> never run: the <Hangup> on line 6 ends the call.",
            "line": 7,
            "column": 3,
            "path": "Response/Say[0]",
            "attribute": None,
        }
    ],
}


class CallFlowViewSet(AccountScopedViewSet):
    permission_classes = [MayValidate]
    serializer_class = CallFlowValidateSerializer
    pagination_class = None
    filter_backends: list = []

    def initial(self, request, *args, **kwargs):
        # DRF's JSON parser reads the stream without Django's DATA_UPLOAD_MAX_MEMORY_SIZE check; reading the
        # body through Django first applies it (and the parser then reads the buffered copy).
        try:
            request.body  # noqa: B018 - the read is the check
        except RequestDataTooBig:
            raise RequestTooLarge() from None
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="call_flows_validate",
        summary="Validate a call-flow document",
        description=(
            "Checks a call-flow XML document as the call engine would run it: well-formedness and safety limits "
            "(no DTD, size, nesting and element count), every tag and attribute against the language, typed values "
            "(durations in milliseconds, DTMF digits, E.164 numbers and SIP URIs), every URL against the outbound URL "
            "policy, and the rules across elements. An invalid document is a 200 with `valid: false`; errors and "
            "warnings carry the line and column of the element. Warnings (unreachable commands, a Gather with no way "
            "forward, undefined variables, durations that look like seconds) do not make a document invalid."
        ),
        tags=["call-flows"],
        request=CallFlowValidateSerializer,
        responses={
            200: CallFlowValidationSerializer,
            413: OpenApiResponse(ErrorResponse, description="The request body exceeds the server's upload limit."),
            **COMMON_ERRORS,
        },
        examples=[
            OpenApiExample("A document with problems", value={"xml": _EXAMPLE_XML}, request_only=True),
            OpenApiExample("Its answer", value=_EXAMPLE_ANSWER, response_only=True, status_codes=["200"]),
        ],
    )
    def validate(self, request):
        data = CallFlowValidateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = callflow.validate(data.validated_data["xml"])
        body = {
            "valid": result.valid,
            "errors": [issue.as_dict() for issue in result.errors],
            "warnings": [issue.as_dict() for issue in result.warnings],
        }
        return Response(CallFlowValidationSerializer(body).data)


urlpatterns: list = [
    path("call-flows/validate", CallFlowViewSet.as_view({"post": "validate"}), name="call-flow-validate"),
]

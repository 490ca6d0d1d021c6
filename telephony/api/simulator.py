"""API of the simulated switch: POST /simulator/inbound-calls places a test call to one of the account's numbers.

Only while SIMULATOR_ENABLED is on (`make run`, tests; off in production, where the route answers 404).
The call takes the real inbound path (routing, screening, limits, the number's app or SIP target) and runs
on the simulated switch: a 201 names the call it created, accepted or refused (a refusal is a call record
too, with its SIP code and reason). A number that is not one of the account's active numbers is a 400 on
`to`, whether it exists elsewhere or not.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from portal.api import COMMON_ERRORS
from telephony.engine.routing import normalize_called
from telephony.models import PhoneNumber
from telephony.switch.simulated import simulate_inbound_call
from tenants.scoping import AccountScopedViewSet


class SimulatedInboundCallSerializer(serializers.Serializer):
    from_ = serializers.CharField(
        max_length=255, help_text="The caller: an E.164 number, a SIP URI, or anonymous. Screening applies to it."
    )
    to = serializers.CharField(max_length=32, help_text="One of the account's numbers (E.164).")
    digits = serializers.RegexField(
        r"^[0-9*#|]*$",
        max_length=200,
        required=False,
        help_text="Keys the caller presses, one group per Gather, separated by |: `1#|42#`.",
    )
    hangup_after_ms = serializers.IntegerField(
        min_value=0, max_value=4 * 3600 * 1000, required=False, help_text="The caller hangs up after this long."
    )

    def get_fields(self):
        return {("from" if name == "from_" else name): field for name, field in super().get_fields().items()}

    def validate_to(self, value: str) -> str:
        number = normalize_called(value)
        account = self.context["account"]
        if (
            not PhoneNumber.objects.for_account(account)
            .filter(number=number, status=PhoneNumber.Status.ACTIVE)
            .exists()
        ):
            raise serializers.ValidationError("Not one of this account's active numbers.", code="unknown_number")
        return number


class SimulatedCallSerializer(serializers.Serializer):
    call_id = serializers.UUIDField(help_text="The call record (GET /api/v1/calls/{id}).")
    status = serializers.CharField(help_text="ringing for a call that is running; the final state of a refused one.")
    accepted = serializers.BooleanField()
    sip_code = serializers.IntegerField(allow_null=True, help_text="The SIP response of a refused call.")
    reason = serializers.CharField()


class SimulatorViewSet(AccountScopedViewSet):
    serializer_class = SimulatedInboundCallSerializer
    pagination_class = None
    filter_backends: list = []

    def initial(self, request, *args, **kwargs):
        if not settings.SIMULATOR_ENABLED:
            raise exceptions.NotFound()
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="simulator_inbound_calls_create",
        summary="Place a simulated inbound call",
        description=(
            "Only where the simulated switch is enabled (development, tests). The call from `from` to `to` (one of "
            "the account's numbers) goes through the real inbound path and runs on the simulated switch; `digits` "
            "and `hangup_after_ms` say what the caller does. Follow it with GET /api/v1/calls/{call_id}."
        ),
        tags=["simulator"],
        request=SimulatedInboundCallSerializer,
        responses={201: SimulatedCallSerializer, **COMMON_ERRORS},
        examples=[
            OpenApiExample(
                "A caller who presses 1#",
                value={"from": "+12125550100", "to": "+12015550123", "digits": "1#"},
                request_only=True,
            ),
        ],
    )
    def inbound_calls(self, request):
        data = SimulatedInboundCallSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = simulate_inbound_call(
            from_number=values["from"],
            to_number=values["to"],
            digits=values.get("digits"),
            hangup_after_ms=values.get("hangup_after_ms"),
        )
        call, decision = result.call, result.decision
        if call is None:  # the number left the account a moment ago
            raise serializers.ValidationError({"to": [decision.reason]})
        body = {
            "call_id": call.public_id,
            "status": call.status,
            "accepted": call.flow_state != call.FlowState.NONE,
            "sip_code": call.sip_code,
            "reason": call.end_reason or decision.reason,
        }
        return Response(SimulatedCallSerializer(body).data, status=status.HTTP_201_CREATED)


urlpatterns: list = [
    path(
        "simulator/inbound-calls",
        SimulatorViewSet.as_view({"post": "inbound_calls"}),
        name="simulator-inbound-calls",
    ),
]

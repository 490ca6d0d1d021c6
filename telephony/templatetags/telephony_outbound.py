"""Template tags for the call log's "Place a call" form (templates/telephony/includes/outbound_call_form.html)."""

from __future__ import annotations

from django import template

from telephony.models import PhoneNumber

register = template.Library()


@register.simple_tag
def outbound_caller_numbers(account):
    """The account's voice-enabled numbers, the callers a call may be placed from (at most 200 offered)."""
    if account is None:
        return []
    numbers = PhoneNumber.objects.for_account(account).filter(status=PhoneNumber.Status.ACTIVE, voice_enabled=True)
    return list(numbers.order_by("number").values_list("number", flat=True)[:200])


@register.simple_tag
def outbound_test_call_xml() -> str:
    """The form's starting flow: a greeting, then ten minutes on the line (time to try the Hang up button)."""
    from telephony.views.outbound import TEST_CALL_XML

    return TEST_CALL_XML

"""Template tags for the simulated switch's test-call form (templates/telephony/includes/test_call_form.html)."""

from __future__ import annotations

from django import template
from django.conf import settings

from telephony.models import PhoneNumber

register = template.Library()


@register.simple_tag
def simulator_numbers(account, numbers=None):
    """The numbers the form offers (the page's own, e.g. an app's, else the account's voice numbers); None while
    the simulator is disabled, so the form is not shown."""
    if not getattr(settings, "SIMULATOR_ENABLED", False) or account is None:
        return None
    if hasattr(numbers, "all"):  # a page's related manager, e.g. app.numbers
        numbers = numbers.filter(status=PhoneNumber.Status.ACTIVE, voice_enabled=True)
    else:  # nothing given (a missing variable renders as "")
        numbers = PhoneNumber.objects.for_account(account).filter(status=PhoneNumber.Status.ACTIVE, voice_enabled=True)
    return [n.number for n in list(numbers)[:200]]

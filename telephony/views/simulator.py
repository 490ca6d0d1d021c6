"""Portal: place a simulated inbound call (the form in templates/telephony/includes/test_call_form.html)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.urls import NoReverseMatch, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from telephony.engine.routing import normalize_called
from telephony.models import PhoneNumber
from telephony.switch.simulated import simulate_inbound_call
from tenants.scoping import AccountPortalMixin


class TestCallForm(forms.Form):
    from_ = forms.CharField(max_length=255)
    to = forms.CharField(max_length=32)
    digits = forms.RegexField(r"^[0-9*#|]*$", max_length=200, required=False)

    def __init__(self, *args, **kwargs):
        data = kwargs.get("data")
        if data is not None and "from" in data:
            data = data.copy()
            data["from_"] = data["from"]
            kwargs["data"] = data
        super().__init__(*args, **kwargs)


class SimulatedInboundCallView(AccountPortalMixin, View):
    write_required = True
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        if not settings.SIMULATOR_ENABLED:
            raise Http404("The simulated switch is not enabled.")
        back = request.META.get("HTTP_REFERER", "")
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = reverse("call-list", kwargs={"account": self.account.slug})
        form = TestCallForm(data=request.POST)
        if not form.is_valid():
            messages.error(request, "The test call was not placed: check the caller's number and the keys.")
            return HttpResponseRedirect(back)
        to = normalize_called(form.cleaned_data["to"])
        owned = self.scoped(PhoneNumber).filter(number=to, status=PhoneNumber.Status.ACTIVE).exists()
        if not owned:
            messages.error(request, f"{to} is not one of this account's numbers.")
            return HttpResponseRedirect(back)
        result = simulate_inbound_call(
            from_number=form.cleaned_data["from_"], to_number=to, digits=form.cleaned_data["digits"] or None
        )
        call = result.call
        if call is None:
            messages.error(request, result.decision.reason)
            return HttpResponseRedirect(back)
        if call.flow_state == call.FlowState.NONE:
            messages.warning(
                request, f"The call was refused ({call.sip_code or 'answered and hung up'}): {call.end_reason}"
            )
        else:
            messages.success(request, f"Simulated call from {call.from_number} to {call.to_number} placed.")
        try:
            return HttpResponseRedirect(
                reverse("call-detail", kwargs={"account": self.account.slug, "id": call.public_id})
            )
        except NoReverseMatch:  # the call pages are another module's; without them, go back
            return HttpResponseRedirect(back)


urlpatterns = [
    path(
        "a/<slug:account>/simulator/inbound-calls/",
        SimulatedInboundCallView.as_view(),
        name="simulator-inbound-call",
    ),
]

"""Portal: place a call from the call log, hang up a live call from its page, export the call log as CSV.

The same services as the API (telephony/services/outbound.py) and the same export (telephony/exports.py),
with the call log's filters.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.views import View
from django.views.generic import TemplateView

from telephony.exports import call_csv_chunks
from telephony.models import Call
from telephony.services import outbound
from telephony.views.calls import _portal_filterset
from tenants.scoping import AccountPortalMixin

TEST_CALL_XML = '<Response>\n  <Say>This is a test call from the portal.</Say>\n  <Pause length="600000"/>\n</Response>'


class PlaceCallForm(forms.Form):
    from_ = forms.CharField(max_length=255)
    to = forms.CharField(max_length=255)
    xml = forms.CharField(max_length=100_000)

    def __init__(self, *args, **kwargs):
        data = kwargs.get("data")
        if data is not None and "from" in data:
            data = data.copy()
            data["from_"] = data["from"]
            kwargs["data"] = data
        super().__init__(*args, **kwargs)


class CallPlaceView(AccountPortalMixin, View):
    write_required = True
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        back = reverse("call-list", kwargs={"account": self.account.slug})
        form = PlaceCallForm(data=request.POST)
        if not form.is_valid():
            messages.error(request, "The call was not placed: give the caller, the number to call and the flow.")
            return HttpResponseRedirect(back)
        try:
            call = outbound.call_place(
                account=self.account,
                actor=request.user,
                from_=form.cleaned_data["from_"],
                to=form.cleaned_data["to"],
                xml=form.cleaned_data["xml"],
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{field}: {message}" for field, errors in exc.message_dict.items() for message in errors
            )
            messages.error(request, f"The call was not placed. {problems}")
            return HttpResponseRedirect(back)
        if call.is_final:
            messages.warning(request, f"The call failed at once: {call.end_reason}")
        else:
            messages.success(request, f"Call from {call.from_number} to {call.to_number} placed.")
        return HttpResponseRedirect(reverse("call-detail", kwargs={"account": self.account.slug, "id": call.public_id}))


class CallHangupView(AccountPortalMixin, TemplateView):
    """GET: the confirmation page; POST: ask the engine to hang the call up, then back to the call's page."""

    template_name = "telephony/call_confirm_hangup.html"
    write_required = True

    def get(self, request, *args, **kwargs):
        call = self.get_object_or_404(Call.objects.all(), self.kwargs["id"])
        if call.is_final:
            messages.info(request, "The call has already ended.")
            return HttpResponseRedirect(self._back(call))
        return self.render_to_response(self.get_context_data(call=call))

    def post(self, request, *args, **kwargs):
        call = self.get_object_or_404(Call.objects.all(), self.kwargs["id"])
        try:
            outbound.call_control(
                account=self.account,
                actor=request.user,
                call=call,
                action="hangup",
                reason=f"Hung up from the portal by {request.user.email}.",
            )
        except outbound.CallFinished as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Hanging up: the call ends within moments.")
        return HttpResponseRedirect(self._back(call))

    def _back(self, call: Call) -> str:
        return reverse("call-detail", kwargs={"account": self.account.slug, "id": call.public_id})


class CallExportView(AccountPortalMixin, View):
    http_method_names = ["get"]

    def get(self, request, *args, **kwargs):
        params = request.GET.copy()
        params.pop("before", None)
        filterset = _portal_filterset(self.account)(params, queryset=self.scoped(Call))
        queryset = filterset.qs if filterset.is_valid() else self.scoped(Call).none()
        response = StreamingHttpResponse(call_csv_chunks(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="calls-{self.account.slug}.csv"'
        return response


def _route(suffix: str, view, name: str):
    return path(f"a/<slug:account>/{suffix}", view.as_view(), name=name)


# Before the call pages' `calls/<id>/`, which would otherwise take "place" and "export" for ids.
urlpatterns = [
    _route("calls/place/", CallPlaceView, "call-place"),
    _route("calls/export/", CallExportView, "call-export"),
    _route("calls/<str:id>/hangup/", CallHangupView, "call-hangup"),
]

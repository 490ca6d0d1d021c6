"""Portal pages for bulk calls: the list, a new one from a CSV (or pasted numbers), live progress, results."""

from __future__ import annotations

import csv
import io
import zoneinfo

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.views import View
from django.views.generic import FormView, TemplateView

from telephony.filtersets.bulk import BulkCallFilterSet
from telephony.models import BulkCall, CallControlApp
from telephony.models.bulk import WEEKDAYS
from telephony.services import bulk_calls as services
from telephony.views.sip.common import ObjectMixin, active_numbers, add_service_errors, split_list
from tenants.scoping import AccountPortalMixin
from tenants.views import ScopedListView

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
# Header cells that name the destination column of an uploaded CSV; without one, the first column is used.
DESTINATION_HEADERS = {"destination", "destinations", "number", "phone", "phone_number", "to", "e164"}


def destinations_from_csv(data: bytes) -> list[str]:
    """The destinations of an uploaded CSV: the named column (or the first), one per row, the header left out."""
    text = data.decode("utf-8-sig", errors="replace")
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(cell.strip() for cell in row)]
    if not rows:
        return []
    column = 0
    header = [cell.strip().lower() for cell in rows[0]]
    named = [index for index, cell in enumerate(header) if cell in DESTINATION_HEADERS]
    if named:
        column, rows = named[0], rows[1:]
    elif services.normalize_destination(rows[0][0]) is None and not any(ch.isdigit() for ch in rows[0][0]):
        rows = rows[1:]  # a header row with other names
    return [row[column].strip() if column < len(row) else "" for row in rows]


class BulkCallForm(forms.Form):
    name = forms.CharField(required=False, max_length=200)
    from_number = forms.ChoiceField(label="Caller ID", help_text="Every call and retry shows this number.")
    destinations_file = forms.FileField(
        required=False, label="Destinations (CSV file)", help_text="One number per row; a header row is fine."
    )
    destinations_text = forms.CharField(
        required=False,
        label="Or paste destinations",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="E.164 numbers, separated by new lines, commas or spaces.",
    )
    app = forms.ChoiceField(required=False, label="App to run when answered")
    xml = forms.CharField(required=False, label="Or a flow document (XML)", widget=forms.Textarea(attrs={"rows": 4}))
    url = forms.CharField(required=False, label="Or a URL that returns the flow", max_length=2000)
    calls_per_second = forms.FloatField(initial=1.0, min_value=0.01, max_value=services.MAX_CALLS_PER_SECOND)
    max_concurrent = forms.IntegerField(initial=10, min_value=1, max_value=services.MAX_CONCURRENT)
    timeout = forms.IntegerField(initial=30, min_value=1, max_value=600, label="Ring time (seconds)")
    window_days = forms.MultipleChoiceField(
        choices=[(day, day.capitalize()) for day in WEEKDAYS],
        initial=list(WEEKDAYS[:5]),
        widget=forms.CheckboxSelectMultiple,
        label="Calling days",
    )
    window_start = forms.CharField(required=False, initial="09:00", label="From (HH:MM)")
    window_end = forms.CharField(required=False, initial="18:00", label="Until (HH:MM)")
    time_zone = forms.CharField(initial="UTC", help_text="e.g. America/New_York")
    busy_attempts = forms.IntegerField(required=False, min_value=1, max_value=10, label="Busy: calls in all")
    busy_delay = forms.IntegerField(required=False, min_value=0, initial=300, label="Busy: seconds between")
    no_answer_attempts = forms.IntegerField(required=False, min_value=1, max_value=10, label="No answer: calls in all")
    no_answer_delay = forms.IntegerField(required=False, min_value=0, initial=600, label="No answer: seconds between")
    failed_attempts = forms.IntegerField(required=False, min_value=1, max_value=10, label="Failed: calls in all")
    failed_delay = forms.IntegerField(required=False, min_value=0, initial=600, label="Failed: seconds between")
    do_not_call = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Numbers to skip (not called at all)."
    )

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.account = account
        numbers = active_numbers(account).filter(voice_enabled=True)
        self.fields["from_number"].choices = [(n.number, n.number) for n in numbers]
        apps = CallControlApp.objects.for_account(account).order_by("name")
        self.fields["app"].choices = [("", "—")] + [(str(a.public_id), a.name) for a in apps]

    def clean_time_zone(self):
        value = self.cleaned_data["time_zone"].strip()
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError("Not a time zone name, e.g. America/New_York.") from None
        return value

    def clean(self):
        data = super().clean()
        upload = data.get("destinations_file")
        destinations = []
        if upload is not None:
            if upload.size > MAX_UPLOAD_BYTES:
                self.add_error("destinations_file", "The file is over 8 MB.")
                return data
            destinations = destinations_from_csv(upload.read())
        if data.get("destinations_text"):
            destinations += split_list(data["destinations_text"])
        if not destinations:
            self.add_error("destinations_file", "Upload a CSV or paste at least one number.")
        data["destinations"] = destinations
        return data

    def changes(self) -> dict:
        data = self.cleaned_data
        app = None
        if data.get("app"):
            app = CallControlApp.objects.for_account(self.account).filter(public_id=data["app"]).first()
        rules = {}
        for outcome, prefix in (("busy", "busy"), ("no-answer", "no_answer"), ("failed", "failed")):
            if data.get(f"{prefix}_attempts"):
                rules[outcome] = {"attempts": data[f"{prefix}_attempts"], "delay_s": data.get(f"{prefix}_delay") or 0}
        return {
            "name": data.get("name", ""),
            "from_": data["from_number"],
            "destinations": data["destinations"],
            "app": app,
            "xml": data.get("xml", ""),
            "url": data.get("url", ""),
            "calls_per_second": data["calls_per_second"],
            "max_concurrent": data["max_concurrent"],
            "timeout_s": data["timeout"],
            "window_days": data["window_days"],
            "window_start": data.get("window_start", ""),
            "window_end": data.get("window_end", ""),
            "time_zone": data["time_zone"],
            "retry_rules": rules,
            "do_not_call": split_list(data.get("do_not_call", "")),
        }


class BulkCallListView(ScopedListView):
    model = BulkCall
    filterset_class = BulkCallFilterSet
    template_name = "telephony/bulkcall_list.html"


class BulkCallCreateView(AccountPortalMixin, FormView):
    write_required = True
    form_class = BulkCallForm
    template_name = "telephony/bulkcall_form.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "account": self.account}

    def form_valid(self, form):
        try:
            bulk = services.bulk_call_create(account=self.account, actor=self.request.user, **form.changes())
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        note = f" {bulk.invalid_count} destination(s) were refused; see below." if bulk.invalid_count else ""
        messages.success(self.request, f"The bulk call to {bulk.total} destination(s) was started.{note}")
        return redirect("bulkcalls-detail", account=self.account.slug, id=bulk.public_id)


def progress(bulk: BulkCall) -> dict:
    payload = services.bulk_call_payload(bulk)
    total = bulk.total or 1
    payload["percent"] = round(100 * payload["done"] / total)
    return payload


class BulkCallDetailView(ObjectMixin, AccountPortalMixin, TemplateView):
    template_name = "telephony/bulkcall_detail.html"
    object_queryset = BulkCall.objects.select_related("app")

    def get_context_data(self, **kwargs):
        bulk = self.get_page_object()
        shown = progress(bulk)
        counts = {name.replace("-", "_"): value for name, value in shown["counts"].items()}
        outside = bulk.status == BulkCall.Status.RUNNING and not services.in_window(bulk, timezone.now())
        return super().get_context_data(
            bulk=bulk, progress=shown, counts=counts, invalid=bulk.invalid[:200], outside_window=outside, **kwargs
        )


class BulkCallProgressView(ObjectMixin, AccountPortalMixin, View):
    """The progress bar's JSON, polled by portal/static/portal/bulk.js."""

    object_queryset = BulkCall.objects.all()

    def get(self, request, *args, **kwargs):
        response = JsonResponse(progress(self.get_page_object()))
        response["Cache-Control"] = "no-store"
        return response


class BulkCallResultsView(ObjectMixin, AccountPortalMixin, View):
    object_queryset = BulkCall.objects.all()

    def get(self, request, *args, **kwargs):
        bulk = self.get_page_object()
        response = StreamingHttpResponse(services.bulk_call_results_csv(bulk), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="bulk-call-{bulk.public_id}.csv"'
        return response


class BulkCallActionView(ObjectMixin, AccountPortalMixin, TemplateView):
    """Pause and resume are plain POSTs (buttons on the page); cancel asks first (GET shows the confirmation)."""

    write_required = True
    template_name = "confirm_delete.html"
    object_queryset = BulkCall.objects.all()
    service = None
    done = ""

    def get(self, request, *args, **kwargs):
        if self.done != "canceled":
            return redirect("bulkcalls-detail", account=self.account.slug, id=self.get_page_object().public_id)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        bulk = self.get_page_object()
        return super().get_context_data(
            object=bulk,
            title=f"Cancel {bulk}?",
            explanation="Destinations not called yet are never called; calls in progress finish. This cannot be "
            "undone (pause instead to stop for a while).",
            confirm_label="Cancel bulk call",
            cancel_url=reverse("bulkcalls-detail", kwargs={"account": self.account.slug, "id": bulk.public_id}),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        bulk = self.get_page_object()
        try:
            type(self).service(account=self.account, actor=request.user, bulk_call=bulk)
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
        else:
            messages.success(request, f"The bulk call was {self.done}.")
        return redirect("bulkcalls-detail", account=self.account.slug, id=bulk.public_id)


class BulkCallPauseView(BulkCallActionView):
    service = services.bulk_call_pause
    done = "paused"


class BulkCallResumeView(BulkCallActionView):
    service = services.bulk_call_resume
    done = "resumed"


class BulkCallCancelView(BulkCallActionView):
    service = services.bulk_call_cancel
    done = "canceled"


def _route(suffix: str, view, name: str):
    return path(f"a/<slug:account>/{suffix}", view.as_view(), name=name)


urlpatterns = [
    _route("bulk-calls/", BulkCallListView, "bulkcalls-list"),
    _route("bulk-calls/new/", BulkCallCreateView, "bulkcalls-create"),
    _route("bulk-calls/<str:id>/", BulkCallDetailView, "bulkcalls-detail"),
    _route("bulk-calls/<str:id>/progress.json", BulkCallProgressView, "bulkcalls-progress"),
    _route("bulk-calls/<str:id>/results.csv", BulkCallResultsView, "bulkcalls-results"),
    _route("bulk-calls/<str:id>/pause/", BulkCallPauseView, "bulkcalls-pause"),
    _route("bulk-calls/<str:id>/resume/", BulkCallResumeView, "bulkcalls-resume"),
    _route("bulk-calls/<str:id>/cancel/", BulkCallCancelView, "bulkcalls-cancel"),
]

"""Portal pages for call-control apps: the list, the app (its flow, numbers and history), the flow editor that
validates as one types, the versions of the flow with a diff against the current one, and restore."""

from __future__ import annotations

import difflib

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views import View
from django.views.generic import FormView, TemplateView

from telephony import callflow
from telephony.filtersets.apps import CallControlAppFilterSet
from telephony.models import Call, CallControlApp
from telephony.models.apps import HttpMethod
from telephony.services import apps as services
from telephony.services.sip.rules import MAX_CHANNEL_LIMIT
from telephony.views.sip.common import ObjectMixin, active_numbers, add_service_errors, audit_for
from tenants.scoping import AccountPortalMixin
from tenants.views import ScopedListView

# --- The form --------------------------------------------------------------------------------------


def _time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(services.time_zones())]


class AppForm(forms.Form):
    """Shape only: the rules (a valid document, the URL policy, ranges) are the service's, shown back inline."""

    # The browser must not demand the fields of the mode that was not chosen.
    use_required_attribute = False

    name = forms.CharField(max_length=100, help_text="For you, e.g. “Main IVR”.")
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    mode = forms.ChoiceField(
        choices=[
            ("xml", "Flow document: write the call flow here"),
            ("url", "Flow URL: your server returns the flow for each call"),
        ],
        initial="xml",
        widget=forms.RadioSelect(attrs={"data-app-mode": ""}),
        label="How calls get their flow",
    )
    xml = forms.CharField(
        required=False,
        strip=False,
        label="Flow document",
        widget=forms.Textarea(
            attrs={
                "rows": 18,
                "class": "mono",
                "spellcheck": "false",
                "autocomplete": "off",
                "autocapitalize": "off",
                "wrap": "off",
                "data-callflow-editor": "",
                "data-testid": "callflow-editor",
            }
        ),
        help_text="XML, <code>&lt;Response&gt;…&lt;/Response&gt;</code>, checked as you type. Every save keeps a "
        "version you can compare and restore.",
    )
    call_flow_url = forms.CharField(
        required=False, max_length=2000, label="Flow URL", help_text="Called for each call; it answers the XML."
    )
    call_flow_method = forms.ChoiceField(choices=HttpMethod.choices, initial="POST", label="Flow URL method")
    call_flow_timeout_ms = forms.IntegerField(
        initial=5000, label="Flow URL timeout (ms)", help_text="100 to 30000 milliseconds."
    )
    fallback_url = forms.CharField(
        required=False, max_length=2000, label="Fallback URL", help_text="Used when the flow URL fails or times out."
    )
    webhook_url = forms.CharField(
        required=False, max_length=2000, label="Webhook URL", help_text="Receives the app's call events."
    )
    webhook_method = forms.ChoiceField(choices=HttpMethod.choices, initial="POST", label="Webhook method")
    webhook_timeout_ms = forms.IntegerField(initial=5000, label="Webhook timeout (ms)", help_text="100 to 30000.")
    status_callback_url = forms.CharField(
        required=False, max_length=2000, label="Status callback URL", help_text="Told when a call's status changes."
    )
    status_callback_method = forms.ChoiceField(
        choices=HttpMethod.choices, initial="POST", label="Status callback method"
    )
    status_callback_events = forms.MultipleChoiceField(
        required=False,
        choices=[(name, name.capitalize()) for name in services.STATUS_CALLBACK_EVENTS],
        widget=forms.CheckboxSelectMultiple,
        label="Status callback events",
        help_text="None chosen: completed only.",
    )
    auto_answer = forms.BooleanField(required=False, initial=True, label="Answer calls before the flow starts")
    max_call_length_s = forms.IntegerField(
        initial=4 * 3600, label="Longest call (seconds)", help_text="1 to 86400 (24 hours); longer calls are ended."
    )
    channel_limit = forms.IntegerField(
        required=False, label="Channel limit", help_text=f"Concurrent calls, 1 to {MAX_CHANNEL_LIMIT}; empty: no limit."
    )
    time_zone = forms.ChoiceField(initial="UTC", label="Time zone", help_text="For &lt;Scheduler&gt; windows.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = _time_zone_choices()

    def clean_xml(self) -> str:
        # Browsers send textarea text with CRLF line ends; the stored document (and its versions) use LF, so an
        # untouched document compares equal and saving it makes no new version.
        return self.cleaned_data["xml"].replace("\r\n", "\n")

    def changes(self, initial: dict | None = None) -> dict:
        data = dict(self.cleaned_data)
        if initial is not None:
            data = {name: value for name, value in data.items() if initial.get(name) != value}
        return data


def _initial(app: CallControlApp) -> dict:
    return {
        name: (list(value) if isinstance(value := getattr(app, name), list) else value) for name in services.APP_FIELDS
    }


def _editor_context(view) -> dict:
    return {"validate_url": reverse("app-validate", kwargs={"account": view.account.slug})}


# --- Pages -----------------------------------------------------------------------------------------


class AppListView(ScopedListView):
    model = CallControlApp
    filterset_class = CallControlAppFilterSet
    template_name = "telephony/app_list.html"

    def get_queryset(self):
        return super().get_queryset().defer("xml").annotate(number_count=Count("numbers")).order_by("name", "id")


class AppCreateView(AccountPortalMixin, FormView):
    write_required = True
    form_class = AppForm
    template_name = "telephony/app_form.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(**_editor_context(self), **kwargs)

    def form_valid(self, form):
        try:
            saved = services.app_create(account=self.account, actor=self.request.user, **form.changes())
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        _flash_saved(self.request, saved, "created")
        return redirect("app-detail", account=self.account.slug, id=saved.app.public_id)


def _flash_saved(request, saved: services.SavedApp, verb: str) -> None:
    messages.success(request, f"The app “{saved.app.name}” was {verb}.")
    for issue in saved.xml_warnings[:5]:
        messages.warning(request, f"Flow warning, line {issue.line}, column {issue.column}: {issue.message}")


class AppDetailView(ObjectMixin, AccountPortalMixin, TemplateView):
    template_name = "telephony/app_detail.html"
    object_queryset = CallControlApp.objects.all()

    def get_context_data(self, **kwargs):
        app = self.get_page_object()
        assignable = (
            active_numbers(self.account)
            .exclude(call_control_app=app)
            .select_related("call_control_app", "sip_connection", "sip_user__domain")[:500]
        )
        return super().get_context_data(
            app=app,
            numbers=active_numbers(self.account).filter(call_control_app=app),
            assignable=assignable,
            versions=app.versions.defer("xml").order_by("-number")[:5],
            calls=Call.objects.for_account(self.account).filter(app=app).order_by("-created_at", "-id")[:10],
            audit=audit_for(self.account, app),
            **kwargs,
        )


class AppEditView(ObjectMixin, AccountPortalMixin, FormView):
    write_required = True
    form_class = AppForm
    template_name = "telephony/app_form.html"
    object_queryset = CallControlApp.objects.all()

    def get_initial(self):
        return _initial(self.get_page_object())

    def get_context_data(self, **kwargs):
        return super().get_context_data(app=self.get_page_object(), **_editor_context(self), **kwargs)

    def form_valid(self, form):
        app = self.get_page_object()
        try:
            saved = services.app_update(
                account=self.account, actor=self.request.user, app=app, **form.changes(self.get_initial())
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        _flash_saved(self.request, saved, "saved")
        return redirect("app-detail", account=self.account.slug, id=app.public_id)


class AppDeleteView(ObjectMixin, AccountPortalMixin, TemplateView):
    write_required = True
    template_name = "confirm_delete.html"
    object_queryset = CallControlApp.objects.all()

    def get_context_data(self, **kwargs):
        app = self.get_page_object()
        count = app.numbers.count()
        return super().get_context_data(
            object=app,
            title=f"Delete the app “{app.name}”?",
            explanation=(
                f"New calls stop running it at once. Its {count} number{'s' if count != 1 else ''} will have no "
                "voice target, and its flow versions are deleted with it. Its call records stay."
            ),
            confirm_label="Delete app",
            cancel_url=reverse("app-detail", kwargs={"account": self.account.slug, "id": app.public_id}),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        app = self.get_page_object()
        services.app_delete(account=self.account, actor=request.user, app=app)
        messages.success(request, f"The app “{app.name}” was deleted.")
        return redirect("app-list", account=self.account.slug)


class AppNumbersView(ObjectMixin, AccountPortalMixin, View):
    """The assign and unassign buttons of the app page post here."""

    write_required = True
    object_queryset = CallControlApp.objects.all()

    def get(self, request, *args, **kwargs):
        return redirect("app-detail", account=self.account.slug, id=self.get_page_object().public_id)

    def post(self, request, *args, **kwargs):
        app = self.get_page_object()
        add, remove = request.POST.getlist("add"), request.POST.getlist("remove")
        if add or remove:
            try:
                services.app_numbers_change(account=self.account, actor=request.user, app=app, add=add, remove=remove)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                parts = [f"{len(add)} assigned" if add else "", f"{len(remove)} unassigned" if remove else ""]
                messages.success(request, f"Numbers: {', '.join(p for p in parts if p)}.")
        else:
            messages.error(request, "Choose at least one number.")
        return redirect(reverse("app-detail", kwargs={"account": self.account.slug, "id": app.public_id}) + "#numbers")


def _diff_lines(old: str, new: str, old_label: str, new_label: str) -> list[tuple[str, str]]:
    """A unified diff as (kind, text) lines; the template escapes the text (it is the customer's XML)."""
    lines = []
    for line in difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=old_label, tofile=new_label, lineterm="", n=3
    ):
        if line.startswith(("---", "+++")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "added"
        elif line.startswith("-"):
            kind = "removed"
        else:
            kind = "same"
        lines.append((kind, line))
    return lines


class AppVersionsView(ObjectMixin, AccountPortalMixin, TemplateView):
    """Every saved version of the flow; `?version=N` compares version N with the current document."""

    template_name = "telephony/app_versions.html"
    object_queryset = CallControlApp.objects.all()

    def get_context_data(self, **kwargs):
        app = self.get_page_object()
        versions = list(app.versions.defer("xml").order_by("-number")[:500])
        chosen = self._chosen_number(app)
        selected = app.versions.filter(number=chosen).first() if chosen else None
        diff = []
        if selected is not None:
            diff = _diff_lines(
                selected.xml, app.xml, f"version {selected.number}", f"version {app.xml_version} (current)"
            )
        return super().get_context_data(app=app, versions=versions, selected=selected, diff=diff, **kwargs)

    def _chosen_number(self, app: CallControlApp) -> int | None:
        raw = self.request.GET.get("version", "")
        if raw.isdigit() and len(raw) < 10:
            return int(raw)
        # By default, what the last save changed: the version before the current one.
        return app.xml_version - 1 if app.xml_version > 1 else None


class AppRestoreView(ObjectMixin, AccountPortalMixin, TemplateView):
    """Confirm (GET ?version=N), then restore (POST version=N)."""

    write_required = True
    template_name = "confirm_delete.html"
    object_queryset = CallControlApp.objects.all()

    def _version_number(self, data) -> int | None:
        raw = data.get("version", "")
        return int(raw) if raw.isdigit() and len(raw) < 10 else None

    def _versions_url(self, app) -> str:
        return reverse("app-versions", kwargs={"account": self.account.slug, "id": app.public_id})

    def get_context_data(self, **kwargs):
        app = self.get_page_object()
        number = self._version_number(self.request.GET)
        return super().get_context_data(
            object=app,
            title=f"Restore version {number} of “{app.name}”?",
            explanation=(
                f"Its flow document becomes the current one, saved as version {app.xml_version + 1}, and new calls "
                "run it at once. The current document stays in the history."
            ),
            confirm_label=f"Restore version {number}",
            cancel_url=self._versions_url(app) + (f"?version={number}" if number else ""),
            **kwargs,
        )

    def get(self, request, *args, **kwargs):
        app = self.get_page_object()
        number = self._version_number(request.GET)
        if number is None or not app.versions.filter(number=number).exists():
            messages.error(request, "Choose a version to restore.")
            return redirect(self._versions_url(app))
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        app = self.get_page_object()
        number = self._version_number(request.POST) or self._version_number(request.GET)
        if number is None:
            messages.error(request, "Choose a version to restore.")
            return redirect(self._versions_url(app))
        try:
            saved = services.app_version_restore(account=self.account, actor=request.user, app=app, number=number)
        except ValidationError as exc:
            messages.error(request, f"Version {number} was not restored: {' '.join(exc.messages)}")
            return redirect(self._versions_url(app))
        _flash_saved(request, saved, f"restored to version {number}")
        return redirect(self._versions_url(app))


class AppValidateView(AccountPortalMixin, View):
    """The editor's as-you-type check (POST, CSRF-checked). It writes nothing, so viewers may use it too."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        xml = request.POST.get("xml")
        if xml is None:
            return JsonResponse({"error": "Send the document as the form field `xml`."}, status=400)
        result = callflow.validate(xml.replace("\r\n", "\n"))
        response = JsonResponse(
            {
                "valid": result.valid,
                "errors": [issue.as_dict() for issue in result.errors],
                "warnings": [issue.as_dict() for issue in result.warnings],
            }
        )
        response["Cache-Control"] = "no-store"
        return response


def _route(suffix: str, view, name: str):
    return path(f"a/<slug:account>/{suffix}", view.as_view(), name=name)


urlpatterns = [
    _route("apps/", AppListView, "app-list"),
    _route("apps/new/", AppCreateView, "app-create"),
    _route("apps/validate/", AppValidateView, "app-validate"),
    _route("apps/<str:id>/", AppDetailView, "app-detail"),
    _route("apps/<str:id>/edit/", AppEditView, "app-edit"),
    _route("apps/<str:id>/delete/", AppDeleteView, "app-delete"),
    _route("apps/<str:id>/numbers/", AppNumbersView, "app-numbers"),
    _route("apps/<str:id>/versions/", AppVersionsView, "app-versions"),
    _route("apps/<str:id>/restore/", AppRestoreView, "app-restore"),
]

"""Portal pages for TN profiles, under /a/<account>/tn-profiles/.

The profile page carries everything about one profile: both lists (each with its own filters and pages),
the add-entries and CSV-import forms, the test-a-caller box and the numbers using it. The forms post to
their own URLs, each a subclass of the page that shows the page again with the form's errors or result,
so a mistake is fixed where it was made.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect
from django.urls import NoReverseMatch, path, reverse
from django.views.generic import FormView, TemplateView

from telephony.filtersets.profiles import CallerListEntryFilterSet, TnProfileFilterSet
from telephony.models import CallerListEntry, PhoneNumber, TnProfile
from telephony.screening import screen_caller_for_profile
from telephony.services import profiles as services
from tenants.models import AuditEntry
from tenants.scoping import AccountPortalMixin
from tenants.views import ScopedListView, _add_errors

LISTS = {CallerListEntry.List.BLACKLIST: "bl", CallerListEntry.List.WHITELIST: "wl"}
ENTRIES_PER_PAGE = 25
NUMBERS_SHOWN = 50
MAX_UPLOAD_BYTES = 5 * 1024 * 1024

# --- Forms -------------------------------------------------------------------------------------------


class TnProfileForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    block_action = forms.ChoiceField(
        choices=TnProfile.BlockAction.choices,
        initial=TnProfile.BlockAction.REJECT,
        help_text="What a blocked caller gets.",
    )


class AddEntriesForm(forms.Form):
    list_type = forms.ChoiceField(choices=CallerListEntry.List.choices, label="List")
    entries = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "+12015550123, robocaller\n+1900*\nanonymous"}),
        label="Caller IDs",
        help_text="One per line: an E.164 number, a prefix such as +1900*, or anonymous, optionally followed by "
        "a comma and a note. All lines are added, or none if one is wrong.",
    )

    def items(self) -> tuple[list[dict], list[int]]:
        """The non-blank lines as list items, and the line number of each."""
        items, lines = [], []
        for number, line in enumerate(self.cleaned_data["entries"].splitlines(), start=1):
            if not line.strip():
                continue
            caller_id, comma, note = line.partition(",")
            items.append({"caller_id": caller_id, "note": note if comma else None})
            lines.append(number)
        return items, lines


class ImportEntriesForm(forms.Form):
    list_type = forms.ChoiceField(choices=CallerListEntry.List.choices, label="List")
    file = forms.FileField(label="CSV file", help_text="Columns caller_id,note (a header row is optional).")

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError("The file is larger than 5 MB; split it and import the parts.")
        try:
            return upload.read().decode("utf-8-sig")  # -sig: spreadsheets often start UTF-8 files with a BOM
        except UnicodeDecodeError as exc:
            raise ValidationError("The file is not UTF-8 text. Save it as CSV (UTF-8) and try again.") from exc


class ScreeningTestForm(forms.Form):
    caller_id = forms.CharField(
        max_length=100,
        required=False,
        strip=False,
        label="Caller ID",
        help_text="As the network would send it; leave empty for a withheld number.",
    )


# --- Pages -------------------------------------------------------------------------------------------


class TnProfileListView(ScopedListView):
    model = TnProfile
    filterset_class = TnProfileFilterSet
    template_name = "telephony/tnprofile_list.html"

    def get_queryset(self):
        active = Q(numbers__status=PhoneNumber.Status.ACTIVE)
        return super().get_queryset().annotate(numbers_count=Count("numbers", filter=active)).order_by("name", "id")


class TnProfileCreateView(AccountPortalMixin, FormView):
    write_required = True
    form_class = TnProfileForm
    template_name = "telephony/tnprofile_form.html"

    def form_valid(self, form):
        try:
            profile = services.tn_profile_create(account=self.account, actor=self.request.user, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"The TN profile “{profile.name}” was created. Now add callers to its lists.")
        return redirect("tnprofile-detail", account=self.account.slug, id=profile.public_id)


class ProfileMixin(AccountPortalMixin):
    """Pages about one profile, found by its public id within the account."""

    def get_profile(self) -> TnProfile:
        if not hasattr(self, "_profile"):
            self._profile = self.get_object_or_404(TnProfile, self.kwargs["id"])
        return self._profile

    def detail_url(self) -> str:
        return reverse("tnprofile-detail", kwargs={"account": self.account.slug, "id": self.get_profile().public_id})


class TnProfileDetailView(ProfileMixin, TemplateView):
    template_name = "telephony/tnprofile_detail.html"

    def get_context_data(self, **kwargs):
        profile = self.get_profile()
        kwargs.setdefault("add_form", AddEntriesForm(initial={"list_type": CallerListEntry.List.BLACKLIST}))
        kwargs.setdefault("import_form", ImportEntriesForm(initial={"list_type": CallerListEntry.List.BLACKLIST}))
        kwargs.setdefault("test_form", ScreeningTestForm())
        numbers = self.scoped(PhoneNumber).filter(tn_profile=profile, status=PhoneNumber.Status.ACTIVE)
        audit = self.scoped(AuditEntry).filter(object_type="tnprofile", object_id=str(profile.public_id))
        return super().get_context_data(
            profile=profile,
            lists=[self._list_context(profile, list_type, prefix) for list_type, prefix in LISTS.items()],
            numbers=[(n, self._number_url(n)) for n in numbers.order_by("number")[:NUMBERS_SHOWN]],
            numbers_count=numbers.count(),
            audit=audit.order_by("-created_at", "-id")[:20],
            **kwargs,
        )

    def _list_context(self, profile: TnProfile, list_type: str, prefix: str) -> dict:
        entries = CallerListEntry.objects.filter(profile=profile, list_type=list_type).order_by("value", "id")
        # Each list has its own prefixed filter and page parameters, so both can be filtered and paged at once.
        filterset = CallerListEntryFilterSet(self.request.GET, queryset=entries, prefix=prefix)
        page_param = f"{prefix}_page"
        page = Paginator(filterset.qs, ENTRIES_PER_PAGE).get_page(self.request.GET.get(page_param))
        own = {page_param, *(f"{prefix}-{name}" for name in filterset.filters)}
        return {
            "list_type": list_type,
            "prefix": prefix,
            "label": CallerListEntry.List(list_type).label,
            "count": getattr(profile, f"{list_type}_count"),
            "filter": filterset,
            "filtered": any(self.request.GET.get(name) for name in own),
            "page_obj": page,
            # The other list's filters and page ride along as hidden fields, so filtering one keeps the other.
            "other_params": [(k, v) for k, v in self.request.GET.items() if k not in own],
            "reset_url": self._query_url(drop=own),
            "previous_url": self._query_url(**{page_param: page.previous_page_number()}) if page.has_previous() else "",
            "next_url": self._query_url(**{page_param: page.next_page_number()}) if page.has_next() else "",
        }

    def _query_url(self, drop: set[str] = frozenset(), **params) -> str:
        query = self.request.GET.copy()
        for name in drop:
            query.pop(name, None)
        for name, value in params.items():
            query[name] = value
        return f"{self.detail_url()}?{query.urlencode()}" if query else self.detail_url()

    def _number_url(self, number: PhoneNumber) -> str | None:
        try:
            return reverse("number-detail", kwargs={"account": self.account.slug, "id": number.public_id})
        except NoReverseMatch:  # the numbers pages are another area's; the list works without links
            return None


class TnProfileEditView(ProfileMixin, FormView):
    write_required = True
    form_class = TnProfileForm
    template_name = "telephony/tnprofile_form.html"

    def get_initial(self):
        profile = self.get_profile()
        return {"name": profile.name, "description": profile.description, "block_action": profile.block_action}

    def get_context_data(self, **kwargs):
        return super().get_context_data(profile=self.get_profile(), **kwargs)

    def form_valid(self, form):
        try:
            services.tn_profile_update(
                account=self.account, actor=self.request.user, profile=self.get_profile(), **form.cleaned_data
            )
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "The TN profile was saved.")
        return redirect(self.detail_url())


class TnProfileDeleteView(ProfileMixin, TemplateView):
    write_required = True
    template_name = "telephony/tnprofile_confirm_delete.html"

    def get_context_data(self, **kwargs):
        profile = self.get_profile()
        numbers = self.scoped(PhoneNumber).filter(tn_profile=profile, status=PhoneNumber.Status.ACTIVE)
        return super().get_context_data(
            profile=profile, numbers_count=numbers.count(), cancel_url=self.detail_url(), **kwargs
        )

    def post(self, request, *args, **kwargs):
        profile = self.get_profile()
        try:
            detached = services.tn_profile_delete(
                account=self.account,
                actor=request.user,
                profile=profile,
                detach_numbers=request.POST.get("detach_numbers") == "on",
            )
        except services.ProfileInUse as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("tnprofile-delete", account=self.account.slug, id=profile.public_id)
        note = f" It was taken off {detached} number{'s' if detached != 1 else ''}." if detached else ""
        messages.success(request, f"The TN profile “{profile.name}” was deleted.{note}")
        return redirect("tnprofile-list", account=self.account.slug)


class TnProfileEntriesAddView(TnProfileDetailView):
    """The add-entries form: all lines or none, errors shown against their line numbers."""

    write_required = True

    def get(self, request, *args, **kwargs):
        return redirect(self.detail_url())

    def post(self, request, *args, **kwargs):
        form = AddEntriesForm(request.POST)
        if form.is_valid():
            items, lines = form.items()
            list_type = form.cleaned_data["list_type"]
            try:
                change = services.caller_list_change(
                    account=self.account,
                    actor=request.user,
                    profile=self.get_profile(),
                    list_type=list_type,
                    add=items,
                )
            except ValidationError as exc:
                for key, errors in exc.message_dict.items():
                    position = key.removeprefix("add.")
                    where = f"Line {lines[int(position)]}: " if position.isdigit() else ""
                    for message in errors:
                        form.add_error("entries", f"{where}{message}")
            else:
                list_name = CallerListEntry.List(list_type).label.lower()
                messages.success(
                    request,
                    f"{change.added} added to the {list_name}"
                    + (f", {change.updated} notes updated." if change.updated else "."),
                )
                return redirect(self.detail_url())
        return self.render_to_response(self.get_context_data(add_form=form))


class TnProfileEntriesImportView(TnProfileDetailView):
    """CSV import: good rows are added, bad rows are listed by line number on the page."""

    write_required = True

    def get(self, request, *args, **kwargs):
        return redirect(self.detail_url())

    def post(self, request, *args, **kwargs):
        form = ImportEntriesForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                result = services.caller_list_import_csv(
                    account=self.account,
                    actor=request.user,
                    profile=self.get_profile(),
                    list_type=form.cleaned_data["list_type"],
                    text=form.cleaned_data["file"],
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                # Shown on this response rather than after a redirect: the bad rows are a list to work through.
                self._profile.refresh_from_db()
                return self.render_to_response(self.get_context_data(import_form=form, import_result=result))
        return self.render_to_response(self.get_context_data(import_form=form))


class TnProfileEntryRemoveView(ProfileMixin, TemplateView):
    """Confirm, then remove, one entry named by list and caller ID (entries have no public id of their own)."""

    write_required = True
    template_name = "confirm_delete.html"

    def get_entry(self) -> CallerListEntry:
        # The confirm page posts back to its own URL, query string included, so the entry may be named in either.
        data = self.request.POST if "caller_id" in self.request.POST else self.request.GET
        list_type = data.get("list", "")
        try:
            kind, value = services.parse_caller_id(data.get("caller_id", ""))
        except ValidationError as exc:
            raise Http404 from exc
        entry = CallerListEntry.objects.filter(
            profile=self.get_profile(), list_type=list_type, kind=kind, value=value
        ).first()
        if entry is None:
            raise Http404("No such entry on this profile.")
        return entry

    def get_context_data(self, **kwargs):
        entry = self.get_entry()
        return super().get_context_data(
            object=entry.display,
            title=f"Remove {entry.display} from the {entry.get_list_type_display().lower()}?",
            explanation=f"Calls from this caller ID to numbers using “{self.get_profile().name}” are no longer "
            + ("blocked by this entry." if entry.list_type == entry.List.BLACKLIST else "let through by this entry."),
            confirm_label="Remove entry",
            cancel_url=self.detail_url(),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        entry = self.get_entry()
        services.caller_list_change(
            account=self.account,
            actor=request.user,
            profile=self.get_profile(),
            list_type=entry.list_type,
            remove=[entry.display],
        )
        messages.success(request, f"{entry.display} was removed from the {entry.get_list_type_display().lower()}.")
        return redirect(self.detail_url())


class TnProfileTestView(TnProfileDetailView):
    """The test-a-caller box: the decision a call would get, with nothing written. Open to viewers."""

    def get(self, request, *args, **kwargs):
        return redirect(self.detail_url())

    def post(self, request, *args, **kwargs):
        form = ScreeningTestForm(request.POST)
        decision = None
        if form.is_valid():
            decision = screen_caller_for_profile(self.get_profile(), form.cleaned_data["caller_id"], record_hit=False)
        return self.render_to_response(self.get_context_data(test_form=form, decision=decision))


_profile = "a/<slug:account>/tn-profiles/<str:id>/"

urlpatterns = [
    path("a/<slug:account>/tn-profiles/", TnProfileListView.as_view(), name="tnprofile-list"),
    path("a/<slug:account>/tn-profiles/new/", TnProfileCreateView.as_view(), name="tnprofile-create"),
    path(_profile, TnProfileDetailView.as_view(), name="tnprofile-detail"),
    path(f"{_profile}edit/", TnProfileEditView.as_view(), name="tnprofile-edit"),
    path(f"{_profile}delete/", TnProfileDeleteView.as_view(), name="tnprofile-delete"),
    path(f"{_profile}entries/add/", TnProfileEntriesAddView.as_view(), name="tnprofile-entries-add"),
    path(f"{_profile}entries/import/", TnProfileEntriesImportView.as_view(), name="tnprofile-entries-import"),
    path(f"{_profile}entries/remove/", TnProfileEntryRemoveView.as_view(), name="tnprofile-entry-remove"),
    path(f"{_profile}test/", TnProfileTestView.as_view(), name="tnprofile-test"),
]

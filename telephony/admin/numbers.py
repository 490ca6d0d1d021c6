"""Staff admin for numbers: the platform's stock (with CSV upload), leases across accounts, and orders."""

from __future__ import annotations

import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from telephony.models import NumberOrder, NumberOrderItem, PhoneNumber, StockNumber
from telephony.services import numbers as services

UPLOAD_MAX_BYTES = 50 * 1024 * 1024
REPORT_LINES_SHOWN = 500


class StockUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=f"A header row, then one number per row. Columns: {', '.join(services.CSV_COLUMNS)}; only "
        '`number` is required (E.164). Features: voice and/or sms, e.g. "voice;sms".',
    )
    batch_size = forms.IntegerField(min_value=1, max_value=10_000, initial=1000, help_text="Rows per transaction.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > UPLOAD_MAX_BYTES:
            raise forms.ValidationError(f"At most {UPLOAD_MAX_BYTES // (1024 * 1024)} MB per upload.")
        return upload


@admin.register(StockNumber)
class StockNumberAdmin(admin.ModelAdmin):
    list_display = [
        "number", "status", "country", "number_type", "state", "npa", "nxx", "rate_center", "city", "voice", "sms",
        "monthly_price", "quarantined_until",
    ]  # fmt: skip
    list_filter = ["status", "country", "number_type", "state", "voice", "sms"]
    search_fields = ["number", "digits"]
    readonly_fields = ["number", "digits", "status", "quarantined_until", "created_at"]
    fields = [
        "number", "digits", "status", "quarantined_until", "country", "number_type", "state", "rate_center", "city",
        "npa", "nxx", "voice", "sms", "monthly_price", "setup_price", "created_at",
    ]  # fmt: skip
    # Counting a million rows for "x of y selected" on every page load is the slowest part of the page.
    show_full_result_count = False
    change_list_template = "telephony/stocknumber_change_list.html"
    actions = ["return_to_stock_now"]

    def get_urls(self):
        upload = path("upload/", self.admin_site.admin_view(self.upload_view), name="telephony_stocknumber_upload")
        return [upload, *super().get_urls()]

    def add_view(self, request, form_url="", extra_context=None):
        # Stock is loaded in bulk and every row validated the same way; one number is a one-row CSV.
        return redirect("admin:telephony_stocknumber_upload")

    def upload_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        report = None
        form = StockUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            text = io.TextIOWrapper(upload.file, encoding="utf-8-sig", errors="strict", newline="")
            try:
                report = services.stock_import_csv(file=text, batch_size=form.cleaned_data["batch_size"])
            except UnicodeDecodeError:
                form.add_error("file", "The file is not UTF-8 text.")
            else:
                level = messages.SUCCESS if report.ok else messages.WARNING
                self.message_user(request, f"{upload.name}: {report.summary()}.", level)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Upload stock numbers",
            "form": form,
            "report": report,
            "errors_shown": report.errors[:REPORT_LINES_SHOWN] if report else [],
            "duplicates_shown": report.duplicates[:REPORT_LINES_SHOWN] if report else [],
        }
        return TemplateResponse(request, "telephony/stocknumber_upload.html", context)

    @admin.action(description="Return to stock now (end quarantine)")
    def return_to_stock_now(self, request, queryset):
        selected = list(queryset.values_list("pk", flat=True))
        count = services.stock_return_now(stock_ids=selected, actor=request.user)
        skipped = len(selected) - count
        note = f" {skipped} selected were not quarantined and were left alone." if skipped else ""
        self.message_user(request, f"{count} numbers returned to stock.{note}", messages.SUCCESS)


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin):
    """Leases across accounts. Read-only: customers change their numbers; staff may release one."""

    list_display = ["number", "account", "status", "voice_enabled", "sms_enabled", "autorenew", "expires_at"]
    list_filter = ["status", "autorenew", "voice_enabled", "sms_enabled"]
    search_fields = ["number", "public_id", "account__name", "account__slug"]
    list_select_related = ["account"]
    actions = ["release"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # leases are history; release instead

    @admin.action(description="Release the selected numbers (quarantine their stock)")
    def release(self, request, queryset):
        released = 0
        for number in queryset.filter(status=PhoneNumber.Status.ACTIVE).select_related("account"):
            services.number_release(account=number.account, actor=request.user, number=number, reason="staff")
            released += 1
        self.message_user(request, f"{released} numbers released.", messages.SUCCESS)


class NumberOrderItemInline(admin.TabularInline):
    model = NumberOrderItem
    extra = 0
    fields = ["number", "result", "reason", "phone_number"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(NumberOrder)
class NumberOrderAdmin(admin.ModelAdmin):
    list_display = ["public_id", "account", "status", "actor_label", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["public_id", "account__name", "account__slug", "items__number"]
    list_select_related = ["account"]
    inlines = [NumberOrderItemInline]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

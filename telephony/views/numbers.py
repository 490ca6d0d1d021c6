"""Portal pages for numbers, under /a/<account>/: the account's numbers, searching stock, and orders."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views import View
from django.views.generic import FormView, TemplateView

from telephony import selectors
from telephony.filtersets.numbers import NumberOrderFilterSet, PhoneNumberFilterSet
from telephony.models import (
    CallControlApp,
    NumberOrder,
    NumberOrderItem,
    PhoneNumber,
    SipConnection,
    SipUser,
    TnProfile,
)
from telephony.models.numbers import NumberType
from telephony.services import numbers as services
from tenants.models import AuditEntry
from tenants.scoping import AccountPortalMixin
from tenants.views import ScopedListView, _add_errors

# --- Forms -------------------------------------------------------------------------------------------


class NumberSearchForm(forms.Form):
    """The same filters as GET /api/v1/available-numbers."""

    npa = forms.CharField(label="Area code", required=False, max_length=6)
    nxx = forms.CharField(label="Exchange", required=False, max_length=6)
    state = forms.CharField(required=False, max_length=64)
    city = forms.CharField(required=False, max_length=64)
    rate_center = forms.CharField(label="Rate center", required=False, max_length=64)
    country = forms.CharField(required=False, max_length=2, initial="US")
    type = forms.ChoiceField(choices=[("", "Any"), *NumberType.choices], required=False)
    features = forms.MultipleChoiceField(
        choices=[("voice", "Voice"), ("sms", "SMS")], required=False, widget=forms.CheckboxSelectMultiple
    )
    pattern = forms.CharField(
        required=False, max_length=32, help_text="* any digits, % one digit, over the whole number, e.g. 1201555****"
    )
    contains = forms.CharField(label="Contains", required=False, max_length=15)
    limit = forms.IntegerField(
        required=False, min_value=1, max_value=selectors.SEARCH_LIMIT_MAX, initial=selectors.SEARCH_LIMIT_DEFAULT
    )


class NumberEditForm(forms.Form):
    description = forms.CharField(required=False, max_length=200)
    tags = forms.CharField(
        required=False, max_length=700, help_text="Separated by commas or spaces, e.g. vip, support."
    )
    voice_enabled = forms.BooleanField(required=False, label="Voice enabled")
    sms_enabled = forms.BooleanField(required=False, label="SMS enabled")
    autorenew = forms.BooleanField(required=False, label="Renew every month")
    tn_profile = forms.ModelChoiceField(
        queryset=TnProfile.objects.none(), required=False, to_field_name="public_id", label="TN profile"
    )
    call_control_app = forms.ModelChoiceField(
        queryset=CallControlApp.objects.none(),
        required=False,
        to_field_name="public_id",
        label="Call-control app",
        help_text="Where calls to the number go: choose at most one of app, SIP connection and SIP user.",
    )
    sip_connection = forms.ModelChoiceField(
        queryset=SipConnection.objects.none(), required=False, to_field_name="public_id", label="SIP connection"
    )
    sip_user = forms.ModelChoiceField(
        queryset=SipUser.objects.none(), required=False, to_field_name="public_id", label="SIP user"
    )
    status_callback_url = forms.CharField(
        required=False, max_length=2000, label="Status callback URL", help_text="Called on every call status change."
    )
    status_callback_method = forms.ChoiceField(choices=PhoneNumber.Method.choices, label="Status callback method")

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        for name, model in (
            ("tn_profile", TnProfile),
            ("call_control_app", CallControlApp),
            ("sip_connection", SipConnection),
            ("sip_user", SipUser),
        ):
            self.fields[name].queryset = model.objects.for_account(account)
        self.fields["sip_user"].queryset = self.fields["sip_user"].queryset.select_related("domain")

    def changes(self) -> dict:
        data = dict(self.cleaned_data)
        data["tags"] = [tag for tag in data["tags"].replace(",", " ").split() if tag]
        return data


_ANY_YES_NO = [("", "Any"), ("true", "Yes"), ("false", "No")]


def _portal_number_filterset(account):
    """The shared FilterSet with the portal's widgets: a TN-profile menu instead of an id box, and no raw
    voice-target ids (the API keeps those)."""

    class PortalPhoneNumberFilterSet(PhoneNumberFilterSet):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            for name in ("call_control_app", "sip_connection", "sip_user"):
                self.filters.pop(name)
            for name in ("voice_enabled", "sms_enabled", "autorenew"):
                self.filters[name].extra["widget"] = forms.Select(choices=_ANY_YES_NO)
            self.filters["status"].extra["empty_label"] = "Active"
            self.filters["tn_profile"].label = "TN profile"
            self.filters["tn_profile"].extra["widget"] = forms.Select(
                choices=[("", "Any"), *((str(p.public_id), p.name) for p in TnProfile.objects.for_account(account))]
            )

    return PortalPhoneNumberFilterSet


# --- The account's numbers -----------------------------------------------------------------------------


class NumberListView(ScopedListView):
    model = PhoneNumber
    template_name = "telephony/number_list.html"

    def get_filterset_class(self):
        return _portal_number_filterset(self.account)

    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .select_related("stock", "tn_profile", "call_control_app", "sip_connection", "sip_user__domain")
            .order_by("number", "id")
        )


class NumberObjectMixin(AccountPortalMixin):
    def get_number(self) -> PhoneNumber:
        if not hasattr(self, "_number"):
            self._number = self.get_object_or_404(
                PhoneNumber.objects.select_related(
                    "stock", "tn_profile", "call_control_app", "sip_connection", "sip_user__domain", "order"
                ),
                self.kwargs["id"],
            )
        return self._number


class NumberDetailView(NumberObjectMixin, TemplateView):
    template_name = "telephony/number_detail.html"

    def get_context_data(self, **kwargs):
        number = self.get_number()
        audit = self.scoped(AuditEntry).filter(object_type="phonenumber", object_id=str(number.public_id))
        return super().get_context_data(number=number, audit=audit.order_by("-created_at")[:20], **kwargs)


class NumberEditView(NumberObjectMixin, FormView):
    write_required = True
    form_class = NumberEditForm
    template_name = "telephony/number_form.html"

    def get(self, request, *args, **kwargs):
        if self.get_number().status != PhoneNumber.Status.ACTIVE:
            messages.error(request, "This number was released; it can no longer be changed.")
            return redirect("number-detail", account=self.account.slug, id=self.get_number().public_id)
        return super().get(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "account": self.account}

    def get_initial(self):
        number = self.get_number()
        return {
            "description": number.description,
            "tags": ", ".join(number.tags),
            "voice_enabled": number.voice_enabled,
            "sms_enabled": number.sms_enabled,
            "autorenew": number.autorenew,
            "tn_profile": number.tn_profile,
            "call_control_app": number.call_control_app,
            "sip_connection": number.sip_connection,
            "sip_user": number.sip_user,
            "status_callback_url": number.status_callback_url,
            "status_callback_method": number.status_callback_method,
        }

    def get_context_data(self, **kwargs):
        return super().get_context_data(number=self.get_number(), **kwargs)

    def form_valid(self, form):
        number = self.get_number()
        try:
            services.number_update(account=self.account, actor=self.request.user, number=number, changes=form.changes())
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"{number.number} was saved.")
        return redirect("number-detail", account=self.account.slug, id=number.public_id)


class NumberReleaseView(NumberObjectMixin, TemplateView):
    write_required = True
    template_name = "confirm_delete.html"

    def get_context_data(self, **kwargs):
        number = self.get_number()
        days = settings.NUMBER_QUARANTINE_DAYS
        return super().get_context_data(
            object=number,
            title=f"Release {number.number}?",
            explanation=(
                "Calls and messages to this number stop reaching you at once, and you cannot take the "
                f"number back: it rests for {days} days, then anyone may order it."
            ),
            confirm_label="Release number",
            cancel_url=reverse("number-detail", kwargs={"account": self.account.slug, "id": number.public_id}),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        number = self.get_number()
        services.number_release(account=self.account, actor=request.user, number=number)
        messages.success(request, f"{number.number} was released.")
        return redirect("number-list", account=self.account.slug)


# --- Searching stock and ordering --------------------------------------------------------------------


class NumberSearchView(AccountPortalMixin, TemplateView):
    template_name = "telephony/number_search.html"

    def get_context_data(self, **kwargs):
        form = NumberSearchForm(self.request.GET or None)
        results = None
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            try:
                results = selectors.stock_search(
                    country=data["country"],
                    state=data["state"],
                    npa=data["npa"],
                    nxx=data["nxx"],
                    city=data["city"],
                    rate_center=data["rate_center"],
                    number_type=data["type"],
                    features=data["features"],
                    pattern=data["pattern"],
                    contains=data["contains"],
                    limit=data["limit"] or selectors.SEARCH_LIMIT_DEFAULT,
                )
            except ValidationError as exc:
                for field, errors in exc.error_dict.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
        return super().get_context_data(form=form, results=results, query=self.request.GET.urlencode(), **kwargs)


class NumberOrderCreateView(AccountPortalMixin, View):
    """The "Order selected" button of the search page: one order, then its results."""

    write_required = True
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        numbers = request.POST.getlist("numbers")
        back = reverse("number-search", kwargs={"account": self.account.slug})
        query = parse_qs(request.POST.get("query", ""))
        if query:
            back = f"{back}?{urlencode(query, doseq=True)}"  # re-encoded: only parameters, never a URL
        if not numbers:
            messages.error(request, "Tick at least one number to order.")
            return redirect(back)
        features = request.POST.getlist("features") or ["voice"]
        try:
            order = services.number_order_create(
                account=self.account,
                actor=request.user,
                numbers=numbers[: services.ORDER_MAX_NUMBERS],
                voice="voice" in features,
                sms="sms" in features,
                autorenew=request.POST.get("autorenew") == "on",
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(back)
        level = messages.SUCCESS if order.status == NumberOrder.Status.COMPLETED else messages.WARNING
        messages.add_message(request, level, f"Order {order.get_status_display().lower()}.")
        return redirect("numberorder-detail", account=self.account.slug, id=order.public_id)


class NumberOrderListView(ScopedListView):
    model = NumberOrder
    filterset_class = NumberOrderFilterSet
    template_name = "telephony/numberorder_list.html"

    def get_queryset(self):
        return super().get_queryset().prefetch_related("items").order_by("-created_at", "-id")


class NumberOrderDetailView(AccountPortalMixin, TemplateView):
    template_name = "telephony/numberorder_detail.html"

    def get_context_data(self, **kwargs):
        items = NumberOrderItem.objects.select_related("phone_number")
        order = self.get_object_or_404(
            NumberOrder.objects.prefetch_related(Prefetch("items", queryset=items)), self.kwargs["id"]
        )
        return super().get_context_data(order=order, items=list(order.items.all()), **kwargs)


urlpatterns: list = [
    path("a/<slug:account>/numbers/", NumberListView.as_view(), name="number-list"),
    path("a/<slug:account>/numbers/search/", NumberSearchView.as_view(), name="number-search"),
    path("a/<slug:account>/numbers/<str:id>/", NumberDetailView.as_view(), name="number-detail"),
    path("a/<slug:account>/numbers/<str:id>/edit/", NumberEditView.as_view(), name="number-edit"),
    path("a/<slug:account>/numbers/<str:id>/release/", NumberReleaseView.as_view(), name="number-release"),
    path("a/<slug:account>/number-orders/", NumberOrderListView.as_view(), name="numberorder-list"),
    path("a/<slug:account>/number-orders/new/", NumberOrderCreateView.as_view(), name="numberorder-create"),
    path("a/<slug:account>/number-orders/<str:id>/", NumberOrderDetailView.as_view(), name="numberorder-detail"),
]

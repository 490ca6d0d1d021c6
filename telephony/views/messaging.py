"""Portal pages for messaging, under /a/<account>/: messaging profiles and the numbers in them, the message log
(with the "send a test message" form), a message and its conversation, the opt-outs (read-only: only the
destination lifts one, by texting START), and 10DLC brands and campaigns.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import Prefetch, Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views import View
from django.views.generic import FormView, TemplateView

from telephony.api.messaging import message_deliveries
from telephony.filtersets.messaging import MessageFilterSet, MessagingProfileFilterSet, OptOutFilterSet
from telephony.models import Brand, Campaign, Message, MessagingNumber, MessagingProfile, OptOut, PhoneNumber
from telephony.services import messaging as services
from tenants.scoping import AccountPortalMixin, parse_public_id
from tenants.views import ScopedListView, _add_errors

PAGE_SIZE = 50
THREAD_SIZE = 200

# --- Forms -------------------------------------------------------------------------------------------


class MessagingProfileForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=500, required=False)
    callback_url = forms.CharField(
        max_length=2000, required=False, label="Callback URL", help_text="Receives every message.* event as JSON."
    )
    callback_url2 = forms.CharField(
        max_length=2000, required=False, label="Failover callback URL", help_text="Used after a failed attempt."
    )
    number_pool_enabled = forms.BooleanField(required=False, initial=True, label="Number pool")
    sticky_sender = forms.BooleanField(required=False, initial=True, label="Sticky sender")
    long_code_weight = forms.IntegerField(min_value=0, max_value=1000, initial=1)
    toll_free_weight = forms.IntegerField(min_value=0, max_value=1000, initial=1)
    skip_unhealthy = forms.BooleanField(required=False, initial=True, label="Skip senders whose messages fail")


class EnableNumberForm(forms.Form):
    number = forms.ChoiceField(label="Number")
    campaign = forms.ChoiceField(
        required=False, label="10DLC campaign", help_text="US long codes send only under an approved campaign."
    )

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        numbers = (
            PhoneNumber.objects.for_account(account)
            .filter(status=PhoneNumber.Status.ACTIVE, stock__sms=True)
            .order_by("number")
            .values_list("public_id", "number")
        )
        self.fields["number"].choices = [(str(pid), number) for pid, number in numbers]
        campaigns = Campaign.objects.for_account(account).order_by("name")
        self.fields["campaign"].choices = [("", "None")] + [
            (str(c.public_id), f"{c.name} ({c.get_status_display()})") for c in campaigns
        ]


class SendMessageForm(forms.Form):
    sender = forms.ChoiceField(label="From", help_text="One of your SMS numbers, or a profile's pool.")
    to = forms.CharField(max_length=32, help_text="E.164, e.g. +12015550123.")
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        numbers = MessagingNumber.objects.for_account(account).order_by("number").values_list("number", flat=True)
        profiles = MessagingProfile.objects.for_account(account).order_by("name").values_list("public_id", "name")
        self.fields["sender"].choices = [(number, number) for number in numbers] + [
            (f"profile:{pid}", f"Pool of {name}") for pid, name in profiles
        ]


class BrandForm(forms.ModelForm):
    class Meta:
        model = Brand
        fields = ["display_name", "company_name", "entity_type", "ein", "website", "vertical", "email", "country"]


class CampaignForm(forms.Form):
    brand = forms.ChoiceField()
    name = forms.CharField(max_length=100)
    use_case = forms.ChoiceField(choices=Campaign.UseCase.choices)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    sample_messages = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="One to five example messages, one per line."
    )
    message_flow = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, label="How people opt in")
    opt_in_message = forms.CharField(max_length=320, required=False, label="Reply to START")
    opt_out_message = forms.CharField(max_length=320, required=False, label="Reply to STOP")
    help_message = forms.CharField(max_length=320, required=False, label="Reply to HELP")

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        brands = Brand.objects.for_account(account).exclude(status=Brand.Status.REJECTED).order_by("display_name")
        self.fields["brand"].choices = [(str(b.public_id), b.display_name) for b in brands]


# --- Messaging profiles ------------------------------------------------------------------------------


class MessagingProfileListView(ScopedListView):
    model = MessagingProfile
    filterset_class = MessagingProfileFilterSet
    template_name = "telephony/messagingprofile_list.html"

    def get_queryset(self):
        active = MessagingNumber.objects.filter(phone_number__status=PhoneNumber.Status.ACTIVE)
        return super().get_queryset().prefetch_related(Prefetch("numbers", queryset=active)).order_by("name", "id")


class MessagingProfileCreateView(AccountPortalMixin, FormView):
    write_required = True
    form_class = MessagingProfileForm
    template_name = "telephony/messagingprofile_form.html"

    def form_valid(self, form):
        try:
            profile = services.messaging_profile_create(
                account=self.account, actor=self.request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"The messaging profile “{profile.name}” was created. Now add numbers to it.")
        return redirect("messagingprofile-detail", account=self.account.slug, id=profile.public_id)


class ProfileMixin(AccountPortalMixin):
    def get_profile(self) -> MessagingProfile:
        if not hasattr(self, "_profile"):
            self._profile = self.get_object_or_404(MessagingProfile, self.kwargs["id"])
        return self._profile


class MessagingProfileDetailView(ProfileMixin, TemplateView):
    template_name = "telephony/messagingprofile_detail.html"

    def get_context_data(self, **kwargs):
        profile = self.get_profile()
        kwargs.setdefault("enable_form", EnableNumberForm(account=self.account))
        context = super().get_context_data(**kwargs)
        context.update(
            profile=profile,
            numbers=profile.numbers.filter(phone_number__status=PhoneNumber.Status.ACTIVE)
            .select_related("phone_number", "campaign")
            .order_by("number"),
        )
        return context


class MessagingProfileEditView(ProfileMixin, FormView):
    write_required = True
    form_class = MessagingProfileForm
    template_name = "telephony/messagingprofile_form.html"

    def get_initial(self):
        profile = self.get_profile()
        return {name: getattr(profile, name) for name in MessagingProfileForm.base_fields}

    def get_context_data(self, **kwargs):
        return super().get_context_data(profile=self.get_profile(), **kwargs)

    def form_valid(self, form):
        try:
            services.messaging_profile_update(
                account=self.account, actor=self.request.user, profile=self.get_profile(), **form.cleaned_data
            )
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "The messaging profile was saved.")
        return redirect("messagingprofile-detail", account=self.account.slug, id=self.get_profile().public_id)


class MessagingProfileDeleteView(ProfileMixin, TemplateView):
    write_required = True
    template_name = "telephony/messagingprofile_confirm_delete.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(profile=self.get_profile(), **kwargs)

    def post(self, request, *args, **kwargs):
        profile = self.get_profile()
        try:
            services.messaging_profile_delete(account=self.account, actor=request.user, profile=profile)
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
            return redirect("messagingprofile-detail", account=self.account.slug, id=profile.public_id)
        messages.success(request, f"The messaging profile “{profile.name}” was deleted.")
        return redirect("messagingprofile-list", account=self.account.slug)


class MessagingProfileNumbersView(ProfileMixin, View):
    """POST: enable SMS on a number by putting it in this profile. GET leads back to the profile."""

    write_required = True

    def get(self, request, *args, **kwargs):
        return redirect("messagingprofile-detail", account=self.account.slug, id=self.get_profile().public_id)

    def post(self, request, *args, **kwargs):
        profile = self.get_profile()
        form = EnableNumberForm(data=request.POST, account=self.account)
        back = reverse("messagingprofile-detail", kwargs={"account": self.account.slug, "id": profile.public_id})
        if not form.is_valid():
            messages.error(request, "Choose one of your SMS-capable numbers.")
            return HttpResponseRedirect(back)
        number = self.get_object_or_404(PhoneNumber, form.cleaned_data["number"])
        campaign = None
        if form.cleaned_data["campaign"]:
            campaign = self.get_object_or_404(Campaign, form.cleaned_data["campaign"])
        try:
            services.number_sms_enable(
                account=self.account, actor=request.user, number=number, profile=profile, campaign=campaign
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return HttpResponseRedirect(back)
        messages.success(request, f"SMS is on for {number.number}, in “{profile.name}”.")
        return HttpResponseRedirect(back)


class NumberSmsDisableView(AccountPortalMixin, TemplateView):
    """Confirm, then turn SMS off on a number (it stops sending and receiving)."""

    write_required = True
    template_name = "confirm_delete.html"

    def get_number(self) -> PhoneNumber:
        return self.get_object_or_404(PhoneNumber, self.kwargs["id"])

    def get_context_data(self, **kwargs):
        number = self.get_number()
        enabled = MessagingNumber.objects.filter(phone_number=number).select_related("profile").first()
        cancel = reverse("number-detail", kwargs={"account": self.account.slug, "id": number.public_id})
        if enabled is not None:
            cancel = reverse(
                "messagingprofile-detail", kwargs={"account": self.account.slug, "id": enabled.profile.public_id}
            )
        return super().get_context_data(
            title=f"Turn SMS off on {number.number}?",
            object=number.number,
            explanation="It leaves its messaging profile: messages from it are refused and messages to it are no "
            "longer received. Its message history stays.",
            confirm_label="Turn SMS off",
            cancel_url=cancel,
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        number = self.get_number()
        enabled = MessagingNumber.objects.filter(phone_number=number).select_related("profile").first()
        services.number_sms_disable(account=self.account, actor=request.user, number=number)
        messages.success(request, f"SMS is off for {number.number}.")
        if enabled is not None:
            return redirect("messagingprofile-detail", account=self.account.slug, id=enabled.profile.public_id)
        return redirect("number-detail", account=self.account.slug, id=number.public_id)


# --- Messages ----------------------------------------------------------------------------------------


def _portal_filterset():
    class PortalMessageFilterSet(MessageFilterSet):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.filters["status"].extra["widget"] = forms.SelectMultiple(attrs={"size": 3})
            self.filters["status"].label = "Status"
            self.filters["direction"].extra["empty_label"] = "Any"
            self.filters["created_after"].label = "From (UTC)"
            self.filters["created_before"].label = "Until (UTC)"

    return PortalMessageFilterSet


class MessageListView(AccountPortalMixin, TemplateView):
    template_name = "telephony/message_list.html"

    def get_context_data(self, **kwargs):
        kwargs.setdefault("send_form", SendMessageForm(account=self.account))
        context = super().get_context_data(**kwargs)
        params = self.request.GET.copy()
        before = params.pop("before", [None])[-1]
        queryset = self.scoped(Message).order_by("-created_at", "-id")
        filterset = _portal_filterset()(params, queryset=queryset)
        rows: list[Message] = []
        if filterset.is_valid():
            queryset = filterset.qs
            parsed = parse_public_id(before) if before else None
            position = self.scoped(Message).filter(public_id=parsed).values_list("created_at", "pk").first()
            if position is not None:
                created_at, pk = position
                queryset = queryset.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk))
            rows = list(queryset[: PAGE_SIZE + 1])
        has_older = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        older = params.copy()
        if has_older:
            older["before"] = str(rows[-1].public_id)
        context.update(
            filter=filterset,
            messages_list=rows,
            paged=bool(before),
            older_query=older.urlencode() if has_older else "",
            newest_query=params.urlencode(),
        )
        return context


class MessageSendView(MessageListView):
    write_required = True
    http_method_names = ["get", "post"]

    def post(self, request, *args, **kwargs):
        form = SendMessageForm(data=request.POST, account=self.account)
        if form.is_valid():
            sender = form.cleaned_data["sender"]
            profile = None
            if sender.startswith("profile:"):
                profile = self.get_object_or_404(MessagingProfile, sender.removeprefix("profile:"))
            try:
                message = services.message_send(
                    account=self.account,
                    actor=request.user,
                    to=form.cleaned_data["to"],
                    text=form.cleaned_data["text"],
                    from_="" if profile else sender,
                    profile=profile,
                )
            except ValidationError as exc:
                errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
                for field, texts in errors.items():
                    target = {"from": "sender", "messaging_profile": "sender"}.get(field, field)
                    for text in texts:
                        form.add_error(target if target in form.fields else None, text)
            except services.MessagingLimit as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Message to {message.to_number} queued.")
                return redirect("message-thread", account=self.account.slug, id=message.public_id)
        return self.render_to_response(self.get_context_data(send_form=form, send_failed=True))

    def get(self, request, *args, **kwargs):
        return redirect("message-list", account=self.account.slug)


class MessageDetailView(AccountPortalMixin, TemplateView):
    template_name = "telephony/message_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        message = self.get_object_or_404(Message.objects.select_related("profile", "campaign"), self.kwargs["id"])
        context.update(message=message, deliveries=message_deliveries(message))
        return context


class MessageThreadView(AccountPortalMixin, TemplateView):
    """The conversation a message belongs to, oldest first (both directions between the same two numbers)."""

    template_name = "telephony/message_thread.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        message = self.get_object_or_404(Message, self.kwargs["id"])
        newest = list(self.scoped(Message).filter(thread=message.thread).order_by("-created_at", "-id")[:THREAD_SIZE])
        ours = message.to_number if message.direction == Message.Direction.INBOUND else message.from_number
        other = message.from_number if message.direction == Message.Direction.INBOUND else message.to_number
        reply_form = SendMessageForm(account=self.account, initial={"sender": ours, "to": other})
        context.update(message=message, thread=list(reversed(newest)), ours=ours, other=other, send_form=reply_form)
        return context


# --- Opt-outs ----------------------------------------------------------------------------------------


class OptOutListView(ScopedListView):
    model = OptOut
    filterset_class = OptOutFilterSet
    template_name = "telephony/optout_list.html"
    paginate_by = PAGE_SIZE

    def get_queryset(self):
        return super().get_queryset().order_by("-created_at", "-id")


# --- 10DLC -------------------------------------------------------------------------------------------


class BrandListView(AccountPortalMixin, TemplateView):
    template_name = "telephony/brand_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            brands=self.scoped(Brand).order_by("-created_at"),
            campaigns=self.scoped(Campaign).select_related("brand").order_by("-created_at"),
        )
        return context


class BrandCreateView(AccountPortalMixin, FormView):
    write_required = True
    form_class = BrandForm
    template_name = "telephony/brand_form.html"

    def form_valid(self, form):
        try:
            brand = services.brand_create(account=self.account, actor=self.request.user, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"The brand “{brand.display_name}” was submitted for review.")
        return redirect("brand-detail", account=self.account.slug, id=brand.public_id)


class BrandDetailView(AccountPortalMixin, TemplateView):
    template_name = "telephony/brand_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        brand = self.get_object_or_404(Brand, self.kwargs["id"])
        context.update(brand=brand, campaigns=brand.campaigns.order_by("-created_at"))
        return context


class BrandDeleteView(AccountPortalMixin, TemplateView):
    """Confirm, then delete a brand that has no campaigns left."""

    write_required = True
    template_name = "confirm_delete.html"

    def get_brand(self) -> Brand:
        return self.get_object_or_404(Brand, self.kwargs["id"])

    def get_context_data(self, **kwargs):
        brand = self.get_brand()
        return super().get_context_data(
            title=f"Delete the brand “{brand.display_name}”?",
            object=brand.company_name,
            explanation="Its review goes with it: using the brand again means submitting it again. A brand that "
            "still has campaigns cannot be deleted.",
            confirm_label="Delete brand",
            cancel_url=reverse("brand-detail", kwargs={"account": self.account.slug, "id": brand.public_id}),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        brand = self.get_brand()
        try:
            services.brand_delete(account=self.account, actor=request.user, brand=brand)
        except ObjectDoesNotExist as exc:  # deleted by a concurrent request (a double submit) meanwhile
            raise Http404 from exc
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
            return redirect("brand-detail", account=self.account.slug, id=brand.public_id)
        messages.success(request, f"The brand “{brand.display_name}” was deleted.")
        return redirect("brand-list", account=self.account.slug)


class CampaignCreateView(AccountPortalMixin, FormView):
    write_required = True
    template_name = "telephony/campaign_form.html"

    def get_form(self, form_class=None):
        return CampaignForm(**self.get_form_kwargs(), account=self.account)

    def form_valid(self, form):
        values = dict(form.cleaned_data)
        brand = self.get_object_or_404(Brand, values.pop("brand"))
        values["sample_messages"] = values["sample_messages"].splitlines()
        try:
            campaign = services.campaign_create(account=self.account, actor=self.request.user, brand=brand, **values)
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"The campaign “{campaign.name}” was submitted for review.")
        return redirect("campaign-detail", account=self.account.slug, id=campaign.public_id)


class CampaignDetailView(AccountPortalMixin, TemplateView):
    template_name = "telephony/campaign_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        campaign = self.get_object_or_404(Campaign.objects.select_related("brand"), self.kwargs["id"])
        context.update(campaign=campaign, numbers=campaign.numbers.order_by("number"))
        return context


class CampaignDeleteView(AccountPortalMixin, TemplateView):
    """Confirm, then delete a campaign no number sends under."""

    write_required = True
    template_name = "confirm_delete.html"

    def get_campaign(self) -> Campaign:
        return self.get_object_or_404(Campaign, self.kwargs["id"])

    def get_context_data(self, **kwargs):
        campaign = self.get_campaign()
        return super().get_context_data(
            title=f"Delete the campaign “{campaign.name}”?",
            object=campaign.get_use_case_display(),
            explanation="Its review goes with it; its past messages stay in the log. A campaign numbers still "
            "send under cannot be deleted: move them to another campaign or turn SMS off on them first.",
            confirm_label="Delete campaign",
            cancel_url=reverse("campaign-detail", kwargs={"account": self.account.slug, "id": campaign.public_id}),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        campaign = self.get_campaign()
        try:
            services.campaign_delete(account=self.account, actor=request.user, campaign=campaign)
        except ObjectDoesNotExist as exc:  # deleted by a concurrent request (a double submit) meanwhile
            raise Http404 from exc
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
            return redirect("campaign-detail", account=self.account.slug, id=campaign.public_id)
        messages.success(request, f"The campaign “{campaign.name}” was deleted.")
        return redirect("brand-list", account=self.account.slug)


def _route(suffix: str, view, name: str):
    return path(f"a/<slug:account>/{suffix}", view.as_view(), name=name)


urlpatterns = [
    _route("messaging-profiles/", MessagingProfileListView, "messagingprofile-list"),
    _route("messaging-profiles/new/", MessagingProfileCreateView, "messagingprofile-create"),
    _route("messaging-profiles/<str:id>/", MessagingProfileDetailView, "messagingprofile-detail"),
    _route("messaging-profiles/<str:id>/edit/", MessagingProfileEditView, "messagingprofile-edit"),
    _route("messaging-profiles/<str:id>/delete/", MessagingProfileDeleteView, "messagingprofile-delete"),
    _route("messaging-profiles/<str:id>/numbers/", MessagingProfileNumbersView, "messagingprofile-numbers"),
    _route("numbers/<str:id>/sms/disable/", NumberSmsDisableView, "number-sms-disable"),
    _route("messages/", MessageListView, "message-list"),
    _route("messages/send/", MessageSendView, "message-send"),
    _route("messages/<str:id>/", MessageDetailView, "message-detail"),
    _route("messages/<str:id>/thread/", MessageThreadView, "message-thread"),
    _route("opt-outs/", OptOutListView, "optout-list"),
    _route("10dlc/", BrandListView, "brand-list"),
    _route("10dlc/brands/new/", BrandCreateView, "brand-create"),
    _route("10dlc/brands/<str:id>/", BrandDetailView, "brand-detail"),
    _route("10dlc/brands/<str:id>/delete/", BrandDeleteView, "brand-delete"),
    _route("10dlc/campaigns/new/", CampaignCreateView, "campaign-create"),
    _route("10dlc/campaigns/<str:id>/", CampaignDetailView, "campaign-detail"),
    _route("10dlc/campaigns/<str:id>/delete/", CampaignDeleteView, "campaign-delete"),
]

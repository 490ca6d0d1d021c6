"""Portal pages for a SIP user's event hooks (VoipNow CallAPI Events) and the account's web callback settings.

The hooks are listed on the SIP user's page (with the web callback values for the softphone), which
`sipuser_extras` fills in.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.generic import FormView, TemplateView

from telephony.models import ExtensionHook, SipUser, WebCallbackSettings
from telephony.services import extension_hooks as services
from telephony.services import web_callback
from telephony.views.sip.common import ObjectMixin, add_service_errors
from tenants.scoping import AccountPortalMixin


def sipuser_extras(account, sip_user: SipUser, request) -> dict:
    """What the SIP user's page shows besides the user: their event hooks and the softphone's web callback values."""
    return {
        "event_hooks": ExtensionHook.objects.for_account(account).filter(sip_user=sip_user),
        "softphone": web_callback.softphone_settings(sip_user, request),
        "web_callback_settings": web_callback.settings_for(account),
    }


class ExtensionHookForm(forms.Form):
    event = forms.ChoiceField(choices=ExtensionHook.Event.choices)
    method = forms.ChoiceField(choices=ExtensionHook.Method.choices, initial="POST")
    url = forms.CharField(max_length=2000, label="URL", widget=forms.URLInput)
    enabled = forms.BooleanField(required=False, initial=True, help_text="A disabled hook sends nothing.")
    notes = forms.CharField(required=False, max_length=500)


class ExtensionHookCreateView(ObjectMixin, AccountPortalMixin, FormView):
    """Under its SIP user: the URL's id is the user's."""

    write_required = True
    form_class = ExtensionHookForm
    template_name = "telephony/extensionhook_form.html"
    object_queryset = SipUser.objects.select_related("domain")

    def get_context_data(self, **kwargs):
        return super().get_context_data(sip_user=self.get_page_object(), **kwargs)

    def form_valid(self, form):
        user = self.get_page_object()
        try:
            services.extension_hook_create(
                account=self.account, actor=self.request.user, sip_user=user, **form.cleaned_data
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "The event hook was added.")
        return redirect("sipuser-detail", account=self.account.slug, id=user.public_id)


class ExtensionHookEditView(ObjectMixin, AccountPortalMixin, FormView):
    write_required = True
    form_class = ExtensionHookForm
    template_name = "telephony/extensionhook_form.html"
    object_queryset = ExtensionHook.objects.select_related("sip_user__domain")

    def get_initial(self):
        hook = self.get_page_object()
        return {name: getattr(hook, name) for name in services.HOOK_FIELDS}

    def get_context_data(self, **kwargs):
        hook = self.get_page_object()
        return super().get_context_data(hook=hook, sip_user=hook.sip_user, **kwargs)

    def form_valid(self, form):
        hook = self.get_page_object()
        try:
            services.extension_hook_update(
                account=self.account, actor=self.request.user, hook=hook, **form.cleaned_data
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, "The event hook was saved.")
        return redirect("sipuser-detail", account=self.account.slug, id=hook.sip_user.public_id)


class ExtensionHookDeleteView(ObjectMixin, AccountPortalMixin, TemplateView):
    write_required = True
    template_name = "confirm_delete.html"
    object_queryset = ExtensionHook.objects.select_related("sip_user")

    def get_context_data(self, **kwargs):
        hook = self.get_page_object()
        user_url = reverse("sipuser-detail", kwargs={"account": self.account.slug, "id": hook.sip_user.public_id})
        return super().get_context_data(
            object=hook,
            title="Remove this event hook?",
            explanation=f"{hook.sip_user.login}'s {hook.event} events stop being sent to this URL.",
            confirm_label="Remove hook",
            cancel_url=user_url,
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        hook = self.get_page_object()
        services.extension_hook_delete(account=self.account, actor=request.user, hook=hook)
        messages.success(request, "The event hook was removed.")
        return redirect("sipuser-detail", account=self.account.slug, id=hook.sip_user.public_id)


class WebCallbackSettingsForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Accept web callback requests")
    order = forms.ChoiceField(choices=WebCallbackSettings.Order.choices, widget=forms.RadioSelect)


class WebCallbackSettingsView(AccountPortalMixin, FormView):
    """Everyone reads the settings (the nav links here); only write roles may change them."""

    form_class = WebCallbackSettingsForm
    template_name = "telephony/webcallback_settings.html"

    def get_initial(self):
        current = web_callback.settings_for(self.account)
        return {"enabled": current.enabled, "order": current.order}

    def get_context_data(self, **kwargs):
        return super().get_context_data(endpoint=web_callback.endpoint_url(self.request), **kwargs)

    def post(self, request, *args, **kwargs):
        if not self.credential.can_write:
            raise PermissionDenied("Viewers may only read.")
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        web_callback.web_callback_settings_update(account=self.account, actor=self.request.user, **form.cleaned_data)
        messages.success(self.request, "The web callback settings were saved.")
        return redirect("webcallback-settings", account=self.account.slug)


def _route(suffix: str, view, name: str):
    return path(f"a/<slug:account>/{suffix}", view.as_view(), name=name)


urlpatterns = [
    _route("sip-users/<str:id>/event-hooks/new/", ExtensionHookCreateView, "extensionhook-create"),
    _route("event-hooks/<str:id>/edit/", ExtensionHookEditView, "extensionhook-edit"),
    _route("event-hooks/<str:id>/delete/", ExtensionHookDeleteView, "extensionhook-delete"),
    _route("web-callback/", WebCallbackSettingsView, "webcallback-settings"),
]

"""Portal pages for SIP domains and the SIP users under them."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import redirect
from django.urls import reverse
from django.views.generic import FormView, TemplateView

from telephony.edge.registrations import edge_available, mark_online, sip_user_registrations
from telephony.filtersets.sip import SipDomainFilterSet
from telephony.models import SipDomain, SipUser
from telephony.services import sip as services
from telephony.views.hooks import sipuser_extras
from telephony.views.sip.common import (
    ObjectMixin,
    active_numbers,
    add_service_errors,
    audit_for,
)
from telephony.views.sip.forms import SipDomainForm, SipUserForm
from tenants.scoping import AccountPortalMixin
from tenants.views import ScopedListView


class SipDomainListView(ScopedListView):
    model = SipDomain
    filterset_class = SipDomainFilterSet
    template_name = "telephony/sipdomain_list.html"

    def get_queryset(self):
        return super().get_queryset().annotate(user_count=Count("users")).order_by("domain")

    def get_context_data(self, **kwargs):
        return super().get_context_data(platform_sip_domain=settings.PLATFORM_SIP_DOMAIN, **kwargs)


class SipDomainCreateView(AccountPortalMixin, FormView):
    write_required = True
    form_class = SipDomainForm
    template_name = "telephony/sipdomain_form.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "account": self.account}

    def form_valid(self, form):
        try:
            domain = services.sip_domain_create(account=self.account, actor=self.request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"The SIP domain {domain.domain} was created.")
        return redirect("sipdomain-detail", account=self.account.slug, id=domain.public_id)


class SipDomainDetailView(ObjectMixin, AccountPortalMixin, TemplateView):
    template_name = "telephony/sipdomain_detail.html"
    object_queryset = SipDomain.objects.select_related("default_call_control_app", "default_sip_connection")

    def get_context_data(self, **kwargs):
        domain = self.get_page_object()
        users = domain.users.select_related("caller_id_number", "sip_connection").order_by("login")
        # Online: registered with the SIP edge now (unexpired contacts), or so marked where calls are simulated;
        # the one rule the API's `state` follows too.
        page = list(users[:500])
        mark_online(page)
        for user in page:
            user.online = user.is_online
        return super().get_context_data(
            domain=domain,
            sip_users=page,
            user_count=users.count(),
            audit=audit_for(self.account, domain),
            **kwargs,
        )


class SipDomainEditView(ObjectMixin, AccountPortalMixin, FormView):
    write_required = True
    form_class = SipDomainForm
    template_name = "telephony/sipdomain_form.html"
    object_queryset = SipDomain.objects.select_related("default_call_control_app", "default_sip_connection")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "account": self.account, "editing": True}

    def get_initial(self):
        domain = self.get_page_object()
        app, connection = domain.default_call_control_app, domain.default_sip_connection
        return {
            "same_domain_calls_only": domain.same_domain_calls_only,
            "default_call_control_app": app.public_id if app else None,
            "default_sip_connection": connection.public_id if connection else None,
        }

    def get_context_data(self, **kwargs):
        return super().get_context_data(domain=self.get_page_object(), **kwargs)

    def form_valid(self, form):
        domain = self.get_page_object()
        try:
            services.sip_domain_update(
                account=self.account, actor=self.request.user, domain=domain, **form.cleaned_data
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"The SIP domain {domain.domain} was saved.")
        return redirect("sipdomain-detail", account=self.account.slug, id=domain.public_id)


class SipDomainDeleteView(ObjectMixin, AccountPortalMixin, TemplateView):
    write_required = True
    template_name = "confirm_delete.html"
    object_queryset = SipDomain.objects.all()

    def get_context_data(self, **kwargs):
        domain = self.get_page_object()
        count = domain.users.count()
        return super().get_context_data(
            object=domain,
            title=f"Delete the SIP domain {domain.domain}?",
            explanation=(
                f"Its {count} SIP user{'s' if count != 1 else ''} and its invites are deleted with it, and their "
                "phones stop working at once. This cannot be undone."
            ),
            confirm_label="Delete domain and users",
            cancel_url=reverse("sipdomain-detail", kwargs={"account": self.account.slug, "id": domain.public_id}),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        domain = self.get_page_object()
        services.sip_domain_delete(account=self.account, actor=request.user, domain=domain)
        messages.success(request, f"The SIP domain {domain.domain} was deleted.")
        return redirect("sipdomain-list", account=self.account.slug)


class SipUserCreateView(ObjectMixin, AccountPortalMixin, FormView):
    """Under its domain: the URL's id is the SIP domain's."""

    write_required = True
    form_class = SipUserForm
    template_name = "telephony/sipuser_form.html"
    object_queryset = SipDomain.objects.all()

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "account": self.account}

    def get_context_data(self, **kwargs):
        return super().get_context_data(domain=self.get_page_object(), **kwargs)

    def form_valid(self, form):
        domain = self.get_page_object()
        try:
            user = services.sip_user_create(
                account=self.account, actor=self.request.user, domain=domain, **form.changes()
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"The SIP user {user.sip_uri} was created.")
        return redirect("sipuser-detail", account=self.account.slug, id=user.public_id)


_USERS = SipUser.objects.select_related("domain", "caller_id_number", "sip_connection")


class SipUserDetailView(ObjectMixin, AccountPortalMixin, TemplateView):
    template_name = "telephony/sipuser_detail.html"
    object_queryset = _USERS

    def get_context_data(self, **kwargs):
        user = self.get_page_object()
        return super().get_context_data(
            sip_user=user,
            numbers=active_numbers(self.account).filter(sip_user=user),
            audit=audit_for(self.account, user),
            edge_available=edge_available(),
            registrations=sip_user_registrations(user),
            **sipuser_extras(self.account, user, self.request),
            **kwargs,
        )


class SipUserEditView(ObjectMixin, AccountPortalMixin, FormView):
    write_required = True
    form_class = SipUserForm
    template_name = "telephony/sipuser_form.html"
    object_queryset = _USERS

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "account": self.account, "editing": True}

    def get_initial(self):
        user = self.get_page_object()
        return {
            "login": user.login,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "caller_id_number": user.caller_id_number.public_id if user.caller_id_number else None,
            "sip_connection": user.sip_connection.public_id if user.sip_connection else None,
            "is_active": user.is_active,
            "same_domain_calls_only": user.same_domain_calls_only,
        }

    def get_context_data(self, **kwargs):
        user = self.get_page_object()
        return super().get_context_data(sip_user=user, domain=user.domain, **kwargs)

    def form_valid(self, form):
        user = self.get_page_object()
        try:
            user = services.sip_user_update(
                account=self.account, actor=self.request.user, sip_user=user, **form.changes()
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"The SIP user {user.sip_uri} was saved.")
        return redirect("sipuser-detail", account=self.account.slug, id=user.public_id)


class SipUserDeleteView(ObjectMixin, AccountPortalMixin, TemplateView):
    write_required = True
    template_name = "confirm_delete.html"
    object_queryset = _USERS

    def get_context_data(self, **kwargs):
        user = self.get_page_object()
        return super().get_context_data(
            object=user,
            title=f"Delete the SIP user {user.login}?",
            explanation="Phones registered with this login stop working at once. Numbers routed to it lose their "
            "voice target.",
            confirm_label="Delete SIP user",
            cancel_url=reverse("sipuser-detail", kwargs={"account": self.account.slug, "id": user.public_id}),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        user = self.get_page_object()
        services.sip_user_delete(account=self.account, actor=request.user, sip_user=user)
        messages.success(request, f"The SIP user {user.sip_uri} was deleted.")
        return redirect("sipdomain-detail", account=self.account.slug, id=user.domain.public_id)

"""Portal pages for SIP connections: the trunk, its numbers, and its invites."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import FormView, TemplateView

from telephony.edge.registrations import mark_online
from telephony.filtersets.sip import SipConnectionFilterSet
from telephony.models import SipConnection, SipInvite
from telephony.services import sip as services
from telephony.sipauth import connection_realm
from telephony.views.sip.common import (
    ObjectMixin,
    active_numbers,
    add_service_errors,
    audit_for,
)
from telephony.views.sip.forms import SipConnectionForm, SipInviteForm
from tenants.scoping import AccountPortalMixin
from tenants.views import ScopedListView


class SipConnectionListView(ScopedListView):
    model = SipConnection
    filterset_class = SipConnectionFilterSet
    template_name = "telephony/sipconnection_list.html"

    def get_queryset(self):
        return super().get_queryset().annotate(number_count=Count("numbers")).order_by("name", "id")


class SipConnectionCreateView(AccountPortalMixin, FormView):
    write_required = True
    form_class = SipConnectionForm
    template_name = "telephony/sipconnection_form.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "account": self.account}

    def get_context_data(self, **kwargs):
        return super().get_context_data(registrar=connection_realm(), **kwargs)

    def form_valid(self, form):
        try:
            connection = services.sip_connection_create(account=self.account, actor=self.request.user, **form.changes())
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"The SIP connection “{connection.name}” was created.")
        return redirect("sipconnection-detail", account=self.account.slug, id=connection.public_id)


class SipConnectionDetailView(ObjectMixin, AccountPortalMixin, TemplateView):
    template_name = "telephony/sipconnection_detail.html"
    object_queryset = SipConnection.objects.select_related("default_caller_id")

    def get_context_data(self, **kwargs):
        connection = self.get_page_object()
        numbers = active_numbers(self.account).filter(sip_connection=connection)
        assignable = (
            active_numbers(self.account)
            .exclude(sip_connection=connection)
            .select_related("call_control_app", "sip_connection", "sip_user__domain")[:500]
        )
        sip_users = list(connection.sip_users.select_related("domain").order_by("login")[:200])
        mark_online(sip_users)  # online as the registrar has them, the rule of the API's `state` and the domain page
        return super().get_context_data(
            connection=connection,
            numbers=numbers,
            assignable=assignable,
            invites=connection.invites.select_related("domain", "sip_user")[:100],
            sip_users=sip_users,
            registrar=connection_realm(),
            audit=audit_for(self.account, connection),
            **kwargs,
        )


class SipConnectionEditView(ObjectMixin, AccountPortalMixin, FormView):
    write_required = True
    form_class = SipConnectionForm
    template_name = "telephony/sipconnection_form.html"
    object_queryset = SipConnection.objects.select_related("default_caller_id")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "account": self.account, "editing": True}

    def get_initial(self):
        connection = self.get_page_object()
        return {
            "name": connection.name,
            "is_active": connection.is_active,
            "auth_type": connection.auth_type,
            "username": connection.username or "",
            "allowed_ips": "\n".join(connection.allowed_ips),
            "inbound_host": connection.inbound_host,
            "inbound_port": connection.inbound_port,
            "inbound_transport": connection.inbound_transport,
            "codecs": ", ".join(connection.codecs),
            "caller_id_policy": connection.caller_id_policy,
            "default_caller_id": connection.default_caller_id.public_id if connection.default_caller_id else None,
            "channel_limit": connection.channel_limit,
        }

    def get_context_data(self, **kwargs):
        return super().get_context_data(connection=self.get_page_object(), registrar=connection_realm(), **kwargs)

    def form_valid(self, form):
        connection = self.get_page_object()
        try:
            services.sip_connection_update(
                account=self.account, actor=self.request.user, connection=connection, **form.changes()
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"The SIP connection “{connection.name}” was saved.")
        return redirect("sipconnection-detail", account=self.account.slug, id=connection.public_id)


class SipConnectionDeleteView(ObjectMixin, AccountPortalMixin, TemplateView):
    write_required = True
    template_name = "confirm_delete.html"
    object_queryset = SipConnection.objects.all()

    def get_context_data(self, **kwargs):
        connection = self.get_page_object()
        count = connection.numbers.count()
        return super().get_context_data(
            object=connection,
            title=f"Delete the SIP connection “{connection.name}”?",
            explanation=(
                f"Calls stop flowing through it at once. Its {count} number{'s' if count != 1 else ''} will have "
                "no voice target, its SIP users keep working without a trunk, and its invites stop working."
            ),
            confirm_label="Delete connection",
            cancel_url=reverse(
                "sipconnection-detail", kwargs={"account": self.account.slug, "id": connection.public_id}
            ),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        connection = self.get_page_object()
        services.sip_connection_delete(account=self.account, actor=request.user, connection=connection)
        messages.success(request, f"The SIP connection “{connection.name}” was deleted.")
        return redirect("sipconnection-list", account=self.account.slug)


class SipConnectionNumbersView(ObjectMixin, AccountPortalMixin, View):
    """The assign and unassign buttons of the connection page post here."""

    write_required = True
    object_queryset = SipConnection.objects.all()

    def get(self, request, *args, **kwargs):
        connection = self.get_page_object()
        return redirect("sipconnection-detail", account=self.account.slug, id=connection.public_id)

    def post(self, request, *args, **kwargs):
        connection = self.get_page_object()
        add, remove = request.POST.getlist("add"), request.POST.getlist("remove")
        if add or remove:
            try:
                services.sip_connection_change_numbers(
                    account=self.account, actor=request.user, connection=connection, add=add, remove=remove
                )
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                parts = [f"{len(add)} assigned" if add else "", f"{len(remove)} unassigned" if remove else ""]
                messages.success(request, f"Numbers: {', '.join(p for p in parts if p)}.")
        else:
            messages.error(request, "Choose at least one number.")
        return redirect(
            reverse("sipconnection-detail", kwargs={"account": self.account.slug, "id": connection.public_id})
            + "#numbers"
        )


class SipInviteCreateView(ObjectMixin, AccountPortalMixin, FormView):
    write_required = True
    form_class = SipInviteForm
    template_name = "telephony/invite_form.html"
    object_queryset = SipConnection.objects.all()

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "account": self.account}

    def get_context_data(self, **kwargs):
        return super().get_context_data(connection=self.get_page_object(), **kwargs)

    def form_valid(self, form):
        connection = self.get_page_object()
        try:
            created = services.sip_invite_create(
                account=self.account, actor=self.request.user, connection=connection, **form.cleaned_data
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.form_invalid(form)
        # The link carries the token: rendered into this one response and never stored or shown again.
        response = render(
            self.request,
            "telephony/invite_created.html",
            {
                **self.get_context_data(),
                "invite": created.invite,
                "invite_link": services.invite_link(created.token, self.request),
            },
        )
        response["Cache-Control"] = "no-store"
        return response


class SipInviteRevokeView(ObjectMixin, AccountPortalMixin, TemplateView):
    write_required = True
    template_name = "confirm_delete.html"
    object_queryset = SipInvite.objects.select_related("connection")

    def _back(self, invite) -> str:
        return reverse("sipconnection-detail", kwargs={"account": self.account.slug, "id": invite.connection.public_id})

    def get_context_data(self, **kwargs):
        invite = self.get_page_object()
        return super().get_context_data(
            object=invite,
            title=f"Revoke the invite for “{invite.name}”?",
            explanation="Its link stops working at once. A SIP user already created with it stays.",
            confirm_label="Revoke invite",
            cancel_url=self._back(invite) + "#invites",
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        invite = self.get_page_object()
        services.sip_invite_revoke(account=self.account, actor=request.user, invite=invite)
        messages.success(request, f"The invite for “{invite.name}” was revoked.")
        return redirect(self._back(invite) + "#invites")

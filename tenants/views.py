"""Portal pages for the account itself (dashboard, members, API keys, audit log), login and health."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.generic import FormView, TemplateView
from django_filters.views import FilterView

from portal.api import api_not_found, api_server_error
from tenants import services
from tenants.filtersets import ApiKeyFilterSet, AuditEntryFilterSet, MembershipFilterSet
from tenants.forms import ApiKeyForm, LoginForm, MemberAddForm, MemberRoleForm
from tenants.models import ApiKey, AuditEntry, Membership
from tenants.scoping import AccountPortalMixin, memberships_for

# --- Health and errors -------------------------------------------------------------------------------


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def _check_broker() -> str | None:
    # A fresh connection from the settings, not Celery's pooled one: the check must not reuse a
    # connection that was healthy a minute ago, and must not disturb the app's pools.
    from kombu import Connection

    try:
        with Connection(
            settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS, connect_timeout=2
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


@never_cache
def healthz(request):
    """Public on purpose: load balancers and orchestrators ask it whether this process can serve."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    failed = {name: error for name, error in checks.items() if error}
    body = {
        "status": "ok" if not failed else "unavailable",
        "checks": {name: (error or "ok") for name, error in checks.items()},
    }
    return JsonResponse(body, status=503 if failed else 200)


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return api_not_found(request, exception)
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return api_server_error(request)
    return render(request, "500.html", status=500)


# --- Login -------------------------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "tenants/login.html"
    redirect_authenticated_user = True


@login_required
def portal_home(request):
    """Where a signed-in person lands: their first account, or a page saying they have none."""
    membership = memberships_for(request.user).first()
    if membership is None:
        return render(request, "tenants/no_account.html", status=200)
    return redirect("dashboard", account=membership.account.slug)


# --- Account pages -------------------------------------------------------------------------------


class DashboardView(AccountPortalMixin, TemplateView):
    template_name = "tenants/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["member_count"] = self.scoped(Membership).count()
        context["active_key_count"] = ApiKeyFilterSet({"state": "active"}, self.scoped(ApiKey)).qs.count()
        context["recent_audit"] = self.scoped(AuditEntry).order_by("-created_at")[:8]
        return context


class ScopedListView(AccountPortalMixin, FilterView):
    """The list-page pattern: a FilterSet over the account's rows, paginated, with the filter form on top."""

    model = None
    paginate_by = 25
    strict = False

    def get_queryset(self):
        return self.scoped(super().get_queryset())


class MemberListView(ScopedListView):
    model = Membership
    filterset_class = MembershipFilterSet
    template_name = "tenants/membership_list.html"

    def get_queryset(self):
        return super().get_queryset().select_related("user").order_by("created_at")


class MemberAddView(AccountPortalMixin, FormView):
    manage_required = True
    form_class = MemberAddForm
    template_name = "tenants/membership_form.html"

    def form_valid(self, form):
        try:
            membership, new_user = services.membership_add(
                account=self.account,
                actor=self.request.user,
                acting_role=self.membership.role,
                **form.cleaned_data,
            )
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        note = " They will get an email to choose a password." if new_user else ""
        messages.success(self.request, f"{membership.user.email} was added as {membership.get_role_display()}.{note}")
        return redirect("member-list", account=self.account.slug)


class MemberEditView(AccountPortalMixin, FormView):
    manage_required = True
    form_class = MemberRoleForm
    template_name = "tenants/membership_edit.html"

    def get_member(self) -> Membership:
        if not hasattr(self, "_member"):
            self._member = self.get_object_or_404(Membership.objects.select_related("user"), self.kwargs["id"])
        return self._member

    def get_initial(self):
        return {"role": self.get_member().role}

    def get_context_data(self, **kwargs):
        return super().get_context_data(member=self.get_member(), **kwargs)

    def form_valid(self, form):
        member = self.get_member()
        try:
            services.membership_change_role(
                account=self.account,
                actor=self.request.user,
                acting_role=self.membership.role,
                membership=member,
                role=form.cleaned_data["role"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        messages.success(self.request, f"{member.user.email} is now {form.cleaned_data['role']}.")
        return redirect("member-list", account=self.account.slug)


class MemberRemoveView(AccountPortalMixin, TemplateView):
    manage_required = True
    template_name = "confirm_delete.html"

    def get_context_data(self, **kwargs):
        member = self.get_object_or_404(Membership.objects.select_related("user"), self.kwargs["id"])
        return super().get_context_data(
            object=member,
            title=f"Remove {member.user.email}?",
            explanation="They lose access to this account at once. Their user stays, with any other accounts.",
            confirm_label="Remove member",
            cancel_url=reverse("member-list", kwargs={"account": self.account.slug}),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        member = self.get_object_or_404(Membership.objects.select_related("user"), self.kwargs["id"])
        try:
            services.membership_remove(
                account=self.account, actor=request.user, acting_role=self.membership.role, membership=member
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"{member.user.email} was removed from the account.")
        return redirect("member-list", account=self.account.slug)


class ApiKeyListView(ScopedListView):
    model = ApiKey
    filterset_class = ApiKeyFilterSet
    template_name = "tenants/apikey_list.html"

    def get_queryset(self):
        return super().get_queryset().select_related("created_by").order_by("-created_at")


class ApiKeyCreateView(AccountPortalMixin, FormView):
    manage_required = True
    form_class = ApiKeyForm
    template_name = "tenants/apikey_form.html"

    def form_valid(self, form):
        try:
            created = services.api_key_create(account=self.account, actor=self.request.user, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
            return self.form_invalid(form)
        # The secret is rendered into this one response and never stored or shown again.
        response = render(
            self.request,
            "tenants/apikey_created.html",
            {**self.get_context_data(), "api_key": created.api_key, "secret": created.secret},
        )
        response["Cache-Control"] = "no-store"
        return response


class ApiKeyDetailView(AccountPortalMixin, TemplateView):
    template_name = "tenants/apikey_detail.html"

    def get_context_data(self, **kwargs):
        api_key = self.get_object_or_404(ApiKey.objects.select_related("created_by"), self.kwargs["id"])
        audit = self.scoped(AuditEntry).filter(object_type="apikey", object_id=str(api_key.public_id))
        return super().get_context_data(api_key=api_key, audit=audit[:20], **kwargs)


class ApiKeyRevokeView(AccountPortalMixin, TemplateView):
    manage_required = True
    template_name = "confirm_delete.html"

    def get_context_data(self, **kwargs):
        api_key = self.get_object_or_404(ApiKey, self.kwargs["id"])
        return super().get_context_data(
            object=api_key,
            title=f"Revoke the API key “{api_key.name}”?",
            explanation="Requests with this key fail at once. This cannot be undone; create a new key instead.",
            confirm_label="Revoke key",
            cancel_url=reverse("apikey-detail", kwargs={"account": self.account.slug, "id": api_key.public_id}),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        api_key = self.get_object_or_404(ApiKey, self.kwargs["id"])
        services.api_key_revoke(account=self.account, actor=request.user, api_key=api_key)
        messages.success(request, f"The API key “{api_key.name}” was revoked.")
        return redirect("apikey-list", account=self.account.slug)


class AuditLogView(ScopedListView):
    model = AuditEntry
    filterset_class = AuditEntryFilterSet
    template_name = "tenants/auditentry_list.html"
    paginate_by = 50

    def get_queryset(self):
        return super().get_queryset().order_by("-created_at", "-id")


def _add_errors(form, exc: ValidationError) -> None:
    """A service's ValidationError shown on the form, under the field it names."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, error)
    else:
        for message in exc.messages:
            form.add_error(None, message)

"""THE place that decides which account a request acts for, and what it may do there.

API requests carry a credential (an API key or a signed token) that names exactly one account; portal
requests carry a session user and the account's slug in the URL (`/a/<slug>/...`), checked against the
user's memberships. Every API viewset derives from `AccountScopedViewSet` and every account page from
`AccountPortalMixin`; both reach rows only through `for_account()`, so another account's object is a 404
with the same body as a missing one. The isolation test walks every route and fails on any view that
does not go through here.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import models
from django.http import Http404
from django.shortcuts import render
from rest_framework import viewsets

from tenants import idempotency
from tenants.credentials import AccountCredential
from tenants.models import Account, Membership, User
from tenants.permissions import HasAccountCredential


def parse_public_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


class AccountScopedViewSet(viewsets.GenericViewSet):
    """Base of every account API resource: rows are looked up by public id, only within the caller's account."""

    permission_classes = [HasAccountCredential]
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[^/]+"

    @property
    def credential(self) -> AccountCredential:
        return self.request.auth

    @property
    def account(self) -> Account:
        return self.request.auth.account

    def get_queryset(self) -> models.QuerySet:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):  # schema generation has no request account
            return queryset.none()
        return queryset.for_account(self.account)

    def get_object(self):
        # A malformed id is as unknown as a missing one: 404, not a validation error.
        value = self.kwargs.get(self.lookup_url_kwarg)
        if self.lookup_field == "public_id" and parse_public_id(value) is None:
            raise Http404
        return super().get_object()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._idempotency = idempotency.begin(self.account, request)

    def handle_exception(self, exc):
        if isinstance(exc, idempotency.Replay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record = getattr(self, "_idempotency", None)
        if record is not None:
            idempotency.finish(record, response)
        return response

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        if isinstance(getattr(self.request, "auth", None), AccountCredential):
            context["account"] = self.account
            context["credential"] = self.credential
        return context


def get_for_account(model: type[models.Model], account: Account, public_id) -> models.Model:
    """Resolve an id from a request body within the account; another account's id is as missing as none."""
    parsed = parse_public_id(public_id)
    if parsed is None:
        raise model.DoesNotExist
    return model.objects.for_account(account).get(public_id=parsed)


# --- Portal ------------------------------------------------------------------------------------------


def memberships_for(user: User) -> models.QuerySet:
    return Membership.objects.filter(user=user).select_related("account").order_by("account__name")


class AccountPortalMixin(LoginRequiredMixin):
    """Base of every account page: the account comes from the URL and must be one the user has a seat in.

    Pages that change things set `write_required = True` (any write role) or `manage_required = True`
    (owner or admin); everyone else gets 403 on those requests and sees no write controls.
    """

    write_required = False
    manage_required = False

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        membership = (
            Membership.objects.select_related("account")
            .filter(user=request.user, account__slug=kwargs.get("account"))
            .first()
        )
        if membership is None:
            raise Http404("No such account.")
        self.account = membership.account
        self.membership = membership
        self.credential = AccountCredential(account=membership.account, role=membership.role, user=request.user)
        request.portal_credential = self.credential
        if not self.account.is_active:
            return render(request, "tenants/account_suspended.html", {"account": self.account}, status=403)
        if self.manage_required and not self.credential.can_manage:
            raise DjangoPermissionDenied("Only an owner or admin may do this.")
        if self.write_required and not self.credential.can_write:
            raise DjangoPermissionDenied("Viewers may only read.")
        return super().dispatch(request, *args, **kwargs)

    def scoped(self, queryset_or_model) -> models.QuerySet:
        queryset = queryset_or_model
        if isinstance(queryset_or_model, type):
            queryset = queryset_or_model.objects.all()
        return queryset.for_account(self.account)

    def get_object_or_404(self, queryset_or_model, public_id):
        parsed = parse_public_id(public_id)
        if parsed is None:
            raise Http404
        try:
            return self.scoped(queryset_or_model).get(public_id=parsed)
        except models.ObjectDoesNotExist as exc:
            raise Http404 from exc

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["account"] = self.account
        context["membership"] = self.membership
        context["can_write"] = self.credential.can_write
        context["can_manage"] = self.credential.can_manage
        return context

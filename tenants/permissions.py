"""API permissions. Kept apart from scoping.py because DRF imports them while its own views module loads."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from tenants.credentials import AccountCredential


class AccountSuspended(exceptions.PermissionDenied):
    default_code = "account_suspended"
    default_detail = "This account is suspended; its data is kept, but it cannot be used until it is reactivated."


class ReadOnlyCredential(exceptions.PermissionDenied):
    default_code = "read_only_credential"
    default_detail = "This credential may only read: it is a viewer's, or a read-only API key."


class HasAccountCredential(permissions.BasePermission):
    """The request authenticated as an account, and that account is active. Viewers and read-only keys read only."""

    def has_permission(self, request, view) -> bool:
        credential = request.auth
        if not isinstance(credential, AccountCredential):
            raise exceptions.NotAuthenticated()
        if not credential.account.is_active:
            raise AccountSuspended()
        if request.method not in permissions.SAFE_METHODS and not credential.can_write:
            raise ReadOnlyCredential()
        return True


class CanManageAccess(HasAccountCredential):
    """Members and API keys: everyone in the account may list them, only owners and admins change them."""

    message = "Only an owner or admin, signed in as themselves (not with an API key), may do this."
    code = "manage_permission_required"

    def has_permission(self, request, view) -> bool:
        super().has_permission(request, view)
        return request.method in permissions.SAFE_METHODS or request.auth.can_manage

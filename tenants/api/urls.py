from __future__ import annotations

from django.urls import path

from portal.api import router
from tenants.api.views import AccountViewSet, ApiKeyViewSet, AuditEntryViewSet, AuthView, MembershipViewSet

router.register("members", MembershipViewSet, basename="member")
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("audit-log", AuditEntryViewSet, basename="audit-entry")

urlpatterns = [
    path("auth", AuthView.as_view(), name="api-auth"),
    path("account", AccountViewSet.as_view({"get": "retrieve"}), name="api-account"),
]

"""Top-level routes. Each app owns its URLs; this file only mounts them."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from portal.api import api_not_found, router
from tenants.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Kamailio's endpoints (shared secret, no session): telephony/edge/views.py.
    path("internal/sip/", include("telephony.edge.urls")),
    path("api/v1/", include("tenants.api.urls")),
    path("api/v1/", include("telephony.api.urls")),
    path("api/v1/", include(router.urls)),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Unknown API paths answer the JSON error body, in DEBUG too (Django's debug 404 page is HTML).
    re_path(r"^api/", api_not_found),
    path("", include("tenants.urls")),
    path("", include("telephony.urls")),
]

handler404 = "tenants.views.not_found"
handler500 = "tenants.views.server_error"

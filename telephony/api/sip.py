"""API for sip. Viewsets register on portal.api.router; non-viewset paths go in urlpatterns."""

from __future__ import annotations

urlpatterns: list = []

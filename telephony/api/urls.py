"""Telephony API routes: each area's module registers its viewsets on portal.api.router at import."""

from __future__ import annotations

from telephony.api import numbers, profiles, sip

urlpatterns = [*numbers.urlpatterns, *profiles.urlpatterns, *sip.urlpatterns]

"""Telephony API routes register their viewsets on portal.api.router; paths that are not viewsets go here."""

from __future__ import annotations

urlpatterns: list = []

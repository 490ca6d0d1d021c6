"""Portal pages for profiles, under /a/<account>/."""

from __future__ import annotations

urlpatterns: list = []

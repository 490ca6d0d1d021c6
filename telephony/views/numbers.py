"""Portal pages for numbers, under /a/<account>/."""

from __future__ import annotations

urlpatterns: list = []

"""Portal pages for telephony resources, under /a/<account>/."""

from __future__ import annotations

urlpatterns: list = []

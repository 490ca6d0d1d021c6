"""Portal pages for sip, under /a/<account>/."""

from __future__ import annotations

urlpatterns: list = []

"""Portal pages for telephony resources, under /a/<account>/ (plus public pages such as SIP invites)."""

from __future__ import annotations

from telephony.views import numbers, profiles, sip

urlpatterns = [*numbers.urlpatterns, *profiles.urlpatterns, *sip.urlpatterns]

"""Portal pages for telephony resources, under /a/<account>/ (plus public pages such as SIP invites)."""

from __future__ import annotations

import telephony.views.apps
import telephony.views.calls
import telephony.views.simulator
from telephony.views import numbers, profiles, sip, stream

urlpatterns = [*numbers.urlpatterns, *profiles.urlpatterns, *sip.urlpatterns]
urlpatterns += stream.urlpatterns
urlpatterns += telephony.views.apps.urlpatterns
urlpatterns += telephony.views.calls.urlpatterns
urlpatterns += telephony.views.simulator.urlpatterns

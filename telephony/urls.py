"""Portal pages for telephony resources, under /a/<account>/ (plus public pages such as SIP invites)."""

from __future__ import annotations

import telephony.views.apps
import telephony.views.bulk
import telephony.views.calls
import telephony.views.hooks
import telephony.views.messaging
import telephony.views.outbound
import telephony.views.simulator
import telephony.views.webhooks
from telephony.views import numbers, profiles, sip, stream

urlpatterns = [*numbers.urlpatterns, *profiles.urlpatterns, *sip.urlpatterns]
urlpatterns += stream.urlpatterns
urlpatterns += telephony.views.apps.urlpatterns
urlpatterns += telephony.views.outbound.urlpatterns  # before calls/<id>/
urlpatterns += telephony.views.calls.urlpatterns
urlpatterns += telephony.views.simulator.urlpatterns
urlpatterns += telephony.views.webhooks.urlpatterns
urlpatterns += telephony.views.bulk.urlpatterns
urlpatterns += telephony.views.hooks.urlpatterns
urlpatterns += telephony.views.messaging.urlpatterns

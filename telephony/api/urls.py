"""Telephony API routes: each area's module registers its viewsets on portal.api.router at import."""

from __future__ import annotations

import telephony.api.apps  # registers /call-control-apps on the router
import telephony.api.bulk_calls  # registers /bulk-calls on the router
import telephony.api.calls  # noqa: F401 - registers /calls on the router
from telephony.api import (
    callbacks,
    callflows,
    events,
    messaging,
    numbers,
    profiles,
    simulator,
    sip,
    stream,
    web_callback,  # the softphone's URL: public, SIP credentials
    webhooks,
)

urlpatterns = [*numbers.urlpatterns, *profiles.urlpatterns, *sip.urlpatterns]
urlpatterns += [*events.urlpatterns, *webhooks.urlpatterns]
urlpatterns += callflows.urlpatterns
urlpatterns += stream.urlpatterns
urlpatterns += simulator.urlpatterns
urlpatterns += callbacks.urlpatterns
urlpatterns += web_callback.urlpatterns
urlpatterns += messaging.urlpatterns

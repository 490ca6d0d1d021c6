"""Telephony API routes: each area's module registers its viewsets on portal.api.router at import."""

from __future__ import annotations

import telephony.api.apps  # registers /call-control-apps on the router
import telephony.api.calls  # noqa: F401 - registers /calls on the router
from telephony.api import callflows, events, numbers, profiles, simulator, sip, stream, webhooks

urlpatterns = [*numbers.urlpatterns, *profiles.urlpatterns, *sip.urlpatterns]
urlpatterns += [*events.urlpatterns, *webhooks.urlpatterns]
urlpatterns += callflows.urlpatterns
urlpatterns += stream.urlpatterns
urlpatterns += simulator.urlpatterns

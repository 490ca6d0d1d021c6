"""Staff admin for telephony, one module per area."""

from __future__ import annotations

import telephony.admin.apps
import telephony.admin.calls  # noqa: F401 - importing registers the ModelAdmins
from telephony.admin import (  # noqa: F401 - importing registers the ModelAdmins
    bulk,
    engine,
    events,
    messaging,
    numbers,
    outbound,
    profiles,
    sip,
    stream,
)

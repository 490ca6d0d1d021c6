"""Staff admin for telephony, one module per area."""

from __future__ import annotations

from telephony.admin import numbers, profiles, sip  # noqa: F401 - importing registers the ModelAdmins

"""Test settings for a uvicorn process that also serves the static files (the live pane's events.js)."""

from __future__ import annotations

from portal.settings.test import *  # noqa: F403

# portal.settings.test serves only collected files, and nothing is collected outside production.
WHITENOISE_USE_FINDERS = True

"""Production settings: DEBUG is forced off, SECRET_KEY is required, static files are hashed and compressed."""

from __future__ import annotations

import os

os.environ["DEBUG"] = "false"

from portal.settings.base import *  # noqa: F403

SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# A SIP password reaches /api/v1/web-callback only over HTTPS (Acrobits' own rule).
WEB_CALLBACK_REQUIRE_HTTPS = True

"""Development settings for `make run` and `manage.py`: DEBUG on, static files served from source."""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "true")

from portal.settings.base import *  # noqa: F403
from portal.settings.base import STORAGES, VAR_DIR, env

# Static files straight from their folders, so a fresh checkout needs no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
# Nothing is collected outside production; an empty folder keeps WhiteNoise from warning about it.
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# make run points webhooks at local receivers on this machine; production refuses loopback by default.
OUTBOUND_URL_ALLOW_LOOPBACK = env.bool("OUTBOUND_URL_ALLOW_LOOPBACK", default=True)

# `make run` takes inbound test calls through the simulated switch (API and portal form).
SIMULATOR_ENABLED = env.bool("SIMULATOR_ENABLED", default=True)

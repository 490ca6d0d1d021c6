"""WSGI entry point, for servers that do not speak ASGI (the websocket stream then needs the ASGI one)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.production")
application = get_wsgi_application()

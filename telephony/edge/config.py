"""Kamailio's configuration, rendered from settings: the same database and portal as `make run`."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

TEMPLATE = Path(settings.BASE_DIR) / "docker" / "kamailio" / "kamailio.cfg.tmpl"
MODULES_DIR = "/usr/lib/x86_64-linux-gnu/kamailio/modules"


def edge_secret() -> str:
    """The shared secret of the internal endpoints: SIP_EDGE_SECRET, or one derived from SECRET_KEY.

    Deriving it lets `make run` and `make sip` on one machine agree without configuration; a deployment
    that runs Kamailio elsewhere sets SIP_EDGE_SECRET on both sides.
    """
    if settings.SIP_EDGE_SECRET:
        return settings.SIP_EDGE_SECRET
    return hmac.new(settings.SECRET_KEY.encode(), b"sip-edge-internal-endpoints", hashlib.sha256).hexdigest()


def database_url(alias: str = DEFAULT_DB_ALIAS) -> str:
    """The postgres:// URL of the portal's database (as the connection is configured now, test database too)."""
    if settings.SIP_EDGE["db_url"]:
        return settings.SIP_EDGE["db_url"]
    db = connections[alias].settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise ValueError("The SIP edge needs the portal on PostgreSQL (set DATABASE_URL=postgres://...).")
    credentials = db.get("USER") or "postgres"
    if db.get("PASSWORD"):
        credentials += f":{db['PASSWORD']}"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return f"postgres://{credentials}@{host}:{port}/{db['NAME']}"


def _check(name: str, value: str) -> str:
    # Values land inside double-quoted strings of the config: nothing may end the string or the line.
    if any(char in value for char in '"\n\r\\'):
        raise ValueError(f"{name} must not contain quotes, backslashes or line breaks")
    return value


def render(**overrides) -> str:
    """The configuration text. `overrides` replace SIP_EDGE settings (tests run Kamailio on free ports)."""
    edge = {**settings.SIP_EDGE, **overrides}
    portal_url = (edge["portal_url"] or settings.PORTAL_BASE_URL).rstrip("/")
    if urlsplit(portal_url).scheme not in ("http", "https"):
        raise ValueError("SIP_EDGE portal_url must be an http(s) URL")
    advertise = f" advertise {edge['advertise_host']}:{edge['port']}" if edge.get("advertise_host") else ""
    values = {
        "DB_URL": _check("db_url", edge.get("db_url") or database_url()),
        "PORTAL_URL": _check("portal_url", portal_url),
        "SECRET": _check("secret", edge.get("secret") or edge_secret()),
        "DEBUG": str(int(edge["debug"])),
        "CHILDREN": str(int(edge["children"])),
        "ASYNC_WORKERS": str(int(edge["async_workers"])),
        "LISTEN": _check("listen_host", edge["listen_host"]),
        "PORT": str(int(edge["port"])),
        "ADVERTISE": advertise,
        "MODULES": MODULES_DIR,
        "RING_TIMEOUT_MS": str(int(settings.CALL_FORWARD_TIMEOUT_MS)),
        "MAX_CALL_S": str(int(settings.CALL_MAX_LENGTH_S)),
        "EVENTS_INTERVAL_MS": str(int(edge["events_interval_ms"])),
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@@{name}@@", value)
    return text

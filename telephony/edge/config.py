"""Kamailio's configuration, rendered from settings: the same database and portal as `make run`."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

TEMPLATE = Path(settings.BASE_DIR) / "docker" / "kamailio" / "kamailio.cfg.tmpl"
MODULES_DIR = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
_SECRET = re.compile(r"[A-Za-z0-9._~-]+")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]+")


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
    flood = max(0, int(edge["flood_per_s"]))
    advertise_host = edge.get("advertise_host") or ""
    for name, host in (("listen_host", edge["listen_host"]), ("advertise_host", advertise_host)):
        if host and not _HOST.fullmatch(host):  # outside quotes: a space or a line break would add configuration
            raise ValueError(f"SIP_EDGE {name} must be a hostname or an IP address")
    advertise = f" advertise {advertise_host}:{edge['port']}" if advertise_host else ""
    secret = _check("secret", edge.get("secret") or edge_secret())
    if "@" in secret:
        raise ValueError("secret must not contain @ (Kamailio's httpcon would cut the URL there)")
    if not _SECRET.fullmatch(secret):
        # The events' header is read for pseudo-variables ($...), and the route connection's URL carries the secret
        # as its password: only characters that mean nothing in either.
        raise ValueError("secret must be letters, digits, '.', '_', '~' and '-' only")
    scheme, rest = portal_url.split("://", 1)
    values = {
        "DB_URL": _check("db_url", edge.get("db_url") or database_url()),
        "PORTAL_URL": _check("portal_url", portal_url),
        "SECRET": secret,
        "SECRET_SHA256": hashlib.sha256(secret.encode()).hexdigest(),
        # The route requests' named connection (kept open, so no TCP handshake and no new server-side connection
        # per INVITE); httpcon cannot add headers, so the secret travels as basic credentials.
        "PORTAL_CON": f"{scheme}://kamailio:{secret}@{rest}",
        "HTTP_TIMEOUT_S": str(max(1, int(edge.get("http_timeout_s", 2)))),
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
        "MAX_RING_MS": str(int(edge["max_ring_s"]) * 1000),
        # The dialog module refuses keepalive intervals under 30 s.
        "KEEPALIVE_S": str(max(30, int(edge["keepalive_s"]))),
        "NAT_PING_S": str(max(0, int(edge["nat_ping_s"]))),
        "PING_DOMAIN": _check("PLATFORM_SIP_DOMAIN", settings.PLATFORM_SIP_DOMAIN),
        "FLOOD_PER_S": str(flood),
        "FLOOD_PER_UNIT": str(flood * 2),  # pike samples over 2 s
        "FLOOD_DEFINE": "#!define WITH_FLOOD_LIMIT" if flood > 0 else "",
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@@{name}@@", value)
    return text

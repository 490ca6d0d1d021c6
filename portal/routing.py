"""Websocket routes. The event stream arrives with the events work; the router is wired now."""

from __future__ import annotations

websocket_urlpatterns: list = []

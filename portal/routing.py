"""Websocket routes, served by the same ASGI process as the portal and the API (portal/asgi.py)."""

from __future__ import annotations

from django.urls import path

from telephony.stream import EventStreamConsumer

websocket_urlpatterns: list = [
    path("ws/events", EventStreamConsumer.as_asgi()),
]

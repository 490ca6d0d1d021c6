from __future__ import annotations

from django.urls import path

from telephony.edge import views

urlpatterns = [
    path("route", views.route, name="sip-edge-route"),
    path("dial-outcome", views.dial_outcome, name="sip-edge-dial-outcome"),
    path("events", views.events, name="sip-edge-events"),
]

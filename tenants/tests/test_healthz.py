from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_it_answers_200_when_the_database_and_broker_are_reachable(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_it_answers_503_naming_the_broker_when_it_is_unreachable(client, settings):
    # A real connection attempt to a port nothing listens on.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["broker"] != "ok"


def test_it_needs_no_credential(client):
    assert client.get("/healthz").status_code in (200, 503)

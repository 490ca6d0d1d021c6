from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tenants.models import Account, ApiKey, User

pytestmark = pytest.mark.django_db


def read(path):
    return dict(line.split(": ", 1) for line in path.read_text().splitlines())


def test_it_creates_a_working_login_and_api_key_and_prints_them(tmp_path, capsys, client):
    output = tmp_path / "creds.txt"

    call_command("seed_demo", output=str(output))

    creds = read(output)
    printed = capsys.readouterr().out
    assert creds["password"] in printed and creds["api_key"] in printed
    assert client.login(username=creds["email"], password=creds["password"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {creds['api_key']}")
    assert api.get("/api/v1/account").json()["name"] == "Demo Co"


def test_it_is_idempotent(tmp_path):
    output = tmp_path / "creds.txt"
    call_command("seed_demo", output=str(output))
    first = read(output)

    call_command("seed_demo", output=str(output))

    assert read(output) == first
    assert Account.objects.filter(slug="demo").count() == 1
    assert User.objects.filter(email="demo@example.com").count() == 1
    assert ApiKey.objects.count() == 1


def test_it_repairs_a_revoked_key(tmp_path):
    from django.utils import timezone

    output = tmp_path / "creds.txt"
    call_command("seed_demo", output=str(output))
    ApiKey.objects.update(revoked_at=timezone.now())

    call_command("seed_demo", output=str(output))

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {read(output)['api_key']}")
    assert api.get("/api/v1/account").status_code == 200

"""Production safety of the settings modules, checked in fresh interpreters with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def settings_of(module: str, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    code = (
        "import django, json; from django.conf import settings; django.setup();"
        "print(json.dumps({'DEBUG': settings.DEBUG, 'HSTS': settings.SECURE_HSTS_SECONDS,"
        "'SECURE_COOKIES': settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": module, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = settings_of("portal.settings.production")

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_forces_debug_off_with_secure_cookies_and_hsts():
    import json

    result = settings_of("portal.settings.production", SECRET_KEY="x" * 50, DEBUG="true")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"DEBUG": False, "HSTS": 31536000, "SECURE_COOKIES": True}


def test_base_settings_default_to_debug_off():
    result = settings_of("portal.settings.base", SECRET_KEY="x" * 50)

    assert result.returncode == 0, result.stderr
    assert '"DEBUG": false' in result.stdout

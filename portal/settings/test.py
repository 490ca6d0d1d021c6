"""Test settings: the suite runs on SQLite with no services, or on PostgreSQL/Redis when their URLs are set."""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
# The suite's own folder for its SQLite file, file cache and filesystem broker, apart from `make run`'s.
os.environ.setdefault("VAR_DIR", str(__import__("pathlib").Path(__file__).resolve().parents[2] / "var" / "test"))

from portal.settings.base import *  # noqa: F403
from portal.settings.base import DATABASES, STORAGES, VAR_DIR

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed: tests hash many passwords
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
# Nothing is collected outside production; an empty folder keeps WhiteNoise from warning about it.
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
API_RATE_LIMIT = "1000/s"
# Customer endpoints in the tests are real local servers; tests of refusal turn this off explicitly.
OUTBOUND_URL_ALLOW_LOOPBACK = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a worker subprocess in the tests can open the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

# A Celery worker started by the tests is pointed at the test database the suite created.
if os.environ.get("WORKER_TEST_DATABASE"):
    DATABASES["default"]["NAME"] = os.environ["WORKER_TEST_DATABASE"]

# The simulated switch runs calls 1000 times faster than real time unless a test says otherwise (a worker
# started by a test reads SIMULATED_SWITCH_SPEED from its environment).
from portal.settings.base import SIMULATED_SWITCH, env  # noqa: E402

SIMULATOR_ENABLED = True
SIMULATED_SWITCH = {**SIMULATED_SWITCH, "speed": env.float("SIMULATED_SWITCH_SPEED", default=1000.0)}

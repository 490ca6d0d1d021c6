"""Settings shared by every environment, read from the environment through django-environ.

Safe by default: DEBUG is off unless set, SECRET_KEY is then required, and with no service URLs the
product runs on embedded defaults (SQLite, a filesystem broker, a file cache, an in-process channel
layer) so a fresh machine needs nothing but Python. Every variable is listed in docker/.env.example.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A developer's own overrides; the file is optional and never committed.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "channels",
    "tenants",
    "telephony",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.portal",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one SQLite file: WAL lets readers run beside the one writer,
    # IMMEDIATE transactions take the write lock up front instead of failing mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif env.int("DB_POOL_MAX_SIZE", default=0) > 0:
    # The web process: its HTTP threads (portal/asgi.py) and the websocket stream's threads share a pool, so no
    # request pays a new PostgreSQL connection.
    # Workers leave it off: Celery forks, and a pool's threads do not survive a fork.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        # Open from the start (portal/asgi.py fills it) for every request thread: one that had to wait while the pool
        # grew by a connection at a time was the slowest request of a restart.
        "min_size": min(
            env.int("DB_POOL_MIN_SIZE", default=env.int("WEB_THREADS", default=10)), env.int("DB_POOL_MAX_SIZE")
        ),
        "max_size": env.int("DB_POOL_MAX_SIZE"),
        "timeout": env.int("DB_POOL_TIMEOUT_SECONDS", default=10),
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The inbound call path prepares its few hot statements once per connection (telephony.screening.hot_execute).
# A deployment behind a pooler that cannot keep prepared statements (PgBouncer in transaction mode before 1.21, or
# without max_prepared_statements) turns this off.
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)

# --- Redis, cache, channel layer ----------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "portal.cache.SharedRedisCache",
            "LOCATION": REDIS_URL,
            # Connections kept across requests (Django's own pool lives and dies with one request's thread).
            "OPTIONS": {"pool_class": "portal.cache.SharedConnectionPool"},
        }
    }
    # channels_redis blocks in BZPOPMIN for 5 s at a time, and redis-py's default socket timeout is also 5 s: an
    # idle receive would time out and drop its connection every 5 s. A longer socket timeout keeps them apart.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}]},
        }
    }
else:
    # A file cache is shared by every process on the machine, which rate limits and login throttles need.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Auth ------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "tenants.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal-home"
LOGOUT_REDIRECT_URL = "login"

# Lifetime of the signed token that `GET /api/v1/auth` hands out.
AUTH_TOKEN_TTL = timedelta(seconds=env.int("AUTH_TOKEN_TTL_SECONDS", default=24 * 3600))
# Failed logins (API and portal) allowed per email and per client address within the window.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)
API_KEY_PREFIX = env.str("API_KEY_PREFIX", default="pk_live_")

# --- Internationalisation -------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "portal" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Email -------------------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")

# --- Security ----------------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

# --- REST API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiKeyAuthentication",
        "tenants.authentication.AuthTokenAuthentication",
    ],
    # Closed by default: a view that should be public says so with its own permission_classes.
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.HasAccountCredential"],
    "DEFAULT_THROTTLE_CLASSES": ["tenants.throttling.CredentialRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.PagePagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "portal.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "PAGE_SIZE": 50,
}
# Requests per period for one credential (API key or token); an API key may carry its own limit.
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="100/s")
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)

SPECTACULAR_SETTINGS = {
    "TITLE": "Telephony control plane API",
    "DESCRIPTION": (
        "Phone numbers, SIP, call control, messaging and events. Authenticate with an API key "
        "(`Authorization: Bearer pk_live_...`) or a token from `GET /api/v1/auth`. Every error has the body "
        '`{"error": {"code": "...", "message": "...", "fields": {"<field>": ["..."]}}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "APPEND_COMPONENTS": {"securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}}},
    # Several models have a `status` or `kind`; name each choice set after its model in the schema.
    "ENUM_NAME_OVERRIDES": {
        "AccountStatusEnum": "tenants.models.Account.Status",
        "StockNumberStatusEnum": "telephony.models.numbers.StockNumber.Status",
        "NumberOrderStatusEnum": "telephony.models.numbers.NumberOrder.Status",
        "PhoneNumberStatusEnum": "telephony.models.numbers.PhoneNumber.Status",
        "CallStatusEnum": "telephony.models.calls.CallStatus",
        "DeliveryStatusEnum": "telephony.models.events.Delivery.Status",
        "DeliveryKindEnum": "telephony.models.events.Delivery.Kind",
        "CallerListEntryKindEnum": "telephony.models.profiles.CallerListEntry.Kind",
        "HttpMethodEnum": "telephony.models.apps.HttpMethod",
        "MessageStatusEnum": "telephony.models.messaging.Message.Status",
        "MessageDirectionEnum": "telephony.models.messaging.Message.Direction",
        "CallDirectionEnum": "telephony.models.calls.Call.Direction",
        "ReviewStatusEnum": "telephony.models.messaging.ReviewStatus",
        "BulkCallStatusEnum": "telephony.models.bulk.BulkCall.Status",
    },
}

# --- Celery ------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: one folder is both the inbox and the outbox of every process.
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # How often an idle worker looks for new files; short, because calls wait on these tasks.
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A task a worker took but did not acknowledge (it died) is handed out again after this long.
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        # A publish on a connection that is down fails at once instead of retrying the connect for ~6 s (kombu's
        # default, 2 s and 4 s apart): with the broker down, every kick held its request or engine step that long,
        # and a kick is allowed to fail (the sweepers catch up). Publishes that ask for retries (retry_policy) and
        # the workers' own reconnecting pass their retry counts explicitly, so this does not touch them.
        "max_retries": 0,
    }
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu's Redis transport, minus a new Redis client per publish (portal/broker.py).
    CELERY_BROKER_TRANSPORT = "portal.broker:Transport"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TASK_ALWAYS_EAGER = False
# Celery's Django fixup closes every database connection before and after each task unless this is set, so each
# task paid a new PostgreSQL connection (a backend fork and its set-up: milliseconds, more than a whole engine
# step). Connections are kept like the web keeps them: closed when broken or older than CONN_MAX_AGE (the task
# signals in portal/celery.py), and by Celery after this many tasks.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)

# --- Logging -----------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # httpx logs every request at INFO; the delivery log already records each one.
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# --- Product settings ----------------------------------------------------------------------------
PLATFORM_NAME = env.str("PLATFORM_NAME", default="Telephony Portal")
# The portal's public address, for links in emails and invites (requests give the host otherwise).
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://localhost:8000").rstrip("/")
# SIP domains are <name>.sip.<PLATFORM_SIP_DOMAIN>; it is also the digest realm of credential trunks.
# Changing it later invalidates every stored SIP password hash.
PLATFORM_SIP_DOMAIN = env.str("PLATFORM_SIP_DOMAIN", default="example.net")
# The web callback (/api/v1/web-callback) refuses a SIP password sent over plain HTTP (behind a TLS proxy,
# SECURE_PROXY_SSL_HEADER says the request was HTTPS). Off only for local development.
WEB_CALLBACK_REQUIRE_HTTPS = env.bool("WEB_CALLBACK_REQUIRE_HTTPS", default=not DEBUG)
# Largest request body read into memory (uploads excepted): room for a bulk call's 100,000 destinations in one
# JSON body, written with spaces and brackets ("+1 (201) 555-0123"), beside its do-not-call list.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=8 * 1024 * 1024)
# Largest request body of any kind, uploads included (a stock import of a million numbers is ~20 MB): the web
# process receives a body whole before Django sees it (portal/wsgi_threads.py), so without a bound one client could
# fill the disk. Over it: 413 `request_too_large`, before anything is read when Content-Length says so.
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=64 * 1024 * 1024)
# Outbound URL policy (telephony/urlpolicy.py): loopback and private networks are refused unless named here.
OUTBOUND_URL_ALLOW_LOOPBACK = env.bool("OUTBOUND_URL_ALLOW_LOOPBACK", default=False)
OUTBOUND_URL_ALLOWED_NETWORKS = env.list("OUTBOUND_URL_ALLOWED_NETWORKS", default=[])
# Empty: any port.
OUTBOUND_URL_ALLOWED_PORTS = [int(p) for p in env.list("OUTBOUND_URL_ALLOWED_PORTS", default=[])]
# Numbers an account may hold unless staff set its own quota.
NUMBER_QUOTA = env.int("NUMBER_QUOTA", default=100)
# A released number rests this long before it can be sold again.
NUMBER_QUARANTINE_DAYS = env.int("NUMBER_QUARANTINE_DAYS", default=30)

# --- Events and webhooks (telephony/delivery.py) ---------------------------------------------------------
# Events (and their deliveries) are kept this long, then purged daily.
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=30)
# Key that encrypts webhook signing secrets at rest; empty: derived from SECRET_KEY (and SECRET_KEY_FALLBACKS).
WEBHOOK_SECRET_KEY = env.str("WEBHOOK_SECRET_KEY", default="")
# Seconds before each attempt: the first is immediate, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (±10 %).
WEBHOOK_RETRY_SCHEDULE = [
    float(s)
    for s in env.list("WEBHOOK_RETRY_SCHEDULE", default=["0", "5", "300", "1800", "7200", "18000", "36000", "36000"])
]
# An endpoint failing every attempt for this long is disabled and its owners emailed.
WEBHOOK_DISABLE_AFTER_DAYS = env.int("WEBHOOK_DISABLE_AFTER_DAYS", default=5)
# Consecutive failures that open an endpoint's circuit breaker, and how long it then rests before one probe.
WEBHOOK_CIRCUIT_FAILURES = env.int("WEBHOOK_CIRCUIT_FAILURES", default=5)
WEBHOOK_CIRCUIT_COOLDOWN_SECONDS = env.int("WEBHOOK_CIRCUIT_COOLDOWN_SECONDS", default=60)
# How long a worker's claim on a delivery lasts; a worker killed mid-send lets it fall due after this.
WEBHOOK_CLAIM_LEASE_SECONDS = env.int("WEBHOOK_CLAIM_LEASE_SECONDS", default=60)
# Deliveries claimed per query, requests in flight per worker process, and per endpoint in one process.
WEBHOOK_BATCH_SIZE = env.int("WEBHOOK_BATCH_SIZE", default=100)
WEBHOOK_CONCURRENCY = env.int("WEBHOOK_CONCURRENCY", default=200)
WEBHOOK_ENDPOINT_CONCURRENCY = env.int("WEBHOOK_ENDPOINT_CONCURRENCY", default=20)

# --- Call-flow documents (telephony/callflow) ---------------------------------------------------------
# Safety limits of every call-flow XML document, from the API, the portal or a customer's callback URL:
# size in UTF-8 bytes, element nesting depth, and number of elements.
CALLFLOW_MAX_BYTES = env.int("CALLFLOW_MAX_BYTES", default=256 * 1024)
CALLFLOW_MAX_DEPTH = env.int("CALLFLOW_MAX_DEPTH", default=32)
CALLFLOW_MAX_COMMANDS = env.int("CALLFLOW_MAX_COMMANDS", default=1000)

# --- Websocket event stream (telephony/stream.py) -----------------------------------------------------------
# How often a connection looks for new events without being woken. The channel layer wakes connections as soon
# as an event commits in the same process (in-process layer) or anywhere (Redis); the poll carries events
# committed by other processes on the in-process layer, and covers a lost wake-up on Redis.
STREAM_POLL_SECONDS = env.float("STREAM_POLL_SECONDS", default=5.0 if REDIS_URL else 0.5)
# Seconds between {"type": "heartbeat"} messages, and the wait for the first (auth) message before closing.
STREAM_HEARTBEAT_SECONDS = env.float("STREAM_HEARTBEAT_SECONDS", default=25.0)
STREAM_AUTH_TIMEOUT_SECONDS = env.float("STREAM_AUTH_TIMEOUT_SECONDS", default=5.0)
# A client that does not take a message within this long, or falls more than STREAM_MAX_LAG events behind the
# live stream, is closed (4008) and resumes with its last event id: the server never buffers without bound.
STREAM_SEND_TIMEOUT_SECONDS = env.float("STREAM_SEND_TIMEOUT_SECONDS", default=10.0)
STREAM_MAX_LAG = env.int("STREAM_MAX_LAG", default=10000)
# Events read from the database per query; one batch is all a connection holds in memory.
STREAM_BATCH_SIZE = env.int("STREAM_BATCH_SIZE", default=500)

# --- SIP edge (Kamailio, telephony/edge, docker/kamailio; README "SIP edge") ---------------------------------
# Kamailio reaches the portal's internal endpoints (/internal/sip/...) with this shared secret; empty: one
# derived from SECRET_KEY (telephony.edge.config.edge_secret), which is enough when both run from one checkout.
SIP_EDGE_SECRET = env.str("SIP_EDGE_SECRET", default="")
SIP_EDGE = {
    # Where Kamailio listens (UDP and TCP), and the address it puts in Record-Route when behind NAT.
    "listen_host": env.str("SIP_EDGE_LISTEN_HOST", default="127.0.0.1"),
    "port": env.int("SIP_EDGE_PORT", default=5060),
    "advertise_host": env.str("SIP_EDGE_ADVERTISE_HOST", default=""),
    # Empty: the portal's own DATABASE_URL (it must be PostgreSQL).
    "db_url": env.str("SIP_EDGE_DB_URL", default=""),
    # How Kamailio reaches the portal; empty: PORTAL_BASE_URL.
    "portal_url": env.str("SIP_EDGE_PORTAL_URL", default=""),
    "children": env.int("SIP_EDGE_CHILDREN", default=4),
    # Processes asking the portal for routes: each waits for its answer, so this bounds the decisions in flight
    # (keep it at most the web server's threads); http_timeout_s is how long an INVITE waits before a 503.
    "async_workers": env.int("SIP_EDGE_ASYNC_WORKERS", default=8),
    "http_timeout_s": env.int("SIP_EDGE_HTTP_TIMEOUT_S", default=2),
    "debug": env.int("SIP_EDGE_DEBUG", default=2),
    # How often Kamailio posts its queued call events (answer, hang-up...) to the portal.
    "events_interval_ms": env.int("SIP_EDGE_EVENTS_INTERVAL_MS", default=100),
    # Calls Kamailio never reports the end of (telephony/services/sip_edge_lifecycle.py): the longest an INVITE
    # may ring (tm max_inv_lifetime), in-dialog OPTIONS keepalives (s, at least 30), the grace before a silent
    # call is checked (the beat reconciles every 30 s), and where Kamailio's RPC answers (empty: its SIP port).
    "max_ring_s": env.int("SIP_EDGE_MAX_RING_S", default=180),
    "keepalive_s": env.int("SIP_EDGE_KEEPALIVE_S", default=60),
    "lost_grace_s": env.int("SIP_EDGE_LOST_GRACE_S", default=60),
    "rpc_url": env.str("SIP_EDGE_RPC_URL", default=""),
    # Phones behind NAT are pinged this often to keep their binding open (0: never); a source sending more than
    # flood_per_s requests per second is ignored until it slows down (pike; 0: no limit).
    "nat_ping_s": env.int("SIP_EDGE_NAT_PING_S", default=30),
    "flood_per_s": env.int("SIP_EDGE_FLOOD_PER_S", default=200),
}

# --- Call engine and switch (telephony/engine, telephony/switch) ---------------------------------------
# The switch adapter every telephony action goes through (telephony/switch/base.py). The built-in one is the
# simulated switch, for development, tests and test calls; a real edge (e.g. Kamailio) brings its own.
SWITCH_ADAPTER = env.str("SWITCH_ADAPTER", default="telephony.switch.simulated.SimulatedSwitch")
# POST /api/v1/simulator/inbound-calls and the portal's "place a simulated call" form. `make run` turns it on.
SIMULATOR_ENABLED = env.bool("SIMULATOR_ENABLED", default=False)
# The simulated switch: `speed` divides every call-time delay (and the engine's timers) into wall-clock time;
# `default` is how a phone behaves without a rule, `rules` are rules by number/URI/prefix (also editable as
# SimulatorRule rows in the admin, which win); see telephony/switch/simulated.py.
SIMULATED_SWITCH = {
    "speed": env.float("SIMULATED_SWITCH_SPEED", default=1.0),
    "default": {"action": "answer", "ring_after_ms": 100, "answer_after_ms": 1000},
    "rules": [],
    "play_ms": 3000,
}
# Legs an account may have up at once (0: no limit); apps and SIP connections have their own channel_limit.
CALL_ACCOUNT_CHANNEL_LIMIT = env.int("CALL_ACCOUNT_CHANNEL_LIMIT", default=200)
# Longest call routed straight to a SIP connection or user (apps set their own max_call_length_s).
CALL_MAX_LENGTH_S = env.int("CALL_MAX_LENGTH_S", default=4 * 3600)
# Outbound calls (telephony/services/outbound.py); staff override them per account (OutboundPolicy). Calls over
# the pace queue for at most OUTBOUND_MAX_QUEUE_WAIT_S, then fail with the reason.
OUTBOUND_CALLS_PER_SECOND = env.float("OUTBOUND_CALLS_PER_SECOND", default=10.0)
OUTBOUND_MAX_CONCURRENT_CALLS = env.int("OUTBOUND_MAX_CONCURRENT_CALLS", default=100)
OUTBOUND_MAX_QUEUE_WAIT_S = env.int("OUTBOUND_MAX_QUEUE_WAIT_S", default=60)
# ISO country codes outbound calls may reach (empty: all); premium-rate prefixes are refused unless allowed.
OUTBOUND_ALLOWED_COUNTRIES = env.list("OUTBOUND_ALLOWED_COUNTRIES", default=[])
OUTBOUND_PREMIUM_PREFIXES = env.list(
    "OUTBOUND_PREMIUM_PREFIXES",
    default=["+1900", "+1976", "+44871", "+44872", "+44873", "+449", "+3389", "+49900", "+39899", "+34803", "+34806",
             "+34807", "+61190", "+881", "+882", "+883"],
)  # fmt: skip
# How long a call forwarded to a SIP connection or user rings before it is given up.
CALL_FORWARD_TIMEOUT_MS = env.int("CALL_FORWARD_TIMEOUT_MS", default=30000)
# A worker's claim on a call; one that dies mid-step delays the call by about this much (the sweeper runs
# each second). Extended before each request to a customer's server by that request's timeout.
ENGINE_CLAIM_LEASE_SECONDS = env.float("ENGINE_CLAIM_LEASE_SECONDS", default=5.0)
# Switch events and timers due within this many ms are waited for in the same step instead of a new task.
ENGINE_INLINE_WAIT_MS = env.float("ENGINE_INLINE_WAIT_MS", default=3.0)
# Wake-ups further away than this are not scheduled as broker countdowns; the sweeper starts them.
ENGINE_KICK_HORIZON_SECONDS = env.float("ENGINE_KICK_HORIZON_SECONDS", default=60.0)
# The sweeper leaves wake-ups this recently due to the task already scheduled for them.
ENGINE_SWEEP_GRACE_MS = env.int("ENGINE_SWEEP_GRACE_MS", default=500)
# Runaway flows: most commands one call may run, most requests it may make to customers' servers.
ENGINE_MAX_STEPS = env.int("ENGINE_MAX_STEPS", default=1000)
ENGINE_MAX_REQUESTS = env.int("ENGINE_MAX_REQUESTS", default=50)
# Timeout of Dial, Gather and Record action requests (the XML gives none).
ENGINE_ACTION_TIMEOUT_MS = env.int("ENGINE_ACTION_TIMEOUT_MS", default=5000)
# How much longer than the switch's own estimate the engine waits for the end of a prompt, and how long for
# one it cannot estimate, before it moves on (call time).
ENGINE_MEDIA_GRACE_MS = env.int("ENGINE_MEDIA_GRACE_MS", default=5000)
ENGINE_MEDIA_UNKNOWN_MS = env.int("ENGINE_MEDIA_UNKNOWN_MS", default=600000)

# --- Messaging (telephony/services/messaging, telephony/carrier) -----------------------------------------
# The carrier adapter every SMS goes through (telephony/carrier/base.py); the built-in one is simulated.
CARRIER_ADAPTER = env.str("CARRIER_ADAPTER", default="telephony.carrier.simulated.SimulatedCarrier")
# The simulated carrier: a message to one of the platform's own SMS numbers is delivered on-net as an inbound
# message; other destinations follow SimulatedCarrierRule rows (admin), then these rules, then `default`.
# A rule: {"match": "+1555*" or an exact number, "action": deliver | fail | undelivered | silent,
# "after_ms": delay of the receipt, "error_code", "error_text"}.
SIMULATED_CARRIER = {
    "default": {"action": "deliver", "after_ms": env.int("SIMULATED_CARRIER_DELIVER_AFTER_MS", default=200)},
    "rules": [],
}
# Longest text of one message, in characters.
MESSAGING_MAX_LENGTH = env.int("MESSAGING_MAX_LENGTH", default=1600)
# Most messages one POST /api/v1/messages/batch may carry.
MESSAGING_BATCH_MAX = env.int("MESSAGING_BATCH_MAX", default=1000)
# Segments per second one sender number may send: long codes (10DLC) and toll-free numbers. Faster sends queue.
MESSAGING_RATE_LONG_CODE = env.float("MESSAGING_RATE_LONG_CODE", default=1.0)
MESSAGING_RATE_TOLL_FREE = env.float("MESSAGING_RATE_TOLL_FREE", default=3.0)
# A send whose sender's queue is already this long is refused (429 sender_queue_full) rather than queued.
MESSAGING_SENDER_MAX_QUEUE_SECONDS = env.int("MESSAGING_SENDER_MAX_QUEUE_SECONDS", default=3600)
# Outbound messages an account may send per UTC day (0: no limit).
MESSAGING_ACCOUNT_DAILY_LIMIT = env.int("MESSAGING_ACCOUNT_DAILY_LIMIT", default=10000)
# A pool sender with this many failed messages in a row within the window counts as unhealthy.
MESSAGING_UNHEALTHY_FAILURES = env.int("MESSAGING_UNHEALTHY_FAILURES", default=3)
MESSAGING_UNHEALTHY_WINDOW_SECONDS = env.int("MESSAGING_UNHEALTHY_WINDOW_SECONDS", default=600)
# A message a worker claimed but never finished sending (the worker died) fails after this long.
MESSAGING_SENDING_TIMEOUT_SECONDS = env.int("MESSAGING_SENDING_TIMEOUT_SECONDS", default=120)

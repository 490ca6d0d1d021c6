"""Rate limits: requests per credential (fixed windows counted in the shared cache) and failed logins."""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCacheClient
from rest_framework.throttling import BaseThrottle

from tenants.credentials import AccountCredential

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'100/s' -> (100, 1). Raises ValueError on anything else, so a bad setting fails loudly."""
    count, _, period = rate.partition("/")
    if not count.strip().isdigit() or not period or period.strip()[0] not in PERIODS:
        raise ValueError(f"A rate looks like 100/s, 600/m, 10000/h or 100000/d, not {rate!r}.")
    return int(count), PERIODS[period.strip()[0]]


def hit(bucket: str, limit: int, period: int) -> float | None:
    """Count one event in the current window; None if within the limit, else seconds until the window ends."""
    now = time.time()
    window = int(now // period)
    key = f"rl:{bucket}:{window}"
    client = getattr(cache, "_cache", None)
    if isinstance(client, RedisCacheClient):
        # The same add-then-incr as below, in one MULTI/EXEC: one round trip per request instead of two, and no
        # gap in which the counter could expire between the two.
        # Django's Redis serializer stores integers as plain integers, so cache.get() reads this counter too.
        full_key = cache.make_and_validate_key(key)
        pipe = client.get_client(full_key, write=True).pipeline(transaction=True)
        pipe.set(full_key, 0, ex=period + 1, nx=True)
        pipe.incr(full_key)
        count = pipe.execute()[1]
    else:
        # add() is a no-op if the key exists; incr() is atomic on Redis, so concurrent web processes agree.
        cache.add(key, 0, timeout=period + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=period + 1)
            count = 1
    if count <= limit:
        return None
    return max((window + 1) * period - now, 0.001)


class CredentialRateThrottle(BaseThrottle):
    """Per API key (or per token user and account; per address for anonymous calls)."""

    def allow_request(self, request, view) -> bool:
        credential = request.auth
        rate = settings.API_RATE_LIMIT
        if isinstance(credential, AccountCredential):
            if credential.api_key is not None:
                bucket = f"key:{credential.api_key.pk}"
                rate = credential.api_key.rate_limit or rate
            else:
                bucket = f"user:{credential.user.pk}:{credential.account.pk}"
        else:
            bucket = f"ip:{self.get_ident(request)}"
        limit, period = parse_rate(rate)
        self._wait = hit(bucket, limit, period)
        return self._wait is None

    def wait(self) -> float | None:
        return math.ceil(self._wait) if self._wait else None


def _login_buckets(email: str, address: str) -> list[str]:
    return [f"login-email:{email.strip().lower()}", f"login-ip:{address}"]


def login_retry_after(email: str, address: str) -> int | None:
    """Seconds the caller must wait before trying this email or this address again, or None."""
    for bucket in _login_buckets(email, address):
        if (cache.get(bucket) or 0) >= settings.LOGIN_FAILURE_LIMIT:
            return settings.LOGIN_FAILURE_WINDOW
    return None


def record_login_failure(email: str, address: str) -> None:
    for bucket in _login_buckets(email, address):
        cache.add(bucket, 0, timeout=settings.LOGIN_FAILURE_WINDOW)
        try:
            cache.incr(bucket)
        except ValueError:
            cache.set(bucket, 1, timeout=settings.LOGIN_FAILURE_WINDOW)


def clear_login_failures(email: str) -> None:
    cache.delete(f"login-email:{email.strip().lower()}")

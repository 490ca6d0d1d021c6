"""The Redis cache wiring (settings CACHES): one connection pool and one client per process, not per request."""

from __future__ import annotations

import threading

import redis
from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class SharedConnectionPool(redis.ConnectionPool):
    """One Redis connection pool per process and URL, for the cache (settings CACHES OPTIONS pool_class).

    Django keeps a cache object per thread, each with its own pool; under ASGI every request runs in a new thread,
    so every request opened (and dropped) its own Redis connection: a TCP connect, HELLO and CLIENT SETINFO, about
    a third of an API request's CPU. A pool shared by the process keeps connections open across requests. redis-py
    pools are thread-safe and start afresh in a forked child.
    """

    _shared: dict[tuple, redis.ConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url, **kwargs):
        key = (url, repr(sorted(kwargs.items())))
        with cls._lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = super().from_url(url, **kwargs)
            return pool


class SharedRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client, keeping its redis-py client objects instead of building one per operation.

    Django builds a `redis.Redis` around the pool on every get/set/incr; its constructor alone cost about 0.5 ms,
    twice per API request (the throttle, the messaging kick). The client holds no per-call state (the pool hands
    out connections), so one per pool serves every call.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, redis.Redis] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class SharedRedisCache(RedisCache):
    """The Redis cache backend with `SharedRedisCacheClient` (settings CACHES BACKEND)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedRedisCacheClient

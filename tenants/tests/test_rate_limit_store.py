"""Rate-limit counters in Redis: one round trip per request, counters that expire, connections kept by the process."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.core.cache import cache, caches

from tenants.throttling import hit

pytestmark = pytest.mark.redis


def test_it_counts_in_one_window_and_refuses_past_the_limit():
    bucket = f"test-{uuid.uuid4()}"

    assert [hit(bucket, 2, 3600) for _ in range(2)] == [None, None]
    wait = hit(bucket, 2, 3600)

    assert wait is not None and 0 < wait <= 3600


def test_it_leaves_a_counter_that_expires_with_its_window():
    bucket = f"test-{uuid.uuid4()}"
    hit(bucket, 10, 60)
    hit(bucket, 10, 60)
    key = f"rl:{bucket}:{int(time.time() // 60)}"
    full_key = cache.make_and_validate_key(key)

    assert cache.get(key) == 2
    assert 0 < cache._cache.get_client(full_key).ttl(full_key) <= 61


def test_threads_serving_requests_share_the_cache_connections():
    # Django keeps one cache object per thread; the web process serves each request on one of many threads.
    pools = []

    def use_cache():
        pools.append(caches["default"]._cache._get_connection_pool(write=True))

    threads = [threading.Thread(target=use_cache) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert pools[0] is pools[1]

"""The Redis broker transport: kombu's, with one Redis client per channel instead of one per command.

kombu's Redis channel builds a new `redis.Redis` for every publish (and every other command it sends outside the
worker's event loop), only to take a connection from the channel's pool and drop the client again. Building one
copies redis-py's table of about 170 response callbacks: 0.14 ms, a sixth of the CPU of a publish, paid by every
kick of a call, a message or a webhook delivery. A client holds no connection of its own (it borrows one from
the pool per command, which is what makes it safe to share between threads), so one per channel does the same
work without the copying.

Selected by settings.CELERY_BROKER_TRANSPORT for redis:// and rediss:// brokers; the filesystem broker of
`make run` keeps kombu's own transport.
"""

from __future__ import annotations

from kombu.transport import redis


class Channel(redis.Channel):
    _sync_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:  # the worker's BRPOP client: kombu caches it already
            return super()._create_client(asynchronous=True)
        client = self._sync_client
        # kombu drops the pool after a fork or a failed connect (`_disconnect_pools`) and `self.pool` makes a new
        # one; a client bound to the old pool would keep using the parent's sockets or a dead pool.
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()
        return client


class Transport(redis.Transport):
    Channel = Channel

"""ASGI entry point: HTTP through Django's WSGI handler on a pool of threads, websockets through Channels.

Django's own ASGI handler runs each sync view in a new thread and hops between the event loop and threads for
the middleware: measured under uvicorn, that doubled the server CPU of an API request (about 8 ms instead of 4 for
an authenticated GET /api/v1/account). Every view here is sync, so HTTP goes to the WSGI handler on WEB_THREADS
long-lived threads (portal/wsgi_threads.py); the websocket stream stays native ASGI.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.production")
django_wsgi_app = get_wsgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from portal.routing import websocket_urlpatterns  # noqa: E402
from portal.wsgi_threads import ThreadedWSGI  # noqa: E402


def _settle() -> None:
    """Do at startup what the first requests would otherwise do while others queue behind them, then take what
    startup built out of the garbage collector's sight.

    - Django imports the URLconf, and with it every view, serializer and DRF module, on the first request.
    - The PostgreSQL pool opens lazily and grows one connection at a time while requests wait for them.
    Together they held the first INVITE decisions after a restart for 0.2-0.9 s instead of 10 ms. Then the
    collector's full passes walk every object startup made (about 50 ms in a Django process), holding the GIL, so
    every request of the process in flight stalls with them. Frozen objects are never scanned again (modules,
    classes, settings: never garbage); what requests allocate is collected as before.
    """
    from django.db import connections
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and every view module
    for connection in connections.all(initialized_only=False):
        fill_pool(connection)
    gc.collect()
    gc.freeze()


def fill_pool(connection, timeout: float = 10) -> bool:
    """Open the connection's pool with all its connections (min_size); False if the database did not give them."""
    pool = getattr(connection, "pool", None)
    if pool is None:
        return False
    try:
        pool.open(wait=True, timeout=timeout)
    except Exception:  # noqa: BLE001 - a database still starting, or out of connections
        # A pool that timed out opening is closed for good, and Django would keep handing it out: every query of
        # the process would fail until a restart. Dropped, a new one is made on the first query instead.
        connection.close_pool()
        logging.getLogger(__name__).warning("Database pool %s not filled at startup", connection.alias)
        return False
    return True


async def lifespan(scope, receive, send) -> None:
    """The server's startup and shutdown (uvicorn's default `--lifespan auto`): the process settles before it
    takes requests. Only a served process does this, not one that merely imports the application (the test suite's
    process, whose database the tests have not set up yet at import)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await asyncio.to_thread(_settle)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {
        # Requests in flight at once per process; keep DB_POOL_MAX_SIZE at least this large.
        "http": ThreadedWSGI(
            django_wsgi_app,
            workers=int(os.environ.get("WEB_THREADS", "10")),
            max_memory_body=settings.FILE_UPLOAD_MAX_MEMORY_SIZE,
            max_body=settings.MAX_REQUEST_BODY_BYTES,
        ),
        "websocket": URLRouter(websocket_urlpatterns),
        "lifespan": lifespan,
    }
)

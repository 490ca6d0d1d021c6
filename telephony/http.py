"""THE one HTTP client for customer URLs (webhooks, callbacks, call-flow fetches). Nothing else may call them.

It enforces the outbound URL policy (telephony/urlpolicy.py) at connect time: the host is resolved once,
every address it resolves to is checked, and the connection goes to a checked address without a second
lookup, so a name cannot pass the check and then resolve somewhere else (DNS rebinding). TLS still
verifies the certificate against, and sends SNI for, the name in the URL. Redirects are never followed,
proxies from the environment are ignored, a request has a connect timeout and a total deadline, and at
most MAX_BODY_READ bytes of a response are read.

One pooled client per process, driven by an event loop in a background thread: `request()` is a plain
blocking call for any code, and `submit()` starts many requests at once for the delivery engine, which
keeps its database work on its own thread (Django's ORM is not for event loops).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import anyio
import anyio.to_thread
import httpcore
import httpx
from httpcore._backends.anyio import AnyIOBackend

from telephony.urlpolicy import UrlRefused, address_refusal, check_url_shape

CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 15.0
MAX_BODY_READ = 64 * 1024
USER_AGENT = "TelephonyPortal-Webhooks/1.0"
# Across all hosts, and kept alive per host: enough for a delivery batch to many endpoints at once.
MAX_CONNECTIONS = 512
MAX_KEEPALIVE = 256
KEEPALIVE_EXPIRY = 30.0

# httpx logs every request at INFO; at webhook rates that is most of a worker's log and a share of its CPU,
# and every attempt is recorded in the database anyway.
logging.getLogger("httpx").setLevel(logging.WARNING)


class Refused(httpcore.ConnectError):
    """The outbound policy refused every address of the host; no connection was attempted."""


@dataclass(frozen=True)
class Result:
    """What came of one request: a status, headers and the start of the body, or an error and no status."""

    status_code: int | None
    duration: float
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""
    # "" with a response; else refused (policy), timeout, connect, or protocol.
    error_kind: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


# --- Connect-time policy -------------------------------------------------------------------------


async def _resolve(host: str, port: int) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    # The system resolver, as the save-time check uses (urlpolicy.resolve), on a worker thread; uvloop's own
    # resolver would answer differently from the check in corner cases such as /etc/hosts.
    infos = await anyio.to_thread.run_sync(
        lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), abandon_on_cancel=True
    )
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class PolicyBackend(AnyIOBackend):
    """httpcore's network backend with the outbound policy between name resolution and connect."""

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            with anyio.fail_after(timeout):
                addresses = await _resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} could not be resolved: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolved to no address")
        # Every address must pass: if one may not be called, the name is not one we call at all.
        for address in addresses:
            reason = address_refusal(address)
            if reason:
                raise Refused(f"refused by the outbound URL policy: {reason} ({address})")
        last_error: Exception | None = None
        for address in addresses:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await super().connect_tcp(address, port, remaining, local_address, socket_options)
            except httpcore.ConnectTimeout:
                raise
            except httpcore.ConnectError as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"could not connect to {host}")


class _PolicyTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__(http1=True, http2=False, trust_env=False, retries=0)
        # httpx has no public way to pass a network backend; build the same pool it would, plus ours.
        # (Pinned httpx; telephony/tests/test_http_policy.py fails if an upgrade bypasses the backend.)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_KEEPALIVE,
            keepalive_expiry=KEEPALIVE_EXPIRY,
            http1=True,
            http2=False,
            retries=0,
            network_backend=PolicyBackend(),
        )


def _new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=_PolicyTransport(),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(TOTAL_TIMEOUT, connect=CONNECT_TIMEOUT),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


# --- Requests --------------------------------------------------------------------------------------


def _describe(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, (UrlRefused, Refused)):
        return "refused", str(exc.messages[0] if isinstance(exc, UrlRefused) else exc)
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return "timeout", "timed out"
    if isinstance(exc, httpx.ConnectError):
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, Refused):
            return "refused", str(cause)
        return "connect", f"could not connect: {exc}" if str(exc) else "could not connect"
    if isinstance(exc, Refused):
        return "refused", str(exc)
    return "protocol", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def arequest(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    content: bytes | str | None = None,
    timeout: float = TOTAL_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
    max_body: int = MAX_BODY_READ,
) -> Result:
    """One request under the policy. Never raises for anything the network or the far end does."""
    started = time.monotonic()
    try:
        check_url_shape(url)  # scheme, credentials and port, again: settings may have changed since saving
        async with asyncio.timeout(timeout):
            client = _sender().client
            request = client.build_request(
                method,
                url,
                headers=headers,
                content=content,
                timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
            )
            response = await client.send(request, stream=True)
            try:
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) >= max_body:
                        break  # closing early drops the connection; the rest is never read
            finally:
                await response.aclose()
        return Result(
            status_code=response.status_code,
            duration=time.monotonic() - started,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=bytes(body[:max_body]),
        )
    except Exception as exc:  # noqa: BLE001 - every failure becomes a Result the caller records
        kind, message = _describe(exc)
        return Result(status_code=None, duration=time.monotonic() - started, error=message[:500], error_kind=kind)


class _Sender:
    """The process's event loop thread and pooled client. Rebuilt in a forked child (Celery prefork)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        try:
            import uvloop

            self.loop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard] on Linux
            self.loop = asyncio.new_event_loop()
        self.client = _new_client()
        self.thread = threading.Thread(target=self.loop.run_forever, name="customer-http", daemon=True)
        self.thread.start()


_sender_lock = threading.Lock()
_sender_instance: _Sender | None = None


def _sender() -> _Sender:
    global _sender_instance
    current = _sender_instance
    if current is not None and current.pid == os.getpid():
        return current
    with _sender_lock:
        if _sender_instance is None or _sender_instance.pid != os.getpid():
            _sender_instance = _Sender()
        return _sender_instance


def submit(method: str, url: str, **kwargs) -> concurrent.futures.Future[Result]:
    """Start a request on the process's client and return at once; the future yields a Result."""
    return asyncio.run_coroutine_threadsafe(arequest(method, url, **kwargs), _sender().loop)


def request(method: str, url: str, **kwargs) -> Result:
    """A blocking request (from any thread but the client's own loop)."""
    return submit(method, url, **kwargs).result()

"""THE one HTTP client for customer URLs (webhooks, callbacks, call-flow fetches). Nothing else may call them.

It enforces the outbound URL policy (telephony/urlpolicy.py) at connect time: the host is resolved once,
every address it resolves to is checked, and the connection goes to a checked address without a second
lookup, so a name cannot pass the check and then resolve somewhere else (DNS rebinding). TLS still
verifies the certificate against, and sends SNI for, the name in the URL. Redirects are never followed,
proxies from the environment are ignored, a request has a connect timeout and a total deadline (enforced
on every socket read and write, so a server that trickles bytes cannot stretch it), and at most
MAX_BODY_READ bytes of a response are read.

One pooled client per process: httpx's own connection pool (httpcore), driven directly. `request()` blocks the
calling thread; `submit()` runs the request on the process's thread pool and returns a future, which is how
the delivery engine keeps many requests in flight while its own thread claims and records. Measured on this
project's 2-core machine: httpx's sync path costs about a third of the CPU per request of its anyio path,
and calling httpcore without httpx's request/response models about a third less again, which is most of a
webhook worker's CPU. (httpx still parses URLs, for its IDNA and percent-encoding.)
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import httpcore
import httpx

from telephony.urlpolicy import UrlRefused, address_refusal, check_url_shape

CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 15.0
MAX_BODY_READ = 64 * 1024
USER_AGENT = "TelephonyPortal-Webhooks/1.0"
# Across all hosts, and kept alive per host: enough for a delivery batch to many endpoints at once.
MAX_CONNECTIONS = 512
MAX_KEEPALIVE = 256
KEEPALIVE_EXPIRY = 30.0
# Threads for submit(); they are started only as requests need them, and mostly wait on sockets.
MAX_THREADS = 256
RESOLVER_THREADS = 8

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
    started_at: float = 0.0  # wall clock (time.time()) when the request began

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


# --- The request deadline, seen by every socket operation of the current thread's request ------------

_local = threading.local()


def _bounded(timeout: float | None, exc_class: type[Exception]) -> float | None:
    deadline = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise exc_class("the request's total deadline passed")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


# --- Connect-time policy -------------------------------------------------------------------------


def _resolve(host: str, port: int, timeout: float | None) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    # The system resolver (as the save-time check uses) has no timeout of its own: ask it on a helper thread
    # and stop waiting at the connect timeout.
    future = _process().resolver.submit(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    try:
        infos = future.result(timeout=timeout)
    except concurrent.futures.TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"{host} could not be resolved: {exc}") from exc
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class PolicyBackend(httpcore.SyncBackend):
    """httpcore's network backend with the outbound policy between name resolution and connect."""

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        timeout = _bounded(timeout, httpcore.ConnectTimeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        addresses = _resolve(host, port, timeout)
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolved to no address")
        # Every address must pass: if one may not be called, the name is not one we call at all.
        for address in addresses:
            reason = address_refusal(address)
            if reason:
                raise Refused(f"refused by the outbound URL policy: {reason} ({address})")
        last_error: Exception | None = None
        for address in addresses:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise httpcore.ConnectTimeout(f"connecting to {host} timed out")
            try:
                stream = super().connect_tcp(address, port, remaining, local_address, socket_options)
            except httpcore.ConnectTimeout:
                raise
            except httpcore.ConnectError as exc:
                last_error = exc
                continue
            return _DeadlineStream(stream)
        raise last_error or httpcore.ConnectError(f"could not connect to {host}")


class _Process:
    """This process's connection pool and threads. Rebuilt in a forked child (Celery prefork)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.connections = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_KEEPALIVE,
            keepalive_expiry=KEEPALIVE_EXPIRY,
            http1=True,
            http2=False,
            retries=0,
            network_backend=PolicyBackend(),
        )
        self.pool = concurrent.futures.ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="customer-http")
        self.resolver = concurrent.futures.ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="customer-dns")


_process_lock = threading.Lock()
_process_instance: _Process | None = None


def _process() -> _Process:
    global _process_instance
    current = _process_instance
    if current is not None and current.pid == os.getpid():
        return current
    with _process_lock:
        if _process_instance is None or _process_instance.pid != os.getpid():
            _process_instance = _Process()
        return _process_instance


# --- Requests --------------------------------------------------------------------------------------


def _describe(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, UrlRefused):
        return "refused", str(exc.messages[0])
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, Refused) or isinstance(cause, Refused):
        return "refused", str(exc if isinstance(exc, Refused) else cause)
    if isinstance(exc, (httpx.TimeoutException, httpcore.TimeoutException, TimeoutError)):
        return "timeout", "timed out"
    if isinstance(exc, (httpx.ConnectError, httpcore.ConnectError)):
        return "connect", f"could not connect: {exc}" if str(exc) else "could not connect"
    return "protocol", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@lru_cache(maxsize=4096)
def _target(url: str) -> tuple[httpcore.URL, bytes]:
    """The URL as httpcore wants it, and its Host header; httpx's parser does the IDNA and percent-encoding."""
    parsed = httpx.URL(url)
    target = httpcore.URL(scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path)
    return target, parsed.netloc


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    content: bytes | str | None = None,
    timeout: float = TOTAL_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
    max_body: int = MAX_BODY_READ,
) -> Result:
    """One request under the policy, in this thread. Never raises for anything the network or far end does."""
    started, started_at = time.monotonic(), time.time()
    _local.deadline = started + timeout
    try:
        check_url_shape(url)  # scheme, credentials and port, again: settings may have changed since saving
        target, host = _target(url)
        items = headers.items() if isinstance(headers, Mapping) else (headers or ())
        wire_headers = [(b"Host", host), *_DEFAULT_HEADERS]
        wire_headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in items]
        body_bytes = content.encode() if isinstance(content, str) else content
        limits = {"connect": min(connect_timeout, timeout), "read": timeout, "write": timeout, "pool": timeout}
        with _process().connections.stream(
            method.encode("ascii"), target, headers=wire_headers, content=body_bytes, extensions={"timeout": limits}
        ) as response:
            body = bytearray()
            for chunk in response.iter_stream():
                body += chunk
                if len(body) >= max_body:
                    break  # leaving early drops the connection; the rest is never read
        return Result(
            status_code=response.status,
            duration=time.monotonic() - started,
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers},
            body=bytes(body[:max_body]),
            started_at=started_at,
        )
    except Exception as exc:  # noqa: BLE001 - every failure becomes a Result the caller records
        kind, message = _describe(exc)
        return Result(
            status_code=None,
            duration=time.monotonic() - started,
            error=message[:500],
            error_kind=kind,
            started_at=started_at,
        )
    finally:
        _local.deadline = None


_DEFAULT_HEADERS = [(b"User-Agent", USER_AGENT.encode()), (b"Accept-Encoding", b"identity"), (b"Accept", b"*/*")]


def submit(
    method: str, url: str, *, gate: threading.Semaphore | None = None, **kwargs
) -> concurrent.futures.Future[Result]:
    """Start a request on the process's thread pool and return at once; the future yields a Result.

    With a `gate`, the request waits for it first (and its deadline starts once it has it): the caller's
    way of bounding how many requests go to one place at once.
    """
    if gate is None:
        return _process().pool.submit(request, method, url, **kwargs)
    return _process().pool.submit(_gated, gate, method, url, kwargs)


def _gated(gate: threading.Semaphore, method: str, url: str, kwargs: dict) -> Result:
    with gate:
        return request(method, url, **kwargs)

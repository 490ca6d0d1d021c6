"""HTTP requests from the event loop to Django's WSGI handler on a pool of threads, with one hand-off each way.

a2wsgi's middleware, which this replaces, crosses from the request's thread back to the event loop for every read
of the body and for every message of the response (its start, each chunk, the end): four waits on the loop per
request at least. Under load each wait also waits for the GIL, and profiling the SIP route endpoint at 100
requests/s showed its threads spending as long in those crossings as in the view itself. Here the loop receives
the whole body before the request takes a thread (so a client trickling an upload holds no thread either), the
thread runs Django and returns the whole response, and the loop sends it. Only a streaming response (CSV
exports, FileResponse) goes chunk by chunk, from the thread that produced it: Django's database connections
belong to one thread, and an export iterates a cursor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import json
import tempfile
import threading

from a2wsgi.wsgi import build_environ

from portal.api import error_body

# How long a streamed chunk may wait for a client that has stopped reading before the stream is given up.
STALLED_CLIENT_S = 60


class ThreadedWSGI:
    """An ASGI app (HTTP only) running a WSGI app on `workers` long-lived threads."""

    def __init__(self, app, *, workers: int, max_memory_body: int, max_body: int) -> None:
        self.app = app
        self.max_memory_body = max_memory_body
        self.max_body = max_body
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="WSGI")

    async def __call__(self, scope, receive, send) -> None:
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), b"")
        if declared.isdigit() and int(declared) > self.max_body:
            return await self._too_large(send)  # refused before a byte of it is read
        body = tempfile.SpooledTemporaryFile(max_size=self.max_memory_body)  # noqa: SIM115 - closed below
        try:
            size = await self._receive_body(receive, body)
            if size is None:
                return  # the client left before its body arrived: no thread was taken
            if size > self.max_body:
                return await self._too_large(send)
            if not declared:
                # A chunked body: WSGI reads CONTENT_LENGTH bytes, so say how many arrived.
                scope = {**scope, "headers": [*scope["headers"], (b"content-length", str(size).encode())]}
            environ = build_environ(scope, body)
            loop = asyncio.get_running_loop()
            stream = _Stream(loop, receive, send)
            try:
                result = await loop.run_in_executor(
                    self.executor, contextvars.copy_context().run, self._run, environ, stream
                )
            finally:
                stream.stop_watching()
            if result is not None:  # not streamed: the whole response at once
                status, headers, content = result
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": content})
        finally:
            body.close()

    async def _receive_body(self, receive, body) -> int | None:
        """The body's size once it is all in `body`; None if the client left; past max_body as soon as it is."""
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return size  # a chunked body (no length said) that goes on too long: stop storing it
            body.write(chunk)
            more = message.get("more_body", False)
        body.seek(0)
        return size

    async def _too_large(self, send) -> None:
        message = f"The request body is over {self.max_body} bytes, the most one request may carry."
        content = json.dumps(error_body("request_too_large", message)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode()),
                   (b"connection", b"close")]  # fmt: skip
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _run(self, environ, stream: _Stream):
        """In a pool thread: the whole request. Returns (status, headers, body), or None once it has streamed."""
        started: list = []

        def start_response(status: str, response_headers, exc_info=None):
            if exc_info is not None and stream.started:
                raise exc_info[1].with_traceback(exc_info[2])
            code = int(status.split(" ", 1)[0])
            headers = [(name.strip().lower().encode("latin1"), value.strip().encode("latin1"))
                       for name, value in response_headers]  # fmt: skip
            started[:] = [code, headers]
            return write

        def write(chunk: bytes) -> None:  # WSGI's legacy write(); Django never calls it
            stream.start(*started)
            stream.send_chunk(chunk)

        iterable = self.app(environ, start_response)
        try:
            if not getattr(iterable, "streaming", False) and not stream.started:
                content = b"".join(iterable)  # first: WSGI lets an app call start_response as it yields
                return started[0], started[1], content
            stream.start(*started)
            for chunk in iterable:
                if not stream.send_chunk(chunk):
                    break  # the client has gone: stop producing (closing the iterable frees its cursor)
            stream.send_chunk(b"", more=False)
            return None
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()  # Django's request_finished: the database connection goes back to the pool


class _Stream:
    """A streaming response's messages, sent on the loop from the thread that produces them, one at a time (the
    transport's flow control holds the thread back when the client reads slowly)."""

    def __init__(self, loop, receive, send) -> None:
        self.loop = loop
        self._receive = receive
        self._send = send
        self._watcher = None
        self.started = False
        self.gone = threading.Event()

    async def _watch(self) -> None:
        # After the body, the server's next message is the disconnect (or the end of the response).
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.gone.set()

    def stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()

    def _deliver(self, message) -> bool:
        if self.gone.is_set():
            return False
        future = asyncio.run_coroutine_threadsafe(self._send(message), self.loop)
        try:
            future.result(timeout=STALLED_CLIENT_S)
        except concurrent.futures.TimeoutError:
            # Connected but not reading: without a bound it would hold this thread, its database connection and
            # the export's cursor for as long as it liked. Stop; the unfinished response closes the connection.
            future.cancel()
            self.gone.set()
            return False
        return True

    def start(self, status: int, headers) -> None:
        if not self.started:
            self.started = True
            # Only a stream listens for the client leaving: a whole response is sent at once anyway.
            self._watcher = asyncio.run_coroutine_threadsafe(self._watch(), self.loop)
            self._deliver({"type": "http.response.start", "status": status, "headers": headers})

    def send_chunk(self, chunk: bytes, more: bool = True) -> bool:
        if chunk or not more:
            return self._deliver({"type": "http.response.body", "body": chunk, "more_body": more})
        return not self.gone.is_set()

"""The flow documents calls run: an app's XML, a forwarding flow for numbers routed to SIP, and fetched XML.

Documents are parsed with the same parser and limits as everywhere (telephony.callflow.parse), but at run
time without resolving the hosts of the URLs they contain: the HTTP client checks every address against the
outbound URL policy when it connects, which is the check that counts, and resolving at parse time would put
DNS lookups between two commands of a live call. A call stores its document's JSON form, so a worker that
picks the call up later runs exactly the flow it started with.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from xml.sax.saxutils import escape, quoteattr

from telephony.callflow import Document, parse

CACHE_SIZE = 256

_lock = threading.Lock()
_cache: OrderedDict[str, dict] = OrderedDict()


def document_json(xml: str) -> dict:
    """The JSON form of a valid document (CallFlowInvalid otherwise), cached by content: apps' documents
    repeat on every call, and parsing is most of the cost of starting one."""
    key = hashlib.sha256(xml.encode()).hexdigest()
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    data = parse(xml, resolve_urls=False).to_json()
    with _lock:
        _cache[key] = data
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return data


def parse_fetched(text: str) -> Document:
    """A document a customer's server returned (not cached: they differ per call)."""
    return parse(text, resolve_urls=False)


def forward_xml(target: str, timeout_ms: int) -> str:
    """The flow of a number routed to a SIP connection or user: ring the target; when it ends, the call ends."""
    return f"<Response><Dial timeout={quoteattr(str(timeout_ms))}><To>{escape(target)}</To></Dial></Response>"

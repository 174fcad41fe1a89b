"""What a node did, as events: kept in a bounded ring and handed to live subscribers.

Every event is a flat JSON-able dict with ``kind``, ``node``, ``n`` (this node's event
counter) and ``t`` (wall-clock seconds). A trace id rides every request in the
``X-Bazar-Trace`` header; the node that receives it keeps it in a context variable so
that every hop it sends on carries the same id (see ``client.py``).

Within a trace, every call between nodes has a span id of its own, carried in the
``X-Bazar-Span`` header: the receiving node serves the request under that span (its
``request_in``, ``request`` and ``reply`` events say ``span``), and each hop it sends on says
its own ``span`` and, as ``parent``, the span it was serving. The entry node gives a client's
request a span of its own. So a trace is a tree, and a window can tell which message caused
which without trusting any clock (docs/protocol.md: a message after the one that caused it).
"""
from __future__ import annotations

import collections
import contextvars
import hashlib
import itertools
import time
import uuid
from collections.abc import Callable
from typing import Any

TRACE_HEADER = "X-Bazar-Trace"
SPAN_HEADER = "X-Bazar-Span"

current_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("bazar_trace", default=None)
#: The span of the request this node is serving now: what a hop it sends names as its parent.
current_span: contextvars.ContextVar[str | None] = contextvars.ContextVar("bazar_span", default=None)


def new_trace_id() -> str:
    return uuid.uuid4().hex[:16]


def new_span_id() -> str:
    """A call's own id within its trace: short, as a trace holds a few dozen calls at most."""
    return uuid.uuid4().hex[:12]


#: W3C Trace Context's header: every hop carries it beside Bazar's own, so that a trace can be
#: followed by tools that speak it (OpenTelemetry) — with no exporter needed to run Bazar.
TRACEPARENT_HEADER = "traceparent"
_HEX = frozenset("0123456789abcdef")


def _hex_id(value: str, width: int) -> str:
    """``value`` as ``width`` lowercase hex digits: padded when it is hex already, hashed if not."""
    lowered = value.lower()
    if lowered and len(lowered) <= width and set(lowered) <= _HEX and set(lowered) != {"0"}:
        return lowered.rjust(width, "0")
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:width]


def traceparent(trace: str, span: str) -> str:
    """``00-TRACE(32 hex)-SPAN(16 hex)-01`` for Bazar's trace and the call's span."""
    return f"00-{_hex_id(trace, 32)}-{_hex_id(span, 16)}-01"


def from_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace id, parent span id) of a well-formed version-00 ``traceparent``, else None."""
    if not value:
        return None
    parts = value.strip().lower().split("-")
    if (len(parts) != 4 or parts[0] != "00" or len(parts[1]) != 32 or len(parts[2]) != 16
            or not set(parts[1] + parts[2]) <= _HEX or set(parts[1]) == {"0"} or set(parts[2]) == {"0"}):
        return None
    return parts[1], parts[2]


class Subscriber:
    """A live listener's queue: bounded, so a slow reader loses its oldest events."""

    def __init__(self, limit: int, wake: Callable[[], None]) -> None:
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=limit)
        self.dropped = 0
        self.closed = False
        self._wake = wake

    def close(self) -> None:
        """The node is stopping: the listener's stream ends (see ``Telemetry.close``)."""
        self.closed = True
        self._wake()

    def push(self, event: dict[str, Any]) -> None:
        if len(self.events) == self.events.maxlen:
            self.dropped += 1
        self.events.append(event)
        self._wake()


class Telemetry:
    def __init__(self, node: str, *, keep: int = 4000, enabled: bool = True) -> None:
        self.node = node
        self.enabled = enabled
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self.subscribers: list[Subscriber] = []
        #: Called with every event, streamed or not, telemetry on or off (the node's metrics).
        self.observers: list[Callable[[str, dict[str, Any]], None]] = []
        self._counter = itertools.count(1)

    def emit(self, kind: str, **fields: Any) -> None:
        for observe in self.observers:
            observe(kind, fields)
        if not self.enabled:
            return
        event = {"kind": kind, "node": self.node, "n": next(self._counter), "t": time.time(), **fields}
        trace = current_trace.get()
        if trace is not None and "trace" not in event:
            event["trace"] = trace
            span = current_span.get()
            if span is not None and "span" not in event:
                event["span"] = span
        self.recent.append(event)
        for subscriber in self.subscribers:
            subscriber.push(event)

    def for_trace(self, trace: str) -> list[dict[str, Any]]:
        return [event for event in self.recent if event.get("trace") == trace]

    def subscribe(self, limit: int, wake: Callable[[], None]) -> Subscriber:
        subscriber = Subscriber(limit, wake)
        self.subscribers.append(subscriber)
        return subscriber

    def close(self) -> None:
        """End every live stream, so that a stopping node's graceful shutdown is not held up
        by its subscribers (the window always has one)."""
        for subscriber in list(self.subscribers):
            subscriber.close()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self.subscribers:
            self.subscribers.remove(subscriber)

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

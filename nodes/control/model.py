"""The cluster as the window and the tests see it: one Qt-free model fed by every node's
telemetry stream. Views connect to its signals and never compute what it knows
(style.md: model and view apart, as napari's components are)."""
from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np

from ..shared.client import SECRET_HEADER
from ..shared.tasks import cancel_and_wait
from .supervisor import ClusterError

#: Front-end routes whose latency the dashboard charts, by operation name.
OPERATIONS = {"/lookup/{id}": "lookup", "/search/{topic}": "search", "/buy/{id}": "buy"}
RECONNECT_S = 0.3


class Signal:
    """Callbacks to run when something changed. Called on the model's event loop."""

    def __init__(self) -> None:
        self._slots: list[Callable[..., None]] = []

    def connect(self, slot: Callable[..., None]) -> None:
        self._slots.append(slot)

    def disconnect(self, slot: Callable[..., None]) -> None:
        if slot in self._slots:
            self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        for slot in list(self._slots):
            slot(*args)


# ---- traces -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hop:
    """One message from one node to another and its answer, as a figure draws it."""

    number: int
    source: str
    target: str
    label: str
    answer: str
    status: int | None
    ms: float
    t0: float


@dataclass
class Trace:
    id: str
    entry_node: str | None = None
    method: str = ""
    path: str = ""
    status: int | None = None
    ms: float | None = None
    hops: list[Hop] = field(default_factory=list)

    @classmethod
    def from_events(cls, trace_id: str, events: Iterable[dict[str, Any]]) -> Trace:
        events = list(events)
        trace = cls(trace_id)
        arrivals = sorted((e for e in events if e["kind"] == "request_in"), key=lambda e: e["t"])
        if arrivals:
            first = arrivals[0]
            trace.entry_node, trace.method, trace.path = first["node"], first["method"], first["path"]
            answer = next((e for e in events if e["kind"] == "request" and e["node"] == first["node"]
                           and e["path"] == first["path"]), None)
            if answer is not None:
                trace.status, trace.ms = answer["status"], answer["ms"]
        hops = sorted((e for e in events if e["kind"] == "hop"), key=lambda e: e["t0"])
        trace.hops = [Hop(i, e["node"], e["to"], e["label"], e["answer"], e.get("status"), e["ms"], e["t0"])
                      for i, e in enumerate(hops, start=2)]
        return trace

    @property
    def operation(self) -> str:
        return f"{self.method} {self.path}".strip()

    def lines(self) -> list[str]:
        """The trace as numbered steps, the way the figures number them."""
        rows = []
        if self.entry_node:
            rows.append(("[1]", f"client → {self.entry_node}", self.operation, "", ""))
        for hop in self.hops:
            rows.append((f"[{hop.number}]", f"{hop.source} → {hop.target}", hop.label, hop.answer, f"{hop.ms:.2f} ms"))
        if self.status is not None:
            rows.append((f"[{len(self.hops) + 2}]", f"{self.entry_node} → client", str(self.status), "",
                         f"{self.ms:.2f} ms in all"))
        widths = [max((len(row[i]) for row in rows), default=0) for i in range(5)]
        return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


# ---- what the model keeps -------------------------------------------------------------------
@dataclass
class ReplicaBook:
    seq: int
    quantity: int
    price: float
    valid: bool


@dataclass
class CacheView:
    name: str
    capacity: int = 0
    keys: list[Any] = field(default_factory=list)  # most recently used first
    #: (key, "evict" or "invalidate", time) of entries that left lately, newest last.
    removed: deque = field(default_factory=lambda: deque(maxlen=20))
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    invalidations: int = 0

    @property
    def hit_ratio(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None


@dataclass(frozen=True)
class Sample:
    t: float
    ms: float
    status: int


@dataclass
class Second:
    """What the front-end did in one wall-clock second."""

    t: int
    answers: int = 0
    hits: int = 0
    misses: int = 0


@dataclass
class NodeView:
    name: str
    address: str
    connected: bool = False
    state: dict[str, Any] = field(default_factory=dict)
    answered: deque = field(default_factory=lambda: deque(maxlen=5000))  # times of answers
    dropped: int = 0

    @property
    def role(self) -> str:
        return "frontend" if self.name == "frontend" else self.name.rstrip("0123456789")

    def requests_per_second(self, now: float | None = None, window: float = 2.0) -> float:
        now = time.time() if now is None else now
        return sum(1 for t in self.answered if now - t <= window) / window


class ClusterModel:
    def __init__(self, endpoints: dict[str, str], secret: str | None, *, keep_traces: int = 50,
                 keep_samples: int = 5000) -> None:
        self.secret = secret
        self.nodes = {name: NodeView(name, address.rstrip("/")) for name, address in endpoints.items()}
        self.replicas: dict[str, dict[int, ReplicaBook]] = {}
        self.caches = {"lookup": CacheView("lookup"), "search": CacheView("search")}
        self.latency: dict[str, deque[Sample]] = {op: deque(maxlen=keep_samples) for op in OPERATIONS.values()}
        self.keep_traces = keep_traces
        self._traces: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self.notable: deque[dict[str, Any]] = deque(maxlen=500)
        self.seconds: deque[Second] = deque(maxlen=600)
        # What views connect to:
        self.node_changed = Signal()  # (name)
        self.replicas_changed = Signal()  # (name)
        self.cache_changed = Signal()  # (cache name)
        self.latency_added = Signal()  # (operation, Sample)
        self.trace_changed = Signal()  # (trace id)
        self.event_seen = Signal()  # (event) for notable events: faults, outcomes, catch-ups
        self._tasks: list[asyncio.Task] = []
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def for_supervisor(cls, supervisor: Any, **kw: Any) -> ClusterModel:
        return cls({n.name: n.address for n in supervisor.nodes.values()}, supervisor.secret, **kw)

    # ---- following the nodes ------------------------------------------------------------
    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        self._tasks = [asyncio.create_task(self._follow(view), name=f"follow-{view.name}")
                       for view in self.nodes.values()]

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        if self._session is not None:
            await self._session.close()

    async def _follow(self, view: NodeView) -> None:
        headers = {SECRET_HEADER: self.secret} if self.secret else {}
        assert self._session is not None
        while True:
            try:
                async with self._session.ws_connect(view.address + "/admin/telemetry", headers=headers,
                                                    heartbeat=2.0, timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
                                                    autoping=True) as ws:
                    self._set_connected(view, True)
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            break
                        for event in json.loads(message.data):
                            self.apply(view.name, event)
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
                pass
            self._set_connected(view, False)
            await asyncio.sleep(RECONNECT_S)  # pacing between reconnection attempts

    def _set_connected(self, view: NodeView, connected: bool) -> None:
        if view.connected != connected:
            view.connected = connected
            self.node_changed.emit(view.name)

    # ---- applying events ------------------------------------------------------------------
    def apply(self, name: str, event: dict[str, Any]) -> None:
        kind = event["kind"]
        view = self.nodes[name]
        trace = event.get("trace")
        if trace is not None and kind in ("request_in", "request", "hop"):
            self._remember(trace, event)
        if kind == "snapshot":
            self._snapshot(view, event["state"])
        elif kind == "request":
            view.answered.append(event["t"])
            op = OPERATIONS.get(event.get("route", ""))
            if name == "frontend":
                self._second(event["t"]).answers += 1
            if name == "frontend" and op is not None:
                sample = Sample(event["t"], event["ms"], event["status"])
                self.latency[op].append(sample)
                self.latency_added.emit(op, sample)
        elif kind == "seq":
            book = self.replicas.get(name, {}).get(event["book"])
            if book is not None:
                book.seq, book.quantity, book.price = event["seq"], event["quantity"], event["price"]
                self.replicas_changed.emit(name)
        elif kind == "valid":
            book = self.replicas.get(name, {}).get(event["book"])
            if book is not None:
                book.valid = event["valid"]
                self.replicas_changed.emit(name)
        elif kind == "cache":
            self._cache_event(event)
        elif kind == "dropped":
            view.dropped += event["count"]
        if kind in ("fault", "order", "catch_up", "peer", "replica", "lease_wait", "dropped"):
            self.notable.append(event)
            self.event_seen.emit(event)

    def _snapshot(self, view: NodeView, state: dict[str, Any]) -> None:
        view.state = state
        if state.get("role") == "catalog":
            self.replicas[view.name] = {
                b["id"]: ReplicaBook(b["seq"], b["quantity"], b["price"], b["valid"]) for b in state["books"]
            }
            self.replicas_changed.emit(view.name)
        if state.get("role") == "frontend":
            for name, described in state["caches"].items():
                cache = self.caches[name]
                cache.capacity = described["capacity"]
                cache.keys = list(described["keys"])
                for counter in ("hits", "misses", "evictions", "invalidations"):
                    setattr(cache, counter, described[counter])
                self.cache_changed.emit(name)
        self.node_changed.emit(view.name)

    def _cache_event(self, event: dict[str, Any]) -> None:
        cache = self.caches[event["cache"]]
        key, op = event["key"], event["op"]
        if op in ("hit", "miss"):
            bucket = self._second(event["t"])
            bucket.hits += op == "hit"
            bucket.misses += op == "miss"
        if op in ("hit", "insert"):
            if key in cache.keys:
                cache.keys.remove(key)
            cache.keys.insert(0, key)
            cache.hits += op == "hit"
        elif op == "miss":
            cache.misses += 1
        elif op in ("evict", "invalidate"):
            if key in cache.keys:
                cache.keys.remove(key)
            cache.removed.append((key, op, event["t"]))
            if op == "evict":
                cache.evictions += 1
            else:
                cache.invalidations += 1
        self.cache_changed.emit(cache.name)

    def _remember(self, trace: str, event: dict[str, Any]) -> None:
        events = self._traces.get(trace)
        if events is None:
            events = self._traces[trace] = []
            while len(self._traces) > self.keep_traces:
                self._traces.popitem(last=False)
        events.append(event)
        self.trace_changed.emit(trace)

    def _second(self, t: float) -> Second:
        whole = int(t)
        if not self.seconds or self.seconds[-1].t < whole:
            self.seconds.append(Second(whole))
        for bucket in reversed(self.seconds):
            if bucket.t == whole:
                return bucket
            if bucket.t < whole:
                break
        return self.seconds[-1]  # a late event from an older second counts in the latest

    def clear_measurements(self) -> None:
        """Forget latency samples and per-second counts (the charts' Clear)."""
        for samples in self.latency.values():
            samples.clear()
        self.seconds.clear()

    # ---- reading ----------------------------------------------------------------------------
    def latency_since(self, op: str, since: float) -> tuple[np.ndarray, np.ndarray]:
        """(times, milliseconds) of ``op``'s answers at or after ``since``."""
        samples = [s for s in self.latency[op] if s.t >= since]
        return np.array([s.t for s in samples]), np.array([s.ms for s in samples])

    def rolling(self, op: str, p: float, since: float, window: int = 30,
                points: int = 300) -> tuple[np.ndarray, np.ndarray]:
        """The p-th percentile of the last ``window`` answers, at (at most ``points``) answers
        since ``since``."""
        times, ms = self.latency_since(op, since)
        if len(ms) < window:
            return times[:0], ms[:0]
        windows = np.lib.stride_tricks.sliding_window_view(ms, window)
        stride = max(1, len(windows) // points)
        return times[window - 1::stride], np.percentile(windows[::stride], p, axis=1)

    def trace_ids(self) -> list[str]:
        """Known traces, oldest first."""
        return list(self._traces)

    def trace(self, trace_id: str) -> Trace:
        return Trace.from_events(trace_id, self._traces.get(trace_id, []))



async def fetch_trace(supervisor: Any, trace_id: str) -> Trace:
    """A finished request's trace, put back together from every reachable node's events."""
    events: list[dict[str, Any]] = []
    for node in supervisor.nodes.values():
        if node.state == "up":
            try:
                events += await supervisor.admin(node.name, "GET", f"/admin/events?trace={trace_id}")
            except ClusterError:
                continue  # a node that cannot answer just adds no events
    return Trace.from_events(trace_id, events)

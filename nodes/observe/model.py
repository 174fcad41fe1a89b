"""The cluster as the window and the tests see it: one Qt-free model fed by every node's
telemetry stream. Views connect to its signals and never compute what it knows
(style.md: model and view apart, as napari's components are)."""
from __future__ import annotations

import asyncio
import json
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import aiohttp
import numpy as np

from nodes.control.supervisor import ClusterError
from nodes.runtime.client import SECRET_HEADER
from nodes.runtime.tasks import cancel_and_wait

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

    def steps(self) -> list[Step]:
        """The trace as a sequence diagram draws it, in causal order: the request, every hop
        as a call and, later, its answer, then the answer to the client. An answer comes after
        every hop it waited for (a hop sent by its target while it was open), whatever the
        clocks of the processes say."""
        return causal_steps(self.hops, self.entry_node, self.operation, self.status, self.ms)

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


@dataclass(frozen=True)
class Step:
    """One arrow of a sequence diagram: ``kind`` is "request" (client to entry node),
    "call" (a hop sent), "answer" (a hop's answer) or "reply" (entry node to client)."""

    kind: str
    source: str
    target: str
    text: str
    hop: Hop | None = None


def _nested(parent: Hop, child: Hop) -> bool:
    return child.source == parent.target and parent.t0 <= child.t0 <= parent.t0 + parent.ms / 1000


def causal_steps(hops: list[Hop], entry: str | None, operation: str, status: int | None,
                 ms: float | None) -> list[Step]:
    entry = entry or "frontend"
    ordered = sorted(hops, key=lambda h: (h.t0, h.number))
    # When each hop's answer may be drawn: not before its own end, nor before the answer of
    # any hop it waited for (children first, so a parent's end covers its descendants').
    done_at = {h.number: h.t0 + h.ms / 1000 for h in ordered}
    for parent in reversed(ordered):
        for child in ordered:
            if child is not parent and _nested(parent, child):
                done_at[parent.number] = max(done_at[parent.number], done_at[child.number] + 1e-6)
    arrows: list[tuple[float, int, Step]] = []
    for rank, hop in enumerate(ordered):
        arrows.append((hop.t0, 2 * rank, Step("call", hop.source, hop.target, f"[{hop.number}] {hop.label}", hop)))
        arrows.append((done_at[hop.number], 2 * rank + 1,
                       Step("answer", hop.target, hop.source, f"{hop.answer}  ·  {hop.ms:.1f} ms", hop)))
    arrows.sort(key=lambda a: (a[0], a[1]))
    steps = [Step("request", "client", entry, f"[1] {operation}")]
    steps += [a[2] for a in arrows]
    if status is not None:
        steps.append(Step("reply", entry, "client", f"[{len(hops) + 2}] {status} in {ms or 0:.1f} ms"))
    return steps


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


class Sample(NamedTuple):
    """One answer's latency. A tuple of plain values, which the garbage collector stops
    tracking: the model keeps thousands, and each one tracked made the window's full
    collections (100 ms at a time) longer."""

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


@dataclass(frozen=True)
class ProcessState:
    """What the supervisor knows of one node's process, copied when it changes."""

    state: str = "down"  # starting, up, down, hung, exited
    slow_ms: int = 0
    cut_off: bool = False
    pid: int | None = None
    exit_code: int | None = None
    started_at: float | None = None
    attached: bool = False
    #: Partitions (W8): the nodes whose messages this one no longer hears, and the nodes its
    #: own messages no longer reach.
    deaf_to: frozenset[str] = frozenset()
    mute_to: frozenset[str] = frozenset()

    @classmethod
    def of(cls, node: Any) -> ProcessState:
        return cls(node.state, node.slow_ms, node.cut_off, node.pid, node.exit_code, node.started_at, node.attached,
                   frozenset(node.deaf_to), frozenset(node.mute_to))


#: Every state a node can be in, each its own; the order is how bad it is.
HEALTH_STATES = ("up", "slow", "starting", "cut off", "hung", "down", "exited")


@dataclass(frozen=True)
class NodeHealth:
    """One node as every view shows it: one state of ``HEALTH_STATES`` and plain words."""

    name: str
    role: str
    address: str
    state: str
    label: str  # e.g. "up", "slowed 500 ms", "exited with code 1"
    process: ProcessState
    connected: bool
    #: Why the node may do less than its state says (an order whose catalog is down, ...).
    notes: tuple[str, ...] = ()

    @property
    def serving(self) -> bool:
        """Answers requests: up, or up but slow."""
        return self.state in ("up", "slow")

    @property
    def gone(self) -> bool:
        """No process: crashed, stopped or exited."""
        return self.state in ("down", "exited")

    @property
    def partitioned(self) -> bool:
        """Serving, but some of its links are cut: drawn in the colour of a degraded node."""
        return self.serving and bool(self.process.mute_to | self.process.deaf_to)

    @property
    def look(self) -> str:
        """The state whose colour every view draws it in."""
        return "slow" if self.partitioned else self.state


@dataclass(frozen=True)
class ReplicaCell:
    """One book at one catalog replica, derived once for every view: ``stale`` when its seq is
    below the highest any replica is known to hold; ``lease_lapsed`` when the replica has been
    out of touch for its lease and so vouches for nothing (W2)."""

    replica: int
    book: int
    seq: int | None
    stock: int | None
    valid: bool
    stale: bool
    lease_lapsed: bool
    health: str  # the replica's NodeHealth.state

    @property
    def known(self) -> bool:
        return self.seq is not None


def link_notes(process: ProcessState) -> Iterable[str]:
    """Plain words for a node's cut links: both ways, or which way only."""
    for other in sorted(process.mute_to | process.deaf_to):
        if other in process.mute_to and other in process.deaf_to:
            yield f"its link with {other} is cut both ways: neither hears the other"
        elif other in process.mute_to:
            yield f"one-way cut: {other} no longer hears it, but it still hears {other}"
        else:
            yield f"one-way cut: it no longer hears {other}, but {other} still hears it"


def link_text(links: list[tuple[str, str]]) -> str:
    """Cut links in plain words: a two-way cut once as "a ↔ b", a one-way cut as "a → b"."""
    cut = set(links)
    parts = []
    for sender, receiver in sorted(cut):
        if (receiver, sender) in cut:
            if sender < receiver:
                parts.append(f"{sender} ↔ {receiver}")
        else:
            parts.append(f"{sender} → {receiver}")
    return " · ".join(parts)


def derive_cells(book: int, rows: list[tuple[int, int | None, int | None, bool, bool, str]]) -> list[ReplicaCell]:
    """Cells for one book from (replica, seq, stock, valid, lease lapsed, health) rows: the one
    place "highest seq" and "stale" are worked out, for the live cluster and the scenarios."""
    known = [seq for _r, seq, *_rest in rows if seq is not None]
    highest = max(known) if known else None
    return [ReplicaCell(replica, book, seq, stock, valid and health not in ("down", "exited"),
                        seq is not None and highest is not None and seq < highest, lapsed, health)
            for replica, seq, stock, valid, lapsed, health in rows]


class Message(NamedTuple):
    """One message on one link, as the Live screen animates it: a request going out or its
    answer coming back. ``held_ms`` is how long it was on its way at teaching speed (0 at full
    speed, where it is drawn at a pace a person can follow). A tuple of plain values, like
    ``Sample``: the model keeps up to 100,000, untracked by the garbage collector."""

    number: int  # its place in the model's message log, from 1
    t: float  # when it left its sender (wall clock)
    source: str  # a node's name, or "client" for the shopper
    target: str
    kind: str  # "request" or "answer"
    text: str
    outcome: str  # "" for a request; for an answer one of ANSWER_OUTCOMES
    held_ms: float = 0.0
    trace: str | None = None


#: What an answer says, as the Live screen colours it.
ANSWER_OUTCOMES = ("ok", "out of stock", "conflict", "not found", "unknown", "failed")


def answer_outcome(status: int | None, buy_outcome: str | None = None) -> str:
    """One answer's outcome in a word: no answer at all is "failed"; a buy's 202 (and a buy
    its order replica could not confirm) is "unknown", never "failed" (W7)."""
    if buy_outcome == "out_of_stock":
        return "out of stock"
    if status == 202 or buy_outcome == "unknown":
        return "unknown"
    if status is None:
        return "failed"
    if 200 <= status < 300:
        return "ok"
    return {409: "conflict", 404: "not found"}.get(status, "failed")


@dataclass(frozen=True)
class Mark:
    """A fault or its heal at one moment, as every chart marks it (derived once, here, from
    the node's health changing, whoever caused it: the window, a scenario, the prompt)."""

    t: float
    node: str
    kind: str  # "fault" or "heal"
    text: str  # e.g. "catalog2 down", "catalog2 up again"


#: Health states that are a fault (a mark on the charts when a node goes into one).
FAULT_STATES = ("slow", "cut off", "hung", "down", "exited")


@dataclass(frozen=True)
class LogLine:
    t: float
    text: str


#: Latency series the charts draw: buys that bought and "out of stock" answers apart.
SERIES = ("lookup", "search", "buy", "out of stock", "failed buy")
PENDING_BUY_S = 2.0


class ClusterModel:
    """The cluster as every view shows it. Fed by the nodes' telemetry streams and, through
    ``watch``, by the supervisor's process states; emits one signal per kind of change."""

    def __init__(self, endpoints: dict[str, str], secret: str | None, *, keep_traces: int = 50,
                 keep_samples: int = 5000, keep_messages: int = 100_000,
                 catalog_of: dict[str, str] | None = None) -> None:
        self.secret = secret
        self.nodes = {name: NodeView(name, address.rstrip("/")) for name, address in endpoints.items()}
        #: Which catalog replica each order replica talks to (an order is only as good as it).
        self.catalog_of = dict(catalog_of or {})
        self.processes: dict[str, ProcessState] = {name: ProcessState() for name in self.nodes}
        self.replicas: dict[str, dict[int, ReplicaBook]] = {}
        self.lease_lapsed: dict[str, bool] = {}
        self.caches = {"lookup": CacheView("lookup"), "search": CacheView("search")}
        self.latency: dict[str, deque[Sample]] = {op: deque(maxlen=keep_samples) for op in SERIES}
        #: Each series as (times, ms) arrays in time order, built when first read after a change:
        #: a chart reads each series four times a redraw, thousands of samples each. They are
        #: extended by the samples that came since (counted in ``_fresh``), not built again.
        self._latency_arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        #: The same, in the deque's order (the very same arrays while that order is the time order;
        #: never written in place, only sliced and joined into new ones).
        self._latency_raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._fresh: dict[str, int] = dict.fromkeys(SERIES, 0)
        self.keep_traces = keep_traces
        self._traces: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._buy_outcomes: OrderedDict[str, str] = OrderedDict()  # trace -> the order's outcome
        self._pending_buys: OrderedDict[str, Sample] = OrderedDict()  # answered 200, outcome not yet heard
        self._unsaid_buys: OrderedDict[str, tuple[float, int, float]] = OrderedDict()  # the same, for messages
        self.notable: deque[dict[str, Any]] = deque(maxlen=500)
        self.seconds: deque[Second] = deque(maxlen=600)
        self.logs: dict[str, deque[LogLine]] = {name: deque(maxlen=500) for name in self.nodes}
        self._health: dict[str, NodeHealth] = {}
        #: Every message the Live screen animates, oldest first (``Message.number`` counts on).
        self.messages: deque[Message] = deque(maxlen=keep_messages)
        self.message_count = 0
        #: Faults and heals, oldest first: the charts' markers.
        self.marks: deque[Mark] = deque(maxlen=500)
        self._seen_up: set[str] = set()
        self._broken: set[str] = set()
        # What views connect to:
        self.node_changed = Signal()  # (name): its health, process or counters changed
        self.replicas_changed = Signal()  # (name)
        self.cache_changed = Signal()  # (cache name)
        self.latency_added = Signal()  # (series, Sample)
        self.trace_changed = Signal()  # (trace id)
        self.event_seen = Signal()  # (event) for notable events: faults, outcomes, catch-ups
        self.logged = Signal()  # (name, LogLine): a line in a node's log of what happened to it
        self.ticked = Signal()  # (now): once a second, for what time alone changes (rates, uptimes)
        self.message_added = Signal()  # (Message)
        self.marked = Signal()  # (Mark)
        self._tasks: list[asyncio.Task] = []
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor: Any = None
        for name in self.nodes:
            self._health[name] = self._derive(name)

    @classmethod
    def for_supervisor(cls, supervisor: Any, **kw: Any) -> ClusterModel:
        catalog_of = {}
        for node in supervisor.nodes.values():
            if node.role == "order":
                catalog_of[node.name] = f"catalog{supervisor.cluster.catalog_of(node.index)}"
        return cls({n.name: n.address for n in supervisor.nodes.values()}, supervisor.secret,
                   catalog_of=catalog_of, **kw)

    # ---- process states, from the supervisor ----------------------------------------------
    def watch(self, supervisor: Any) -> None:
        """Follow the supervisor's process states. Its listeners run on process-reader threads;
        each change is copied there and applied on this model's loop."""
        self._loop = asyncio.get_running_loop()
        self._supervisor = supervisor
        supervisor.listeners.append(self._from_thread)
        for node in supervisor.nodes.values():
            self.set_process(node.name, ProcessState.of(node))

    def _from_thread(self, node: Any) -> None:
        state = ProcessState.of(node)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.set_process, node.name, state)

    def set_process(self, name: str, state: ProcessState) -> None:
        before = self.processes.get(name, ProcessState())
        if state == before:
            return
        self.processes[name] = state
        for line in _process_lines(before, state):
            self.log(name, line)
        # A partition changes no node's state; its links are marked on the charts all the same.
        for other in sorted(state.mute_to - before.mute_to):
            self._add_mark(Mark(time.time(), name, "fault", f"link {name} → {other} cut"))
        for other in sorted(before.mute_to - state.mute_to):
            self._add_mark(Mark(time.time(), name, "heal", f"link {name} → {other} restored"))
        self._rederive(name)
        if state.state in ("down", "exited") and name in self.replicas:
            self.replicas_changed.emit(name)  # its valid set is gone with the process

    # ---- health ---------------------------------------------------------------------------
    def health(self, name: str) -> NodeHealth:
        return self._health[name]

    def healths(self) -> list[NodeHealth]:
        return [self._health[name] for name in self.nodes]

    def _derive(self, name: str) -> NodeHealth:
        view = self.nodes[name]
        process = self.processes[name]
        slow_ms = process.slow_ms or int(view.state.get("slow_ms", 0) or 0)
        cut_off = process.cut_off or bool(view.state.get("cut_off", False))
        if process.state == "exited":
            state, text = "exited", f"exited with code {process.exit_code}"
        elif process.state in ("down", "starting", "hung"):
            state = text = process.state
        elif cut_off:
            state, text = "cut off", "cut off"
        elif slow_ms:
            state, text = "slow", f"slowed {slow_ms} ms"
        else:
            state = text = "up"
        notes = list(link_notes(process))
        if notes and state in ("up", "slow"):
            text += f", {len(notes)} link{'s' if len(notes) > 1 else ''} cut"
        if state == "slow" and view.role == "order":
            notes.append("the front-end sends buys to the next order replica when this one is slower than "
                         "its timeout, so few requests reach it")
        elif state == "slow":
            notes.append("callers wait longer for every answer; past their timeout they try another replica")
        catalog = self.catalog_of.get(name)
        if catalog is not None and state in ("up", "slow"):
            theirs = self._health.get(catalog)
            if theirs is not None and not theirs.serving:
                notes.append(f"its catalog, {catalog}, is {theirs.label}: it cannot carry out buys, "
                             "so the front-end routes them to other order replicas")
        return NodeHealth(name, view.role, view.address, state, text, process, view.connected, tuple(notes))

    def _rederive(self, name: str) -> None:
        changed = [name]
        changed += [order for order, catalog in self.catalog_of.items() if catalog == name]
        for each in changed:
            health = self._derive(each)
            before = self._health.get(each)
            if health != before:
                self._health[each] = health
                if before is not None and before.state != health.state:
                    self._mark(each, health)
                self.node_changed.emit(each)
                if health.role == "catalog":
                    self.replicas_changed.emit(each)  # its cells are drawn by its state

    def cut_links(self) -> list[tuple[str, str]]:
        """Every link a partition cut, as (sender, receiver): the receiver hears nothing the
        sender sends on it. Both directions of a two-way cut are listed."""
        return sorted((name, other) for name, process in self.processes.items() for other in process.mute_to)

    def _mark(self, name: str, health: NodeHealth) -> None:
        """A fault when a node that has been up goes into a fault state; a heal when a broken
        node is up again. Starting the cluster marks nothing."""
        if health.state == "up":
            self._seen_up.add(name)
            if name not in self._broken:
                return
            self._broken.discard(name)
            mark = Mark(time.time(), name, "heal", f"{name} up again")
        elif health.state in FAULT_STATES and name in self._seen_up:
            self._broken.add(name)
            mark = Mark(time.time(), name, "fault", f"{name} {health.label}")
        else:
            return
        self._add_mark(mark)

    def _add_mark(self, mark: Mark) -> None:
        self.marks.append(mark)
        self.marked.emit(mark)

    def marks_since(self, since: float) -> list[Mark]:
        return [mark for mark in self.marks if mark.t >= since]

    def summary(self) -> tuple[int, int, list[NodeHealth]]:
        """(nodes up, nodes in all, the ones not simply up) — what every "n of m up" says."""
        healths = self.healths()
        return (sum(1 for h in healths if h.serving), len(healths),
                [h for h in healths if h.state != "up" or h.notes])

    # ---- replica cells --------------------------------------------------------------------
    def catalog_names(self) -> list[str]:
        return [name for name in self.nodes if self.nodes[name].role == "catalog"]

    def book_ids(self) -> list[int]:
        return sorted({book for books in self.replicas.values() for book in books})

    def cells(self, book: int) -> list[ReplicaCell]:
        """The book at every catalog replica, as the Replicas tab and the figures draw it."""
        rows = []
        for name in self.catalog_names():
            held = self.replicas.get(name, {}).get(book)
            rows.append((int(name.removeprefix("catalog")), None if held is None else held.seq,
                         None if held is None else held.quantity, bool(held and held.valid),
                         self.lease_lapsed.get(name, False), self._health[name].state))
        return derive_cells(book, rows)

    # ---- node logs ------------------------------------------------------------------------
    def log(self, name: str, text: str, t: float | None = None) -> None:
        """Add a line to what the window tells of ``name`` (its Log)."""
        line = LogLine(time.time() if t is None else t, text)
        self.logs[name].append(line)
        self.logged.emit(name, line)

    # ---- following the nodes ------------------------------------------------------------
    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        self._tasks = [asyncio.create_task(self._follow(view), name=f"follow-{view.name}")
                       for view in self.nodes.values()]
        self._tasks.append(asyncio.create_task(self._clock(), name="model-clock"))

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        if self._session is not None:
            await self._session.close()
        if self._supervisor is not None and self._from_thread in self._supervisor.listeners:
            self._supervisor.listeners.remove(self._from_thread)

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(1.0)  # the clock's own pacing: rates and uptimes move with time
            self._flush_pending(time.time())
            self.ticked.emit(time.time())

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
            self._rederive(view.name)

    # ---- applying events ------------------------------------------------------------------
    def apply(self, name: str, event: dict[str, Any]) -> None:
        kind = event["kind"]
        view = self.nodes[name]
        trace = event.get("trace")
        if trace is not None and kind in ("request_in", "request", "hop"):
            self._remember(trace, event)
        if kind in ("send", "reply", "hop", "request_in", "request"):
            self._messages_of(name, event)
        if kind == "snapshot":
            self._snapshot(view, event["state"])
        elif kind == "request":
            view.answered.append(event["t"])
            op = OPERATIONS.get(event.get("route", ""))
            if name == "frontend":
                self._second(event["t"]).answers += 1
            if name == "frontend" and op is not None:
                self._sample(op, Sample(event["t"], event["ms"], event["status"]), trace)
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
        elif kind == "lease":
            self.lease_lapsed[name] = not event["held"]
            self.replicas_changed.emit(name)
        elif kind == "cache":
            self._cache_event(event)
        elif kind == "dropped":
            view.dropped += event["count"]
        elif kind == "order" and trace is not None:
            self._order_outcome(trace, event["outcome"])
        elif kind == "pace":
            view.state["pace_ms"] = event["ms"]
        elif kind == "fault":
            if event.get("fault") == "slow":
                view.state["slow_ms"] = event.get("ms", 0)
            elif event.get("fault") == "cut_off":
                view.state["cut_off"] = event.get("on", False)
            self._rederive(name)
        text = _event_line(event)
        if text is not None:
            self.log(name, text, event.get("t"))
        if kind in ("fault", "order", "catch_up", "peer", "replica", "lease_wait", "lease", "dropped", "generation"):
            self.notable.append(event)
            self.event_seen.emit(event)

    # ---- messages for the Live screen ---------------------------------------------------------
    def _messages_of(self, name: str, event: dict[str, Any]) -> None:
        """The messages one event tells of. At teaching speed a node tells when a message leaves
        (``send``, ``reply``) and holds it; at full speed a hop tells its request and answer
        once it is over, and the front-end's own events tell the shopper's."""
        kind, t, trace = event["kind"], event["t"], event.get("trace")
        if kind == "send":
            self._message(t, name, event["to"], "request", event["label"], "", event["held_ms"], trace)
        elif kind == "reply" and event["to"] == "client":
            if name == "frontend":  # not the window's own calls to a node (a restock, say)
                self._client_answer(t, event["status"], event["held_ms"], trace,
                                    buy=event.get("path", "").startswith("/buy/"))
        elif kind == "reply":
            self._message(t, name, event["to"], "answer", event["answer"], answer_outcome(event["status"]),
                          event["held_ms"], trace)
        elif kind == "hop" and not event.get("held_ms"):
            self._message(event["t0"], name, event["to"], "request", event["label"], "", 0.0, trace)
            self._message(event["t0"] + event["ms"] / 1000, event["to"], name, "answer", event["answer"],
                          answer_outcome(event["status"]), 0.0, trace)
        elif name == "frontend" and kind == "request_in" and "from" not in event:
            self._message(t, "client", name, "request", f"{event['method']} {event['path']}", "", 0.0, trace)
        elif name == "frontend" and kind == "request" and OPERATIONS.get(event.get("route", "")) is not None \
                and not self.nodes[name].state.get("pace_ms"):  # held answers come as "reply" events
            self._client_answer(t, event["status"], 0.0, trace, buy=OPERATIONS[event["route"]] == "buy")

    def _client_answer(self, t: float, status: int, held_ms: float, trace: str | None, *, buy: bool,
                       wait: bool = True) -> None:
        """The front-end's answer to the shopper. A bought copy and "out of stock" are both 200:
        a buy's answer waits (a moment at most) for its order replica's outcome to tell them apart."""
        if wait and buy and status == 200 and trace is not None and self._buy_outcomes.get(trace) not in DECISIVE:
            self._unsaid_buys[trace] = (t, status, held_ms)
            return
        outcome = answer_outcome(status, self._buy_outcomes.get(trace) if trace else None)
        text = "200 out of stock" if outcome == "out of stock" else str(status)
        self._message(t, "frontend", "client", "answer", text, outcome, held_ms, trace)

    def _message(self, t: float, source: str, target: str, kind: str, text: str, outcome: str, held_ms: float,
                 trace: str | None) -> None:
        self.message_count += 1
        message = Message(self.message_count, t, source, target, kind, text, outcome, held_ms, trace)
        self.messages.append(message)
        self.message_added.emit(message)

    def messages_after(self, number: int, limit: int | None = None) -> list[Message]:
        """Messages numbered above ``number``, oldest first (at most ``limit``, the oldest)."""
        if not self.messages or number >= self.messages[-1].number:
            return []
        start = max(0, number - self.messages[0].number + 1)
        stop = len(self.messages) if limit is None else min(len(self.messages), start + limit)
        return [self.messages[i] for i in range(start, stop)]

    def pace_ms(self) -> int:
        """The teaching speed the front-end reports (every node is told the same)."""
        return int(self.nodes["frontend"].state.get("pace_ms", 0) or 0) if "frontend" in self.nodes else 0

    def _sample(self, op: str, sample: Sample, trace: str | None) -> None:
        if op != "buy":
            self._add_sample(op, sample)
        elif sample.status != 200:
            self._add_sample("failed buy", sample)
        elif trace is not None and self._buy_outcomes.get(trace) in DECISIVE:
            self._add_sample(_series_of(self._buy_outcomes[trace]), sample)
        elif trace is not None:
            self._pending_buys[trace] = sample  # its order replica's outcome is still on its way
        else:
            self._add_sample("buy", sample)

    def _order_outcome(self, trace: str, outcome: str) -> None:
        # One buy may meet several order replicas (one unreachable, the next one buying):
        # what decides a 200's series is the one that bought or found it sold out.
        if self._buy_outcomes.get(trace) not in DECISIVE:
            self._buy_outcomes[trace] = outcome
        while len(self._buy_outcomes) > 2000:
            self._buy_outcomes.popitem(last=False)
        sample = self._pending_buys.pop(trace, None) if outcome in DECISIVE else None
        if sample is not None:
            self._add_sample(_series_of(outcome), sample)
        unsaid = self._unsaid_buys.pop(trace, None) if outcome in DECISIVE else None
        if unsaid is not None:
            self._client_answer(*unsaid, trace, buy=True, wait=False)

    def _flush_pending(self, now: float) -> None:
        while self._pending_buys:
            trace, sample = next(iter(self._pending_buys.items()))
            if now - sample.t < PENDING_BUY_S:
                break
            del self._pending_buys[trace]
            self._add_sample("buy", sample)  # answered 200 and no outcome heard: a buy
        for trace, (t, status, held_ms) in list(self._unsaid_buys.items()):
            if now - t >= PENDING_BUY_S:
                del self._unsaid_buys[trace]
                self._client_answer(t, status, held_ms, trace, buy=True, wait=False)

    def _add_sample(self, series: str, sample: Sample) -> None:
        self.latency[series].append(sample)
        self._fresh[series] += 1
        self.latency_added.emit(series, sample)

    def _snapshot(self, view: NodeView, state: dict[str, Any]) -> None:
        view.state = state
        if state.get("role") == "catalog":
            self.replicas[view.name] = {
                b["id"]: ReplicaBook(b["seq"], b["quantity"], b["price"], b["valid"]) for b in state["books"]
            }
            self.lease_lapsed[view.name] = not state.get("lease_ok", True)
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
        self._rederive(view.name)

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
        self._latency_arrays.clear()
        self._latency_raw.clear()
        self.seconds.clear()

    # ---- reading ----------------------------------------------------------------------------
    def latency_since(self, op: str, since: float) -> tuple[np.ndarray, np.ndarray]:
        """(times, milliseconds) of ``op``'s answers at or after ``since``, in time order."""
        arrays = self._latency_arrays.get(op) if not self._fresh[op] else None
        if arrays is None:
            arrays = self._latency_arrays[op] = self._build_arrays(op)
        times, ms = arrays
        first = int(np.searchsorted(times, since, side="left"))
        return times[first:], ms[first:]

    def _build_arrays(self, op: str) -> tuple[np.ndarray, np.ndarray]:
        """``op``'s samples as time-ordered, read-only arrays: the last ones built, with the
        samples added since appended (and as many of the oldest dropped as the deque dropped)."""
        samples, fresh = self.latency[op], self._fresh[op]
        self._fresh[op] = 0
        raw = self._latency_raw.get(op)
        if raw is None or fresh >= len(samples):
            times = np.fromiter((s.t for s in samples), float, len(samples))
            ms = np.fromiter((s.ms for s in samples), float, len(samples))
        else:
            new = [samples[-k] for k in range(fresh, 0, -1)]  # a deque is indexed fast near its ends
            keep = len(samples) - fresh
            times = np.concatenate((raw[0][len(raw[0]) - keep:], np.fromiter((s.t for s in new), float, fresh)))
            ms = np.concatenate((raw[1][len(raw[1]) - keep:], np.fromiter((s.ms for s in new), float, fresh)))
        self._latency_raw[op] = times, ms
        if len(times) > 1 and not bool(np.all(times[1:] >= times[:-1])):
            order = np.argsort(times, kind="stable")  # a buy is filed when its outcome is heard
            times, ms = times[order], ms[order]
        times.setflags(write=False)  # shared by every caller until the next sample
        ms.setflags(write=False)
        return times, ms

    def rolling(self, op: str, p: float | tuple[float, ...], since: float, window: int = 30,
                points: int = 150) -> tuple[np.ndarray, np.ndarray]:
        """The p-th percentile of the last ``window`` answers, at (at most ``points``) answers
        since ``since``; for several p at once, one row of values for each."""
        times, ms = self.latency_since(op, since)
        many = np.ndim(p) > 0
        if len(ms) < window:
            return times[:0], (np.empty((len(p), 0)) if many else ms[:0])
        windows = np.lib.stride_tricks.sliding_window_view(ms, window)
        stride = max(1, len(windows) // points)
        ranked = np.sort(windows[::stride], axis=1)  # np.percentile's linear rule, without its overhead
        rows = []
        for q in np.atleast_1d(p):
            at = (window - 1) * q / 100
            low = int(math.floor(at))
            high = min(low + 1, window - 1)
            rows.append(ranked[:, low] + (ranked[:, high] - ranked[:, low]) * (at - low))
        return times[window - 1::stride], (np.array(rows) if many else rows[0])

    def trace_ids(self) -> list[str]:
        """Known traces, oldest first."""
        return list(self._traces)

    def trace(self, trace_id: str) -> Trace:
        return Trace.from_events(trace_id, self._traces.get(trace_id, []))



#: Order outcomes that end a buy answered 200: it bought, or the book was sold out.
DECISIVE = ("bought", "out_of_stock")


def _series_of(outcome: str) -> str:
    return {"bought": "buy", "out_of_stock": "out of stock"}.get(outcome, "failed buy")


def _process_lines(before: ProcessState, after: ProcessState) -> list[str]:
    """What a change of process state means, in the words of a node's Log."""
    lines = []
    if before.state != after.state:
        text = {
            "starting": "starting (pid {pid})",
            "up": "resumed (SIGCONT): answering again" if before.state == "hung" else "up and answering",
            "hung": "hung (SIGSTOP): connections are accepted, nothing is answered",
            "down": "crashed or stopped: the process is gone, its valid set with it",
            "exited": "exited with code {code}",
        }[after.state]
        lines.append(text.format(pid=after.pid, code=after.exit_code))
    if before.slow_ms != after.slow_ms and after.state not in ("down", "exited", "starting"):
        lines.append(f"slowed by {after.slow_ms} ms per answer" if after.slow_ms else "back to normal speed")
    if before.cut_off != after.cut_off and after.state not in ("down", "exited", "starting"):
        lines.append("cut off: drops all traffic but admin and telemetry" if after.cut_off
                     else "healed: takes traffic again")
    return lines


def _event_line(event: dict[str, Any]) -> str | None:
    """A node's own telemetry event worth a line in its Log, in plain words (None if not)."""
    kind = event["kind"]
    if kind == "lease":
        return ("lease regained: heard from its peers again, vouches for its copies" if event["held"]
                else "lease lapsed: out of touch with its peers, drops its valid set (W2)")
    if kind == "lease_wait":
        return f"waits for the lease of catalog {', '.join(map(str, event.get('peers', [])))} to lapse before writing"
    if kind == "catch_up":
        return f"caught up: book {event['book']} to seq {event['seq']}"
    if kind == "peer":
        return f"sees catalog{event['peer']} {'back' if event['up'] else 'out'}"
    if kind == "replica":
        return f"marks {event['ring']}{event['replica']} {'back' if event['up'] else 'out'}"
    if kind == "generation":
        return "adopted a newer reset of the data from a peer (it missed the reset while away)"
    if kind == "order" and event.get("outcome") == "unknown":
        return f"buy {event.get('buy_id', '')}: no order replica confirmed it in time (outcome unknown)"
    if kind == "dropped":
        return f"the window fell behind its event stream and lost {event['count']} events"
    return None


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

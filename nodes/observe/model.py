"""The cluster as the window and the tests see it: one Qt-free model that only applies events.

Everything it knows comes through ``apply``: the nodes' telemetry, decoded into
``nodes.core.events`` dataclasses, and what the window observes besides
(``observations.py``: streams opening and closing, process states, the clock). It does no I/O;
``follower.py`` feeds it from the nodes' websockets and the supervisor. Views connect to its
signals and never compute what it knows (docs/contributing.md: model and view apart, as
napari's components are)."""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from nodes.core.events import (
    CacheChanged,
    CacheOp,
    CaughtUp,
    CutOffSet,
    DiskTrouble,
    Dropped,
    Event,
    Fault,
    GenerationAdopted,
    HopDone,
    LeaseChanged,
    LeaseWait,
    OrderOutcome,
    OrderResult,
    PaceSet,
    PeerSeen,
    ReplicaSeen,
    Replying,
    RequestAnswered,
    RequestIn,
    RowDamaged,
    RowRepaired,
    Sending,
    SeqChanged,
    SlowSet,
    Snapshot,
    Timed,
    ValidChanged,
)
from nodes.core.vocabulary import GONE, HealthState
from nodes.observe.arrows import ArrowLog
from nodes.observe.buys import PendingBuys
from nodes.observe.feeding import Fed
from nodes.observe.health import derive_health, event_line, is_up, mark_change, process_lines
from nodes.observe.latency import OPERATIONS, Latency, Sample, Second, second_of
from nodes.observe.observations import Anomaly, LogNote, Observation, ProcessChanged, StreamState, Tick
from nodes.observe.traces import Trace, TraceBook
from nodes.observe.views import (
    CacheView,
    HeldBooks,
    LogLine,
    Mark,
    MarkKind,
    NodeHealth,
    NodeView,
    ProcessState,
    ReplicaCell,
    books_in_trouble,
    derive_cells,
)

#: Events kept as notable (``ClusterModel.notable``): faults, outcomes, catch-ups, leases.
NOTABLE = (Fault, OrderOutcome, CaughtUp, PeerSeen, ReplicaSeen, LeaseWait, LeaseChanged, Dropped, GenerationAdopted,
           RowDamaged, RowRepaired, DiskTrouble)
#: Events a request's trace is put together from.
TRACED = (RequestIn, RequestAnswered, HopDone)
#: Events that tell of messages on the links (arrows on the Live screen).
CARRIED = (Sending, Replying, HopDone, RequestIn, RequestAnswered)


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


class ClusterModel(Fed):
    """The cluster as every view shows it, fed by ``apply``; emits one signal per kind of change."""

    def __init__(self, endpoints: dict[str, str], *, keep_traces: int = 50, keep_samples: int = 5000,
                 keep_arrows: int = 100_000, catalog_of: dict[str, str] | None = None) -> None:
        super().__init__()
        self.nodes = {name: NodeView(name, address.rstrip("/")) for name, address in endpoints.items()}
        #: Which catalog replica each order replica talks to (an order is only as good as it).
        self.catalog_of = dict(catalog_of or {})
        self.processes: dict[str, ProcessState] = {name: ProcessState() for name in self.nodes}
        self.replicas: dict[str, HeldBooks] = {}
        self.lease_lapsed: dict[str, bool] = {}
        self.caches = {"lookup": CacheView("lookup"), "search": CacheView("search")}
        self.latency = Latency(keep_samples)
        self.keep_traces = keep_traces
        self._traces = TraceBook(keep_traces)
        self._buys = PendingBuys()
        self.notable: deque[Event] = deque(maxlen=500)
        self.seconds: deque[Second] = deque(maxlen=600)
        self.logs: dict[str, deque[LogLine]] = {name: deque(maxlen=500) for name in self.nodes}
        self._health: dict[str, NodeHealth] = {}
        #: Faults and heals, oldest first: the charts' markers.
        self.marks: deque[Mark] = deque(maxlen=500)
        self._seen_up: set[str] = set()
        #: The fault each broken node was last marked with (its heal is named for it).
        self._broken: dict[str, HealthState] = {}
        # What views connect to:
        self.node_changed = Signal()  # (name): its health, process or counters changed
        self.replicas_changed = Signal()  # (name)
        self.cache_changed = Signal()  # (cache name)
        self.latency_added = Signal()  # (series, Sample)
        self.trace_changed = Signal()  # (trace id)
        self.event_seen = Signal()  # (Event) for notable events: faults, outcomes, catch-ups
        self.logged = Signal()  # (name, LogLine): a line in a node's log of what happened to it
        self.ticked = Signal()  # (now): once a second, for what time alone changes (rates, uptimes)
        self.arrow_added = Signal()  # (Arrow)
        self.marked = Signal()  # (Mark)
        #: Traces the checker blamed for an anomaly (a recorded check or simulation).
        self.blamed: set[str] = set()
        #: Every message the Live screen animates, oldest first (``Arrow.number`` counts on).
        self.arrows = ArrowLog(keep_arrows, self._buys, self.arrow_added.emit)
        for name in self.nodes:
            self._health[name] = derive_health(self.nodes[name], self.processes[name])

    @classmethod
    def for_supervisor(cls, supervisor: Any, **kw: Any) -> ClusterModel:
        catalog_of = {}
        for node in supervisor.nodes.values():
            if node.role == "order":
                catalog_of[node.name] = f"catalog{supervisor.cluster.catalog_of(node.index)}"
        return cls({n.name: n.address for n in supervisor.nodes.values()}, catalog_of=catalog_of, **kw)

    # ---- the one way in -------------------------------------------------------------------
    def replay(self, at: float, event: Event | Observation) -> None:
        """Take one input stamped ``at`` (``Fed.apply`` stamps it now)."""
        self._at = at
        match event:
            case Event():
                self._telemetry(event)
            case Tick(t=now):
                self._settle_buys(now)
                self.ticked.emit(now)
            case ProcessChanged(node=name, process=process):
                self._process(name, process)
            case StreamState(node=name, connected=connected):
                view = self.nodes[name]
                if view.connected != connected:
                    view.connected = connected
                    self.node_changed.emit(name)
                    self._rederive(name)
            case LogNote(node=name, text=text, t=t):
                self._log(name, text, t)
            case Anomaly(t=t, node=name, text=text, traces=traces):
                self.blamed.update(traces)
                self._add_mark(Mark(t, name, MarkKind.ANOMALY, text))

    def _telemetry(self, event: Event) -> None:
        name, trace = event.node, event.trace
        view = self.nodes[name]
        if trace is not None and isinstance(event, TRACED):
            self._remember(trace, event)
        if isinstance(event, CARRIED):
            self.arrows.tell(event, paced=bool(view.state.get("pace_ms")))
        match event:
            case Snapshot(state=state):
                self._snapshot(view, state)
            case RequestAnswered(t=t, route=route, status=status, ms=ms):
                view.answer(t)
                op = OPERATIONS.get(route)
                if name == "frontend":
                    second_of(self.seconds, t).answers += 1
                if name == "frontend" and op is not None:
                    self._sample(op, Sample(t, ms, status), trace)
            case SeqChanged(book=book_id, seq=seq, quantity=quantity, price=price):
                if name in self.replicas and self.replicas[name].changed(book_id, seq, quantity, price):
                    self.replicas_changed.emit(name)
            case ValidChanged(book=book_id, valid=valid):
                if name in self.replicas and self.replicas[name].marked(book_id, valid):
                    self.replicas_changed.emit(name)
            case LeaseChanged(held=held):
                self.lease_lapsed[name] = not held
                self.replicas_changed.emit(name)
            case CacheChanged():
                self._cache_event(event)
            case Dropped(count=count):
                view.dropped += count
            case OrderOutcome(outcome=outcome) if trace is not None:
                self._order_outcome(trace, outcome)
            case PaceSet(ms=ms):
                view.state["pace_ms"] = ms
            case SlowSet(ms=ms):
                view.state["slow_ms"] = ms
                self._rederive(name)
            case CutOffSet(on=on):
                view.state["cut_off"] = on
                self._rederive(name)
            case Fault():  # a partition: the supervisor's process state tells its links
                self._rederive(name)
        text = event_line(event)
        if text is not None:
            self._log(name, text, event.t if isinstance(event, Timed) else None)  # ``dropped`` has no time
        if isinstance(event, NOTABLE):
            self.notable.append(event)
            self.event_seen.emit(event)

    # ---- process states and health ----------------------------------------------------------
    def _process(self, name: str, state: ProcessState) -> None:
        before = self.processes.get(name, ProcessState())
        if state == before:
            return
        self.processes[name] = state
        for line in process_lines(before, state):
            self._log(name, line)
        # A partition changes no node's state; its links are marked on the charts all the same.
        for other in sorted(state.mute_to - before.mute_to):
            self._add_mark(Mark(self._at, name, MarkKind.FAULT, f"link {name} → {other} cut", peer=other))
        for other in sorted(before.mute_to - state.mute_to):
            self._add_mark(Mark(self._at, name, MarkKind.HEAL, f"link {name} → {other} restored", peer=other))
        self._rederive(name)
        if state.state in GONE and name in self.replicas:
            # Its valid set is gone with the process: started again, it vouches for nothing
            # until it says so (a mark kept from before the crash showed bold while starting).
            self.replicas[name].none_valid()
            self.replicas_changed.emit(name)

    def health(self, name: str) -> NodeHealth:
        return self._health[name]

    def healths(self) -> list[NodeHealth]:
        return [self._health[name] for name in self.nodes]

    def _rederive(self, name: str) -> None:
        changed = [name]
        changed += [order for order, catalog in self.catalog_of.items() if catalog == name]
        for each in changed:
            catalog = self.catalog_of.get(each)
            health = derive_health(self.nodes[each], self.processes[each], catalog,
                                   self._health.get(catalog) if catalog is not None else None)
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
        """A fault when a node that has been up goes into a fault state; a heal, named for what
        it undoes, when it comes out of it (``health.mark_change``). Starting the cluster marks
        nothing."""
        if health.state == HealthState.UP:
            self._seen_up.add(name)
        if name not in self._seen_up:
            return
        change = mark_change(name, self._broken.get(name), health)
        if change is None:
            return
        kind, text, broken = change
        if broken is None:
            self._broken.pop(name, None)
        else:
            self._broken[name] = broken
        self._add_mark(Mark(self._at, name, kind, text, state=broken))

    def _add_mark(self, mark: Mark) -> None:
        self.marks.append(mark)
        self.marked.emit(mark)

    def marks_since(self, since: float) -> list[Mark]:
        return [mark for mark in self.marks if mark.t >= since]

    def summary(self) -> tuple[int, int, list[NodeHealth]]:
        """(nodes up, nodes in all, the ones not simply up) — what every "n of m up" says: a
        slowed, cut-off or partitioned node is up (``health.is_up``)."""
        healths = self.healths()
        return (sum(1 for h in healths if is_up(h)), len(healths),
                [h for h in healths if h.state != HealthState.UP or h.notes])

    # ---- replica cells, caches, logs ------------------------------------------------------
    def catalog_names(self) -> list[str]:
        return [name for name in self.nodes if self.nodes[name].role == "catalog"]

    def troubled(self) -> set[int] | None:
        """The books some catalog replica holds stale or not as valid (None: every book, as
        when a replica is down or hung): the Replicas tab's "only stale or not valid"."""
        names = self.catalog_names()
        return books_in_trouble([self.replicas.get(name) for name in names],
                                [self._health[name].state not in GONE and self._health[name].state != HealthState.HUNG
                                 for name in names])

    def cells(self, book: int) -> list[ReplicaCell]:
        """The book at every catalog replica, as the Replicas tab and the figures draw it."""
        rows = []
        for name in self.catalog_names():
            held = self.replicas[name].get(book) if name in self.replicas else None
            rows.append((int(name.removeprefix("catalog")), None if held is None else held.seq,
                         None if held is None else held.quantity, bool(held and held.valid),
                         self.lease_lapsed.get(name, False), self._health[name].state))
        return derive_cells(book, rows)

    def _log(self, name: str, text: str, t: float | None = None) -> None:
        """Add a line to what the window tells of ``name`` (its Log)."""
        line = LogLine(self._at if t is None else t, text)
        self.logs[name].append(line)
        self.logged.emit(name, line)

    def _snapshot(self, view: NodeView, state: dict[str, Any]) -> None:
        # The per-book rows are kept once, compactly, in ``replicas``: not again in the state.
        view.state = {key: value for key, value in state.items() if key not in ("books", "book_columns")}
        if state.get("role") == "catalog":
            self.replicas[view.name] = HeldBooks.of_state(state)
            self.lease_lapsed[view.name] = not state.get("lease_ok", True)
            self.replicas_changed.emit(view.name)
        if state.get("role") == "frontend":
            for name, described in state["caches"].items():
                self.caches[name].take(described)
                self.cache_changed.emit(name)
        self.node_changed.emit(view.name)
        self._rederive(view.name)

    def _cache_event(self, event: CacheChanged) -> None:
        if event.op in (CacheOp.HIT, CacheOp.MISS):
            bucket = second_of(self.seconds, event.t)
            bucket.hits += event.op == CacheOp.HIT
            bucket.misses += event.op == CacheOp.MISS
        self.caches[event.cache].apply(event.op, event.key, event.t)
        self.cache_changed.emit(event.cache)

    # ---- traces ---------------------------------------------------------------------------
    def _remember(self, trace: str, event: Event) -> None:
        self._traces.remember(trace, event)
        self.trace_changed.emit(trace)

    def trace_ids(self) -> list[str]:
        """Known traces, oldest first."""
        return self._traces.ids()

    def trace(self, trace_id: str) -> Trace:
        return self._traces.trace(trace_id)

    # ---- arrows for the Live screen ---------------------------------------------------------
    def pace_ms(self) -> int:
        """The teaching speed the front-end reports (every node is told the same)."""
        return int(self.nodes["frontend"].state.get("pace_ms", 0) or 0) if "frontend" in self.nodes else 0

    # ---- latency and buys -----------------------------------------------------------------
    def _sample(self, op: str, sample: Sample, trace: str | None) -> None:
        series = self._buys.file(op, sample, trace)
        if series is not None:
            self._add_sample(series, sample)

    def _order_outcome(self, trace: str, outcome: OrderResult) -> None:
        filed, answer = self._buys.heard(trace, outcome)
        if filed is not None:
            self._add_sample(*filed)
        if answer is not None:
            self.arrows.client_answer(answer, buy=True, wait=False)

    def _settle_buys(self, now: float) -> None:
        samples, answers = self._buys.due(now)
        for sample in samples:
            self._add_sample("buy", sample)  # answered 200 and no outcome heard: a buy
        for answer in answers:
            self.arrows.client_answer(answer, buy=True, wait=False)

    def _add_sample(self, series: str, sample: Sample) -> None:
        self.latency.add(series, sample)
        self.latency_added.emit(series, sample)

    def clear_measurements(self) -> None:
        """Forget latency samples and per-second counts (the charts' Clear)."""
        self.latency.clear()
        self.seconds.clear()

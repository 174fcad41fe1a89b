"""A simulated seed as a run file (``launcher.py simulate --seed S --record FILE``): the same
format a live recording has (``runfile.py``), so that a failing seed opens in the window at its
first anomaly with the operations the checker blames highlighted, as DSLabs' visual debugger
shows its students a failing run — on Bazar's own protocol, since the simulator drives the very
cores the nodes run (``nodes/sim/world.py``).

``SimTelemetry`` is the world's observer: it tells what the simulated nodes did the way the real
ones tell it (``nodes/runtime/driver.py``, ``client.py``, ``node.py``) — each core's ``emit`` as the
event it decodes to, each message between nodes as the sender's ``hop`` and the receiver's
``request_in`` and ``request``, each client operation as the front-end's, with a trace and spans
that follow it from node to node — and the processes as the supervisor tells them. It only
watches (no random number, nothing scheduled), so a seed runs the same recorded or not.

One clock: every input is stamped ``epoch`` + the simulated time. What is approximated: a node's
events carry the true simulated time, not its own drifting clock (the window draws one
timeline); a process's ``pid`` is its incarnation; a node cut off from every other is drawn cut
off (``cut_off``), whichever fault cut it; network-wide loss and duplication, clock steps and
rows changed on disk are lines in the nodes' logs."""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote
from weakref import WeakKeyDictionary

from nodes.core.catalog import Mode
from nodes.core.effects import Core, NoAnswer, Send
from nodes.core.events import CutOffSet, DiskFullSet, Event, HopDone, LinksSet, RequestAnswered, RequestIn, Snapshot
from nodes.core.events import decode as decode_event
from nodes.core.messages import Buy, Read, Search
from nodes.core.vocabulary import NodeState
from nodes.core.wire import Failure, request_of, response_of
from nodes.observe.observations import Anomaly, LogNote, ProcessChanged, StreamState, Tick
from nodes.observe.views import ProcessState
from nodes.runs.follow import anomaly_inputs
from nodes.runs.runfile import Header, Input, write_run
from nodes.runtime.client import status_text
from nodes.sim.run import Options, Result, simulate
from nodes.sim.world import CatalogDisk, Process, World
from nodes.verify.history import Operation

#: Paths a node serves without telling of them (``nodes/runtime/node.py``'s quiet paths).
QUIET_ROUTES = frozenset({"/health", "/rep/ping"})
#: History faults that are lines in a node's log (the others are process states), in its words.
LOGGED_FAULTS = {"clock": "its clock stepped: {detail}",
                 "corrupt": "a row changed on its disk while it was down: {detail}"}

Context = tuple[str, str]  # (trace, span) of the request a fiber serves


@dataclass
class _Message:
    """One message on its way: the trace it rides, its own span, the span its sender serves,
    when it left (simulated seconds), and the status its receiver answered."""

    trace: str | None
    span: str
    parent: str | None
    t0: float
    status: int | None = None


class SimTelemetry:
    """Watches one simulated run (``World.observe``) and keeps what the model would have been
    fed, in time order (``records``). ``traces``: each client operation's trace, by ``op_key``."""

    def __init__(self, seed: int, epoch: float) -> None:
        self.seed = seed
        self.epoch = epoch
        self.records: list[tuple[float, Input]] = []
        self.traces: dict[tuple[Any, ...], str] = {}
        self._world: World | None = None
        self._current: Context | None = None  # the request whose fiber runs now
        self._messages: WeakKeyDictionary[Send, _Message] = WeakKeyDictionary()
        self._trace_ids = itertools.count(1)
        self._span_ids = itertools.count(1)
        self._numbers: dict[str, itertools.count[int]] = {}
        self._cores: dict[str, Core] = {}
        self._processes: dict[str, ProcessState] = {}
        self._network = (0.0, 0.0)

    # ---- the world's observer (nodes.sim.world.Observer) -------------------------------------
    def attach(self, world: World) -> None:
        self._world = world
        self._processes = {name: ProcessState() for name in world.processes}
        self._numbers = {name: itertools.count(1) for name in world.processes}

    @property
    def world(self) -> World:
        assert self._world is not None, "not attached to a world"
        return self._world

    def stepping(self, context: Any) -> None:
        self._current = context

    def sending(self, sender: str, send: Send, reply: Any, context: Context | None) -> Any:
        now = self.world.now
        if sender == "client":
            # A client's request: a trace of its own, and a span the front-end serves it under.
            operation = self._trace()
            self._messages[send] = _Message(operation, self._span(), None, now)
            key = _send_key(send, now)
            if key is not None:
                self.traces[key] = operation
            return reply
        trace, parent = context if context is not None else (None, None)  # background work: no trace
        message = self._messages[send] = _Message(trace, self._span(), parent, now)
        if not send.trace:
            return reply  # background chatter: no hop told, as a real node tells none
        return partial(self._hop_done, sender, send, message, reply)

    def handling(self, target: str, sender: str, send: Send, back: Any) -> tuple[Any, Any]:
        method, path, route = _request(target, sender, send.message)
        if route in QUIET_ROUTES:
            self._current = None
            return back, None
        message = self._messages.get(send)
        # A request that carries no trace gets one where it arrives, as a real node gives it.
        trace = message.trace if message is not None and message.trace else self._trace()
        context = (trace, message.span if message is not None else self._span())
        self._current = context
        at = self._at()
        self._add(RequestIn(node=target, n=self._number(target), trace=trace, span=context[1], t=at, method=method,
                            path=path, sender=None if sender == "client" else sender))
        return partial(self._answered, target, send.message, message, (method, path, route), context, at, back), context

    def changed(self) -> None:
        """Process states as the supervisor would copy them, the faults set on each node as
        its admin routes would tell them, and a node's state when it comes up."""
        world = self.world
        network = (world.network.loss, world.network.duplicate)
        if network != self._network:
            self._network_note(*network)
        for name, process in world.processes.items():
            core = process.core
            if core is not None and self._cores.get(name) is not core:
                self._cores[name] = core
                core.emit = partial(self._emitted, name)  # type: ignore[method-assign]  # as the driver does
            before = self._processes[name]
            after = self._state_of(name, process, before)
            if after != before:
                self._processes[name] = after
                self._process_changed(name, process, before, after)

    # ---- what a node tells ----------------------------------------------------------------------
    def _emitted(self, name: str, kind: str, **fields: Any) -> None:
        """A core's event, as ``Telemetry.emit`` stamps it and a reader decodes it."""
        at = self._at()
        raw = {"kind": kind, "node": name, "n": self._number(name), "t": at, **fields}
        if self._current is not None and "trace" not in raw:
            raw["trace"] = self._current[0]
            raw.setdefault("span", self._current[1])
        self._add(decode_event(name, raw))

    def _hop_done(self, sender: str, send: Send, message: _Message, reply: Any, value: Any) -> None:
        if isinstance(value, NoAnswer):
            status, said = None, f"no answer ({'refused' if value.refused else 'timeout'})"
        else:
            status = message.status if message.status is not None else _status(send.message, value)
            said = status_text(status)
        at = self._at()
        self._add(HopDone(node=sender, n=self._number(sender), trace=message.trace, span=message.span, t=at,
                          to=send.to, label=request_of(send.message)[3], answer=said, status=status,
                          ms=round((self.world.now - message.t0) * 1000, 3), t0=self.epoch + message.t0,
                          parent=message.parent))
        reply(value)

    def _answered(self, target: str, request: Any, message: _Message | None, how: tuple[str, str, str],
                  context: Context, arrived: float, back: Any, value: Any) -> None:
        status = _status(request, value)
        if message is not None:
            message.status = status
        at = self._at()
        method, path, route = how
        self._add(RequestAnswered(node=target, n=self._number(target), trace=context[0], span=context[1], t=at,
                                  method=method, path=path, route=route, status=status,
                                  ms=round((at - arrived) * 1000, 3)))
        back(value)

    # ---- processes ------------------------------------------------------------------------------
    def _state_of(self, name: str, process: Process, before: ProcessState) -> ProcessState:
        if not process.alive:
            state = NodeState.DOWN
        elif process.paused:
            state = NodeState.HUNG
        else:
            state = NodeState.UP if process.ready else NodeState.STARTING
        # A node no link reaches either way is cut off, as a real one is: its own state says so,
        # and no other node's links name it.
        isolated = self._isolated()
        blocked = self.world.network.blocked
        started_at = before.started_at
        if state == NodeState.STARTING and before.state in (NodeState.DOWN, NodeState.EXITED):
            started_at = self._at()
        return ProcessState(state, cut_off=name in isolated, pid=process.incarnation if process.alive else None,
                            started_at=started_at if process.alive else None,
                            deaf_to=frozenset(() if name in isolated else
                                              (a for a, b in blocked if b == name and a not in isolated)),
                            mute_to=frozenset(() if name in isolated else
                                              (b for a, b in blocked if a == name and b not in isolated)),
                            disk_full=isinstance(process.disk, CatalogDisk) and process.disk.full)

    def _isolated(self) -> set[str]:
        names = set(self.world.processes)
        blocked = self.world.network.blocked
        return {name for name in names if len(names) > 1 and all(
            (name, other) in blocked and (other, name) in blocked for other in names - {name})}

    def _process_changed(self, name: str, process: Process, before: ProcessState, after: ProcessState) -> None:
        at = self._at()
        self.records.append((at, ProcessChanged(name, after)))
        if after.state == NodeState.DOWN:
            self.records.append((at, StreamState(name, False)))
            return
        if after.state == NodeState.UP and before.state == NodeState.STARTING:
            self.records.append((at, StreamState(name, True)))  # the window's stream opens: a snapshot first
            self._add(Snapshot(node=name, n=self._number(name), t=at, state=self._described(name, process, after)))
        # Faults set on a running node, as its admin routes tell them.
        number = partial(self._number, name)
        if after.cut_off != before.cut_off:
            self._add(CutOffSet(node=name, n=number(), t=at, on=after.cut_off))
        if (after.deaf_to, after.mute_to) != (before.deaf_to, before.mute_to):
            self._add(LinksSet(node=name, n=number(), t=at, deaf_to=tuple(sorted(after.deaf_to)),
                               mute_to=tuple(sorted(after.mute_to))))
        if after.disk_full != before.disk_full:
            self._add(DiskFullSet(node=name, n=number(), t=at, on=after.disk_full))

    def _described(self, name: str, process: Process, state: ProcessState) -> dict[str, Any]:
        """The node's ``/admin/state`` body, as its first event on a stream carries it."""
        core = process.core
        role = "frontend" if name == "frontend" else name.rstrip("0123456789")
        describe = getattr(core, "describe", None)
        return {"role": role, "id": int(name[len(role):] or 0), "name": name, "pid": state.pid, "uptime_s": 0.0,
                "slow_ms": 0, "cut_off": state.cut_off, "pace_ms": 0, "deaf_to": sorted(state.deaf_to),
                "mute_to": sorted(state.mute_to), "aborts": {}, **(describe() if describe is not None else {})}

    def _network_note(self, loss: float, duplicate: float) -> None:
        lost, doubled = self._network
        self._network = (loss, duplicate)
        lines = []
        if loss != lost:
            lines.append(f"the network loses {loss:.0%} of messages" if loss else "the network loses no message again")
        if duplicate != doubled:
            lines.append(f"the network delivers {duplicate:.0%} of messages twice" if duplicate
                         else "the network delivers every message once again")
        at = self._at()
        for name in self.world.processes:
            for line in lines:
                self.records.append((at, LogNote(name, line, at)))

    # ---- little helpers -------------------------------------------------------------------------
    def _at(self) -> float:
        return self.epoch + self.world.now

    def _add(self, event: Event) -> None:
        self.records.append((getattr(event, "t", self._at()), event))

    def _number(self, name: str) -> int:
        return next(self._numbers[name])

    def _trace(self) -> str:
        return f"s{self.seed}-{next(self._trace_ids)}"

    def _span(self) -> str:
        return f"{next(self._span_ids):x}"


def _request(target: str, sender: str, message: Any) -> tuple[str, str, str]:
    """(method, path, route) of a message where it arrives: a shopper's by the front-end's own
    routes, any other by its wire form (``nodes/core/wire.py``)."""
    if target == "frontend" and sender == "client":
        match message:
            case Read(book=book):
                return "GET", f"/lookup/{book}", "/lookup/{id}"
            case Buy(book=book):
                return "PUT", f"/buy/{book}", "/buy/{id}"
            case Search(topic=topic):
                return "GET", f"/search/{quote(topic, safe='')}", "/search/{topic}"
    method, path = request_of(message)[:2]
    bare = path.split("?", 1)[0]
    head, _, last = bare.rpartition("/")
    if last.isdigit():
        return method, path, f"{head}/{{id}}"
    if head in ("/query/topic", "/invalidate/topic"):
        return method, path, f"{head}/{{topic}}"
    return method, path, bare


def _status(message: Any, answer: Any) -> int:
    """The status ``answer`` crosses the wire with."""
    if isinstance(answer, Failure):
        return answer.status
    try:
        return response_of(message, answer)[0]
    except TypeError:
        return 500  # not an answer the wire knows: a node's error


def _send_key(send: Send, now: float) -> tuple[Any, ...] | None:
    """What the history will say of a client's operation sent now (``op_key``)."""
    message = send.message
    if not isinstance(message, (Read, Buy)):
        return None
    kind = "buy" if isinstance(message, Buy) else "read"
    where = "frontend" if send.to == "frontend" else send.to
    return kind, message.book, now, where, message.buy_id if isinstance(message, Buy) else None


def op_key(op: Operation) -> tuple[Any, ...]:
    """An operation of the simulator's history, as ``SimTelemetry.traces`` knows it."""
    return op.kind, op.book, op.start, op.where, op.buy_id


# ---- one seed, recorded ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordedSeed:
    """A seed's run and its recording: the inputs, and what a person needs to find in them."""

    result: Result
    header: Header
    records: list[tuple[float, Input]]

    @property
    def start(self) -> float:
        return self.records[0][0] if self.records else 0.0

    @property
    def anomalies(self) -> list[Anomaly]:
        return [item for _at, item in self.records if isinstance(item, Anomaly)]

    @property
    def first_anomaly_s(self) -> float | None:
        """The first anomaly's time from the run's start (None when the seed passed)."""
        times = [anomaly.t for anomaly in self.anomalies]
        return min(times) - self.start if times else None


def record(options: Options, *, epoch: float | None = None) -> RecordedSeed:
    """Run one seed (as ``simulate`` does, the same run) and keep what the model would have
    been fed, on one clock from ``epoch`` (default: now, in whole seconds)."""
    epoch = float(int(time.time())) if epoch is None else epoch
    telemetry = SimTelemetry(options.seed, epoch)
    result = simulate(options, observer=telemetry)
    world = telemetry.world
    end = epoch + world.now
    records = telemetry.records
    for fault in result.history.faults:
        if fault.action in LOGGED_FAULTS and fault.nodes:
            text = LOGGED_FAULTS[fault.action].format(detail=fault.detail)
            records.append((epoch + fault.start, LogNote(fault.nodes[0], text, epoch + fault.start)))
    records += [(epoch + second, Tick(epoch + second)) for second in range(1, int(world.now) + 1)]
    # The checker's anomalies, each naming the traces of the operations it blames.
    anomalies = [replace(anomaly, operations=tuple(replace(op, trace=telemetry.traces.get(op_key(op)))
                                                   for op in anomaly.operations))
                 for anomaly in result.anomalies]
    records += anomaly_inputs(anomalies, offset=epoch, nodes=world.processes, end=end)
    records.sort(key=lambda item: item[0])  # stable: what happened at one instant keeps its order
    source = f"simulate seed {options.seed}" + (f", {options.mode} mode" if options.mode != Mode.BAZAR else "")
    catalog_of = {name: str(getattr(process.core, "catalog", "")) for name, process in world.processes.items()
                  if name.startswith("order") and process.core is not None}
    header = Header(source, {name: f"sim://{name}" for name in world.processes}, catalog_of,
                    tuple((b.id, b.title, b.topic, b.price, b.quantity) for b in world.books))
    return RecordedSeed(result, header, records)


def record_seed(options: Options, path: str | Path) -> tuple[Result, str]:
    """``launcher.py simulate --seed S --record FILE``: the seed's run written to ``path``, and
    what to say of it."""
    recorded = record(options)
    written = write_run(path, recorded.header, recorded.records)
    length = recorded.records[-1][0] - recorded.start if recorded.records else 0.0
    said = f"run recorded to {written} ({len(recorded.records):,} inputs, {length:.1f} s)"
    first = recorded.first_anomaly_s
    if first is not None:
        said += (f"\nfirst anomaly {first:.3f} s from the run's start; the window opens the run there: "
                 f"python3 launcher.py --open {written}")
    return recorded.result, said

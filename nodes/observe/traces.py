"""A request's trace put back together from the events of every node it crossed: its hops as
the figures number them, and the sequence diagram the Flow tab draws (docs/protocol.md).

Every way a run is told step by step (the Live screen's Step and Back, the Flow tab, the
Scenarios tab) tells it in causal order, worked out here once (``causal_order``): a message
after the message that caused it, an answer after every hop it waited for. What caused what
comes from the trace's spans (each hop names the span its sender was serving, telemetry.py),
never from arrival times or the clocks of different processes; clocks only choose among
messages that neither caused nor waited for the other."""
from __future__ import annotations

import heapq
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from nodes.core.events import Event, HopDone, RequestAnswered, RequestIn


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
    span: str | None = None  # its own span
    parent: str | None = None  # the span its sender was serving (None: the entry's request)

    @property
    def ends(self) -> float:
        """When its answer came (or its sender gave up), on its sender's clock."""
        return self.t0 + self.ms / 1000


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
    def from_events(cls, trace_id: str, events: Iterable[Event]) -> Trace:
        """The trace told by ``events``: the client's request is its entry (the first arrival
        if none says it came from a client), that node's answer to the same path its status, and
        every hop one numbered step, numbered in causal order (``causal_order``)."""
        events = list(events)
        trace = cls(trace_id)
        arrivals = sorted((e for e in events if isinstance(e, RequestIn)), key=lambda e: e.t)
        root: str | None = None
        if arrivals:
            first = next((e for e in arrivals if e.sender is None), arrivals[0])
            trace.entry_node, trace.method, trace.path, root = first.node, first.method, first.path, first.span
            answer = next((e for e in events if isinstance(e, RequestAnswered) and e.node == first.node
                           and e.path == first.path), None)
            if answer is not None:
                trace.status, trace.ms = answer.status, answer.ms
        hops = [Hop(0, e.node, e.to, e.label, e.answer, e.status, e.ms, e.t0, e.span,
                    None if e.parent == root else e.parent)
                for e in sorted((e for e in events if isinstance(e, HopDone)), key=lambda e: e.t0)]
        told = [Told(StepKind.CALL, trace_id, h.span, h.parent, h.t0) for h in with_parents(hops)]
        trace.hops = [replace(hops[i], number=n) for n, i in enumerate(causal_order(told), start=2)]
        return trace

    @property
    def operation(self) -> str:
        return f"{self.method} {self.path}".strip()

    def steps(self) -> list[Step]:
        """The trace as a sequence diagram draws it, in causal order: the request, every hop
        as a call after the call that caused it and, later, its answer after every hop it
        waited for, then the answer to the client (``causal_steps``)."""
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


class TraceBook:
    """The events of the last ``keep`` traced requests, by trace id, oldest trace first."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._events: OrderedDict[str, list[Event]] = OrderedDict()

    def remember(self, trace: str, event: Event) -> None:
        events = self._events.get(trace)
        if events is None:
            events = self._events[trace] = []
            while len(self._events) > self.keep:
                self._events.popitem(last=False)
        events.append(event)

    def ids(self) -> list[str]:
        return list(self._events)

    def trace(self, trace_id: str) -> Trace:
        return Trace.from_events(trace_id, self._events.get(trace_id, []))


class StepKind(StrEnum):
    REQUEST = "request"  # the client to the entry node
    CALL = "call"  # a hop sent
    ANSWER = "answer"  # a hop's answer
    REPLY = "reply"  # the entry node to the client


@dataclass(frozen=True)
class Step:
    """One arrow of a sequence diagram."""

    kind: StepKind
    source: str
    target: str
    text: str
    hop: Hop | None = None


@dataclass(frozen=True)
class Told:
    """One message of a run as ``causal_order`` sees it: what it is, the trace and span it
    belongs to (a call's and its answer's own span; a client's request and its answer the
    trace's), the span that caused a call (``parent``; None or unknown: the client's request),
    and a time that only chooses among messages neither of which caused the other.
    ``answered`` is False for an answer that never came (its sender gave up): it waited for
    nothing."""

    kind: StepKind
    trace: str | None
    span: str | None
    parent: str | None
    t: float
    answered: bool = True


def causal_order(items: Sequence[Told]) -> list[int]:
    """The indexes of ``items`` in an order where a call comes after the message that caused it
    (the call its ``parent`` names, else its trace's request), an answer after its call and,
    if it came, after every call its sender made while serving it and their answers, and the
    answer to the client after the request and every call the entry node made and their
    answers. Among messages free to go, the earliest ``t`` goes first (then the first given);
    a cycle (malformed ids) is broken the same way, so every item is placed once."""
    before = _constraints(items)
    after: list[list[int]] = [[] for _ in items]
    waiting = [len(b) for b in before]
    for i, earlier in enumerate(before):
        for j in earlier:
            after[j].append(i)
    ready = [(items[i].t, i) for i in range(len(items)) if not waiting[i]]
    heapq.heapify(ready)
    placed = [False] * len(items)
    order: list[int] = []
    while len(order) < len(items):
        if ready:
            _t, i = heapq.heappop(ready)
        else:  # only in a cycle: the earliest of what is left
            i = min((k for k in range(len(items)) if not placed[k]), key=lambda k: (items[k].t, k))
        if placed[i]:
            continue
        placed[i] = True
        order.append(i)
        for k in after[i]:
            waiting[k] -= 1
            if not waiting[k] and not placed[k]:
                heapq.heappush(ready, (items[k].t, k))
    return order


_ROOT = "\0root"  # the span of a trace's own request, whatever id it had


def _constraints(items: Sequence[Told]) -> list[set[int]]:
    """For each item, the items that must come before it (see ``causal_order``)."""
    calls: dict[tuple[str | None, str], int] = {}
    answers: dict[tuple[str | None, str], int] = {}
    requests: dict[str | None, int] = {}
    for i, item in enumerate(items):
        if item.kind == StepKind.REQUEST:
            requests.setdefault(item.trace, i)
        elif item.span is not None:
            (calls if item.kind == StepKind.CALL else answers).setdefault((item.trace, item.span), i)
    before: list[set[int]] = [set() for _ in items]
    children: dict[tuple[str | None, str], list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        if item.kind != StepKind.CALL:
            continue
        parent = calls.get((item.trace, item.parent)) if item.parent is not None else None
        if parent is not None and parent != i:
            before[i].add(parent)
            children[(item.trace, items[parent].span or "")].append(i)
        else:
            if item.trace in requests:
                before[i].add(requests[item.trace])
            children[(item.trace, _ROOT)].append(i)

    def waited_for(trace: str | None, span: str) -> set[int]:
        found = set(children.get((trace, span), ()))
        found |= {answers[(trace, items[c].span or "")] for c in found if (trace, items[c].span or "") in answers}
        return found

    for i, item in enumerate(items):
        if item.kind == StepKind.ANSWER and item.span is not None:
            call = calls.get((item.trace, item.span))
            if call is not None:
                before[i].add(call)
            if item.answered:
                before[i] |= waited_for(item.trace, item.span)
        elif item.kind == StepKind.REPLY:
            if item.trace in requests:
                before[i].add(requests[item.trace])
            before[i] |= waited_for(item.trace, _ROOT)
        before[i].discard(i)
    return before


def with_parents(hops: Sequence[Hop]) -> list[Hop]:
    """``hops`` with spans that say what caused what. Hops whose telemetry named spans keep
    theirs; for the others (older nodes) the caller is guessed from times: the innermost hop,
    sent to this hop's sender, that was open when it left."""
    if all(h.span is not None for h in hops):
        return list(hops)
    named = [h if h.span is not None else replace(h, span=f"#{i}") for i, h in enumerate(hops)]
    placed = []
    for original, hop in zip(hops, named, strict=True):
        if original.span is None:
            open_then = [p for p in named if p is not hop and p.target == hop.source and p.t0 <= hop.t0 <= p.ends]
            if open_then:
                hop = replace(hop, parent=max(open_then, key=lambda p: p.t0).span)
        placed.append(hop)
    return placed


def causal_steps(hops: list[Hop], entry: str | None, operation: str, status: int | None,
                 ms: float | None) -> list[Step]:
    """The steps of a sequence diagram in causal order (``causal_order``)."""
    entry = entry or "frontend"
    hops = with_parents(hops)
    steps: list[Step] = [Step(StepKind.REQUEST, "client", entry, f"[1] {operation}")]
    told = [Told(StepKind.REQUEST, None, None, None, float("-inf"))]
    for hop in hops:
        steps.append(Step(StepKind.CALL, hop.source, hop.target, f"[{hop.number}] {hop.label}", hop))
        told.append(Told(StepKind.CALL, None, hop.span, hop.parent, hop.t0))
        steps.append(Step(StepKind.ANSWER, hop.target, hop.source, f"{hop.answer}  ·  {hop.ms:.1f} ms", hop))
        told.append(Told(StepKind.ANSWER, None, hop.span, None, hop.ends, answered=hop.status is not None))
    if status is not None:
        steps.append(Step(StepKind.REPLY, entry, "client", f"[{len(hops) + 2}] {status} in {ms or 0:.1f} ms"))
        told.append(Told(StepKind.REPLY, None, None, None, float("inf")))
    return [steps[i] for i in causal_order(told)]

"""A request's trace put back together from the events of every node it crossed: its hops as
the figures number them, and the sequence diagram the Flow tab draws (docs/protocol.md)."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
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
        """The trace told by ``events``: the first arrival is its entry, that node's answer to
        the same path its status, and every hop one numbered step, in the order they left."""
        events = list(events)
        trace = cls(trace_id)
        arrivals = sorted((e for e in events if isinstance(e, RequestIn)), key=lambda e: e.t)
        if arrivals:
            first = arrivals[0]
            trace.entry_node, trace.method, trace.path = first.node, first.method, first.path
            answer = next((e for e in events if isinstance(e, RequestAnswered) and e.node == first.node
                           and e.path == first.path), None)
            if answer is not None:
                trace.status, trace.ms = answer.status, answer.ms
        hops = sorted((e for e in events if isinstance(e, HopDone)), key=lambda e: e.t0)
        trace.hops = [Hop(i, e.node, e.to, e.label, e.answer, e.status, e.ms, e.t0)
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
        arrows.append((hop.t0, 2 * rank, Step(StepKind.CALL, hop.source, hop.target, f"[{hop.number}] {hop.label}",
                                              hop)))
        arrows.append((done_at[hop.number], 2 * rank + 1,
                       Step(StepKind.ANSWER, hop.target, hop.source, f"{hop.answer}  ·  {hop.ms:.1f} ms", hop)))
    arrows.sort(key=lambda a: (a[0], a[1]))
    steps = [Step(StepKind.REQUEST, "client", entry, f"[1] {operation}")]
    steps += [a[2] for a in arrows]
    if status is not None:
        steps.append(Step(StepKind.REPLY, entry, "client", f"[{len(hops) + 2}] {status} in {ms or 0:.1f} ms"))
    return steps

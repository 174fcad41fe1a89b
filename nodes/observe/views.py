"""What the model keeps of each node and shows every view: a node's stream and counters
(``NodeView``), its process (``ProcessState``), its health in plain words (``NodeHealth``), a
book at a catalog replica (``ReplicaCell``), a cache, a fault's mark and a line of its log. Plain
values, derived once in the model so that no view works any of them out again."""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from nodes.core.events import CacheOp
from nodes.core.vocabulary import GONE, HealthState, NodeState


@dataclass
class ReplicaBook:
    seq: int
    quantity: int
    price: float
    valid: bool


@dataclass
class CacheView:
    name: str
    capacity: int | None = None  # None: the front-end has not described it yet
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

    def take(self, described: dict[str, Any]) -> None:
        """The cache as the front-end's snapshot describes it."""
        self.capacity = described["capacity"]
        self.keys = list(described["keys"])
        for counter in ("hits", "misses", "evictions", "invalidations"):
            setattr(self, counter, described[counter])

    def apply(self, op: CacheOp, key: Any, t: float | None) -> None:
        """What one ``cache`` event did: the key moves to the front, or leaves, and is counted."""
        if op in (CacheOp.HIT, CacheOp.INSERT):
            if key in self.keys:
                self.keys.remove(key)
            self.keys.insert(0, key)
            self.hits += op == CacheOp.HIT
        elif op == CacheOp.MISS:
            self.misses += 1
        elif op in (CacheOp.EVICT, CacheOp.INVALIDATE):
            if key in self.keys:
                self.keys.remove(key)
            self.removed.append((key, op, t))
            if op == CacheOp.EVICT:
                self.evictions += 1
            else:
                self.invalidations += 1


@dataclass
class NodeView:
    name: str
    address: str
    connected: bool = False
    state: dict[str, Any] = field(default_factory=dict)
    #: Answers by tenth of a second, ``(tenth, count)``, over the last minute: what the rate is
    #: read from (a time per answer was half of every replay keyframe). Tuples of numbers, which
    #: the garbage collector stops tracking.
    answered: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=600))
    dropped: int = 0

    def answer(self, t: float) -> None:
        """One more answer at ``t`` (a late one counts in the latest tenth)."""
        tenth = int(t * 10)
        if self.answered and self.answered[-1][0] >= tenth:
            last, count = self.answered[-1]
            self.answered[-1] = (last, count + 1)
        else:
            self.answered.append((tenth, 1))

    @property
    def role(self) -> str:
        return "frontend" if self.name == "frontend" else self.name.rstrip("0123456789")

    def requests_per_second(self, now: float | None = None, window: float = 2.0) -> float:
        now = time.time() if now is None else now
        since, count = (now - window) * 10, 0
        for tenth, answers in reversed(self.answered):
            if tenth < since:
                break
            count += answers
        return count / window


@dataclass(frozen=True)
class ProcessState:
    """What the supervisor knows of one node's process, copied when it changes."""

    state: NodeState = NodeState.DOWN
    slow_ms: int = 0
    cut_off: bool = False
    pid: int | None = None
    exit_code: int | None = None
    started_at: float | None = None
    #: Started elsewhere, with no container engine Bazar may ask: only slow and cut off work
    #: (a node of an attached Compose cluster is not: the engine crashes and starts it).
    attached: bool = False
    #: Partitions (W8): the nodes whose messages this one no longer hears, and the nodes its
    #: own messages no longer reach.
    deaf_to: frozenset[str] = frozenset()
    mute_to: frozenset[str] = frozenset()
    #: A catalog replica's database may not grow (the disk-full fault).
    disk_full: bool = False
    #: Path prefixes whose requests or answers it drops now and then (the abort fault).
    aborts: frozenset[str] = frozenset()
    #: A container of an attached Compose cluster: its faults are the engine's (a cut-off is a
    #: real one, which the window's own connection to it does not get through either).
    by_engine: bool = False

    @classmethod
    def of(cls, node: Any) -> ProcessState:
        """A copy of a supervisor's ``ManagedNode``."""
        return cls(NodeState(node.state), node.slow_ms, node.cut_off, node.pid, node.exit_code, node.started_at,
                   node.attached and not node.by_engine, frozenset(node.deaf_to), frozenset(node.mute_to),
                   node.disk_full, frozenset(node.aborts), node.by_engine)


#: Every state a node can be in, each its own; the order is how bad it is.
HEALTH_STATES = tuple(HealthState)


@dataclass(frozen=True)
class NodeHealth:
    """One node as every view shows it: one ``HealthState`` and plain words."""

    name: str
    role: str
    address: str
    state: HealthState
    label: str  # e.g. "up", "slowed 500 ms", "exited with code 1"
    process: ProcessState
    connected: bool
    #: Why the node may do less than its state says (an order whose catalog is down, ...).
    notes: tuple[str, ...] = ()

    @property
    def serving(self) -> bool:
        """Answers requests: up, or up but slow."""
        return self.state.serving

    @property
    def gone(self) -> bool:
        """No process: crashed, stopped or exited."""
        return self.state.gone

    @property
    def partitioned(self) -> bool:
        """Serving, but some of its links are cut: drawn in the colour of a degraded node."""
        return self.serving and bool(self.process.mute_to | self.process.deaf_to)

    @property
    def look(self) -> HealthState:
        """The state whose colour every view draws it in."""
        return HealthState.SLOW if self.partitioned else self.state


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
    health: HealthState  # the replica's NodeHealth.state

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


def derive_cells(book: int, rows: list[tuple[int, int | None, int | None, bool, bool, HealthState]]
                 ) -> list[ReplicaCell]:
    """Cells for one book from (replica, seq, stock, valid, lease lapsed, health) rows: the one
    place "highest seq" and "stale" are worked out, for the live cluster and the scenarios. A
    replica that is gone or hung vouches for nothing: it answers nobody, and its lease lapses
    (so every view draws a hung replica one way: not valid, its last known seq, "hung")."""
    known = [seq for _r, seq, *_rest in rows if seq is not None]
    highest = max(known) if known else None
    return [ReplicaCell(replica, book, seq, stock, valid and health not in GONE and health != HealthState.HUNG,
                        seq is not None and highest is not None and seq < highest, lapsed, health)
            for replica, seq, stock, valid, lapsed, health in rows]


class MarkKind(StrEnum):
    FAULT = "fault"
    HEAL = "heal"
    ANOMALY = "anomaly"  # what a checker found wrong (a recorded check or simulation)


@dataclass(frozen=True)
class Mark:
    """A fault or its heal at one moment, as every chart marks it (derived once, in the model,
    from the node's health changing, whoever caused it: the window, a scenario, the prompt)."""

    t: float
    node: str
    kind: MarkKind
    text: str  # e.g. "catalog2 down", "catalog2 up again"
    #: The fault the node is in from now on (a heal into a lesser fault names that one; None:
    #: none, or a link's mark), so that a view draws a fault by what it is, not by its words.
    state: HealthState | None = None
    #: A link's mark: the node that no longer hears ``node`` (or hears it again).
    peer: str | None = None


@dataclass(frozen=True)
class LogLine:
    t: float
    text: str

"""What the model keeps of each node and shows every view: a node's stream and counters
(``NodeView``), its process (``ProcessState``), its health in plain words (``NodeHealth``), a
book at a catalog replica (``ReplicaCell``), a cache, a fault's mark and a line of its log. Plain
values, derived once in the model so that no view works any of them out again."""
from __future__ import annotations

import time
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy

from nodes.core.events import CacheOp
from nodes.core.vocabulary import GONE, HealthState, NodeState


@dataclass(frozen=True, slots=True)
class ReplicaBook:
    """One book as one catalog replica holds it (a copy: ``HeldBooks`` changes it)."""

    seq: int
    quantity: int
    price: float
    valid: bool


class HeldBooks:
    """Every book one catalog replica holds, as the window knows it: one array per field, in
    the order of the book ids. A catalog of 100,000 books is five arrays rather than 100,000
    objects, so that a keyframe of the model (nodes/runs: one every 2 s of a recording) pickles
    it in a millisecond or two rather than a quarter of a second a replica."""

    __slots__ = ("_ids", "_seqs", "_quantities", "_prices", "_valid")

    def __init__(self, books: Iterable[tuple[int, ReplicaBook]] = ()) -> None:
        ordered = sorted(books, key=lambda pair: pair[0])
        self._ids = array("q", (book for book, _ in ordered))
        self._seqs = array("q", (held.seq for _, held in ordered))
        self._quantities = array("q", (held.quantity for _, held in ordered))
        self._prices = array("d", (held.price for _, held in ordered))
        self._valid = bytearray(held.valid for _, held in ordered)

    @classmethod
    def of_state(cls, state: dict[str, Any]) -> HeldBooks:
        """A catalog replica's books from its state: the stream's snapshot carries them as
        columns (``book_columns``), ``GET /admin/state`` and runs recorded before as rows."""
        columns = state.get("book_columns")
        if columns is None:
            rows = state.get("books", [])
            columns = {key: [row[key] for row in rows] for key in ("id", "seq", "quantity", "price", "valid")}
        return cls(zip(columns["id"], map(ReplicaBook, columns["seq"], columns["quantity"], columns["price"],
                                          columns["valid"]), strict=True))

    def _columns(self) -> tuple[Any, ...]:
        return self._ids, self._seqs, self._quantities, self._prices, self._valid

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HeldBooks) and self._columns() == other._columns()

    __hash__ = None  # type: ignore[assignment]  # changes in place, as a dict does

    def __repr__(self) -> str:
        return f"HeldBooks({dict(self.items())!r})" if len(self) <= 10 else f"HeldBooks(<{len(self):,} books>)"

    def _row(self, book: int) -> int | None:
        row = bisect_left(self._ids, book)
        return row if row < len(self._ids) and self._ids[row] == book else None

    def _at(self, row: int) -> ReplicaBook:
        return ReplicaBook(self._seqs[row], self._quantities[row], self._prices[row], bool(self._valid[row]))

    def get(self, book: int) -> ReplicaBook | None:
        row = self._row(book)
        return None if row is None else self._at(row)

    def __getitem__(self, book: int) -> ReplicaBook:
        held = self.get(book)
        if held is None:
            raise KeyError(book)
        return held

    def __contains__(self, book: object) -> bool:
        return isinstance(book, int) and self._row(book) is not None

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def items(self) -> Iterator[tuple[int, ReplicaBook]]:
        for row, book in enumerate(self._ids):
            yield book, self._at(row)

    def __setitem__(self, book: int, held: ReplicaBook) -> None:
        row = self._row(book)
        if row is None:  # a book this replica did not hold: rare, so an insertion may cost O(n)
            row = bisect_left(self._ids, book)
            for column in (self._ids, self._seqs, self._quantities):
                column.insert(row, 0)
            self._ids[row] = book
            self._prices.insert(row, 0.0)
            self._valid.insert(row, 0)
        self._seqs[row], self._quantities[row], self._prices[row] = held.seq, held.quantity, held.price
        self._valid[row] = held.valid

    def changed(self, book: int, seq: int, quantity: int, price: float) -> bool:
        """A new row for ``book``; False if this replica holds no such book."""
        row = self._row(book)
        if row is None:
            return False
        self._seqs[row], self._quantities[row], self._prices[row] = seq, quantity, price
        return True

    def marked(self, book: int, valid: bool) -> bool:
        """``book`` in or out of the valid set; False if this replica holds no such book."""
        row = self._row(book)
        if row is None:
            return False
        self._valid[row] = valid
        return True

    def none_valid(self) -> None:
        """The valid set gone (the process is)."""
        self._valid[:] = bytes(len(self._valid))


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


def books_in_trouble(held: list[HeldBooks | None], vouching: list[bool]) -> set[int] | None:
    """The books some catalog replica holds stale (a lower seq than another's) or not as valid,
    from every replica's books (None: none known) and whether each can vouch at all (not gone,
    not hung); None: every book. What ``derive_cells`` says book by book, over whole arrays: a
    Replicas tab filtered to them is worked out again at every change under load, and 100,000
    books a cell at a time took 4.5 s each time."""
    if not held or not all(vouching) or any(h is None for h in held):
        return None
    tables = [h for h in held if h is not None]
    ids = tables[0]._ids  # noqa: SLF001 - the arrays are read here, once, for speed
    if any(t._ids != ids for t in tables[1:]):  # noqa: SLF001 - books held differ: per book
        return {book for book in {book for t in tables for book in t} if _in_trouble([t.get(book) for t in tables])}
    seqs = numpy.vstack([numpy.frombuffer(t._seqs, dtype=numpy.int64) for t in tables])  # noqa: SLF001
    valid = numpy.vstack([numpy.frombuffer(t._valid, dtype=numpy.uint8) for t in tables])  # noqa: SLF001
    trouble = (seqs.min(axis=0) != seqs.max(axis=0)) | (valid == 0).any(axis=0)
    return set(numpy.frombuffer(ids, dtype=numpy.int64)[trouble].tolist())


def _in_trouble(held: list[ReplicaBook | None]) -> bool:
    known = [h.seq for h in held if h is not None]
    return any(h is None or not h.valid or h.seq < max(known) for h in held)


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

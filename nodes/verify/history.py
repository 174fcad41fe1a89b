"""One history on one clock, as Jepsen keeps it: what the clients did (operations), what went
wrong (faults, written by the nemesis into the same history), and what the replicas held at
the end (final observations). The checker (``checker.py``) is a pure function of it, used alike
by the simulator, by ``launcher.py check`` on real processes and by the tests.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

BUY_OUTCOMES = ("bought", "out of stock", "unknown", "failed")


@dataclass(frozen=True)
class Operation:
    """A client's operation: ``kind`` "buy" or "read"; ``start``/``end`` on the history's clock.
    buy outcomes: bought, out of stock, unknown, failed; read: ok, failed."""

    kind: str
    book: int
    start: float
    end: float
    outcome: str
    buy_id: str | None = None
    quantity: int | None = None
    where: str = "frontend"
    #: The trace id the request carried (``X-Bazar-Trace``), when the client gave it one: what
    #: ties the operation to the messages it caused (a recorded run's anomalies name it).
    trace: str | None = None


@dataclass(frozen=True)
class Fault:
    """A fault applied at ``start`` and healed at ``end`` (None: never healed)."""

    action: str  # crash, restart, pause, cut, partition, slow
    nodes: tuple[str, ...]
    start: float
    end: float | None = None
    detail: str = ""  # in words, for people: what ``describe`` says
    links: tuple[tuple[str, str], ...] = ()  # a partition's cut links: (sender, receiver)
    # What applying and healing it need, for the kinds that take more than their nodes:
    one_way: bool = False  # partition: only the first node's messages to the second are lost
    ms: int = 0  # slow: the delay added to every answer
    path: str = ""  # abort: the path prefix whose requests are dropped
    direction: str = ""  # abort: "request" (dropped unhandled) or "response" (handled, answer lost)

    def describe(self) -> str:
        return f"{self.action} {self.detail or ' '.join(self.nodes)}".strip()


@dataclass(frozen=True)
class Final:
    """What one catalog replica held once everything was healed: per book (stock, seq), and
    the buy ids it applied (None when it does not remember them)."""

    replica: str
    rows: dict[int, tuple[int, int]]
    buys: dict[str, int] | None = None
    #: Of ``buys``, those it forgot at the end of their retry window (W7, ``BUY_WINDOW_S``): a
    #: replica that never learnt such a buy before it ran out need not know it.
    expired: frozenset[str] = frozenset()


@dataclass
class History:
    stock: dict[int, int]  # each book's stock when the operations began
    operations: list[Operation] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    finals: list[Final] = field(default_factory=list)
    #: Seconds from healing until the replicas agreed (None: they did not within the bound).
    convergence_s: float | None = 0.0

    # ---- JSON lines --------------------------------------------------------------------
    def lines(self) -> list[str]:
        out = [json.dumps({"type": "start", "stock": self.stock, "convergence_s": self.convergence_s})]
        out += [json.dumps({"type": "op", **_without_no_trace(asdict(op))}) for op in self.operations]
        out += [json.dumps({"type": "fault", **asdict(f)}) for f in self.faults]
        out += [json.dumps({"type": "final", "replica": f.replica, "rows": {k: list(v) for k, v in f.rows.items()},
                            "buys": f.buys, "expired": sorted(f.expired)}) for f in self.finals]
        return out

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.lines()) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> History:
        history = cls({})
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            kind = entry.pop("type")
            if kind == "start":
                history.stock = {int(k): v for k, v in entry["stock"].items()}
                history.convergence_s = entry["convergence_s"]
            elif kind == "op":
                history.operations.append(Operation(**entry))
            elif kind == "fault":
                history.faults.append(Fault(**{**entry, "nodes": tuple(entry["nodes"]),
                                               "links": tuple(tuple(link) for link in entry.get("links", ()))}))
            elif kind == "final":
                rows = {int(k): (v[0], v[1]) for k, v in entry["rows"].items()}
                history.finals.append(Final(entry["replica"], rows, entry["buys"],
                                            frozenset(entry.get("expired", ()))))
        return history

    def summary(self) -> str:
        buys = Counter(op.outcome for op in self.operations if op.kind == "buy")
        reads = [op for op in self.operations if op.kind == "read"]
        faults = Counter(f.action for f in self.faults)
        return (f"operations: {len(self.operations)} — buys {sum(buys.values())} "
                f"({buys['bought']} bought, {buys['out of stock']} out of stock, {buys['unknown']} unknown, "
                f"{buys['failed']} failed), reads {len(reads)} ({sum(1 for r in reads if r.outcome == 'ok')} answered)"
                f"; faults: {len(self.faults)} "
                f"({', '.join(f'{n} {a}' for a, n in sorted(faults.items())) or 'none'})")


def _without_no_trace(entry: dict[str, object]) -> dict[str, object]:
    """An operation's line leaves out a trace it has not got: a history with no traces (the
    simulator's) reads as it always did, byte for byte (its digest)."""
    if entry.get("trace") is None:
        entry.pop("trace", None)
    return entry

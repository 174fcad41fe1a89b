"""One history on one clock, as Jepsen keeps it: what the clients did (operations), what went
wrong (faults, written by the nemesis into the same history), and what the replicas held at
the end (final observations). ``check`` is a pure function of it, used alike by the
simulator, by ``launcher.py check`` on real processes and by the tests.

What is checked, per book (stock only ever goes down, so bounds are exact):
- no copy is sold twice and none is lost: the copies taken (initial − final stock) are at
  least the buys acknowledged and at most those plus the ones whose outcome is unknown;
  where replicas remember buy ids, the copies taken equal the buys they applied, each
  applied buy was sent and not answered as failed, and every acknowledged buy was applied;
- every read saw a stock no higher than the initial stock minus the buys acknowledged
  before it began (no stale read, W2 included), and no lower than what the buys begun
  before it ended could explain;
- "out of stock" was only said when enough buys had begun to empty the shelf;
- after healing, every catalog replica holds the same stock and seq for every book.
"""
from __future__ import annotations

import bisect
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class Fault:
    """A fault applied at ``start`` and healed at ``end`` (None: never healed)."""

    action: str  # crash, restart, pause, cut, partition, slow
    nodes: tuple[str, ...]
    start: float
    end: float | None = None
    detail: str = ""
    links: tuple[tuple[str, str], ...] = ()  # a partition's cut links: (sender, receiver)

    def describe(self) -> str:
        return f"{self.action} {self.detail or ' '.join(self.nodes)}".strip()


@dataclass(frozen=True)
class Final:
    """What one catalog replica held once everything was healed: per book (stock, seq), and
    the buy ids it applied (None when it does not remember them)."""

    replica: str
    rows: dict[int, tuple[int, int]]
    buys: dict[str, int] | None = None


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
        out += [json.dumps({"type": "op", **asdict(op)}) for op in self.operations]
        out += [json.dumps({"type": "fault", **asdict(f)}) for f in self.faults]
        out += [json.dumps({"type": "final", "replica": f.replica, "rows": {k: list(v) for k, v in f.rows.items()},
                            "buys": f.buys}) for f in self.finals]
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
                history.finals.append(Final(entry["replica"], rows, entry["buys"]))
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


@dataclass(frozen=True)
class Anomaly:
    kind: str  # lost buy, sold twice, stale read, ...
    message: str
    at: float | None = None
    faults: tuple[str, ...] = ()  # the faults active around ``at``

    def __str__(self) -> str:
        around = f" [faults around it: {', '.join(self.faults)}]" if self.faults else ""
        return f"{self.kind}: {self.message}{around}"


def faults_around(history: History, start: float, end: float, margin: float = 1.0) -> tuple[str, ...]:
    return tuple(f.describe() for f in history.faults
                 if f.start <= end + margin and (f.end is None or f.end >= start - margin))


def check(history: History) -> list[Anomaly]:
    """Every way the history breaks Bazar's guarantees; empty when it keeps them all."""
    anomalies: list[Anomaly] = []

    def found(kind: str, message: str, start: float | None = None, end: float | None = None) -> None:
        around = faults_around(history, start, end if end is not None else start) if start is not None else ()
        anomalies.append(Anomaly(kind, message, start, around))

    buys = [op for op in history.operations if op.kind == "buy"]
    books = sorted(history.stock)
    if history.convergence_s is None:
        found("no convergence", "catalog replicas still disagree after healing")
    if history.finals:
        first = history.finals[0]
        for final in history.finals[1:]:
            if final.rows != first.rows:
                differ = sorted(b for b in first.rows if final.rows.get(b) != first.rows[b])
                found("divergence", f"{final.replica} and {first.replica} hold different stock or seq for "
                      f"book(s) {differ}")
        final_stock = {book: first.rows[book][0] for book in books if book in first.rows}
        for book in books:
            if book not in final_stock:
                continue
            taken = history.stock[book] - final_stock[book]
            acked = [op for op in buys if op.book == book and op.outcome == "bought"]
            unknown = sum(1 for op in buys if op.book == book and op.outcome == "unknown")
            if final_stock[book] < 0:
                found("sold twice", f"book {book}: stock below zero ({final_stock[book]})")
            if len(acked) > history.stock[book]:
                found("sold twice", f"book {book}: {len(acked)} buys acknowledged of {history.stock[book]} copies",
                      min(op.start for op in acked), max(op.end for op in acked))
            if taken < len(acked):
                last = max(op.end for op in acked)
                found("lost buy", f"book {book}: {len(acked)} buys acknowledged but only {taken} copies taken",
                      min(op.start for op in acked), last)
            if taken > len(acked) + unknown:
                found("buy done twice", f"book {book}: {taken} copies taken by {len(acked)} acknowledged and "
                      f"{unknown} unknown buys")
        _check_buy_ids(history, buys, found)
    # Stock only goes down, so each bound is a count of buys before a moment: sorted times and
    # bisection keep the check linear-logarithmic in the history's length.
    acked_ends = {book: sorted(b.end for b in buys if b.book == book and b.outcome == "bought") for book in books}
    begun_starts = {book: sorted(b.start for b in buys if b.book == book and b.outcome in ("bought", "unknown"))
                    for book in books}
    for op in history.operations:
        if op.book not in history.stock:
            continue
        stock = history.stock[op.book]
        if op.kind == "read" and op.outcome == "ok" and op.quantity is not None:
            acked_before = bisect.bisect_left(acked_ends[op.book], op.start)
            begun_before = bisect.bisect_left(begun_starts[op.book], op.end)
            if op.quantity > stock - acked_before:
                found("stale read", f"at {op.where}: book {op.book} showed {op.quantity} copies after "
                      f"{acked_before} acknowledged buys of {stock}", op.start, op.end)
            if op.quantity < stock - begun_before:
                found("phantom read", f"at {op.where}: book {op.book} showed {op.quantity} copies, fewer than "
                      f"{begun_before} begun buys of {stock} explain", op.start, op.end)
        if op.kind == "buy" and op.outcome == "out of stock":
            begun = bisect.bisect_left(begun_starts[op.book], op.end)
            if begun < stock:
                found("false out of stock", f"book {op.book} was called out of stock after only {begun} of "
                      f"{stock} buys began", op.start, op.end)
    return anomalies


def _check_buy_ids(history: History, buys: list[Operation], found: Any) -> None:
    """Where the replicas remember which buys they applied (Bazar's W7 repair), every buy is
    accounted for by id, not only by count."""
    remembered = [f for f in history.finals if f.buys is not None]
    if not remembered:
        return
    applied = remembered[0].buys or {}
    for final in remembered[1:]:
        if final.buys != applied:
            found("divergence", f"{final.replica} remembers {len(final.buys or {})} applied buys, "
                  f"{remembered[0].replica} {len(applied)}")
    by_id = {op.buy_id: op for op in buys}
    first = history.finals[0]
    for book in sorted(history.stock):
        if book in first.rows:
            taken = history.stock[book] - first.rows[book][0]
            applied_here = sum(1 for b in applied.values() if b == book)
            if taken != applied_here:
                found("sold twice" if taken > applied_here else "lost buy",
                      f"book {book}: {taken} copies taken but {applied_here} buys applied")
    for buy_id, book in applied.items():
        op = by_id.get(buy_id)
        if op is None:
            found("phantom buy", f"buy {buy_id[:12]} of book {book} was applied but never sent")
        elif op.outcome in ("failed", "out of stock"):
            found("lost answer", f"buy {buy_id[:12]} of book {book} was answered '{op.outcome}' but carried out",
                  op.start, op.end)
    for op in buys:
        if op.outcome == "bought" and op.buy_id not in applied:
            found("lost buy", f"buy {op.buy_id[:12]} of book {op.book} was acknowledged but is not in the stock",
                  op.start, op.end)

"""The checker, Jepsen's third role: a pure function of one history (``history.py``) that says
every way it breaks Bazar's guarantees, used alike by the simulator, by ``launcher.py check`` on
real processes and by the tests.
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
from dataclasses import dataclass
from typing import Any

from nodes.verify.history import History, Operation


@dataclass(frozen=True)
class Anomaly:
    kind: str  # lost buy, sold twice, stale read, ...
    message: str
    at: float | None = None
    faults: tuple[str, ...] = ()  # the faults active around ``at``
    #: The operations it blames (a run file names their traces: nodes/runs/follow.py).
    operations: tuple[Operation, ...] = ()

    def __str__(self) -> str:
        around = f" [faults around it: {', '.join(self.faults)}]" if self.faults else ""
        return f"{self.kind}: {self.message}{around}"


def faults_around(history: History, start: float, end: float, margin: float = 1.0) -> tuple[str, ...]:
    return tuple(f.describe() for f in history.faults
                 if f.start <= end + margin and (f.end is None or f.end >= start - margin))


def check(history: History) -> list[Anomaly]:
    """Every way the history breaks Bazar's guarantees; empty when it keeps them all."""
    anomalies: list[Anomaly] = []

    def found(kind: str, message: str, start: float | None = None, end: float | None = None,
              blamed: tuple[Operation, ...] = ()) -> None:
        around = faults_around(history, start, end if end is not None else start) if start is not None else ()
        anomalies.append(Anomaly(kind, message, start, around, blamed))

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
                      min(op.start for op in acked), max(op.end for op in acked), tuple(acked))
            if taken < 0:
                found("stock grew", f"book {book}: {final_stock[book]} copies at the end of {history.stock[book]}")
            if acked and taken < len(acked):
                last = max(op.end for op in acked)
                found("lost buy", f"book {book}: {len(acked)} buys acknowledged but only {taken} copies taken",
                      min(op.start for op in acked), last, tuple(acked))
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
                      f"{acked_before} acknowledged buys of {stock}", op.start, op.end, (op,))
            if op.quantity < stock - begun_before:
                found("phantom read", f"at {op.where}: book {op.book} showed {op.quantity} copies, fewer than "
                      f"{begun_before} begun buys of {stock} explain", op.start, op.end, (op,))
        if op.kind == "buy" and op.outcome == "out of stock":
            begun = bisect.bisect_left(begun_starts[op.book], op.end)
            if begun < stock:
                found("false out of stock", f"book {op.book} was called out of stock after only {begun} of "
                      f"{stock} buys began", op.start, op.end, (op,))
    return anomalies


def _check_buy_ids(history: History, buys: list[Operation], found: Any) -> None:
    """Where the replicas remember which buys they applied (Bazar's W7 repair), every buy is
    accounted for by id, not only by count."""
    remembered = [f for f in history.finals if f.buys is not None]
    if not remembered:
        return
    # Buys a replica forgot at the end of their retry window count as applied there; one that
    # never learnt such a buy before it ran out everywhere it was known need not know it.
    expired = frozenset().union(*(f.expired for f in remembered))
    applied = {b: book for f in remembered for b, book in (f.buys or {}).items()}
    known = {b: book for b, book in (remembered[0].buys or {}).items() if b not in expired}
    for final in remembered[1:]:
        theirs = {b: book for b, book in (final.buys or {}).items() if b not in expired}
        if theirs != known:
            found("divergence", f"{final.replica} remembers {len(theirs)} applied buys, "
                  f"{remembered[0].replica} {len(known)}")
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
                  op.start, op.end, (op,))
    for op in buys:
        if op.outcome == "bought" and op.buy_id not in applied:
            buy = (op.buy_id or "?")[:12]
            found("lost buy", f"buy {buy} of book {op.book} was acknowledged but is not in the stock",
                  op.start, op.end, (op,))

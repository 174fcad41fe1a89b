"""A checked fault run: buyers and readers go through the front-end while the nemesis breaks
replicas; every operation is recorded with its start, end and outcome, and a checker then
says what must still be true of that history (the "checker" of Jepsen's split).

What is checked, per book (stock only ever goes down, so bounds are exact):
- no copy is sold twice and none is lost: the copies taken (initial − final stock) equal the
  buys the catalogs applied, each applied buy was acknowledged or reported unknown, and
  every acknowledged buy was applied — a timed-out buy may count or not, never silently;
- every read saw a stock no higher than the initial stock minus the buys acknowledged
  before it began (no stale read, W2 included), and no lower than what the buys begun
  before it ended could explain;
- "out of stock" was only said when enough buys had begun to empty the shelf;
- after healing, every catalog replica holds the same stock and seq for every book within
  a bounded time, and a read at any replica right after healing is already current.
"""
from __future__ import annotations

import asyncio
import bisect
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from ..shared.wire import BUY_ID_HEADER
from .faults import Fault, Nemesis
from .supervisor import ClusterError, Supervisor

BOOKS = range(1, 8)
CONVERGENCE_BOUND_S = 15.0


@dataclass(frozen=True)
class Operation:
    kind: str  # "buy" or "read"
    book: int
    start: float  # monotonic seconds
    end: float
    outcome: str  # buy: bought, out of stock, unknown, failed; read: ok, failed
    buy_id: str | None = None
    quantity: int | None = None
    where: str = "frontend"


@dataclass
class Verdict:
    seconds: float
    operations: list[Operation]
    faults: list[Fault]
    anomalies: list[str] = field(default_factory=list)
    convergence_s: float | None = None

    @property
    def passed(self) -> bool:
        return not self.anomalies

    def render(self) -> str:
        buys = Counter(op.outcome for op in self.operations if op.kind == "buy")
        reads = [op for op in self.operations if op.kind == "read"]
        faults = Counter(f.action for f in self.faults)
        lines = [
            f"operations checked: {len(self.operations)} — buys {sum(buys.values())} "
            f"({buys['bought']} bought, {buys['out of stock']} out of stock, {buys['unknown']} unknown, "
            f"{buys['failed']} failed), reads {len(reads)} ({sum(1 for r in reads if r.outcome == 'ok')} answered)",
            f"faults injected: {len(self.faults)} "
            f"({', '.join(f'{n} {a}' for a, n in sorted(faults.items())) or 'none'})",
            "replicas converged " + (f"{self.convergence_s:.2f} s after healing" if self.convergence_s is not None
                                     else f"NOT within {CONVERGENCE_BOUND_S:.0f} s"),
            f"anomalies found: {len(self.anomalies)}",
        ]
        lines += [f"  - {a}" for a in self.anomalies[:30]]
        lines.append("verdict: " + ("PASS" if self.passed else "FAIL"))
        return "\n".join(lines)


class Clients:
    """Buyers and readers through the front-end, each operation recorded."""

    def __init__(self, supervisor: Supervisor, seed: int) -> None:
        self.frontend = supervisor.frontend.address
        self.rng = random.Random(seed)
        self.operations: list[Operation] = []

    async def buyer(self, session: aiohttp.ClientSession, until: float) -> None:
        while time.monotonic() < until:
            book, buy_id = self.rng.choice(BOOKS), uuid.uuid4().hex
            start = time.monotonic()
            try:
                async with session.put(f"{self.frontend}/buy/{book}", headers={BUY_ID_HEADER: buy_id},
                                       timeout=aiohttp.ClientTimeout(total=15)) as resp:
                    body = await resp.json(content_type=None)
                    if resp.status == 200:
                        outcome = "bought" if body.get("success") else "out of stock"
                    elif resp.status == 202:
                        outcome = "unknown"
                    else:
                        outcome = "failed"
            except (aiohttp.ClientError, TimeoutError):
                outcome = "unknown"  # we cannot know whether it went through
            self.operations.append(Operation("buy", book, start, time.monotonic(), outcome, buy_id=buy_id))

    async def reader(self, session: aiohttp.ClientSession, until: float) -> None:
        while time.monotonic() < until:
            book = self.rng.choice(BOOKS)
            self.operations.append(await read(session, self.frontend, f"/lookup/{book}", book, "frontend"))


async def read(session: aiohttp.ClientSession, base: str, path: str, book: int, where: str,
               headers: dict[str, str] | None = None) -> Operation:
    start = time.monotonic()
    try:
        async with session.get(base + path, headers=headers, timeout=aiohttp.ClientTimeout(total=15)) as resp:
            body = await resp.json(content_type=None)
            ok = resp.status == 200
            return Operation("read", book, start, time.monotonic(), "ok" if ok else "failed",
                             quantity=body["quantity"] if ok else None, where=where)
    except (aiohttp.ClientError, TimeoutError):
        return Operation("read", book, start, time.monotonic(), "failed", where=where)


async def prepare(supervisor: Supervisor, stock: int) -> None:
    """Every replica back to the seven books, each with ``stock`` copies, all agreeing."""
    await supervisor.reset()
    await supervisor.wait_settled()
    catalog = supervisor.of_role("catalog")[0].name
    for book in BOOKS:
        await supervisor.admin(catalog, "PUT", f"/update/{book}", {"quantity": stock})
    if await converged(supervisor, CONVERGENCE_BOUND_S) is None:
        raise ClusterError("the replicas did not agree on the starting stock")


async def catalog_rows(supervisor: Supervisor) -> dict[str, dict[int, tuple[int, int]]]:
    rows = {}
    for node in supervisor.of_role("catalog"):
        books = (await supervisor.state(node.name))["books"]
        rows[node.name] = {b["id"]: (b["quantity"], b["seq"]) for b in books}
    return rows


async def converged(supervisor: Supervisor, bound: float) -> float | None:
    """Seconds until every catalog replica holds the same (stock, seq) per book, or None."""
    started = time.monotonic()
    while time.monotonic() - started < bound:
        rows = list((await catalog_rows(supervisor)).values())
        if all(row == rows[0] for row in rows):
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    return None


async def fault_run(supervisor: Supervisor, seconds: float, *, seed: int = 1, buyers: int = 4, readers: int = 2,
                    stock: int = 150, say: Callable[[str], None] = lambda message: None) -> Verdict:
    await prepare(supervisor, stock)
    clients = Clients(supervisor, seed)
    nemesis = Nemesis(supervisor, seed)
    until = time.monotonic() + seconds
    say(f"running {buyers} buyers and {readers} readers for {seconds:.0f} s while replicas are broken at random")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        try:
            await asyncio.gather(nemesis.run(until), *(clients.buyer(session, until) for _ in range(buyers)),
                                 *(clients.reader(session, until) for _ in range(readers)))
        finally:
            await nemesis.heal_all()
        say("healed; reading every book at every replica at once")
        healed = time.monotonic()
        headers = {"X-Bazar-Secret": supervisor.secret}
        post_heal = await asyncio.gather(*(
            read(session, node.address, f"/query/item/{book}", book, node.name, headers)
            for node in supervisor.of_role("catalog") for book in BOOKS))
    await supervisor.wait_settled()
    agreed_after = await converged(supervisor, CONVERGENCE_BOUND_S)
    convergence = None if agreed_after is None else time.monotonic() - healed  # from the moment of healing
    verdict = Verdict(seconds, clients.operations + list(post_heal), nemesis.faults, convergence_s=convergence)
    await check(supervisor, verdict, stock)
    return verdict


async def check(supervisor: Supervisor, verdict: Verdict, stock: int) -> None:
    anomalies = verdict.anomalies
    if verdict.convergence_s is None:
        anomalies.append(f"catalog replicas still disagree {CONVERGENCE_BOUND_S:.0f} s after healing")
    rows = await catalog_rows(supervisor)
    final = next(iter(rows.values()))
    applied_by_replica = {}
    for node in supervisor.of_role("catalog"):
        applied_by_replica[node.name] = {b["buy_id"]: b["book"]
                                         for b in await supervisor.admin(node.name, "GET", "/admin/buys")}
    applied = next(iter(applied_by_replica.values()))
    for name, buys in applied_by_replica.items():
        if buys != applied:
            anomalies.append(f"{name} remembers {len(buys)} applied buys, another replica {len(applied)}")
    buys = [op for op in verdict.operations if op.kind == "buy"]
    by_id = {op.buy_id: op for op in buys}
    for book in BOOKS:
        taken = stock - final[book][0]
        applied_here = [buy_id for buy_id, b in applied.items() if b == book]
        if taken != len(applied_here):
            anomalies.append(f"book {book}: {taken} copies taken but {len(applied_here)} buys applied")
        if final[book][0] < 0:
            anomalies.append(f"book {book}: stock below zero ({final[book][0]})")
    for buy_id, book in applied.items():
        op = by_id.get(buy_id)
        if op is None:
            anomalies.append(f"buy {buy_id[:8]} of book {book} was applied but never sent")
        elif op.outcome in ("failed", "out of stock"):
            anomalies.append(f"buy {buy_id[:8]} of book {book} was answered '{op.outcome}' but carried out")
    for op in buys:
        if op.outcome == "bought" and op.buy_id not in applied:
            anomalies.append(f"buy {op.buy_id[:8]} of book {op.book} was acknowledged but is not in the stock")
    # Stock only goes down, so each bound is a count of buys before a moment: sorted times and
    # bisection keep the check linear-logarithmic in the history's length.
    acked_ends = {book: sorted(b.end for b in buys if b.book == book and b.outcome == "bought") for book in BOOKS}
    begun_starts = {book: sorted(b.start for b in buys if b.book == book and b.outcome in ("bought", "unknown"))
                    for book in BOOKS}
    for op in verdict.operations:
        if op.kind == "read" and op.outcome == "ok":
            acked_before = bisect.bisect_left(acked_ends[op.book], op.start)
            begun_before = bisect.bisect_left(begun_starts[op.book], op.end)
            if op.quantity > stock - acked_before:
                anomalies.append(f"stale read at {op.where}: book {op.book} showed {op.quantity} copies after "
                                 f"{acked_before} acknowledged buys of {stock}")
            if op.quantity < stock - begun_before:
                anomalies.append(f"read at {op.where}: book {op.book} showed {op.quantity} copies, fewer than "
                                 f"{begun_before} begun buys of {stock} explain")
        if op.kind == "buy" and op.outcome == "out of stock":
            begun = bisect.bisect_left(begun_starts[op.book], op.end)
            if begun < stock:
                anomalies.append(f"book {op.book} was called out of stock after only {begun} of {stock} buys began")

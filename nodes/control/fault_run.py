"""A checked fault run on real processes: buyers and readers go through the front-end while
the nemesis breaks replicas; operations and faults go into one history on one clock
(monotonic seconds), the replicas' final rows and applied buys are read once everything is
healed, and ``checker.check`` — the same pure checker the simulator uses — says what must
still be true of it (see ``nodes/verify/checker.py`` for what is checked)."""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from nodes.control.nemesis import ACTIONS, Nemesis
from nodes.control.supervisor import ClusterError, Supervisor
from nodes.core.telemetry import TRACE_HEADER, new_trace_id
from nodes.core.wire import BUY_ID_HEADER
from nodes.runtime.signing import signed
from nodes.verify.checker import Anomaly, check
from nodes.verify.history import Final, History, Operation

BOOKS = range(1, 8)
CONVERGENCE_BOUND_S = 15.0


@dataclass
class Verdict:
    seconds: float
    seed: int
    history: History
    anomalies: list[Anomaly]
    #: Buys answered 503 for want of a majority of catalog replicas; each is a "failed" buy
    #: in the history, and the checker proves none of them was carried out ("lost answer").
    refused_no_majority: int = 0

    @property
    def passed(self) -> bool:
        return not self.anomalies

    @property
    def convergence_s(self) -> float | None:
        return self.history.convergence_s

    def render(self) -> str:
        converged_ = self.history.convergence_s
        lines = [
            f"seed {self.seed}: {self.history.summary()}",
            "replicas converged " + (f"{converged_:.2f} s after healing" if converged_ is not None
                                     else f"NOT within {CONVERGENCE_BOUND_S:.0f} s"),
            f"buys refused for want of a majority: {self.refused_no_majority}"
            + (" (none was carried out: a refused buy found in a replica's applied buys is an anomaly)"
               if self.refused_no_majority else ""),
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
        self.refused_no_majority = 0

    async def buyer(self, session: aiohttp.ClientSession, until: float) -> None:
        while time.monotonic() < until:
            book, buy_id, trace = self.rng.choice(BOOKS), uuid.uuid4().hex, new_trace_id()
            start = time.monotonic()
            try:
                async with session.put(f"{self.frontend}/buy/{book}",
                                       headers={BUY_ID_HEADER: buy_id, TRACE_HEADER: trace},
                                       timeout=aiohttp.ClientTimeout(total=15)) as resp:
                    body = await resp.json(content_type=None)
                    if resp.status == 200:
                        outcome = "bought" if body.get("success") else "out of stock"
                    elif resp.status == 202:
                        outcome = "unknown"
                    else:
                        outcome = "failed"
                        if resp.status == 503 and "needed" in str(body.get("message", "")):
                            self.refused_no_majority += 1
            except (aiohttp.ClientError, TimeoutError):
                outcome = "unknown"  # we cannot know whether it went through
            self.operations.append(Operation("buy", book, start, time.monotonic(), outcome, buy_id=buy_id,
                                             trace=trace))

    async def reader(self, session: aiohttp.ClientSession, until: float) -> None:
        while time.monotonic() < until:
            book = self.rng.choice(BOOKS)
            self.operations.append(await read(session, self.frontend, f"/lookup/{book}", book, "frontend"))


async def read(session: aiohttp.ClientSession, base: str, path: str, book: int, where: str,
               headers: dict[str, str] | None = None) -> Operation:
    trace = new_trace_id()  # every operation names its trace: a recorded run ties it to its messages
    start = time.monotonic()
    try:
        async with session.get(base + path, headers={**(headers or {}), TRACE_HEADER: trace},
                               timeout=aiohttp.ClientTimeout(total=15)) as resp:
            body = await resp.json(content_type=None)
            ok = resp.status == 200
            return Operation("read", book, start, time.monotonic(), "ok" if ok else "failed",
                             quantity=body["quantity"] if ok else None, where=where, trace=trace)
    except (aiohttp.ClientError, TimeoutError):
        return Operation("read", book, start, time.monotonic(), "failed", where=where, trace=trace)


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
                    stock: int = 150, faults: tuple[str, ...] = ACTIONS,
                    say: Callable[[str], None] = lambda message: None) -> Verdict:
    await prepare(supervisor, stock)
    clients = Clients(supervisor, seed)
    nemesis = Nemesis(supervisor, seed, actions=faults)
    until = time.monotonic() + seconds
    say(f"seed {seed}: {buyers} buyers and {readers} readers for {seconds:.0f} s while replicas are broken at "
        f"random ({', '.join(faults) or 'no faults'})")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        try:
            await asyncio.gather(nemesis.run(until), *(clients.buyer(session, until) for _ in range(buyers)),
                                 *(clients.reader(session, until) for _ in range(readers)))
        finally:
            await nemesis.heal_all()
        say("healed; reading every book at every replica at once")
        healed = time.monotonic()
        post_heal = await asyncio.gather(*(
            read(session, node.address, f"/query/item/{book}", book, node.name,
                 signed(supervisor.secret, "GET", f"/query/item/{book}"))
            for node in supervisor.of_role("catalog") for book in BOOKS))
    await supervisor.wait_settled()
    agreed_after = await converged(supervisor, CONVERGENCE_BOUND_S)
    history = History({book: stock for book in BOOKS}, clients.operations + list(post_heal), nemesis.faults,
                      await finals(supervisor),
                      convergence_s=None if agreed_after is None else time.monotonic() - healed)
    return Verdict(seconds, seed, history, check(history), clients.refused_no_majority)


async def finals(supervisor: Supervisor) -> list[Final]:
    """What every catalog replica holds once healed: its rows and the buys it applied."""
    rows = await catalog_rows(supervisor)
    out = []
    for node in supervisor.of_role("catalog"):
        buys = {b["buy_id"]: b["book"] for b in await supervisor.admin(node.name, "GET", "/admin/buys")}
        out.append(Final(node.name, rows[node.name], buys))
    return out

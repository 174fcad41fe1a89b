"""The load-fault experiment: the ``load`` experiment's many connections, and a few seconds in
one replica broken and left so (or healed later) — on Bazar, and beside it the documented code
broken the same way. It answers the question a class asks of an outage: does anyone notice?

Each system runs twice in one go, without and with the fault, so that the fault's cost is a
ratio measured on the same machine at the same time. wrk gives the totals (requests/s, p50–p99,
the slowest answer, answers over a second, time-outs); a one-connection probe beside it gives the
latency over time, second by second, with the fault's second marked."""
from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from nodes.bench.common import Context, Table, mixed_request, raise_stock
from nodes.bench.load import LOAD_CONNECTIONS, LoadResult, documented_processes, load_once
from nodes.control import nemesis
from nodes.control.clusterfile import Cluster
from nodes.control.supervisor import Supervisor
from nodes.verify.history import Fault
from nodes.verify.workload import Result, Runner

#: The faults, by name: what happens to Bazar (3 + 3 by default) and its words for it.
FAULTS = {
    "crash": "catalog1 crashed (SIGKILL)",
    "hang": "catalog1 hung (SIGSTOP)",
    "cut": "catalog1 cut off from every node",
    "partition": "catalog1 partitioned from the other catalog replicas, both ways",
    "one-way": "catalog1 no longer hears the other catalog replicas (they still hear it)",
    "order-crash": "order1 crashed (SIGKILL)",
}
#: The documented code (2 + 2; processes: front-end, catalog0, catalog1, order0, order1): the
#: process each fault breaks and how, or None where it has nothing of the kind.
DOCUMENTED = {
    "crash": (2, signal.SIGKILL, "catalog1 killed"),
    "hang": (2, signal.SIGSTOP, "catalog1 stopped"),
    "cut": (2, signal.SIGSTOP, "catalog1 stopped: it has no cut-off, a hang is nearest"),
    "partition": None,
    "one-way": None,
    "order-crash": (4, signal.SIGKILL, "order1 killed"),
}
FAULT_AT_S = 5.0
RUN_SECONDS = 20.0
#: One planned change to the cluster during a run: (seconds in, what breaks or heals it).
Step = tuple[float, Callable[[], Awaitable[object]]]
#: The issue's goals, for the verdict: (p99 ms) for silent faults and for crashes.
SILENT_P99_MS, CRASH_P99_MS, KEPT_SHARE, VERSUS_DOCUMENTED = 250.0, 150.0, 0.75, 3.0


def bazar_fault(kind: str) -> Fault:
    if kind == "crash":
        return nemesis.fault("crash", "catalog1")
    if kind == "hang":
        return nemesis.fault("hang", "catalog1")
    if kind == "cut":
        return nemesis.fault("cut", "catalog1")
    if kind == "order-crash":
        return nemesis.fault("crash", "order1")
    raise ValueError(kind)


async def _break_bazar(supervisor: Supervisor, kind: str, on: bool) -> None:
    """Apply (``on``) or heal ``kind`` on a running Bazar cluster."""
    peers = [n.name for n in supervisor.of_role("catalog") if n.name != "catalog1"]
    if kind in ("partition", "one-way"):
        for peer in peers:  # one-way: the links from the peers to catalog1
            await supervisor.partition(peer, "catalog1", one_way=kind == "one-way", on=on)
        return
    await (nemesis.apply if on else nemesis.heal)(supervisor, bazar_fault(kind), wait_ready=False)


def _break_documented(processes: list[subprocess.Popen], kind: str, on: bool) -> None:
    plan = DOCUMENTED[kind]
    if plan is None:
        return
    index, how, _words = plan
    if on:
        os.kill(processes[index].pid, how)
    elif how == signal.SIGSTOP:
        os.kill(processes[index].pid, signal.SIGCONT)


@dataclass
class FaultRun:
    label: str
    result: LoadResult
    #: The probe's answers: (seconds since the run began, ms, status; 0 when none came).
    probe: list[tuple[float, float, int]]


async def _probe(url: str, seconds: float) -> list[tuple[float, float, int]]:
    """One connection, one request after another (the same mix), for ``seconds``."""
    rng = random.Random(11)
    seen: list[tuple[float, float, int]] = []
    began = time.monotonic()
    async with Runner(url, timeout=2.0) as runner:
        while (now := time.monotonic() - began) < seconds:
            result: Result = await runner.send(mixed_request(rng))
            seen.append((now, result.ms, result.status))
    return seen


async def _run(url: str, label: str, connections: int, seconds: float,
               breaking: list[Step]) -> FaultRun:
    """wrk and the probe for ``seconds``; each ``(at, action)`` in ``breaking`` is awaited
    ``at`` seconds in (a coroutine function: apply or heal)."""
    async def timeline() -> None:
        began = time.monotonic()
        for at, action in breaking:
            await asyncio.sleep(max(0.0, at - (time.monotonic() - began)))
            await action()

    load, probe, _ = await asyncio.gather(load_once(url, connections, seconds), _probe(url, seconds), timeline())
    return FaultRun(label, load, probe)


@contextlib.asynccontextmanager
async def _bazar(ctx: Context, cluster: Cluster, label: str) -> AsyncIterator[Supervisor]:
    async with ctx.cluster(cluster, label) as supervisor:
        await raise_stock(supervisor)
        await load_once(supervisor.frontend.address, 4, 1)  # warm: caches filled, connections open
        yield supervisor


async def load_fault(ctx: Context, connections: int = LOAD_CONNECTIONS, seconds: float = RUN_SECONDS,
                     at: float = FAULT_AT_S) -> list[Table]:
    """``connections`` connections for ``seconds`` (90 % lookups, 10 % buys, stock raised),
    without a fault and then with ``ctx.fault`` applied ``at`` seconds in (healed at
    ``ctx.heal_at`` if set) — on Bazar and, with ``--against documented``, on the documented
    code in the same run."""
    kind = ctx.fault or "hang"
    if kind not in FAULTS:
        raise ValueError(f"unknown fault '{kind}'; choose from {', '.join(FAULTS)}")
    cluster = ctx.cluster_file or Cluster()
    versus = "documented" in (ctx.against or "")
    heal_at = ctx.heal_at
    ctx.progress.plan(int(seconds * (4 if versus else 2)))
    runs: list[FaultRun] = []

    def plan(apply: Callable[[], Awaitable[object]], heal: Callable[[], Awaitable[object]]) -> list[Step]:
        return [(at, apply)] + ([(heal_at, heal)] if heal_at is not None else [])

    shape = f"Bazar ({cluster.catalogs} + {cluster.orders})"
    for faulty in (False, True):
        async with _bazar(ctx, cluster, "load-fault") as supervisor:
            ctx.progress.doing(f"{shape}, {'with ' + kind if faulty else 'no fault'}")
            breaking = plan(lambda: _break_bazar(supervisor, kind, True),
                            lambda: _break_bazar(supervisor, kind, False)) if faulty else []
            runs.append(await _run(supervisor.frontend.address, f"{shape}, {'fault' if faulty else 'no fault'}",
                                   connections, seconds, breaking))
            ctx.progress.step(int(seconds))
    if versus:
        for faulty in (False, True):
            async with documented_processes(ctx) as (url, processes):
                await load_once(url, 4, 1)
                ctx.progress.doing(f"documented code, {'with ' + kind if faulty else 'no fault'}")
                breaking = plan(lambda: asyncio.to_thread(_break_documented, processes, kind, True),
                                lambda: asyncio.to_thread(_break_documented, processes, kind, False)) \
                    if faulty and DOCUMENTED[kind] is not None else []
                try:
                    runs.append(await _run(url, f"documented code (2 + 2), {'fault' if faulty else 'no fault'}",
                                           connections, seconds, breaking))
                finally:  # a stopped process cannot be stopped for good
                    if faulty and DOCUMENTED[kind] is not None:
                        _break_documented(processes, kind, False)
            ctx.progress.step(int(seconds))
    return [_totals(runs, kind, connections, seconds, at, heal_at, versus), _over_time(runs, seconds, at, heal_at)]


def _totals(runs: list[FaultRun], kind: str, connections: int, seconds: float, at: float,
            heal_at: float | None, versus: bool) -> Table:
    rows = []
    by_label = {run.label: run for run in runs}
    for run in runs:
        r = run.result
        calm = by_label.get(run.label.replace(", fault", ", no fault"))
        kept = r.per_second / calm.result.per_second if calm is not None and calm is not run else 1.0
        rows.append([run.label, r.per_second, r.p50, r.p95, r.p99, r.max, r.over_1s, r.timeouts,
                     r.failed + r.bad_status, kept])
    healed = f", healed {heal_at:.0f} s in" if heal_at is not None else ", left in place"
    notes = [f"{connections} connections by {runs[0].result.tool} for {seconds:.0f} s, 90 % lookups / 10 % buys, "
             f"stock raised; fault at {at:.0f} s{healed}: Bazar: {FAULTS[kind]}."]
    if versus:
        plan = DOCUMENTED[kind]
        notes.append(f"Documented code: {plan[2]}." if plan else
                     "The documented code has no such fault: its fault run had none.")
    notes.append(_verdict(runs, kind, versus))
    return Table(f"Load with a fault: {kind}", ["system, run", "requests/s", "p50 ms", "p95 ms", "p99 ms", "max ms",
                                                 "over 1 s", "timed out", "errors", "req/s vs no fault"],
                 rows, notes)


def _verdict(runs: list[FaultRun], kind: str, versus: bool) -> str:
    """The issue's goals, each met or not, in words."""
    bazar = next(run.result for run in runs if run.label.startswith("Bazar") and run.label.endswith(", fault"))
    calm = next(run.result for run in runs if run.label.startswith("Bazar") and run.label.endswith("no fault"))
    limit = CRASH_P99_MS if kind in ("crash", "order-crash") else SILENT_P99_MS
    goals = [(f"no error (measured {bazar.errors})", bazar.errors == 0),
             (f"no answer over 1 s (measured {bazar.over_1s}, slowest {bazar.max:.0f} ms)", bazar.over_1s == 0),
             (f"p99 ≤ {limit:.0f} ms (measured {bazar.p99:.0f} ms)", bazar.p99 <= limit)]
    if kind not in ("crash", "order-crash"):
        share = bazar.per_second / calm.per_second
        goals.append((f"≥ {KEPT_SHARE:.0%} of the no-fault requests/s (measured {share:.0%})", share >= KEPT_SHARE))
    if versus and DOCUMENTED[kind] is not None:
        theirs = next(run.result for run in runs
                      if run.label.startswith("documented") and run.label.endswith(", fault"))
        ratio = bazar.per_second / theirs.per_second
        goals.append((f"≥ {VERSUS_DOCUMENTED:.0f}× the documented code's requests/s under the fault "
                      f"(measured {ratio:.1f}×)", ratio >= VERSUS_DOCUMENTED))
    met = [words for words, ok in goals if ok]
    missed = [words for words, ok in goals if not ok]
    return (f"Goals met: {len(met)} of {len(goals)}" + (f"; missed: {'; '.join(missed)}" if missed else "") +
            f". Met: {'; '.join(met) or 'none'}.")


def _over_time(runs: list[FaultRun], seconds: float, at: float, heal_at: float | None) -> Table:
    """The probe's slowest answer in each second, per run; failures counted beside it."""
    rows = []
    for second in range(math.ceil(seconds)):
        mark = "fault" if second == int(at) else "healed" if heal_at is not None and second == int(heal_at) else ""
        row: list[object] = [f"{second}–{second + 1} s" + (f"  ← {mark}" if mark else "")]
        for run in runs:
            inside = [(ms, status) for t, ms, status in run.probe if second <= t < second + 1]
            slowest = max((ms for ms, _ in inside), default=float("nan"))
            failed = sum(1 for _, status in inside if status == 0 or status >= 500)
            row.append(f"{slowest:.0f} ({len(inside)}{f', {failed} failed' if failed else ''})")
        rows.append(row)
    return Table("Latency over time: the probe's slowest answer in each second, ms (answers)",
                 ["second", *[run.label for run in runs]], rows,
                 ["The probe is one more connection sending the same mix, one request after another, beside wrk."])

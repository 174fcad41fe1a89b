"""The documents' measurements, reproduced on Bazar itself: each experiment starts the
clusters it needs, runs seeded workloads against them, and returns tables in the documents'
form (mean, p50, p95, p99) with ratio columns. No Qt; ``launcher.py bench`` and the window's
Experiments tab both run these."""
from __future__ import annotations

import asyncio
import contextlib
import math
import random
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .clusterfile import Cluster
from .model import ClusterModel
from .supervisor import Supervisor
from .workload import DEFAULT_COUNT, WORKLOADS, Request, Result, Runner, Stats

V1 = replace(Cluster(), catalogs=1, orders=1, lookup_cache=0, search_cache=0)
V2 = replace(Cluster(), catalogs=2, orders=2, lookup_cache=3, search_cache=10)


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "notes": self.notes}

    def render(self) -> str:
        cells = [self.columns] + [[_cell(v) for v in row] for row in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = [self.title, "  ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                  for row in cells[1:]]
        return "\n".join(lines + [f"  {note}" for note in self.notes])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


class Progress:
    """Counts steps done out of a total; the command line draws it with tqdm, the window
    with a QProgressBar."""

    def __init__(self, on_change: Callable[[int, int, str], None] = lambda done, total, what: None) -> None:
        self.done = 0
        self.total = 0
        self.what = ""
        self.on_change = on_change

    def plan(self, steps: int) -> None:
        self.total += steps
        self.on_change(self.done, self.total, self.what)

    def step(self, count: int = 1) -> None:
        self.done += count
        self.on_change(self.done, self.total, self.what)

    def doing(self, what: str) -> None:
        self.what = what
        self.on_change(self.done, self.total, what)


@dataclass
class Context:
    progress: Progress
    count: int = DEFAULT_COUNT
    data_root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bazar-bench-")))
    _clusters: int = 0

    @contextlib.asynccontextmanager
    async def cluster(self, cluster: Cluster, label: str) -> AsyncIterator[Supervisor]:
        """A fresh cluster of this shape for the duration of the block."""
        self._clusters += 1
        self.progress.doing(f"starting {label}")
        supervisor = Supervisor(replace(cluster, data_dir=self.data_root / f"{self._clusters}-{label}"))
        try:
            await asyncio.to_thread(lambda: (supervisor.start_all(), supervisor.wait_ready(timeout=60)))
            await supervisor.wait_settled()
            yield supervisor
        finally:
            await supervisor.aclose()
            await asyncio.to_thread(supervisor.close)


def stats_row(label: str, stats: Stats, *extra: Any) -> list[Any]:
    return [label, stats.mean, stats.p50, stats.p95, stats.p99, *extra]


STAT_COLUMNS = ["mean ms", "p50 ms", "p95 ms", "p99 ms"]


# ---- telemetry overhead (issue: telemetry must stay cheap) -----------------------------------
async def telemetry_overhead(ctx: Context, rounds: int = 10) -> list[Table]:
    """Cached lookups with telemetry on (a live subscriber attached) and off, interleaved in
    rounds so that both see the same machine load."""
    per_round = ctx.count
    ctx.progress.plan(2 * rounds * per_round)
    on_results: list[Result] = []
    off_results: list[Result] = []
    async with ctx.cluster(V2, "telemetry-on") as on, ctx.cluster(replace(V2, telemetry=False), "telemetry-off") as off:
        model = ClusterModel.for_supervisor(on)
        await model.start()
        try:
            async with Runner(on.frontend.address) as run_on, Runner(off.frontend.address) as run_off:
                lookup = [Request("GET", "/lookup/1")] * per_round
                await run_on.sequence(lookup[:50])  # warm both: the book is cached, sockets open
                await run_off.sequence(lookup[:50])
                ctx.progress.doing("cached lookups, telemetry on and off in turn")
                for number in range(rounds):
                    first, second = (run_on, run_off) if number % 2 == 0 else (run_off, run_on)
                    for runner in (first, second):
                        results = await runner.sequence(lookup, ctx.progress.step)
                        (on_results if runner is run_on else off_results).extend(results)
        finally:
            await model.stop()
    on_stats, off_stats = Stats.of(on_results), Stats.of(off_results)
    return [Table(
        f"Cached look-ups with telemetry on and off ({rounds} interleaved rounds of {per_round})",
        ["telemetry", *STAT_COLUMNS, "vs off"],
        [stats_row("off", off_stats, 1.0), stats_row("on (with a live subscriber)", on_stats,
                                                     on_stats.mean / off_stats.mean)],
        [f"budget: on at most 1.10 x off; measured {on_stats.mean / off_stats.mean:.3f} x"],
    )]


EXPERIMENTS: dict[str, tuple[str, Callable[[Context], Any]]] = {
    "telemetry": ("Telemetry overhead on cached look-ups", telemetry_overhead),
}


def seeded(seed: int) -> random.Random:
    return random.Random(seed)


def workload(name: str, count: int) -> list[Request]:
    return WORKLOADS[name].requests(count)

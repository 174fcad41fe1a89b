"""What every experiment shares: tables in the documents' form (mean, p50, p95, p99, with ratio
columns), the progress it shows, the context it runs in (where its clusters keep their files), the
documents' two clusters (V1, V2), raising the stock before a load, and the mixed request stream."""
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

from nodes.control.clusterfile import Cluster
from nodes.control.supervisor import Supervisor
from nodes.verify.workload import DEFAULT_COUNT, Request, Stats


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "notes": self.notes}

    def render(self) -> str:
        cells = [self.columns] + [[cell_text(v) for v in row] for row in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = [self.title, "  ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                  for row in cells[1:]]
        return "\n".join(lines + [f"  {note}" for note in self.notes])


def cell_text(value: Any) -> str:
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
    #: A cluster file given on the command line: the outage and throughput runs use it.
    cluster_file: Cluster | None = None
    data_root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bazar-bench-")))
    #: Another front-end to load beside Bazar (the ``load`` experiment): a URL, or
    #: "documented" for the documented code rebuilt in nodes/bench/reference/documented_v2.py.
    against: str | None = None
    _clusters: int = 0

    @contextlib.asynccontextmanager
    async def cluster(self, cluster: Cluster, label: str) -> AsyncIterator[Supervisor]:
        """A fresh cluster of this shape for the duration of the block."""
        self._clusters += 1
        self.progress.doing(f"starting {label}")
        supervisor = Supervisor(replace(cluster, data_dir=self.data_root / f"{self._clusters}-{label}"))
        try:
            await asyncio.to_thread(supervisor.start_all)
            await asyncio.to_thread(supervisor.wait_ready, None, 60)
            await supervisor.wait_settled()
            yield supervisor
        finally:
            await supervisor.aclose()
            await asyncio.to_thread(supervisor.close)


def stats_row(label: str, stats: Stats, *extra: Any) -> list[Any]:
    return [label, stats.mean, stats.p50, stats.p95, stats.p99, *extra]


STAT_COLUMNS = ["mean ms", "p50 ms", "p95 ms", "p99 ms"]


V1 = replace(Cluster(), catalogs=1, orders=1, lookup_cache=0, search_cache=0)
V2 = replace(Cluster(), catalogs=2, orders=2, lookup_cache=3, search_cache=10)


async def raise_stock(supervisor: Supervisor, quantity: int = 100_000) -> None:
    """Stock high enough that every buy of a run can succeed (the documents set 200)."""
    catalog = next(n for n in supervisor.of_role("catalog") if n.state == "up")
    for book in range(1, 8):
        await supervisor.admin(catalog.name, "PUT", f"/update/{book}", {"quantity": quantity})


def mixed_request(rng: random.Random) -> Request:
    if rng.random() < 0.1:
        return Request("PUT", f"/buy/{rng.randint(1, 7)}")
    return Request("GET", f"/lookup/{rng.randint(1, 7)}")

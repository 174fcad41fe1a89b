"""What every experiment shares: tables in the documents' form (mean, p50, p95, p99, with ratio
columns), the progress it shows with the time it has left, the context it runs in (where its
clusters keep their files, removed when it ends, cancelled or failed), the documents' two
clusters (V1, V2), raising the stock before a load, and the mixed request stream."""
from __future__ import annotations

import asyncio
import contextlib
import math
import random
import shutil
import tempfile
import time
import weakref
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
    #: What the Experiments tab plots as bars: (column, unit, what it is); the mean by default.
    plot: tuple[int, str, str] = (1, "ms", "mean of the requests answered")

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
    """Counts steps done out of a total, and how long the rest should take at the pace of the
    last steps (a phase whose requests each wait out a hung replica is slower, and the time
    left says so). The command line draws it with tqdm, the window with a QProgressBar."""

    #: The pace is measured over about this many seconds of recent steps.
    PACE_S = 10.0

    def __init__(self, on_change: Callable[[int, int, str], None] = lambda done, total, what: None) -> None:
        self.done = 0
        self.total = 0
        self.what = ""
        self.on_change = on_change
        self.started = time.monotonic()
        self._paces: list[tuple[float, int]] = []  # (when, done) of recent steps

    def plan(self, steps: int) -> None:
        self.total += steps
        self.on_change(self.done, self.total, self.what)

    def step(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        self._paces.append((now, self.done))
        while len(self._paces) > 2 and now - self._paces[0][0] > self.PACE_S:
            self._paces.pop(0)
        self.on_change(self.done, self.total, self.what)

    def doing(self, what: str) -> None:
        self.what = what
        self.on_change(self.done, self.total, what)

    def seconds_left(self) -> float | None:
        """The steps left at the recent pace; None until there is a pace to go by."""
        if len(self._paces) < 2 or self.done >= self.total:
            return None
        (t0, d0), (t1, d1) = self._paces[0], self._paces[-1]
        if d1 <= d0:
            return None
        return (self.total - self.done) * (max(t1, time.monotonic()) - t0) / (d1 - d0)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def duration_text(seconds: float) -> str:
    """``seconds`` as a person reads it: "40 s", "3 min 20 s"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


#: Folders ``Context`` made for itself (and so removes), as opposed to one it was given.
_SCRATCH: set[Path] = set()


def _scratch_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="bazar-bench-"))
    _SCRATCH.add(root)
    return root


@dataclass
class Context:
    progress: Progress
    count: int = DEFAULT_COUNT
    #: A cluster file given on the command line: the outage and throughput runs use it.
    cluster_file: Cluster | None = None
    #: Where its clusters keep their files. By default a temporary folder of its own, removed by
    #: ``close`` or, at the latest, when the program ends: nothing is left in /tmp.
    data_root: Path = field(default_factory=_scratch_root)
    #: Another front-end to load beside Bazar (the ``load`` experiment): a URL, or
    #: "documented" for the documented code rebuilt in nodes/bench/reference/documented_v2.py.
    against: str | None = None
    #: The load-fault experiment: which fault (nodes/bench/load_fault.py FAULTS) and, if set,
    #: how many seconds into the run it is healed.
    fault: str | None = None
    heal_at: float | None = None
    #: The runs experiment: how long its recorded session lasts, in minutes.
    minutes: float = 10.0
    #: The scale experiment: the long day's buys (memory is read after 10,000 and after these); 0: no day.
    buys: int = 1_000_000
    #: The scale experiment: the catalog sizes measured.
    sizes: tuple[int, ...] = (7, 10_000, 100_000)
    _clusters: int = 0
    #: The clusters running now: ``stop_now`` stops them without waiting on the event loop.
    running: list[Supervisor] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._remove = weakref.finalize(self, _remove_scratch, self.data_root) if self.data_root in _SCRATCH \
            else None

    @contextlib.asynccontextmanager
    async def cluster(self, cluster: Cluster, label: str, *, settle_s: float = 10.0) -> AsyncIterator[Supervisor]:
        """A fresh cluster of this shape for the duration of the block; however the block ends
        (done, failed, cancelled), every process is stopped and the cluster's folder removed.
        ``settle_s``: how long it may take to settle (a large catalog travels in pages)."""
        self._clusters += 1
        self.progress.doing(f"starting {label}")
        folder = self.data_root / f"{self._clusters}-{label}"
        supervisor = Supervisor(replace(cluster, data_dir=folder))
        self.running.append(supervisor)
        # Started in a worker thread that a cancel does not stop: it is waited for below, so
        # that no process starts after the cluster was closed.
        starting = asyncio.ensure_future(asyncio.to_thread(supervisor.start_all))
        try:
            await asyncio.shield(starting)
            await asyncio.to_thread(supervisor.wait_ready, None, 60)
            await supervisor.wait_settled(settle_s)
            yield supervisor
        finally:
            await asyncio.gather(starting, return_exceptions=True)
            await supervisor.aclose()
            await asyncio.to_thread(supervisor.close)
            self.running.remove(supervisor)
            await asyncio.to_thread(shutil.rmtree, folder, True)

    def stop_now(self) -> None:
        """Stop every cluster of this context at once, without the event loop (the window is
        closing while an experiment runs)."""
        for supervisor in list(self.running):
            supervisor.close()

    def close(self) -> None:
        """Remove the context's own folder (not one it was given)."""
        if self._remove is not None:
            self._remove()


def _remove_scratch(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    _SCRATCH.discard(root)


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


def mixed_request(rng: random.Random, books: int = 7, buy_share: float = 0.1) -> Request:
    if rng.random() < buy_share:
        return Request("PUT", f"/buy/{rng.randint(1, books)}")
    return Request("GET", f"/lookup/{rng.randint(1, books)}")

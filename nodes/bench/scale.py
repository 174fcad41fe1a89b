"""What a catalog's size costs (issue 26 item 6, started): the same 3 + 1 cluster over the
documents' seven books and over generated catalogs of thousands, each measured for the time
from start to serving, what an idle catalog replica costs (CPU share and memory, read from
/proc while nothing is asked of it: the heartbeat alone), and one client's lookups and buys.
Every heartbeat still carries every book's seq, so the idle cost grows with the catalog; this
is the yardstick for anti-entropy that costs what changed."""
from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import replace
from pathlib import Path

from nodes.bench.common import V2, Context, Table
from nodes.core.books import generate_catalog, write_catalog
from nodes.verify.workload import Request, Runner, Stats

SIZES = (7, 1_000, 3_000)
IDLE_S = 5.0
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def scale(ctx: Context, sizes: tuple[int, ...] = SIZES, idle_s: float = IDLE_S) -> list[Table]:
    if not Path("/proc/self/stat").exists():
        return [Table("What a catalog's size costs", ["books"], [], ["Needs Linux's /proc to read CPU and memory."])]
    rows = []
    count = max(20, ctx.count // 2)
    ctx.progress.plan(len(sizes) * (2 * count))
    for books in sizes:
        catalog = None
        if books != 7:
            catalog = ctx.data_root / f"scale-{books}.csv"
            write_catalog(generate_catalog(books, seed=6), catalog)
        started = time.perf_counter()
        async with ctx.cluster(replace(V2, catalogs=3, orders=1, books=catalog), f"scale-{books}") as supervisor:
            serving_s = time.perf_counter() - started
            ctx.progress.doing(f"{books:,} books: the catalog replicas idle for {idle_s:.0f} s")
            pids = [n.pid for n in supervisor.of_role("catalog") if n.pid is not None]
            before = [_cpu_seconds(pid) for pid in pids]
            await asyncio.sleep(idle_s)  # measuring what idling costs: nothing to wait for but time
            cpu = [100 * (_cpu_seconds(pid) - was) / idle_s for pid, was in zip(pids, before, strict=True)]
            rss = [_rss_mb(pid) for pid in pids]
            rng = random.Random(26)
            async with Runner(supervisor.frontend.address) as runner:
                lookups = await runner.sequence([Request("GET", f"/lookup/{rng.randint(1, books)}")
                                                 for _ in range(count)], ctx.progress.step)
                buys = await runner.sequence([Request("PUT", f"/buy/{rng.randint(1, books)}")
                                              for _ in range(count)], ctx.progress.step)
        lookup, buy = Stats.of(lookups), Stats.of(buys)
        rows.append([f"{books:,}", round(serving_s, 1), round(sum(cpu) / len(cpu), 1), round(max(rss), 1),
                     lookup.mean, lookup.p99, buy.mean, buy.p99, lookup.errors + buy.errors])
    first, last = rows[0], rows[-1]
    verdict = [f"Measured: a 3 + 1 cluster per catalog size, started from its catalog file; each catalog replica "
               f"idle for {idle_s:.0f} s (CPU from /proc), then {count} lookups and {count} buys of random books, one "
               f"client. From {first[0]} to {last[0]} books: serving after {first[1]} s and {last[1]} s, an idle "
               f"catalog replica at {first[2]} % and {last[2]} % of a core: every heartbeat carries every book's seq "
               "(issue 26 item 2 asks for what changed only)."]
    return [Table("What a catalog's size costs (3 catalog replicas, 1 order replica)",
                  ["books", "serving after s", "idle CPU % per catalog", "RSS MB (largest catalog)", "lookup mean ms",
                   "lookup p99 ms", "buy mean ms", "buy p99 ms", "errors"], rows, verdict, plot=(2, "% of a core",
                                                                                              "idle CPU per catalog"))]

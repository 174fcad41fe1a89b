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

from nodes.control.clusterfile import Cluster
from nodes.control.supervisor import PROJECT_ROOT, Supervisor, free_port
from nodes.observe.model import ClusterModel
from nodes.verify.workload import DEFAULT_COUNT, WORKLOADS, Request, Result, Runner, Stats, percentile

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


# ---- the documents' tables ------------------------------------------------------------------
async def raise_stock(supervisor: Supervisor, quantity: int = 100_000) -> None:
    """Stock high enough that every buy of a run can succeed (the documents set 200)."""
    catalog = next(n for n in supervisor.of_role("catalog") if n.state == "up")
    for book in range(1, 8):
        await supervisor.admin(catalog.name, "PUT", f"/update/{book}", {"quantity": quantity})


async def measure(ctx: Context, supervisor: Supervisor, requests: list[Request]) -> Stats:
    async with Runner(supervisor.frontend.address) as runner:
        return Stats.of(await runner.sequence(requests, ctx.progress.step))


async def v1_vs_v2(ctx: Context) -> list[Table]:
    """The documents' first table: the same 200 requests per workload on V1 (1 catalog,
    1 order, no cache) and V2 (2 and 2, caches of 3 and 10), each from an empty cache."""
    names = ["lookups", "lookups-unknown", "searches", "buys"]
    ctx.progress.plan(2 * len(names) * ctx.count)
    results: dict[tuple[str, str], Stats] = {}
    for label, cluster in (("V1", V1), ("V2", V2)):
        async with ctx.cluster(cluster, label) as supervisor:
            for name in names:
                await supervisor.reset()
                if WORKLOADS[name].needs_stock:
                    await raise_stock(supervisor)
                ctx.progress.doing(f"{label}: {WORKLOADS[name].title}")
                results[(name, label)] = await measure(ctx, supervisor, WORKLOADS[name].requests(ctx.count))
    rows = []
    for name in names:
        v1, v2 = results[(name, "V1")], results[(name, "V2")]
        rows.append(stats_row(f"{WORKLOADS[name].title} — V1", v1, ""))
        rows.append(stats_row(f"{WORKLOADS[name].title} — V2", v2, v2.mean / v1.mean))
    return [Table(f"Bazar V1 against Bazar V2 ({ctx.count} identical requests per workload)",
                  ["workload — system", *STAT_COLUMNS, "V2 / V1"], rows,
                  ["V1 = 1 catalog, 1 order, no cache; V2 = 2 catalog, 2 order, caches of 3 and 10.",
                   "The documented code measured V1 10.62 ms / V2 4.55 ms for valid look-ups, "
                   "11.97 / 76.73 ms with some invalid ids, 39.21 / 44.78 ms for writes."])]


OUTAGES = (("none", None, None), ("order replica crashed", "order1", "crash"),
           ("order replica hung", "order1", "hang"), ("catalog replica crashed", "catalog1", "crash"),
           ("catalog replica hung", "catalog1", "hang"))


async def _outage(supervisor: Supervisor, node: str | None, how: str | None, on: bool) -> None:
    if node is None:
        return
    if how == "crash":
        if on:
            supervisor.crash(node)
        else:
            await asyncio.to_thread(lambda: (supervisor.start(node), supervisor.wait_ready([node])))
    else:
        supervisor.hang(node) if on else supervisor.resume(node)
    if on:
        await supervisor.wait_noticed(node)
    else:
        await supervisor.wait_settled()


async def outages(ctx: Context) -> list[Table]:
    """The documents' outage table: reads and buys with nothing out, then one order replica
    and one catalog replica out — each crashed and hung — on the same cluster (V2 unless a
    cluster file was given)."""
    cluster = ctx.cluster_file or V2
    ctx.progress.plan(2 * len(OUTAGES) * ctx.count)
    results: dict[tuple[str, str], Stats] = {}
    async with ctx.cluster(cluster, "outages") as supervisor:
        await raise_stock(supervisor)
        reads, buys = WORKLOADS["lookups"].requests(ctx.count), WORKLOADS["buys"].requests(ctx.count)
        async with Runner(supervisor.frontend.address) as runner:
            await runner.sequence(reads[:20] + buys[:10])  # warm: connections open, books valid
        for label, node, how in OUTAGES:
            ctx.progress.doing(f"{label}")
            await _outage(supervisor, node, how, True)
            results[("reads", label)] = await measure(ctx, supervisor, reads)
            results[("buys", label)] = await measure(ctx, supervisor, buys)
            await _outage(supervisor, node, how, False)
    rows = []
    for operation in ("reads", "buys"):
        base = results[(operation, "none")]
        for label, _node, _how in OUTAGES:
            got = results[(operation, label)]
            rows.append(stats_row(f"{operation}, {label}", got, got.mean / base.mean, got.errors))
    return [Table(f"Outages ({cluster.catalogs} catalog and {cluster.orders} order replicas, {ctx.count} requests "
                  "each, measured once the cluster has noticed)", ["operation, outage", *STAT_COLUMNS,
                                                                   "vs none", "errors"], rows,
                  ["The documented code: reads 5.9 ms → 111.78 ms with a catalog out; writes 45.85 ms → "
                   "447.58 ms (order out), 288.29 ms (catalog out); with one catalog SIGSTOPped, "
                   "1.3 s per lookup and 2 s per buy."])]


# ---- budgets ---------------------------------------------------------------------------------
BUDGETS_MS = {"cached lookup": 0.5, "lookup, caching off": 1.5, "buy, 3 catalog replicas": 5.0}
RATIO_BUDGET = 1.5


async def budgets(ctx: Context) -> list[Table]:
    """Each budget of the experiments issue, measured, with its verdict."""
    ctx.progress.plan(6 * ctx.count)
    default = Cluster()
    measured: dict[str, Stats] = {}
    async with ctx.cluster(V2, "cached") as supervisor:
        ctx.progress.doing("cached lookups; known and unknown ids")
        await measure(ctx, supervisor, [Request("GET", "/lookup/1")] * 20)
        measured["cached lookup"] = await measure(ctx, supervisor, [Request("GET", "/lookup/1")] * ctx.count)
        rng = random.Random(5)
        known = [Request("GET", f"/lookup/{rng.randint(1, 7)}") for _ in range(ctx.count)]
        unknown = [Request("GET", f"/lookup/{rng.randint(8, 10)}") for _ in range(ctx.count)]
        measured["known ids"] = await measure(ctx, supervisor, known)
        measured["unknown ids"] = await measure(ctx, supervisor, unknown)
    async with ctx.cluster(replace(default, lookup_cache=0, search_cache=0), "no-cache") as supervisor:
        ctx.progress.doing("lookups with caching off")
        await measure(ctx, supervisor, WORKLOADS["lookups"].requests(20, seed=1))
        measured["lookup, caching off"] = await measure(ctx, supervisor, WORKLOADS["lookups"].requests(ctx.count))
    async with ctx.cluster(default, "buys") as supervisor:
        ctx.progress.doing("buys with 3 catalog replicas")
        await raise_stock(supervisor)
        await measure(ctx, supervisor, WORKLOADS["buys"].requests(20, seed=1))
        measured["buy, 3 catalog replicas"] = await measure(ctx, supervisor, WORKLOADS["buys"].requests(ctx.count))
    outage_table = (await outages(ctx))[0]
    rows = []
    for name, limit in BUDGETS_MS.items():
        mean = measured[name].mean
        rows.append([name, mean, f"≤ {limit} ms", "met" if mean <= limit else "MISSED"])
    for row in outage_table.rows:
        if row[0].endswith("none") or (row[0].startswith("reads") and "order" in row[0]):
            continue
        rows.append([f"{row[0]} (× its no-outage mean)", row[5], f"≤ {RATIO_BUDGET}×",
                     "met" if row[5] <= RATIO_BUDGET else "MISSED"])
    ratio = measured["unknown ids"].mean / measured["known ids"].mean
    rows.append(["lookups of unknown ids (× known ids, W5)", ratio, "≤ 1.0× (no slower)",
                 "met" if ratio <= 1.05 else "MISSED"])
    return [Table("Budgets (loopback, this machine)", ["budget", "measured", "limit", "verdict"], rows,
                  ["Means in ms; ratios are means over means measured in the same run. W5 allows 5% noise."]),
            outage_table]


# ---- throughput --------------------------------------------------------------------------------
def _mixed(rng: random.Random) -> Request:
    if rng.random() < 0.1:
        return Request("PUT", f"/buy/{rng.randint(1, 7)}")
    return Request("GET", f"/lookup/{rng.randint(1, 7)}")


async def throughput(ctx: Context, seconds: float = 10.0, steps: tuple[int, ...] = (1, 2, 4, 8, 16, 32),
                     step_seconds: float = 3.0) -> list[Table]:
    """32 clients in a closed loop for 10 s, 90 % lookups and 10 % buys; before that, a sweep
    of client counts to show where throughput stops growing."""
    ctx.progress.plan(int(seconds + step_seconds * len(steps)))
    rows, sweep = [], []
    async with ctx.cluster(ctx.cluster_file or Cluster(), "throughput") as supervisor:
        await raise_stock(supervisor)
        async with Runner(supervisor.frontend.address) as runner:
            for clients in steps:
                ctx.progress.doing(f"{clients} clients")
                results = await runner.closed_loop(clients, step_seconds, _mixed)
                ctx.progress.step(int(step_seconds))
                stats = Stats.of(results)
                sweep.append(stats_row(f"{clients}", stats, len(results) / step_seconds))
            ctx.progress.doing("32 clients for 10 s")
            results = await runner.closed_loop(32, seconds, _mixed)
            ctx.progress.step(int(seconds))
    stats = Stats.of(results)
    rows.append(stats_row("32 clients, 90 % lookups / 10 % buys", stats, len(results) / seconds, stats.errors))
    return [Table(f"Throughput: 32 clients in a closed loop for {seconds:.0f} s", ["run", *STAT_COLUMNS,
                                                                                "requests/s", "errors"], rows),
            Table(f"Where it saturates ({step_seconds:.0f} s per step, same mix)", ["clients", *STAT_COLUMNS,
                                                                                 "requests/s"], sweep)]


# ---- load: many connections at once, beside another front-end -----------------------------------
LOAD_CONNECTIONS = 32
LOAD_SECONDS = 10.0
#: 90 % lookups and 10 % buys over books 1–7, seeded per wrk thread; a JSON line at the end.
WRK_SCRIPT = """
local threads = {}
function setup(thread) thread:set("id", #threads + 1); table.insert(threads, thread) end
function init(args) math.randomseed(7 + (id or 0)) end
function request()
  local book = math.random(1, 7)
  if math.random() < 0.1 then return wrk.format("PUT", "/buy/" .. book) end
  return wrk.format("GET", "/lookup/" .. book)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BAZAR {"requests": %d, "seconds": %f, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "mean": %f, "p50": %f, "p95": %f, "p99": %f, "max": %f}\\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


@dataclass
class LoadResult:
    """One load run: requests/s, latency in ms, and every request not answered well —
    timed out (no answer within the client's 2 s), failed (connection or read errors), or
    answered with a 5xx/4xx."""

    requests: int
    seconds: float
    mean: float
    p50: float
    p95: float
    p99: float
    timeouts: int
    failed: int
    bad_status: int
    tool: str

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        return self.timeouts + self.failed + self.bad_status


async def wrk_load(url: str, connections: int, seconds: float) -> LoadResult:
    """Load ``url`` with wrk (2 threads, ``connections`` connections, 2 s time-out)."""
    import json
    import shutil

    wrk = shutil.which("wrk")
    if wrk is None:
        raise FileNotFoundError("wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    process = await asyncio.create_subprocess_exec(
        wrk, "-t2", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "2s", "-s", script.name, url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    Path(script.name).unlink(missing_ok=True)
    line = next((ln for ln in out.decode().splitlines() if ln.startswith("BAZAR ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out.decode()[-300:]}")
    r = json.loads(line.removeprefix("BAZAR "))
    return LoadResult(r["requests"], r["seconds"], r["mean"], r["p50"], r["p95"], r["p99"], r["timeout"],
                      r["connect"] + r["read"] + r["write"], r["status"], "wrk")


async def own_load(url: str, connections: int, seconds: float) -> LoadResult:
    """The same load from Bazar's own closed-loop client, when wrk is not installed."""
    async with Runner(url, timeout=2.0) as runner:
        results = await runner.closed_loop(connections, seconds, _mixed)
    stats = Stats.of(results)
    return LoadResult(len(results), seconds, stats.mean, stats.p50, stats.p95, stats.p99,
                      sum(1 for r in results if r.status == 0 and r.ms >= 2000),
                      sum(1 for r in results if r.status == 0 and r.ms < 2000),
                      sum(1 for r in results if r.status >= 400), "Bazar's client")


async def _load(url: str, connections: int, seconds: float) -> LoadResult:
    try:
        return await wrk_load(url, connections, seconds)
    except FileNotFoundError:
        return await own_load(url, connections, seconds)


@contextlib.asynccontextmanager
async def _reference(start: Callable[[int], tuple[str, list]]) -> AsyncIterator[tuple[str, int]]:
    """A yardstick's five processes (nodes/bench/reference) started on a free block of ports by
    ``start(port)``: its front-end's URL and first port once they all listen; stopped after."""
    from nodes.bench.reference.documented_v2 import stop, wait_ready

    port = free_port(count=5)
    url, processes = start(port)
    try:
        await asyncio.to_thread(wait_ready, url, len(processes))
        yield url, port
    finally:
        await asyncio.to_thread(stop, processes)


@contextlib.asynccontextmanager
async def _documented(ctx: Context) -> AsyncIterator[str]:
    """The documented code (2 catalog, 2 order replicas), rebuilt from its document, with
    every book restocked through its catalog as Bazar's is."""
    import aiohttp

    from nodes.bench.reference import documented_v2 as documented

    data = ctx.data_root / "documented"
    data.mkdir(parents=True, exist_ok=True)
    async with _reference(lambda port: documented.start(2, 2, port, data)) as (url, port):
        async with aiohttp.ClientSession() as session:
            for book in range(1, 8):  # through its first catalog, which fans the write out
                async with session.put(f"http://127.0.0.1:{port + 1}/update/{book}", json={"quantity": 100_000}) as r:
                    if r.status != 200:
                        raise RuntimeError(f"the documented code refused to restock book {book}: {r.status}")
        yield url


#: The floor under the load goal (nodes/bench/reference/skeleton.py), by --against name.
SKELETONS = {"skeleton": "skeleton (2 + 2)", "skeleton-no-check": "skeleton without check (2 + 2)"}


@contextlib.asynccontextmanager
async def _skeleton(ctx: Context, name: str) -> AsyncIterator[str]:
    """Bazar's processes and message shapes with nothing else: what this machine can serve."""
    from nodes.bench.reference import skeleton

    async with _reference(lambda port: skeleton.start(port, ctx.data_root / name, check=name == "skeleton")) as (
            url, _port):
        yield url


async def load(ctx: Context, rounds: int = 2, connections: int = LOAD_CONNECTIONS,
               seconds: float = LOAD_SECONDS, single: bool = True) -> list[Table]:
    """``connections`` connections at once for ``seconds``, 90 % lookups and 10 % buys over
    books 1–7 with stock raised first, on Bazar (2 catalog and 2 order replicas unless a
    cluster file is given) and, in turn within the same run, on ``ctx.against``."""
    cluster = ctx.cluster_file or V2
    others = [name.strip() for name in (ctx.against or "").split(",") if name.strip()]
    ctx.progress.plan(int(rounds * (1 + len(others)) * seconds))
    results: dict[str, list[LoadResult]] = {}
    async with contextlib.AsyncExitStack() as stack:
        bazar = await stack.enter_async_context(ctx.cluster(cluster, "load"))
        await raise_stock(bazar)
        targets = {f"Bazar ({cluster.catalogs} + {cluster.orders})": bazar.frontend.address}
        for other in others:
            if other == "documented":
                ctx.progress.doing("starting the documented code")
                targets["documented code (2 + 2)"] = await stack.enter_async_context(_documented(ctx))
            elif other in SKELETONS:
                ctx.progress.doing(f"starting the {other}")
                targets[SKELETONS[other]] = await stack.enter_async_context(_skeleton(ctx, other))
            else:
                targets[other] = other
        for url in targets.values():  # warm: caches filled, connections open, books valid
            await _load(url, 4, 1)
        for number in range(rounds):
            for label, url in (targets.items() if number % 2 == 0 else reversed(targets.items())):
                ctx.progress.doing(f"round {number + 1}: {label}")
                results.setdefault(label, []).append(await _load(url, connections, seconds))
                ctx.progress.step(int(seconds))
        alone: dict[tuple[str, str], Stats] = {}
        if single:
            for label, url in targets.items():
                for name in ("lookups", "buys"):
                    ctx.progress.doing(f"one client: {label}, {name}")
                    async with Runner(url) as runner:
                        alone[(label, name)] = Stats.of(await runner.sequence(WORKLOADS[name].requests(ctx.count)))
    rows = []
    first = next(iter(results))
    for label, runs in results.items():
        for number, r in enumerate(runs, 1):
            versus = r.per_second / results[first][number - 1].per_second if label != first else 1.0
            rows.append([f"{label}, round {number}", r.per_second, r.mean, r.p50, r.p95, r.p99, r.timeouts,
                         r.failed + r.bad_status, versus])
    tool = next(iter(results.values()))[0].tool
    notes = [f"Load by {tool}: {connections} connections, {seconds:.0f} s per run, 2 s client time-out; "
             "systems in turn within each round."]
    if tool != "wrk":
        notes.append("wrk is not installed (apt-get install wrk); Bazar's own closed-loop client was used.")
    for other in others:
        if other != "documented" and other not in SKELETONS:
            notes.append(f"Stock at {other} was not raised: its buys may answer out of stock.")
    if any(other in SKELETONS for other in others):
        notes.append("The skeleton is Bazar's processes and message shapes with no rules, telemetry or "
                     "checks (nodes/bench/reference/skeleton.py): the most this machine serves that way.")
    tables = [Table(f"Load: {connections} connections, 90 % lookups / 10 % buys",
                    ["system, round", "requests/s", *STAT_COLUMNS, "timed out", "errors", "req/s vs first"],
                    rows, notes)]
    if alone:
        first_label = next(iter(targets))
        tables.append(Table(
            f"One client: {ctx.count} seeded lookups, then {ctx.count} buys (stock raised first)",
            ["system, workload", *STAT_COLUMNS, "errors", "mean vs first"],
            [stats_row(f"{label}, {name}", stats, stats.errors, stats.mean / alone[(first_label, name)].mean)
             for (label, name), stats in alone.items()]))
    return tables


# ---- the floor: one exchange on this stack, next to a bare asyncio exchange ---------------------
#: The bare servers the floor is measured against (nodes/bench/reference/floor_*.py).
_FLOOR_SERVERS = {"aiohttp": "nodes.bench.reference.floor_aiohttp", "asyncio": "nodes.bench.reference.floor_asyncio"}


async def floor(ctx: Context, exchanges: int = 2000) -> list[Table]:
    """What one request/answer exchange costs between two processes on this machine: an
    aiohttp client and server (Bazar's stack), next to bare asyncio streams doing the same
    HTTP/1.1 exchange on a kept-alive connection. Bazar's buy makes several exchanges in a
    row; this is the floor under each."""
    import sys
    import time

    import aiohttp

    ctx.progress.plan(2 * exchanges)
    rows = []
    for name, module in _FLOOR_SERVERS.items():
        port = free_port()
        server = await asyncio.create_subprocess_exec(sys.executable, "-m", module, str(port), cwd=PROJECT_ROOT)
        try:
            for _ in range(200):
                try:
                    _r, w = await asyncio.open_connection("127.0.0.1", port)
                    w.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"the bare {name} server did not start")
            times: list[float] = []
            if name == "aiohttp":
                async with aiohttp.ClientSession() as session:
                    for _ in range(exchanges):
                        t0 = time.perf_counter()
                        async with session.get(f"http://127.0.0.1:{port}/lookup/1") as resp:
                            await resp.json()
                        times.append((time.perf_counter() - t0) * 1000)
                        ctx.progress.step()
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                request = f"GET /lookup/1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
                for _ in range(exchanges):
                    t0 = time.perf_counter()
                    writer.write(request)
                    await reader.readuntil(b"\r\n\r\n")
                    await reader.readexactly(2)
                    times.append((time.perf_counter() - t0) * 1000)
                    ctx.progress.step()
                writer.close()
            times.sort()
            stats = Stats(len(times), sum(times) / len(times), *(percentile(times, p) for p in (50, 95, 99)))
            rows.append(stats_row(f"{name} client and server", stats))
        finally:
            if server.returncode is None:
                server.terminate()
            await server.wait()
    return [Table(f"The floor: one exchange between two processes ({exchanges} in a row, kept-alive)",
                  ["stack", *STAT_COLUMNS], rows,
                  [f"aiohttp costs {rows[0][1] / rows[1][1]:.1f}x a bare asyncio exchange."])]



EXPERIMENTS: dict[str, tuple[str, Callable[[Context], Any]]] = {
    "v1-v2": ("Bazar V1 against Bazar V2, per workload", v1_vs_v2),
    "outages": ("Reads and buys with one replica crashed or hung", outages),
    "budgets": ("Every budget, measured, with its verdict", budgets),
    "throughput": ("32 closed-loop clients; where it saturates", throughput),
    "telemetry": ("Telemetry overhead on cached look-ups", telemetry_overhead),
    "load": ("Many connections at once (wrk), beside another front-end", load),
    "floor": ("What one exchange costs: aiohttp next to bare asyncio", floor),
}

"""The load experiment: many connections at once (wrk, or Bazar's own client when wrk is missing)
against Bazar, beside the documented code and the skeleton (nodes/bench/reference/)."""
from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from nodes.bench.common import STAT_COLUMNS, V2, Context, Table, mixed_request, raise_stock, stats_row
from nodes.control.supervisor import free_port
from nodes.verify.workload import WORKLOADS, Runner, Stats

# ---- load: many connections at once, beside another front-end -----------------------------------
LOAD_CONNECTIONS = 32
LOAD_SECONDS = 10.0
#: 90 % lookups and 10 % buys over books 1–7 (BOOKS and BUY_SHARE, replaced by ``wrk_load``),
#: seeded per wrk thread; a JSON line at the end.
#:
#: The latencies are timed here, per request, not taken from wrk's own histogram: before it
#: hands the histogram to ``done``, wrk "corrects" it for coordinated omission (``stats_correct``:
#: every answer slower than the mean interval between a connection's requests adds made-up
#: samples below it, one per interval), so its percentiles and its count above a second tell of
#: requests that were never sent. Under a fault whose first second holds a few slow answers it
#: counted 71 answers over a second where the front-end had served 8. Each request carries its
#: own id in ``X-Bazar-Trace``, which the front-end (and the documented code's) sends back, and
#: its start on the monotonic clock (LuaJIT's ffi); a server that does not send the id back is
#: measured by wrk's histogram, and the line says so (``timed``). Buckets of 0.1 ms.
#: The tool column when the server sent no ids back (wrk's own histogram), or wrk was missing.
WRK_HISTOGRAM, OWN_CLIENT = "wrk (its corrected histogram)", "Bazar's client"
WRK_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bazar_timespec;
           int clock_gettime(int clock, bazar_timespec *ts); ]]
local clock = ffi.new("bazar_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1e6 + tonumber(clock.tv_nsec) / 1e3
end
local threads = {}
function setup(thread) thread:set("id", #threads + 1); table.insert(threads, thread) end
started, hist, timed, sum_us, sent = {}, {}, 0, 0, 0
function init(args) math.randomseed(7 + (id or 0)) end
function request()
  local book = math.random(1, BOOKS)
  sent = sent + 1
  local tag = "wrk" .. (id or 0) .. "-" .. sent
  started[tag] = now_us()
  local headers = {["X-Bazar-Trace"] = tag}
  if math.random() < BUY_SHARE then return wrk.format("PUT", "/buy/" .. book, headers) end
  return wrk.format("GET", "/lookup/" .. book, headers)
end
function response(status, headers, body)
  local tag = headers["X-Bazar-Trace"] or headers["x-bazar-trace"]
  local t0 = tag and started[tag]
  if t0 then
    started[tag] = nil
    local us = now_us() - t0
    local bucket = math.floor(us / 100)
    hist[bucket] = (hist[bucket] or 0) + 1
    timed = timed + 1
    sum_us = sum_us + us
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  local all, n, total = {}, 0, 0
  for _, thread in ipairs(threads) do
    n = n + (thread:get("timed") or 0)
    total = total + (thread:get("sum_us") or 0)
    for bucket, count in pairs(thread:get("hist") or {}) do all[bucket] = (all[bucket] or 0) + count end
  end
  local keys = {}
  for bucket in pairs(all) do table.insert(keys, bucket) end
  table.sort(keys)
  local function at(p)  -- the smallest latency (us) at or below which p % of the timed answers came
    local want, seen = math.max(1, math.ceil(n * p / 100)), 0
    for _, bucket in ipairs(keys) do
      seen = seen + all[bucket]
      if seen >= want then return (bucket + 1) * 100 end
    end
    return 0
  end
  local over = 0  -- answered after a second or more
  for _, bucket in ipairs(keys) do if bucket >= 10000 then over = over + all[bucket] end end
  local mean, p50, p95, p99, max = latency.mean, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max
  if n > 0 and n >= 0.95 * summary.requests then
    mean, p50, p95, p99, max = total / n, at(50), at(95), at(99), (keys[#keys] + 1) * 100
  else
    over = 0  -- the server sent no ids back: wrk's histogram, whose count above a second is not one
    if latency.max >= 1000000 then
      local lo, hi = 0, 100
      for _ = 1, 40 do
        local mid = (lo + hi) / 2
        if latency:percentile(mid) >= 1000000 then hi = mid else lo = mid end
      end
      over = math.max(1, math.floor(summary.requests * (100 - hi) / 100 + 0.5))
    end
  end
  io.write(string.format('BAZAR {"requests": %d, "seconds": %f, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "over1s": %d, "mean": %f, "p50": %f, "p95": %f, "p99": %f, "max": %f, ' ..
    '"timed": %d, "p99_wrk": %f}\\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout, over,
    mean / 1000, p50 / 1000, p95 / 1000, p99 / 1000, max / 1000, n, latency:percentile(99) / 1000))
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
    #: The slowest answer (ms) and how many answers took a second or more.
    max: float = float("nan")
    over_1s: int = 0

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        return self.timeouts + self.failed + self.bad_status


async def wrk_load(url: str, connections: int, seconds: float, *, books: int = 7,
                   buy_share: float = 0.1) -> LoadResult:
    """Load ``url`` with wrk (2 threads, ``connections`` connections, 2 s time-out): lookups and,
    ``buy_share`` of the time, buys of books 1..``books``."""
    import json
    import shutil

    wrk = shutil.which("wrk")
    if wrk is None:
        raise FileNotFoundError("wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.replace("BOOKS", str(books)).replace("BUY_SHARE", repr(buy_share)))
    process = await asyncio.create_subprocess_exec(
        wrk, "-t2", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "2s", "-s", script.name, url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    Path(script.name).unlink(missing_ok=True)
    line = next((ln for ln in out.decode().splitlines() if ln.startswith("BAZAR ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out.decode()[-300:]}")
    r = json.loads(line.removeprefix("BAZAR "))
    # Timed per request when the server sent the ids back; otherwise wrk's own histogram (WRK_SCRIPT).
    tool = "wrk" if r["timed"] >= 0.95 * r["requests"] else WRK_HISTOGRAM
    return LoadResult(r["requests"], r["seconds"], r["mean"], r["p50"], r["p95"], r["p99"], r["timeout"],
                      r["connect"] + r["read"] + r["write"], r["status"], tool, r["max"], r["over1s"])


async def own_load(url: str, connections: int, seconds: float, *, books: int = 7,
                   buy_share: float = 0.1) -> LoadResult:
    """The same load from Bazar's own closed-loop client, when wrk is not installed."""
    async with Runner(url, timeout=2.0) as runner:
        results = await runner.closed_loop(connections, seconds,
                                           lambda rng: mixed_request(rng, books, buy_share))
    stats = Stats.of(results)
    return LoadResult(len(results), seconds, stats.mean, stats.p50, stats.p95, stats.p99,
                      sum(1 for r in results if r.status == 0 and r.ms >= 2000),
                      sum(1 for r in results if r.status == 0 and r.ms < 2000),
                      sum(1 for r in results if r.status >= 400), OWN_CLIENT,
                      max((r.ms for r in results), default=float("nan")),
                      sum(1 for r in results if r.status and r.ms >= 1000))


async def load_once(url: str, connections: int, seconds: float, *, books: int = 7,
                    buy_share: float = 0.1) -> LoadResult:
    """wrk's load, or Bazar's own client's when wrk is not installed."""
    try:
        return await wrk_load(url, connections, seconds, books=books, buy_share=buy_share)
    except FileNotFoundError:
        return await own_load(url, connections, seconds, books=books, buy_share=buy_share)


@contextlib.asynccontextmanager
async def _reference(start: Callable[[int], tuple[str, list]]) -> AsyncIterator[tuple[str, int, list]]:
    """A yardstick's five processes (nodes/bench/reference) started on a free block of ports by
    ``start(port)``: its front-end's URL, first port and processes (front-end, catalogs, order
    replicas) once they all listen; stopped after."""
    from nodes.bench.reference.documented_v2 import stop, wait_ready

    port = free_port(count=5)
    url, processes = start(port)
    try:
        await asyncio.to_thread(wait_ready, url, len(processes))
        yield url, port, processes
    finally:
        await asyncio.to_thread(stop, processes)


@contextlib.asynccontextmanager
async def documented_processes(ctx: Context) -> AsyncIterator[tuple[str, list]]:
    """The documented code (2 catalog, 2 order replicas), rebuilt from its document, with
    every book restocked through its catalog as Bazar's is: its front-end's URL and its
    processes (front-end, catalogs, order replicas), for experiments that break one."""
    import aiohttp

    from nodes.bench.reference import documented_v2 as documented

    data = ctx.data_root / "documented"
    data.mkdir(parents=True, exist_ok=True)
    async with _reference(lambda port: documented.start(2, 2, port, data)) as (url, port, processes):
        async with aiohttp.ClientSession() as session:
            for book in range(1, 8):  # through its first catalog, which fans the write out
                async with session.put(f"http://127.0.0.1:{port + 1}/update/{book}", json={"quantity": 100_000}) as r:
                    if r.status != 200:
                        raise RuntimeError(f"the documented code refused to restock book {book}: {r.status}")
        yield url, processes


@contextlib.asynccontextmanager
async def _documented(ctx: Context) -> AsyncIterator[str]:
    async with documented_processes(ctx) as (url, _processes):
        yield url


#: The floor under the load goal (nodes/bench/reference/skeleton.py), by --against name.
SKELETONS = {"skeleton": "skeleton (2 + 2)", "skeleton-no-check": "skeleton without check (2 + 2)"}


@contextlib.asynccontextmanager
async def _skeleton(ctx: Context, name: str) -> AsyncIterator[str]:
    """Bazar's processes and message shapes with nothing else: what this machine can serve."""
    from nodes.bench.reference import skeleton

    async with _reference(lambda port: skeleton.start(port, ctx.data_root / name, check=name == "skeleton")) as (
            url, _port, _processes):
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
            await load_once(url, 4, 1)
        for number in range(rounds):
            for label, url in (targets.items() if number % 2 == 0 else reversed(targets.items())):
                ctx.progress.doing(f"round {number + 1}: {label}")
                results.setdefault(label, []).append(await load_once(url, connections, seconds))
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
    if tool == OWN_CLIENT:
        notes.append("wrk is not installed (apt-get install wrk); Bazar's own closed-loop client was used.")
    for label, runs in results.items():
        if runs[0].tool == WRK_HISTOGRAM:
            notes.append(f"{label} sends no request id back: its latencies are wrk's histogram, corrected for "
                         "coordinated omission, not timed per request like the others (nodes/bench/load.py).")
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

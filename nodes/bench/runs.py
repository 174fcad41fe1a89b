"""What keeping runs costs (issue 24, docs/runs.md): the window's session under load with its
recording on and off, side by side in one run; a long session at 200 requests/s recorded, its
rewind buffer's memory minute by minute; and the run it wrote opened, read through and scrubbed
as the window does it. No Qt here: the session is the window's (``ClusterSession``), the player
and sources the slider's; the last table drags a replay window in a process of its own
(``launcher.py --open RUN --measure-scrub``)."""
from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from nodes.bench.common import Context, Table
from nodes.control.clusterfile import load
from nodes.observe.model import ClusterModel
from nodes.runs.runfile import read_run
from nodes.runs.sources import RunSource
from nodes.session.session import ClusterSession

#: The recording-cost runs: offered rate (more than a session serves on two cores) and length.
COST_RATE = 1500.0
COST_S = 15.0
COST_ROUNDS = 2
#: The long session: its rate, and how often the buffer's memory is sampled.
LONG_RATE = 200.0
SAMPLE_S = 60.0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def _session(ctx: Context, label: str, *, record: bool) -> ClusterSession:
    cluster = replace(load(None), data_dir=ctx.data_root / label)
    session = ClusterSession(cluster, announce=lambda _line: None, record=record)
    ctx.progress.doing(f"starting {label}")
    await session.start()
    return session


async def recording_cost(ctx: Context) -> Table:
    """The same offered load through the window's session, recording on and off in turn."""
    rows = []
    served: dict[bool, list[float]] = {True: [], False: []}
    for number in range(COST_ROUNDS):
        for record in ((True, False) if number % 2 == 0 else (False, True)):
            session = await _session(ctx, f"cost-{number}-{'on' if record else 'off'}", record=record)
            try:
                await session.load.stop()
                session.load.settings.rate = COST_RATE
                ctx.progress.doing(f"load with recording {'on' if record else 'off'}")
                sent0, cpu0, began = session.load.sent, _cpu_s(), time.monotonic()
                session.load.start()
                await asyncio.sleep(COST_S)  # the measurement's length
                await session.load.stop()
                seconds = time.monotonic() - began
                rate = (session.load.sent - sent0) / seconds
                cpu = 100 * (_cpu_s() - cpu0) / seconds
                served[record].append(rate)
                recorded = session.recorder.writer.count if session.recorder else 0
                rows.append([f"round {number + 1}: recording {'on' if record else 'off'}", round(rate), round(cpu),
                             recorded])
            finally:
                await session.stop()
    on, off = statistics.mean(served[True]), statistics.mean(served[False])
    return Table(f"What recording costs: the window's session offered {COST_RATE:.0f} requests/s for {COST_S:.0f} s, "
                 "recording on and off in turn", ["run", "requests/s served", "session CPU %", "inputs recorded"],
                 rows, [f"Served with recording on: {on:.0f} requests/s, off: {off:.0f} "
                        f"({100 * (on / off - 1):+.1f} %); "
                        f"the budget is -5 %: {'met' if on >= 0.95 * off else 'NOT met'}.",
                        "Session CPU % is the process running the session, its load generator and its recording "
                        "(the nodes are other processes)."], plot=(1, "req/s", "requests/s served"))


async def long_session(ctx: Context) -> tuple[Table, Path]:
    """A session at LONG_RATE for ``ctx.minutes``: its rewind buffer and RSS each minute."""
    session = await _session(ctx, "long", record=True)
    rows = []
    try:
        session.load.settings.rate = LONG_RATE
        session.load.start()
        began = time.monotonic()
        minutes = max(1, round(ctx.minutes * 60 / SAMPLE_S))
        for minute in range(1, minutes + 1):
            ctx.progress.doing(f"recording at {LONG_RATE:.0f} req/s: minute {minute} of {minutes}")
            await asyncio.sleep(max(0.0, began + minute * SAMPLE_S - time.monotonic()))  # the next sample's time
            recorder = session.recorder
            assert recorder is not None
            rows.append([minute, round(recorder.memory() / 1e6, 1), len(recorder.player.keyframes),
                         round((recorder.recording.end - recorder.start) / 60, 1), round(_rss_mb()),
                         round(recorder.writer.size / 1e6, 1), recorder.writer.count])
        await session.load.stop()
        path = session.recorder.path if session.recorder else None
    finally:
        await session.stop()
    assert path is not None
    table = Table(f"A session at {LONG_RATE:.0f} requests/s recorded for {ctx.minutes:g} minutes: the rewind buffer",
                  ["minute", "buffer MB", "keyframes", "rewind reach (min)", "RSS MB", "file MB", "inputs"], rows,
                  ["buffer: the compressed inputs and keyframes kept to rewind over (at most the cluster file's "
                   "rewind_minutes, 10 by default); RSS: the whole session process."], plot=(1, "MB", "buffer"))
    return table, path


def scrubbing(path: Path, seeks: int = 200) -> Table:
    """The run opened as the window opens it, read through, and scrubbed: random jumps, and
    steps of a tenth of a second back and forth."""
    began = time.perf_counter()
    run = read_run(path)
    source = RunSource(run, ClusterModel(run.header.nodes, catalog_of=run.header.catalog_of))
    source.seek(source.start)
    opened = time.perf_counter() - began
    began = time.perf_counter()
    while not source.index(0.05):
        pass
    indexed = time.perf_counter() - began
    rng = random.Random(24)
    jumps, steps, drags = [], [], []
    for _ in range(seeks):
        t = rng.uniform(source.start, source.end)
        began = time.perf_counter()
        source.seek(t)
        jumps.append(1000 * (time.perf_counter() - began))
        for delta in (-0.1, 0.1, 0.1):
            began = time.perf_counter()
            source.seek(source.time + delta)
            steps.append(1000 * (time.perf_counter() - began))
    # A drag along the slider: a second of the run per move, back over a minute and on again.
    for direction in (-1, 1) * (seeks // 60):
        source.seek(rng.uniform(source.start + 60, source.end - 60))
        for _ in range(60):
            began = time.perf_counter()
            source.seek(source.time + direction)
            drags.append(1000 * (time.perf_counter() - began))

    def row(what: str, ms: list[float]) -> list[object]:
        ms = sorted(ms)
        return [what, round(statistics.median(ms), 1), round(ms[int(0.99 * (len(ms) - 1))], 1), round(ms[-1], 1)]

    minutes = (run.end - run.start) / 60
    keyframes = source.player.keyframes
    return Table(f"Opening and scrubbing it: {path.stat().st_size / 1e6:.1f} MB, {run.count:,} inputs, "
                 f"{minutes:.1f} minutes", ["what", "p50 ms", "p99 ms", "max ms"],
                 [row(f"jump to a random instant ({seeks})", jumps),
                  row(f"step 0.1 s back or on ({3 * seeks})", steps),
                  row(f"drag 1 s a move, back or on ({len(drags)})", drags)],
                 [f"Opened (read, checked, first instant shown) in {opened:.2f} s; read through in the background in "
                  f"{indexed:.1f} s ({len(keyframes)} keyframes, "
                  f"{sum(len(k.state) for k in keyframes) / 1e6:.1f} MB). Goals: open under 5 s, a scrub step under "
                  "50 ms."])


def scrubbing_command(path: str) -> None:
    """``python3 -m nodes.bench.runs RUN``: the opening, scrubbing and dragging tables of any run."""
    print(scrubbing(Path(path)).render())
    print(window_drag(Path(path)).render())


def window_drag(path: Path) -> Table:
    """The same run dragged in a replay window (offscreen, ``launcher.py --open RUN
    --measure-scrub``): each move timed from the seek to the window painted."""
    launcher = Path(__file__).resolve().parents[2] / "launcher.py"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, str(launcher), "--open", str(path), "--measure-scrub", "--size", "1280x720"],
                          capture_output=True, text=True, timeout=900, env=env)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not rows:
        raise RuntimeError(f"--measure-scrub failed: {done.stderr[-1500:]}")
    return Table("Dragging it in a replay window (1280×720, offscreen): a second of the run a move, seek to paint",
                 ["tab", "p50 ms", "p99 ms", "max ms"],
                 [[f"{row['tab']} ({row['moves']} moves)", round(row["p50"], 1), round(row["p99"], 1),
                   round(row["max"], 1)] for row in rows],
                 ["Each move: the player's seek, every view on the tab drawing the instant, and the window's "
                  "repaint (Qt's offscreen platform paints what changed, as a screen would)."])


async def runs(ctx: Context) -> list[Table]:
    ctx.progress.plan(0)
    cost = await recording_cost(ctx)
    memory, path = await long_session(ctx)
    scrubbed = await asyncio.to_thread(scrubbing, path)
    return [cost, memory, scrubbed, await asyncio.to_thread(window_drag, path)]


if __name__ == "__main__":
    scrubbing_command(sys.argv[1])

#!/usr/bin/env python3
"""Bazar's one entry point.

    python launcher.py                      the window, over a freshly started cluster
    python launcher.py --headless           the cluster alone, until Ctrl-C
    python launcher.py trace lookup 2       one request's path through a fresh cluster

Every mode takes --cluster FILE, --catalogs N, --orders N and --data-dir DIR.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nodes.control import nemesis  # noqa: E402
from nodes.control.clusterfile import Cluster, ClusterFileError, load  # noqa: E402
from nodes.control.supervisor import ClusterError, ManagedNode, Supervisor  # noqa: E402

ROLE_LABEL = {"frontend": "front-end", "catalog": "catalog", "order": "order"}


def cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", metavar="FILE", help="cluster file (default assets/cluster.toml)")
    parser.add_argument("--attach", metavar="FILE",
                        help="attach to nodes already running (a cluster file with an [attach] section, e.g. "
                             "assets/compose-attach.toml for `docker compose up`) instead of starting them")
    parser.add_argument("--catalogs", type=int, metavar="N", help="catalog replicas (overrides the file)")
    parser.add_argument("--orders", type=int, metavar="N", help="order replicas (overrides the file)")
    parser.add_argument("--data-dir", metavar="DIR", help="folder for databases and logs (overrides the file)")
    parser.add_argument("--books", metavar="FILE",
                        help="catalog file a fresh cluster starts from: JSON or CSV (id,title,topic,price,stock); "
                             "`launcher.py books` makes one (default: the documents' seven books)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="launcher.py", description="Start Bazar: the cluster and its dashboard. With a command first, do that "
        "instead (each command has its own --help, with an example).",
        epilog=_commands_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    cluster_options(parser)
    parser.add_argument("--headless", action="store_true",
                        help="no window: the cluster alone, with a prompt for commands (crash, hang, cut, ...); "
                             "Ctrl-C stops it")
    parser.add_argument("--open", metavar="RUN", dest="open_run",
                        help="replay a recorded run (a .jsonl.gz the window, check, scenario or simulate wrote) "
                             "instead of starting a cluster")
    parser.add_argument("--at", type=float, metavar="SECONDS",
                        help="with --open and --screenshot: the instant of the run to picture, in seconds from its "
                             "start")
    parser.add_argument("--screenshot", metavar="FILE", help="run a short scripted demo offscreen and save the window")
    parser.add_argument("--demo", type=float, default=6.0, metavar="SECONDS", help="length of that demo (default 6)")
    parser.add_argument("--measure-lag", type=float, metavar="SECONDS",
                        help="offscreen: load at 200 req/s with a catalog replica hung and report the window's "
                             "event-loop lag")
    parser.add_argument("--measure-scrub", type=int, nargs="?", const=60, metavar="MOVES",
                        help="with --open: offscreen, drag the slider a second a move, MOVES back and MOVES on (60) "
                             "on the busiest tabs, and print how long each move took to seek and paint (JSON lines; "
                             "bench --experiment runs uses it)")
    parser.add_argument("--tab", default="charts", choices=("live", "shop", "cluster", "charts", "cache", "replicas",
                                                             "flow", "scenarios", "experiments", "all"),
                        help="which tab the screenshot shows")
    parser.add_argument("--size", type=_size, default=(1440, 920), metavar="WxH",
                        help="the window's size (default 1440x920)")
    parser.add_argument("--scale", type=_scale, default=1.0, metavar="F",
                        help="the presenter scale to open at, as Ctrl + and Ctrl - set it (e.g. 1.5; default 1)")
    return parser


#: Every command, with its one line for ``launcher.py --help``; run as ``launcher.py COMMAND ...``.
COMMAND_LINES = {
    "trace": "send one lookup, search or buy through a fresh cluster and print its hops",
    "scenario": "replay a documented figure (S1-S12) or weak point (W1-W8) on real processes",
    "check": "buyers, readers and faults on real processes, then check the history",
    "simulate": "the nodes' own protocol code under a deterministic simulator, many seeds",
    "bench": "measure Bazar (and the documented code) and print the tables",
    "books": "write a catalog file of many books (seeded) for --books",
    "spacetime": "draw a recorded run, or a range of it, as a space-time diagram (SVG)",
}


def _commands_epilog() -> str:
    width = max(len(name) for name in COMMAND_LINES)
    lines = ["commands:"] + [f"  {name.ljust(width)}  {line}" for name, line in COMMAND_LINES.items()]
    lines += ["", "examples:", "  python3 launcher.py                       the window over the default 3 + 3 cluster",
              "  python3 launcher.py --headless            the cluster alone, until Ctrl-C",
              "  python3 launcher.py scenario S3           one figure on real processes",
              "  python3 launcher.py simulate --seeds 500  500 seeds of the simulator"]
    return "\n".join(lines)


def example(*lines: str) -> dict[str, Any]:
    """A subcommand parser's epilog: its examples, kept as written."""
    return {"epilog": "examples:\n" + "\n".join(f"  python3 launcher.py {line}" for line in lines),
            "formatter_class": argparse.RawDescriptionHelpFormatter}


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("give the size as WIDTHxHEIGHT, e.g. 1280x720") from None
    return width, height


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("give the sizes as whole numbers, e.g. 7,10000") from None
    if not sizes or not all(1 <= size <= 1_000_000 for size in sizes):
        raise argparse.ArgumentTypeError("each size is from 1 to 1,000,000 books")
    return sizes


def _scale(text: str) -> float:
    try:
        scale = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("give the scale as a number, e.g. 1.5") from None
    if not 0.75 <= scale <= 2.0:
        raise argparse.ArgumentTypeError("the scale goes from 0.75 to 2")
    return scale


def load_cluster(args: argparse.Namespace) -> Cluster:
    if args.attach and args.cluster:
        raise ClusterFileError("give --cluster FILE or --attach FILE, not both: --attach reads a cluster file too")
    cluster = load(args.attach or args.cluster)
    if args.attach and not cluster.attached:
        raise ClusterFileError(f"{args.attach} has no [attach] section naming the running nodes; see "
                               "assets/compose-attach.toml")
    return cluster.with_overrides(catalogs=args.catalogs, orders=args.orders, data_dir=args.data_dir, books=args.books)


def node_table(supervisor: Supervisor, *, with_status: bool = False) -> str:
    rows = [("role", "number", "address", "pid") + (("status",) if with_status else ())]
    for node in supervisor.nodes.values():
        number = "-" if node.role == "frontend" else str(node.index)
        row = (ROLE_LABEL[node.role], number, node.address, str(node.pid or "-"))
        rows.append(row + ((node.status,) if with_status else ()))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip() for row in rows)


def start_with_progress(supervisor: Supervisor, out=sys.stdout) -> None:
    """Start every node, printing one line as each comes up."""
    total = len(supervisor.nodes)
    started = time.monotonic()
    done: set[str] = set()
    lock = threading.Lock()

    def report(node: ManagedNode) -> None:
        with lock:
            if node.state == "up" and node.name not in done:
                done.add(node.name)
                print(f"  [{len(done)}/{total}] {ROLE_LABEL[node.role]:9} {node.name:9} up after "
                      f"{time.monotonic() - started:4.1f} s", file=out, flush=True)

    print(f"Starting {total} nodes (data in {supervisor.data_dir}) ...", file=out, flush=True)
    supervisor.listeners.append(report)
    try:
        supervisor.start_all()
        supervisor.wait_ready()
    finally:
        supervisor.listeners.remove(report)


HELP = """commands (NODE is frontend, catalog0, order1, ...):
  status                 every node's role, address, pid and status
  crash NODE             SIGKILL it; its database stays, its memory is gone
  hang NODE / resume NODE   SIGSTOP / SIGCONT: connections accepted, never answered
  slow NODE MS           add MS milliseconds to every answer it gives (0 = normal)
  cut NODE / heal NODE   drop all its traffic but admin and telemetry / restore it
  partition A B          cut the links between A and B both ways (messages are lost, calls time out)
  partition --one-way A B   cut only A -> B: B hears nothing from A, A still hears B
  heal                   (no node) restore every link a partition cut
  restart NODE           stop it cleanly and start it again (start NODE after a crash)
  disk NODE full|free    a catalog replica's database may not grow ("database or disk is full"), or may again
  abort NODE PATH P [response]   drop requests to PATH (a prefix) unanswered with probability P
                         (0 heals); with "response", handle them and drop the answers
  reset                  every replica's database back to the seven books
  log NODE               the last lines of its log
  quit                   stop every node and leave"""


async def control(supervisor: Supervisor, line: str) -> str:
    """Carry out one headless command; the answer to print."""
    words = line.split()
    if not words:
        return ""
    verb, rest = words[0].lower(), words[1:]
    if verb in ("help", "?"):
        return HELP
    if verb == "status":
        return node_table(supervisor, with_status=True)
    if verb == "reset":
        await supervisor.reset()
        return "every replica is back to the seven books"
    if verb == "partition":
        one_way = "--one-way" in rest
        names = [w for w in rest if w != "--one-way"]
        if len(names) != 2 or names[0] == names[1]:
            return "usage: partition [--one-way] NODE NODE"
        await nemesis.apply(supervisor, nemesis.fault("partition", *names, one_way=one_way))
        arrow = "no longer reaches" if one_way else "and"
        return f"{names[0]} {arrow} {names[1]}" + ("" if one_way else " no longer reach each other")
    if verb == "heal" and not rest:
        await supervisor.heal_partitions()
        return "every link is restored"
    if verb == "abort":
        try:
            path, p = rest[1], float(rest[2])
        except (IndexError, ValueError):
            return "usage: abort NODE PATH P [response]"
        direction = "response" if rest[3:4] == ["response"] else "request"
        if not 0 <= p <= 1 or not path.startswith("/"):
            return "usage: abort NODE PATH P [response] (PATH such as /rep/update/, P from 0 to 1)"
        await supervisor.abort(rest[0], path, p, direction)
        return f"{rest[0]}: " + (f"drops {p:.0%} of the {direction}s to {path}" if p else f"no longer aborts {path}")
    if verb == "disk":
        if len(rest) != 2 or rest[1] not in ("full", "free") or not rest[0].startswith("catalog"):
            return "usage: disk CATALOG full|free"
        broken = nemesis.fault("disk", rest[0])
        await (nemesis.apply if rest[1] == "full" else nemesis.heal)(supervisor, broken)
        return f"{rest[0]}: its database {'may not grow' if rest[1] == 'full' else 'may grow again'}"
    # One fault record, applied or healed, as the injector, the scenarios and the window do.
    breaks = {"crash": "crash", "hang": "hang", "cut": "cut", "restart": "restart", "slow": "slow"}
    heals = {"start": "crash", "resume": "hang", "heal": "cut"}
    if verb not in {*breaks, *heals, "stop", "log"}:
        return f"unknown command '{verb}'; type help"
    if not rest:
        return f"'{verb}' needs a node name; type help"
    name = rest[0]
    if verb == "stop":
        await asyncio.to_thread(supervisor.stop, name)
        return f"{name}: {supervisor.node(name).status}"
    if verb == "slow":
        if len(rest) != 2 or not rest[1].isdigit():
            return "usage: slow NODE MS"
        ms = int(rest[1])
        await (nemesis.apply if ms else nemesis.heal)(supervisor, nemesis.fault("slow", name, ms=ms))
        return f"{name}: {supervisor.node(name).status}"
    if verb in breaks:
        await nemesis.apply(supervisor, nemesis.fault(breaks[verb], name))
    elif verb in heals:
        await nemesis.heal(supervisor, nemesis.fault(heals[verb], name), wait_ready=verb == "start")
    if verb in breaks or verb in heals:
        return f"{name}: {supervisor.node(name).status}"
    return supervisor.log_tail(name, 30)  # verb == "log"


async def headless(supervisor: Supervisor) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if not supervisor.cluster.attached:
        await asyncio.to_thread(start_with_progress, supervisor)
    await supervisor.wait_settled()
    print(node_table(supervisor), flush=True)
    print(f"\nfront-end: {supervisor.frontend.address}   (try: curl {supervisor.frontend.address}/search/t)",
          flush=True)
    print("Type help for commands (crash, hang, slow, cut, ...). Ctrl-C stops every node.", flush=True)

    lines: asyncio.Queue[str] = asyncio.Queue()
    # The prompt is read on a thread of its own that nothing waits for: one of the loop's
    # executor would hold the loop's closing up until a line came, and a signal (Ctrl-C,
    # `timeout`) then left every node running.
    threading.Thread(target=_read_prompt, args=(loop, lines), name="prompt", daemon=True).start()

    async def commands() -> None:
        while True:
            line = await lines.get()
            if not line:
                return  # no terminal (or it closed): keep running until a signal
            if line.strip().lower() in ("quit", "exit"):
                stop.set()
                return
            try:
                answer = await control(supervisor, line)
            except ClusterError as exc:
                answer = f"cannot: {exc}"
            if answer:
                print(answer, flush=True)

    reader = asyncio.create_task(commands())
    await stop.wait()
    reader.cancel()
    await supervisor.aclose()


def _read_prompt(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str]) -> None:
    """Hand every line typed to ``lines``, then "" at the end of the input."""
    for line in itertools.chain(iter(sys.stdin.readline, ""), [""]):
        try:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        except RuntimeError:
            return  # the loop has closed: the launcher is stopping


def run_headless(args: argparse.Namespace) -> int:
    supervisor = Supervisor(load_cluster(args))
    try:
        asyncio.run(headless(supervisor))
        print("\nStopping ...", flush=True)
    finally:
        supervisor.close()
    print("All nodes stopped.", flush=True)
    os._exit(0)  # the stdin reader thread may still be blocked in readline


TRACE_REQUESTS = {"lookup": ("GET", "/lookup/{}"), "search": ("GET", "/search/{}"), "buy": ("PUT", "/buy/{}")}


def run_trace(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="launcher.py trace", description="Send one request through a fresh cluster (or an attached one) "
        "and print its path as numbered hops: from, to, message, answer, milliseconds.",
        **example("trace lookup 2", "trace buy 3 --catalogs 2", "trace search distributed"))
    parser.add_argument("operation", choices=sorted(TRACE_REQUESTS))
    parser.add_argument("argument", help="the book id (lookup, buy) or the topic (search)")
    cluster_options(parser)
    args = parser.parse_args(argv)
    cluster = load_cluster(args)
    # A fresh cluster: its own empty folder (so the seven books as the files have them, and no
    # clash with a window running on data/), unless a folder is asked for or the nodes are attached.
    fresh = None if cluster.attached or args.data_dir else tempfile.mkdtemp(prefix="bazar-trace-")
    if fresh is not None:
        cluster = cluster.with_overrides(data_dir=fresh)
    supervisor = Supervisor(cluster)
    try:
        return asyncio.run(_trace(supervisor, args.operation, args.argument))
    finally:
        supervisor.close()
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)


async def _trace(supervisor: Supervisor, operation: str, argument: str) -> int:
    import aiohttp

    from nodes.core.telemetry import TRACE_HEADER, new_trace_id
    from nodes.observe.follower import fetch_trace

    if not supervisor.cluster.attached:
        await asyncio.to_thread(start_with_progress, supervisor, sys.stderr)
    try:
        await supervisor.wait_settled()
        method, path = TRACE_REQUESTS[operation]
        path = path.format(quote(argument, safe=""))
        trace_id = new_trace_id()
        async with aiohttp.ClientSession() as session:
            async with session.request(method, supervisor.frontend.address + path,
                                       headers={TRACE_HEADER: trace_id}) as resp:
                body = await resp.text()
        print(f"{method} {path}  ->  {resp.status}  {body[:160]}")
        print(f"trace {trace_id}")
        for line in (await fetch_trace(supervisor, trace_id)).lines():
            print("  " + line)
        return 0
    finally:
        await supervisor.aclose()


def run_bench(argv: list[str]) -> int:
    import json

    from tqdm import tqdm

    from nodes.bench.common import Context, Progress
    from nodes.bench.experiments import EXPERIMENTS
    from nodes.bench.load_fault import FAULTS

    parser = argparse.ArgumentParser(
        prog="launcher.py bench", description="Reproduce the documents' measurement tables on Bazar itself.",
        **example("bench --experiment outages --count 100", "bench --experiment load --against documented"))
    parser.add_argument("--experiment", choices=sorted(EXPERIMENTS), action="append",
                        help="run only this experiment (repeatable; default: all)")
    parser.add_argument("--count", type=int, default=200, help="requests per measurement (default 200)")
    parser.add_argument("--json", metavar="FILE", help="also write the tables as JSON")
    parser.add_argument("--against", metavar="URL[,...]",
                        help="load experiment: also load these front-ends, in turn with Bazar; 'documented' starts "
                             "the documented code rebuilt from its document (needs flask and requests), "
                             "'skeleton' and 'skeleton-no-check' Bazar's message shapes with nothing else")
    parser.add_argument("--fault", choices=list(FAULTS), default="hang",
                        help="load-fault experiment: what breaks 5 s in (default hang): " +
                             "; ".join(f"{k}: {v}" for k, v in FAULTS.items()))
    parser.add_argument("--heal-at", type=float, metavar="S",
                        help="load-fault experiment: heal the fault S seconds into the run (default: never)")
    parser.add_argument("--minutes", type=float, default=10.0, metavar="M",
                        help="runs experiment: how long the recorded session lasts (default 10)")
    parser.add_argument("--buys", type=int, default=1_000_000, metavar="N",
                        help="scale experiment: the long day's buys, memory read after 10,000 and after N "
                             "(default 1,000,000; 0: no long day)")
    parser.add_argument("--sizes", type=_sizes, default=(7, 10_000, 100_000), metavar="LIST",
                        help="scale experiment: the catalog sizes (default 7,10000,100000)")
    cluster_options(parser)
    args = parser.parse_args(argv)
    names = args.experiment or list(EXPERIMENTS)
    bar = tqdm(total=0, unit="req", dynamic_ncols=True, file=sys.stderr)

    def show(done: int, total: int, what: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_description(what[:40])
        bar.refresh()

    context = Context(Progress(show), count=args.count, against=args.against, fault=args.fault,
                      heal_at=args.heal_at, minutes=args.minutes, buys=args.buys, sizes=args.sizes)
    if args.cluster or args.attach or args.catalogs or args.orders:
        context.cluster_file = load_cluster(args)
    tables = []
    try:
        for name in names:
            title, experiment = EXPERIMENTS[name]
            for table in asyncio.run(experiment(context)):
                tables.append(table)
                bar.clear()
                print(table.render() + "\n", flush=True)
    finally:
        bar.close()
    if args.json:
        Path(args.json).write_text(json.dumps([t.as_dict() for t in tables], indent=2))
    return 0


def run_check(argv: list[str]) -> int:
    import time

    from nodes.control.fault_run import fault_run
    from nodes.control.nemesis import ACTIONS

    parser = argparse.ArgumentParser(
        prog="launcher.py check", description="Buyers and readers through the front-end while replicas are crashed, "
        "hung, cut off and restarted at random; then check the history. Exit status 0 only when nothing is wrong.",
        **example("check --seconds 60", "check --seconds 30 --seed 7 --faults crash,partition"))
    parser.add_argument("--seconds", type=float, default=60, help="how long faults and load go on (default 60)")
    parser.add_argument("--seed", type=int, default=None, help="seed for faults and requests (default: a new one)")
    parser.add_argument("--faults", default=",".join(ACTIONS), metavar="LIST",
                        help=f"comma-separated, from {','.join(ACTIONS)} (default all); 'none' for no faults")
    parser.add_argument("--buyers", type=int, default=4)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--stock", type=int, default=1000, help="copies of each book at the start (default 1000)")
    parser.add_argument("--record", metavar="FILE", help=RECORD_HELP)
    cluster_options(parser)
    args = parser.parse_args(argv)
    faults = () if args.faults == "none" else tuple(f.strip() for f in args.faults.split(",") if f.strip())
    unknown = [f for f in faults if f not in ACTIONS]
    if unknown:
        parser.error(f"unknown fault {', '.join(unknown)}; choose from {', '.join(ACTIONS)}")
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    supervisor = Supervisor(load_cluster(args))

    async def go() -> int:
        recording = None
        try:
            if not supervisor.cluster.attached:
                await asyncio.to_thread(start_with_progress, supervisor, sys.stderr)
            await supervisor.wait_settled()
            if args.record:
                from nodes.runs.follow import FollowedRun

                recording = await FollowedRun.start(supervisor, args.record, f"check seed {seed}")
            verdict = await fault_run(supervisor, args.seconds, seed=seed, buyers=args.buyers,
                                      readers=args.readers, stock=args.stock, faults=faults,
                                      say=lambda m: print(m, file=sys.stderr, flush=True))
            if recording is not None:
                recording.blame(verdict.anomalies)
            saved = supervisor.cluster.data_dir / f"check-seed{seed}.jsonl"
            verdict.history.save(saved)
            print(verdict.render(), flush=True)
            print(f"history saved to {saved} (JSON lines; replay the seed with --seed {seed})", flush=True)
            return 0 if verdict.passed else 1
        finally:
            try:
                if recording is not None:  # also on failure and Ctrl-C: a complete run up to here
                    print(await recording.close(), flush=True)
            finally:
                await supervisor.aclose()

    try:
        return asyncio.run(go())
    except KeyboardInterrupt:
        print("launcher.py check: interrupted", file=sys.stderr, flush=True)
        return 130
    finally:
        supervisor.close()


RECORD_HELP = ("also record the run to FILE (gzipped JSON lines, e.g. run.jsonl.gz): every node's telemetry, "
               "the faults and what the command found, to open again and replay")


def _record_path(record: str, scenario_id: str, several: bool) -> Path:
    """Where ``scenario --record FILE`` records one scenario: FILE, or with several, FILE with
    the scenario's id before its suffix (run-S3.jsonl.gz)."""
    path = Path(record)
    if not several:
        return path
    name = path.name
    suffix = next((s for s in (".jsonl.gz", ".gz") if name.endswith(s) and name != s), path.suffix)
    return path.with_name(f"{name[:len(name) - len(suffix)]}-{scenario_id}{suffix}")


def run_scenario(argv: list[str]) -> int:
    import tempfile

    from nodes.session.scenarios import Player, ScenarioError, load, load_all

    parser = argparse.ArgumentParser(
        prog="launcher.py scenario", description="Replay a documented figure (S1-S12) or a weak point (W1-W7) on a "
        "real cluster: build its starting state, send its request, print the hops and the verdict.",
        **example("scenario            (lists them)", "scenario S3", "scenario --all"))
    parser.add_argument("names", nargs="*", metavar="NAME", help="scenario ids (S3) or files; none lists them")
    parser.add_argument("--all", action="store_true", help="play every scenario")
    parser.add_argument("--data-dir", metavar="DIR", help="where the scenario clusters keep their files")
    parser.add_argument("--record", metavar="FILE", help=RECORD_HELP + " (with several scenarios, one file each: "
                        "FILE-S3.jsonl.gz, ...)")
    args = parser.parse_args(argv)
    try:
        scenarios = load_all() if args.all else [load(name) for name in args.names]
    except ScenarioError as exc:
        print(f"launcher.py scenario: {exc}", file=sys.stderr)
        return 2
    if not scenarios:
        for scenario in load_all():
            print(f"{scenario.id:4} {scenario.title}" + (f"  ({scenario.figure})" if scenario.figure else ""))
        return 0
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="bazar-scenarios-"))
    record = None
    if args.record:
        record = lambda s: _record_path(args.record, s.id, len(scenarios) > 1)  # noqa: E731
    player = Player(data_dir, say=lambda message: print(f"  · {message}", file=sys.stderr, flush=True), record=record)
    failures = 0
    for scenario in scenarios:
        print(f"{scenario.id} — {scenario.title}")
        player.recorded = None
        try:
            outcome = asyncio.run(player.play(scenario))
        except KeyboardInterrupt:
            if player.recorded is not None:
                print(player.recorded, flush=True)
            print("launcher.py scenario: interrupted", file=sys.stderr, flush=True)
            return 130
        for number, (hop, sentence) in enumerate(zip(outcome.hops, outcome.sentences(), strict=True), start=1):
            print(f"  [{number}] {hop.source} → {hop.target}  {hop.label}  →  {hop.answer}  ({hop.ms:.1f} ms)")
            print(f"      {sentence}")
        print("  " + outcome.verdict().replace("\n", "\n  ") + "\n", flush=True)
        if player.recorded is not None:
            print(player.recorded, flush=True)
        failures += not outcome.matched
    return 1 if failures else 0


def run_simulate(argv: list[str]) -> int:
    from nodes.sim.cli import simulate_command

    def record_seed(options, path):  # imported only when a run is recorded (--record)
        from nodes.runs.from_sim import record_seed

        return record_seed(options, path)

    return simulate_command(argv, record=record_seed)


def run_books(argv: list[str]) -> int:
    from nodes.core.books import CatalogFileError, generate_catalog, write_catalog

    parser = argparse.ArgumentParser(
        prog="launcher.py books", description="Write a catalog file of COUNT books (ids 1 to COUNT), the same "
        "for the same count and seed, for a cluster to start from (--books FILE, or books in the cluster file).",
        **example("books --count 10000 --out books.csv          then: python3 launcher.py --books books.csv",
                  "books --count 1000 --seed 7 --out books.json"))
    parser.add_argument("--count", type=int, required=True, help="how many books (1 to 1,000,000)")
    parser.add_argument("--out", required=True, metavar="FILE", help="where to write it: .csv, or JSON otherwise")
    parser.add_argument("--seed", type=int, default=1, help="the generator's seed (default 1)")
    args = parser.parse_args(argv)
    try:
        books = generate_catalog(args.count, args.seed)
        write_catalog(books, Path(args.out))
    except CatalogFileError as bad:
        print(f"launcher.py books: {bad}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"launcher.py books: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {len(books):,} books to {args.out}; start a cluster from it with --books {args.out}")
    return 0


def run_spacetime(argv: list[str]) -> int:
    from nodes.runs.runfile import RunFileError
    from nodes.runs.spacetime import LIMIT, SpaceTimeError
    from nodes.runs.spacetime_svg import draw_run

    parser = argparse.ArgumentParser(
        prog="launcher.py spacetime", description="Draw a recorded run (or the range --from S --to S of it, in "
        "seconds from its start) as a space-time diagram: a line per node, an arrow per message in causal order, "
        "faults as bands, anomalies across; written as a standalone SVG.",
        **example("spacetime run.jsonl.gz --out run.svg", "spacetime run.jsonl.gz --out crash.svg --from 12 --to 15"))
    parser.add_argument("run", metavar="FILE", help="a run file (.jsonl.gz: the window's, check --record, ...)")
    parser.add_argument("--out", required=True, metavar="SVG", help="where to write the picture")
    parser.add_argument("--from", dest="from_s", type=float, metavar="S", help="from S seconds into the run")
    parser.add_argument("--to", dest="to_s", type=float, metavar="S", help="to S seconds into the run")
    parser.add_argument("--max", type=int, default=LIMIT, metavar="N",
                        help=f"draw at most N messages, whole requests chosen (default {LIMIT})")
    args = parser.parse_args(argv)
    try:
        print(draw_run(args.run, args.out, args.from_s, args.to_s, limit=max(1, args.max)))
    except (RunFileError, SpaceTimeError) as bad:
        print(f"launcher.py spacetime: {bad}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"launcher.py spacetime: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


COMMANDS = {"trace": run_trace, "bench": run_bench, "check": run_check, "scenario": run_scenario,
            "simulate": run_simulate, "books": run_books, "spacetime": run_spacetime}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] in COMMANDS:
            return COMMANDS[argv[0]](argv[1:])
        args = build_parser().parse_args(argv)
        if args.headless:
            return run_headless(args)
        from gui.app import RunOptions, run_window

        width, height = args.size
        options = RunOptions(args.screenshot, args.demo, args.tab, args.measure_lag, width, height, args.scale,
                             open_run=args.open_run, at=args.at, measure_scrub=args.measure_scrub)
        if args.measure_scrub is not None and not args.open_run:
            print("launcher.py: --measure-scrub goes with --open RUN (the run whose slider it drags)", file=sys.stderr)
            return 2
        if args.at is not None and not (args.open_run and args.screenshot):
            print("launcher.py: --at goes with --open RUN --screenshot FILE (the instant to picture)", file=sys.stderr)
            return 2
        return run_window(load_cluster(args) if not args.open_run else Cluster(), options)
    except (ClusterFileError, ClusterError) as exc:
        print(f"launcher.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

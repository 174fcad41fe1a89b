"""``python3 launcher.py simulate``: many seeds, or one replayed, with what was found."""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from nodes.core.catalog import MODES, Mode
from nodes.core.clocks import MAX_DRIFT, MAX_ERROR_S
from nodes.sim.run import (
    FAULT_KINDS,
    Exploration,
    Options,
    Result,
    explore,
    render_failure,
    render_history,
    shrink,
    simulate,
)

CHUNK = 200

#: Runs one seed while it records it to a run file, and says what it wrote: ``--record``.
#: The launcher hands it over (``nodes/runs/from_sim.py``), as this layer may not import that one.
Record = Callable[[Options, str], tuple[Result, str]]


def _faults(text: str) -> tuple[str, ...]:
    if text in ("", "none"):
        return ()
    if text == "all":
        return FAULT_KINDS
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown fault {', '.join(unknown)}; choose from {', '.join(FAULT_KINDS)}")
    return kinds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="launcher.py simulate",
        description="Run the nodes' own protocol code in a deterministic simulation: a seeded scheduler, a "
        "virtual clock, a network that delays, drops, duplicates and reorders, and crashes, restarts, pauses "
        "and cut-offs, while buyers and readers go through the front-end. Every history is checked. Exit "
        "status 0 only when nothing is wrong; a failure prints its seed, and --seed replays it exactly.",
        epilog="examples:\n  python3 launcher.py simulate --seeds 2000 --jobs 2\n"
               "  python3 launcher.py simulate --seed 1234\n"
               "  python3 launcher.py simulate --mode documented --faults cut --seeds 50",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--seeds", type=int, default=200, help="how many seeds to run (default 200)")
    which.add_argument("--seed", type=int, help="replay one seed and print its history's digest")
    parser.add_argument("--first-seed", type=int, default=1, help="the first of --seeds (default 1)")
    parser.add_argument("--mode", choices=MODES, default=Mode.BAZAR.value,
                        help="bazar (default), or documented: docs/protocol.md's rules with their weak points")
    parser.add_argument("--faults", type=_faults, default=FAULT_KINDS, metavar="LIST",
                        help=f"comma-separated, from {','.join(FAULT_KINDS)}; 'all' (default) or 'none'")
    parser.add_argument("--catalogs", type=int, default=3, help="catalog replicas (default 3)")
    parser.add_argument("--orders", type=int, default=2, help="order replicas (default 2)")
    parser.add_argument("--seconds", type=float, default=Options.seconds,
                        help=f"simulated seconds of load and faults per seed (default {Options.seconds:g})")
    parser.add_argument("--buyers", type=int, default=Options.buyers, help=f"(default {Options.buyers})")
    parser.add_argument("--readers", type=int, default=Options.readers, help=f"(default {Options.readers})")
    parser.add_argument("--stock", type=int, default=Options.stock,
                        help=f"copies of each book at the start (default {Options.stock}); many buyers and a large "
                             "stock make buys of one book ride on one write (group commits)")
    parser.add_argument("--books", type=int, metavar="N",
                        help="a generated catalog of N books (default: the documents' seven); large ones test "
                             "that the heartbeat's deltas and catch-up hold at a size where whole copies cost")
    clocks = parser.add_argument_group(
        "clocks", "Every node reads a clock of its own: an offset, a rate and (with the 'clock' fault) steps "
        f"either way. Bazar's leases are safe while clocks stay within {MAX_DRIFT:.0%} of true time in rate and "
        f"{MAX_ERROR_S * 1000:g} ms in steps (docs/weak-points.md, 'Clocks'); beyond that the simulator finds "
        "stale reads.")
    clocks.add_argument("--drift", type=float, default=MAX_DRIFT, metavar="RATE",
                        help=f"how far a node's clock may run fast or slow, 0.01 = 1%% (default {MAX_DRIFT:g})")
    clocks.add_argument("--clock-error", type=float, default=MAX_ERROR_S, metavar="SECONDS",
                        help=f"how far a clock may step from a steady one (default {MAX_ERROR_S:g})")
    clocks.add_argument("--steady-clocks", action="store_true",
                        help="one perfect clock for every node, as the simulator had before clocks (old seeds)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes for --seeds (default 1)")
    parser.add_argument("--keep-going", action="store_true", help="do not stop at the first failing seed")
    parser.add_argument("--history", metavar="FILE", help="with --seed: save the history as JSON lines")
    parser.add_argument("--record", metavar="FILE",
                        help="with --seed: also record the run to FILE (gzipped JSON lines, e.g. seed.jsonl.gz): "
                             "every node's telemetry, the faults and the anomalies found, to open in the window "
                             "(python3 launcher.py --open FILE)")
    return parser


def _chunk(args: tuple[Options, int, int, bool]) -> Exploration:
    options, first, last, keep_going = args
    return explore(options, range(first, last), stop_at_first=not keep_going)


def simulate_command(argv: list[str], record: Record | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.record and (args.seed is None or record is None):
        print("launcher.py simulate: --record goes with --seed (one seed's run)" if args.seed is None
              else "launcher.py simulate: this entry point cannot record runs", file=sys.stderr)
        return 2
    if args.catalogs < 1 or args.orders < 1 or args.seconds <= 0:
        print("launcher.py simulate: --catalogs and --orders must be at least 1, --seconds above 0", file=sys.stderr)
        return 2
    if args.books is not None and not 1 <= args.books <= 100_000:
        print("launcher.py simulate: --books must be from 1 to 100,000", file=sys.stderr)
        return 2
    if not 0 <= args.drift < 1 or args.clock_error < 0:
        print("launcher.py simulate: --drift must be at least 0 and below 1, --clock-error at least 0", file=sys.stderr)
        return 2
    options = Options(mode=args.mode, faults=args.faults, catalogs=args.catalogs, orders=args.orders,
                      seconds=args.seconds, buyers=args.buyers, readers=args.readers, stock=args.stock,
                      books=args.books,
                      clocks=not args.steady_clocks, drift=args.drift, clock_error=args.clock_error)
    if args.seed is not None:
        recording = None if record is None or not args.record else (record, args.record)
        return _replay(replace(options, seed=args.seed), args.history, recording)
    return _explore(options, args.first_seed, args.seeds, args.jobs, args.keep_going)


def _replay(options: Options, history_file: str | None, recording: tuple[Record, str] | None = None) -> int:
    said = None
    if recording is None:
        result = simulate(options)
    else:
        record, path = recording
        result, said = record(options, path)
    lines = result.history.lines()
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    print(f"seed {options.seed}, mode {options.mode}: {result.history.summary()}")
    print(f"simulated {result.sim_s:.1f} s in {result.wall_s:.2f} s ({result.sim_s / result.wall_s:.0f} simulated "
          f"seconds per second), {result.events} events; history digest {digest}")
    if history_file:
        from pathlib import Path

        result.history.save(Path(history_file))
        print(f"history saved to {history_file} ({len(lines)} lines)")
    if said is not None:
        print(said)
    if result.passed:
        print("verdict: PASS")
        return 0
    print(render_failure(result))
    around = next((a.at for a in result.anomalies if a.at is not None), None)
    print("history around the first anomaly:\n" + render_history(result, around))
    return 1


def _each(results: Any) -> Iterator[Any]:
    """A pool's results as they come, the main thread waking twice a second while it waits: a
    Ctrl-C handled by another thread only flags it, and the main thread blocked in the pool's
    wait for a chunk (up to ~40 s) saw it only then — once in the suite the command was still
    running 10 s after its SIGINT, its main thread in ``IMapIterator.next``."""
    while True:
        try:
            yield results.next(timeout=0.5)
        except multiprocessing.TimeoutError:
            continue
        except StopIteration:
            return


def _explore(options: Options, first: int, count: int, jobs: int, keep_going: bool) -> int:
    from tqdm import tqdm

    chunks = [(options, start, min(start + CHUNK, first + count), keep_going)
              for start in range(first, first + count, CHUNK)]
    total = Exploration()
    stopped = False
    # Workers leave Ctrl-C to this process, which stops them at once: waiting for each one's
    # chunk of seeds to end took ~40 s and ended in a traceback.
    pool, bar = None, None
    try:
        # Started with Ctrl-C held back: the pool's and the bar's threads keep it blocked, so it
        # reaches the main thread, and never halfway through starting the pool (which then
        # hung at exit, its workers left running).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            pool = multiprocessing.get_context().Pool(max(1, jobs), initializer=signal.signal,
                                                      initargs=(signal.SIGINT, signal.SIG_IGN))
            bar = tqdm(total=count, unit="seed", file=sys.stderr, dynamic_ncols=True,
                       desc=f"simulating ({options.mode} mode)")
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        for found in _each(pool.imap(_chunk, chunks)):
            for key in ("seeds", "operations", "faults", "events"):
                setattr(total, key, getattr(total, key) + getattr(found, key))
            total.sim_s += found.sim_s
            for outcome, n in found.buys.items():
                total.buys[outcome] = total.buys.get(outcome, 0) + n
            total.wall_s += found.wall_s
            total.failures += found.failures
            bar.update(found.seeds)
            if found.failures and not keep_going:
                break
    except KeyboardInterrupt:
        stopped = True
    finally:
        # A second Ctrl-C (an impatient hand; a wrapper such as timeout passing its own on)
        # does not cut the clean-up short: it ended in a traceback, raised in the pool's
        # terminate, with the summary never printed.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if bar is not None:
                bar.close()
            if pool is not None:  # None: Ctrl-C came while the workers were being started
                pool.terminate()
                pool.join()
        finally:
            signal.signal(signal.SIGINT, previous)
    if stopped:
        print(f"stopped (Ctrl-C) after {total.seeds} of {count} seeds; what they found:")
    rate = total.sim_s / total.wall_s if total.wall_s else 0.0
    clocks = (f"clocks within {options.drift:g} in rate and {options.clock_error * 1000:g} ms in steps"
              if options.clocks else "steady clocks")
    print(f"seeds run: {total.seeds} (from {first}), mode {options.mode}, faults "
          f"{','.join(options.faults) or 'none'}, {options.catalogs} catalog and {options.orders} order replicas, "
          f"{clocks}, {options.books or 7:,} books")
    print(f"simulated {total.sim_s / 3600:.2f} h with {total.operations} client operations, {total.faults} faults "
          f"and {total.events} events; {rate:.0f} simulated seconds per second of one worker")
    print("buys: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(total.buys.items()))
          + " ('failed': refused or unreachable; the checker makes sure none of them changed anything)")
    failures = sorted(total.failures, key=lambda r: r.options.seed)
    print(f"failing seeds: {len(failures)}" + (f" ({', '.join(str(r.options.seed) for r in failures[:20])})"
                                               if failures else ""))
    if stopped:  # no verdict on seeds not run, and no shrinking: Ctrl-C asked to be done
        print("verdict: none, stopped before the end" + (" (replay a failing seed with --seed N)" if failures else ""))
        return 130
    if not failures:
        print("verdict: PASS")
        return 0
    first_failure = failures[0]
    print("shrinking the first failure…", file=sys.stderr, flush=True)
    smallest = shrink(first_failure)
    print(render_failure(first_failure))
    if smallest is not first_failure:
        print(f"smallest failing run found: {len(smallest.schedule)} of {len(first_failure.schedule)} faults, "
              f"{smallest.options.buyers} buyers, {smallest.options.readers} readers, "
              f"{smallest.options.seconds:g} s; its history ({len(smallest.history.operations)} operations):")
        print(render_failure(smallest).split("\n", 1)[1])
    around = next((a.at for a in smallest.anomalies if a.at is not None), None)
    print("history around the first anomaly:\n" + render_history(smallest, around))
    print("verdict: FAIL")
    return 1

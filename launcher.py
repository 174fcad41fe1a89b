#!/usr/bin/env python3
"""Bazar's one entry point.

    python launcher.py                      the window, over a freshly started cluster
    python launcher.py --headless           the cluster alone, until Ctrl-C

Every mode takes --cluster FILE, --catalogs N, --orders N and --data-dir DIR.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nodes.control.clusterfile import Cluster, ClusterFileError, load  # noqa: E402
from nodes.control.supervisor import ClusterError, ManagedNode, Supervisor  # noqa: E402

ROLE_LABEL = {"frontend": "front-end", "catalog": "catalog", "order": "order"}


def cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", metavar="FILE", help="cluster file (default assets/cluster.toml)")
    parser.add_argument("--catalogs", type=int, metavar="N", help="catalog replicas (overrides the file)")
    parser.add_argument("--orders", type=int, metavar="N", help="order replicas (overrides the file)")
    parser.add_argument("--data-dir", metavar="DIR", help="folder for databases and logs (overrides the file)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="launcher.py", description="Start Bazar: the cluster and its dashboard.")
    cluster_options(parser)
    parser.add_argument("--headless", action="store_true", help="no window: start the cluster and wait for Ctrl-C")
    return parser


def load_cluster(args: argparse.Namespace) -> Cluster:
    cluster = load(args.cluster)
    return cluster.with_overrides(catalogs=args.catalogs, orders=args.orders, data_dir=args.data_dir)


def node_table(supervisor: Supervisor) -> str:
    rows = [("role", "number", "address", "pid")]
    for node in supervisor.nodes.values():
        number = "-" if node.role == "frontend" else str(node.index)
        rows.append((ROLE_LABEL[node.role], number, node.address, str(node.pid or "-")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
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


def run_headless(args: argparse.Namespace) -> int:
    supervisor = Supervisor(load_cluster(args))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        if not supervisor.cluster.attached:
            start_with_progress(supervisor)
        print(node_table(supervisor), flush=True)
        print(f"\nfront-end: {supervisor.frontend.address}   (try: curl {supervisor.frontend.address}/search/t)",
              flush=True)
        print("Press Ctrl-C to stop every node.", flush=True)
        stop.wait()
        print("\nStopping ...", flush=True)
    finally:
        supervisor.close()
    print("All nodes stopped.", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.headless:
            return run_headless(args)
        from gui.app import run_window

        return run_window(args)
    except (ClusterFileError, ClusterError) as exc:
        print(f"launcher.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Recording a run from a live cluster while a command plays on it (``launcher.py check --record
FILE``, ``launcher.py scenario S3 --record FILE``), in the run file's format (``runfile.py``).

A ``FollowedRun`` follows the cluster as the window does — the follower feeds a model every node's
telemetry, the supervisor's process states and the clock — and the model's tap writes every
input to the file. Nobody draws that model, so it only records (``following`` off): a recording
costs the command what the streams and the writer cost, and nothing when it is not asked for.
What the command knows besides goes in as observations: a line for a node's log (``note``: a
scenario's steps), and the anomalies a checker found (``blame``), each at the time of the
operation concerned, naming the traces of the operations it blames.

``close`` ends it, on success, failure or Ctrl-C alike: the file is a complete run up to there
(the writer keeps it so after every flush, and a process killed outright loses half a second)."""
from __future__ import annotations

import asyncio
import heapq
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodes.control.errors import ClusterError
from nodes.core.books import seed_books
from nodes.observe.follower import Follower
from nodes.observe.model import ClusterModel
from nodes.observe.observations import Anomaly, LogNote
from nodes.runs.runfile import Header, Input, RunWriter, read_run, write_run
from nodes.verify import checker

#: Before the streams are closed, the recording waits until no input came for this long (the
#: last events a node sent are on their way), and never longer than ``DRAIN_S`` in all.
QUIET_S = 0.15
DRAIN_S = 1.0


@dataclass(frozen=True)
class Recorded:
    """What a finished recording says of itself."""

    path: Path
    count: int
    seconds: float
    error: str | None = None  # why writing stopped early (a full disk), if it did

    def __str__(self) -> str:
        line = f"recorded run: {self.path} ({self.count:,} inputs, {self.seconds:.1f} s)"
        return line if self.error is None else f"{line}; {self.error}"


def header_of(supervisor: Any, model: ClusterModel, source: str) -> Header:
    """A run's header for ``supervisor``'s cluster: its nodes, which catalog each order replica
    talks to, and the books its catalog file starts from."""
    books = tuple((b.id, b.title, b.topic, b.price, b.quantity) for b in seed_books(supervisor.cluster.books))
    return Header(source, {name: view.address for name, view in model.nodes.items()}, dict(model.catalog_of), books)


def anomaly_inputs(anomalies: Iterable[checker.Anomaly], *, offset: float, nodes: Iterable[str],
                   end: float) -> list[tuple[float, Anomaly]]:
    """Each anomaly a checker found as a run's input, oldest first: stamped at the time of the
    operation concerned (the history's clock plus ``offset`` is the wall clock; one the checker
    times at no moment, a divergence say, at ``end``), marked on the node it concerns most (where
    a blamed read was answered, else the first node its message names, else the front-end), and
    naming the trace of every operation it blames that had one."""
    names = list(nodes)
    out = []
    for anomaly in anomalies:
        at = end if anomaly.at is None else anomaly.at + offset
        traces = tuple(dict.fromkeys(op.trace for op in anomaly.operations if op.trace))
        out.append((at, Anomaly(at, _node_of(anomaly, names), f"{anomaly.kind}: {anomaly.message}", traces)))
    out.sort(key=lambda record: record[0])
    return out


def _node_of(anomaly: checker.Anomaly, names: list[str]) -> str:
    for op in anomaly.operations:
        if op.where in names and op.where != "frontend":
            return op.where
    named = [(found.start(), name) for name in names
             if (found := re.search(rf"\b{re.escape(name)}\b", anomaly.message)) is not None]
    if named:
        return min(named)[1]
    return "frontend" if "frontend" in names or not names else names[0]


class FollowedRun:
    """Records ``supervisor``'s running cluster to ``path`` from ``start`` until ``close``."""

    def __init__(self, supervisor: Any, path: str | Path, source: str) -> None:
        self.model = ClusterModel.for_supervisor(supervisor)
        self.model.following = False  # recorded, never drawn: the model need not apply a thing
        self.header = header_of(supervisor, self.model, source)
        try:
            self.writer = RunWriter(path, self.header)
        except OSError as error:  # the launcher says a ClusterError in plain words
            raise ClusterError(f"cannot record to {path}: {error.strerror or error}") from None
        self.model.tap = self._tap
        self.follower = Follower(self.model, supervisor.secret)
        #: The wall clock minus the monotonic one: a history's times (monotonic) to the run's.
        self.offset = time.time() - time.monotonic()
        self.started = time.time()
        self._last_input = time.monotonic()
        self._blamed: list[tuple[float, Anomaly]] = []
        self._result: Recorded | None = None

    @classmethod
    async def start(cls, supervisor: Any, path: str | Path, source: str) -> FollowedRun:
        """Start recording a cluster that is up (on the running loop)."""
        run = cls(supervisor, path, source)
        try:
            run.follower.watch(supervisor)
            await run.follower.start()
        except BaseException:
            await run.close()
            raise
        return run

    @property
    def path(self) -> Path:
        assert self.writer.path is not None
        return self.writer.path

    def _tap(self, at: float, item: Input) -> None:
        self._last_input = time.monotonic()
        self.writer.add(item, at)

    # ---- what the command knows besides ----------------------------------------------------
    def note(self, node: str, text: str) -> None:
        """A line for ``node``'s log, now (a scenario's step, say)."""
        now = time.time()
        self.model.apply(LogNote(node, text, now))

    def blame(self, anomalies: Iterable[checker.Anomaly]) -> None:
        """The anomalies a checker found in the command's history (monotonic times): written at
        their times when the recording closes."""
        self._blamed += anomaly_inputs(anomalies, offset=self.offset, nodes=self.header.nodes, end=time.time())

    # ---- the end -------------------------------------------------------------------------------
    async def close(self) -> Recorded:
        """Stop following and close the file (once; again, the same answer)."""
        if self._result is not None:
            return self._result
        try:
            await self._drain()
        finally:
            try:
                await self.follower.stop()
            finally:
                self.model.tap = None  # on the loop, where the follower's last inputs may still come
                self._result = await asyncio.to_thread(self._finish)
        return self._result

    async def _drain(self) -> None:
        """Let the events the nodes sent last arrive: until the streams are quiet, a moment at most."""
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and time.monotonic() - self._last_input < QUIET_S:
            await asyncio.sleep(QUIET_S / 3)  # polling the streams' quiet, bounded by DRAIN_S

    def _finish(self) -> Recorded:
        self.writer.close()
        count = self.writer.count
        seconds = time.time() - self.started
        if self._blamed and self.writer.error is None:
            count = insert_in_time(self.path, self._blamed)
        return Recorded(self.path, count, seconds, self.writer.error)


def insert_in_time(path: Path, records: Iterable[tuple[float, Input]]) -> int:
    """The run file at ``path`` written again with ``records`` among its inputs, each at its own
    time (a run is in time order; a checker's anomalies are found after the run ended, about
    moments inside it). The file is replaced whole, never left half-written. How many inputs
    it holds now."""
    run = read_run(path)
    merged: list[tuple[float, Input]] = list(heapq.merge(run.records(), sorted(records, key=lambda r: r[0]),
                                                         key=lambda r: r[0]))
    write_run(path, run.header, merged)
    return len(merged)

"""Runs you can keep, recorded from real clusters (issue 24): ``launcher.py check --record FILE``
and ``launcher.py scenario S3 --record FILE`` write run files that open and replay — the
cluster's nodes in the header, the faults as process changes and marks, the nodes' telemetry
with the traces of the check's own requests — and a check stopped with Ctrl-C leaves a complete
run up to there."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nodes.core.events import Event
from nodes.core.vocabulary import NodeState
from nodes.observe.observations import Anomaly, LogNote, ProcessChanged
from nodes.observe.views import MarkKind
from nodes.runs.player import Player
from nodes.runs.runfile import RunFileError, read_run
from nodes.verify.history import History
from tests.support import communicate_or_show_where, popen_as_from_a_terminal, wait_until_sync

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)
BROKEN = {"crash": NodeState.DOWN, "hang": NodeState.HUNG}


def _launcher(*argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """A launcher command to its end; its nodes die with it, whatever ends it (supervisor.py)."""
    return subprocess.run([sys.executable, "launcher.py", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def test_check_record_writes_a_run_of_the_cluster_its_faults_and_telemetry(tmp_path):
    seed, path = 17, tmp_path / "check.jsonl.gz"
    result = _launcher("check", "--seconds", "5", "--seed", str(seed), "--faults", "crash,hang", "--catalogs", "3",
                       "--orders", "1", "--stock", "200", "--data-dir", str(tmp_path / "data"), "--record", str(path),
                       timeout=150)
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: the checker found something (recorded too)
    assert f"recorded run: {path} (" in result.stdout

    run = read_run(path)
    assert run.problem is None
    names = {"frontend", "catalog0", "catalog1", "catalog2", "order0"}
    assert run.header.source == f"check seed {seed}"
    assert set(run.header.nodes) == names and run.header.catalog_of == {"order0": "catalog0"}
    assert [book[0] for book in run.header.books] == list(range(1, 8))
    records = run.records()

    # Every fault the nemesis applied is a process change of its node into the broken state.
    history = History.load(tmp_path / "data" / f"check-seed{seed}.jsonl")
    assert history.faults
    changes = [(item.node, item.process.state) for _, item in records if isinstance(item, ProcessChanged)]
    for fault in history.faults:
        assert (fault.nodes[0], BROKEN[fault.action]) in changes, fault.describe()

    # Every node's telemetry, and the check's own requests in it by their trace ids.
    events = [item for _, item in records if isinstance(item, Event)]
    assert {event.node for event in events} == names
    traced = {event.trace for event in events if event.node == "frontend"}
    operations = [op for op in history.operations if op.where == "frontend"]
    assert operations and all(op.trace for op in operations)
    assert sum(op.trace in traced for op in operations) > len(operations) // 2

    # The anomalies the checker reported (none, as a rule) are in the run, each once.
    reported = int(result.stdout.split("anomalies found: ")[1].split()[0])
    assert sum(isinstance(item, Anomaly) for _, item in records) == reported

    player = Player.of_run(run)
    assert player.index_all()
    faulted = {fault.nodes[0] for fault in history.faults}
    marks = [mark for mark in player.marks if mark.kind == MarkKind.FAULT]
    assert marks and {mark.node for mark in marks} == faulted
    player.seek(run.start)
    assert player.next_mark() == marks[0]


def test_a_check_stopped_with_ctrl_c_leaves_a_complete_run(tmp_path):
    path = tmp_path / "stopped.jsonl.gz"
    argv = [sys.executable, "launcher.py", "check", "--seconds", "60", "--seed", "5", "--faults", "hang",
            "--catalogs", "2", "--orders", "1", "--data-dir", str(tmp_path / "data"), "--record", str(path)]
    launcher = popen_as_from_a_terminal(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def buying() -> bool:  # the load is on: some buy's events are in the file
            try:
                return any(isinstance(item, Event) and item.node.startswith("order")
                           for _, item in read_run(path).records())
            except RunFileError:
                return False

        wait_until_sync(buying, timeout=90, what="the recording to hold the first buys")
        launcher.send_signal(signal.SIGINT)
        out, err = communicate_or_show_where(launcher, timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.communicate()
    assert launcher.returncode == 130, err[-3000:]
    assert f"recorded run: {path} (" in out

    run = read_run(path)
    assert run.problem is None and run.count > 0
    pids = {item.process.pid for _, item in run.records() if isinstance(item, ProcessChanged) and item.process.pid}
    assert pids and not [pid for pid in pids if _alive(pid)]  # every node stopped


def test_scenario_record_replays_with_every_catalogs_books_its_messages_and_its_crash(tmp_path):
    path = tmp_path / "s3.jsonl.gz"
    result = _launcher("scenario", "S3", "--data-dir", str(tmp_path / "data"), "--record", str(path), timeout=150)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"recorded run: {path} (" in result.stdout

    run = read_run(path)
    assert run.problem is None and run.header.source == "scenario S3"
    catalogs = [f"catalog{i}" for i in range(5)]
    assert set(run.header.nodes) == {"frontend", "order0", *catalogs}

    player = Player.of_run(run)
    assert player.index_all()
    crashed = {mark.node for mark in player.marks if mark.kind == MarkKind.FAULT}
    assert crashed == set(catalogs)  # 0 and 4, then 2 and 3 crashed; 1 restarted with the rest
    player.seek(run.end)
    model = player.model
    assert all(set(model.replicas.get(name, {})) == set(range(1, 8)) for name in catalogs), model.replicas.keys()
    assert [model.replicas[name][2].seq for name in catalogs] == [2, 2, 1, 1, 0]  # the figure's end
    assert model.arrows.count > 0
    logged = [line.text for line in model.logs["catalog0"]]
    assert "step 1: crash catalog0 catalog4" in logged
    notes = [item for _, item in run.records() if isinstance(item, LogNote)]
    assert any(note.node == "catalog0" and note.text.startswith("S3's request: GET /query/item/2") for note in notes)

"""A simulated seed as a run file (issue 24; nodes/runs/from_sim.py): what the window is fed from
it is what the nodes would have told of the same run — every catalog's books, the messages on
the Live picture, the front-end's latencies, the faults as process states — and a failing seed's
run names the traces of the operations the checker blames, and opens at its first anomaly."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nodes.core.catalog.catch_up import CatchUp
from nodes.core.events import RequestIn
from nodes.core.vocabulary import NodeState
from nodes.observe.arrows import ArrowKind
from nodes.observe.observations import Anomaly
from nodes.observe.views import MarkKind
from nodes.runs.from_sim import record
from nodes.runs.player import Player
from nodes.runs.runfile import Run, read_run, write_run
from nodes.sim import run as sim_run
from nodes.sim.run import Options, simulate

ROOT = Path(__file__).resolve().parents[2]
EPOCH = 1_700_000_000.0


def _recorded(options: Options, path: Path) -> tuple[Run, sim_run.Result]:
    recorded = record(options, epoch=EPOCH)
    write_run(path, recorded.header, recorded.records)
    return read_run(path), recorded.result


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", (6, 8))  # crash, hang, partition, full disk; crash, cut off
def test_a_recorded_seed_replays_as_the_nodes_would_have_told_it(tmp_path: Path, seed: int) -> None:
    options = Options(seed=seed)
    run, result = _recorded(options, tmp_path / "seed.jsonl.gz")
    assert result.passed and run.problem is None
    assert result.history.lines() == simulate(options).history.lines(), "recording changed the run"
    assert run.header.source == f"simulate seed {seed}" and run.start == EPOCH

    player = Player.of_run(run)
    player.to_end()
    model = player.model
    # The Replicas tab: every catalog's books, as the cores hold them at the end.
    for final in result.history.finals:
        held = {book: (cell.quantity, cell.seq) for book, cell in model.replicas[final.replica].items()}
        assert held == final.rows, final.replica
    # The Live picture: the shopper's requests and answers, and the messages between the nodes.
    arrows = list(model.arrows.arrows)
    assert any(a.source == "client" and a.target == "frontend" for a in arrows)
    assert any(a.source == "frontend" and a.target == "client" and a.kind == ArrowKind.ANSWER for a in arrows)
    assert any(a.source.startswith("catalog") and a.target.startswith("catalog") for a in arrows)
    # The charts: a latency sample for every lookup and buy the front-end answered.
    reads = [op for op in result.history.operations if op.kind == "read" and op.where == "frontend"]
    assert len(model.latency["lookup"]) >= sum(op.outcome == "ok" for op in reads) > 0
    assert len(model.latency["buy"]) >= sum(op.outcome == "bought" for op in result.history.operations) > 0
    # The faults, each as the supervisor would have shown it midway.
    checked = 0
    for fault in result.schedule + [f for f in result.history.faults if f.action == "disk"]:
        kind = getattr(fault, "kind", None) or getattr(fault, "action", "")
        start, end = fault.start, fault.end
        assert end is not None
        player.seek(EPOCH + (start + end) / 2)
        node = fault.node if hasattr(fault, "node") else fault.nodes[0]
        process = model.processes[node]
        if kind == "crash":
            assert process.state == NodeState.DOWN, fault
        elif kind == "hang":
            assert process.state == NodeState.HUNG, fault
        elif kind == "cut":
            assert process.cut_off and model.health(node).state == "cut off", fault
        elif kind in ("partition", "one-way"):
            assert model.cut_links() or any(p.cut_off for p in model.processes.values()), fault
        elif kind == "disk":
            assert process.disk_full, fault
        else:
            continue
        checked += 1
    assert checked >= 3
    assert any(mark.kind == MarkKind.FAULT for mark in model.marks)


@pytest.mark.timeout(60)
def test_a_failing_seeds_run_blames_traces_of_its_operations_and_opens_at_the_first_anomaly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The teeth of tests/sim/test_disks_and_rows.py: rows changed checksum and all, and the
    heartbeat's comparison taken away, seed 16 reads and sells the changed stock."""
    monkeypatch.setattr(sim_run, "CHECKSUMMED_P", 1.0)
    monkeypatch.setattr(CatchUp, "_compare_rows", lambda self, *_round: self.unverified.clear())
    run, result = _recorded(Options(seed=16, faults=("crash", "restart", "corrupt")), tmp_path / "seed16.jsonl.gz")
    assert not result.passed
    records = run.records()
    anomalies = [item for _at, item in records if isinstance(item, Anomaly)]
    assert len(anomalies) == len(result.anomalies)
    operations = {item.trace for _at, item in records if isinstance(item, RequestIn) and item.sender is None}
    blaming = [a for a in anomalies if a.traces]
    assert blaming, "no anomaly names a trace"
    for anomaly in blaming:
        assert set(anomaly.traces) <= operations, anomaly
    first = min(anomalies, key=lambda a: a.t)

    player = Player.of_run(run)
    player.to_end()  # read once: the slider's marks
    player.seek(player.start)
    mark = player.next_mark()
    while mark is not None and mark.kind != MarkKind.ANOMALY:  # faults come first, anomalies after
        player.seek(mark.t)
        mark = player.next_mark()
    assert mark is not None and mark.t == first.t and mark.text == first.text
    player.seek(mark.t)
    assert set(first.traces) <= player.model.blamed


@pytest.mark.timeout(60)
def test_simulate_record_writes_the_run_and_says_when_its_first_anomaly_came(tmp_path: Path) -> None:
    """The documented design's unguarded write loses buys of four buyers with no fault at all (W1)."""
    path = tmp_path / "w1.jsonl.gz"
    out = subprocess.run([sys.executable, "launcher.py", "simulate", "--seed", "1", "--mode", "documented",
                          "--faults", "none", "--buyers", "4", "--readers", "0", "--record", str(path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=50)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"run recorded to {path}" in out.stdout
    run = read_run(path)
    assert run.header.source == "simulate seed 1, documented mode"
    first = min(item.t for _at, item in run.records() if isinstance(item, Anomaly))
    assert f"first anomaly {first - run.start:.3f} s from the run's start" in out.stdout
    refused = subprocess.run([sys.executable, "launcher.py", "simulate", "--seeds", "3", "--record", str(path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=50)
    assert refused.returncode == 2 and "--record goes with --seed" in refused.stderr

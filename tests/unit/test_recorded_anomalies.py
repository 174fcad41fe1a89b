"""A recorded check's anomalies, without processes: the checker names the operations it blames,
each becomes an ``Anomaly`` input at the time of its operation naming their traces, and a run
file takes them in time order; the model marks them and keeps the traces blamed. A history
with no traces (the simulator's) reads as it always did."""
from __future__ import annotations

import json

import pytest

from nodes.core.vocabulary import NodeState
from nodes.observe.model import ClusterModel
from nodes.observe.observations import Anomaly, ProcessChanged, Tick
from nodes.observe.views import MarkKind, ProcessState
from nodes.runs.follow import anomaly_inputs, insert_in_time
from nodes.runs.player import Player
from nodes.runs.runfile import Header, read_run, write_run
from nodes.verify.checker import check
from nodes.verify.history import Final, History, Operation

pytestmark = pytest.mark.timeout(60)

NODES = {"frontend": "http://127.0.0.1:1", "catalog0": "http://127.0.0.1:2", "catalog1": "http://127.0.0.1:3",
         "order0": "http://127.0.0.1:4"}
#: The history's clock (monotonic seconds) plus this is the run's (wall-clock seconds).
OFFSET = 1000.0


def _stale_history() -> tuple[History, Operation, list[Operation]]:
    """Two acknowledged buys of book 2, then a read at catalog1 that still shows all 5 copies."""
    buys = [Operation("buy", 2, 10.0, 10.4, "bought", buy_id="b1", trace="tb1"),
            Operation("buy", 2, 10.5, 10.9, "bought", buy_id="b2", trace="tb2")]
    stale = Operation("read", 2, 11.0, 11.1, "ok", quantity=5, where="catalog1", trace="tr1")
    fine = Operation("read", 2, 12.0, 12.1, "ok", quantity=3, trace="tr2")
    return History({2: 5}, [*buys, stale, fine]), stale, buys


def test_the_checker_names_the_operations_it_blames():
    history, stale, buys = _stale_history()
    found = check(history)
    assert [(a.kind, a.operations) for a in found] == [("stale read", (stale,))]
    # A count that fails blames every operation it counted: three acknowledged buys of two copies.
    oversold = History({2: 2}, [*buys, Operation("buy", 2, 11.0, 11.2, "bought", buy_id="b3", trace="tb3")],
                       finals=[Final("catalog0", {2: (0, 2)})])
    sold_twice = [a for a in check(oversold) if a.kind == "sold twice"]
    assert sold_twice and {op.trace for op in sold_twice[0].operations} == {"tb1", "tb2", "tb3"}


def test_an_anomaly_becomes_an_anomaly_input_at_its_operation_naming_the_blamed_traces():
    history, stale, _buys = _stale_history()
    inputs = anomaly_inputs(check(history), offset=OFFSET, nodes=NODES, end=5000.0)
    assert len(inputs) == 1
    at, anomaly = inputs[0]
    assert at == anomaly.t == stale.start + OFFSET
    assert anomaly.node == "catalog1"  # where the stale read was answered
    assert anomaly.text.startswith("stale read: at catalog1: book 2 showed 5 copies")
    assert anomaly.traces == ("tr1",)


def test_an_anomaly_at_no_moment_goes_at_the_end_on_the_replica_it_names():
    history = History({2: 5}, [], finals=[Final("catalog0", {2: (5, 1)}), Final("catalog1", {2: (4, 2)})])
    inputs = anomaly_inputs(check(history), offset=OFFSET, nodes=NODES, end=5000.0)
    assert [(at, a.node, a.traces) for at, a in inputs] == [(5000.0, "catalog1", ())]
    assert inputs[0][1].text.startswith("divergence: catalog1 and catalog0")


def test_anomalies_go_into_a_run_file_in_time_order_and_the_replay_marks_them(tmp_path):
    history, _stale, _buys = _stale_history()
    path = tmp_path / "check.jsonl.gz"
    up = ProcessState(NodeState.UP, started_at=OFFSET)
    recorded = [(OFFSET + 1.0, ProcessChanged(name, up)) for name in NODES]
    recorded += [(OFFSET + t, Tick(OFFSET + t)) for t in range(2, 20)]
    write_run(path, Header("check seed 1", NODES, {"order0": "catalog0"}), recorded)

    count = insert_in_time(path, anomaly_inputs(check(history), offset=OFFSET, nodes=NODES, end=OFFSET + 19))
    run = read_run(path)
    assert run.problem is None and count == run.count == len(recorded) + 1
    times = [at for at, _ in run.records()]
    assert times == sorted(times)
    found = [(at, item) for at, item in run.records() if isinstance(item, Anomaly)]
    assert [(at, item.traces) for at, item in found] == [(OFFSET + 11.0, ("tr1",))]
    assert run.header.source == "check seed 1"

    player = Player.of_run(run)
    assert player.index_all()
    assert [(m.t, m.node, m.kind) for m in player.marks] == [(OFFSET + 11.0, "catalog1", MarkKind.ANOMALY)]
    player.seek(run.end)
    assert player.model.blamed == {"tr1"}

    model = ClusterModel(NODES)  # the live model takes the same input the same way
    model.replay(*found[0])
    assert model.blamed == {"tr1"}


def test_a_history_without_traces_reads_as_it_always_did(tmp_path):
    plain = Operation("buy", 2, 1.0, 2.0, "bought", buy_id="b1")
    traced = Operation("read", 2, 3.0, 4.0, "ok", quantity=4, trace="tr9")
    lines = History({2: 5}, [plain, traced]).lines()
    assert "trace" not in json.loads(lines[1])  # the simulator's histories and their digests unchanged
    assert json.loads(lines[2])["trace"] == "tr9"
    saved = tmp_path / "history.jsonl"
    History({2: 5}, [plain, traced]).save(saved)
    assert History.load(saved).operations == [plain, traced]

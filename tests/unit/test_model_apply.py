"""The window's model fed with typed events, no processes: every telemetry kind a node emits
decodes to its dataclass (found at the emit sites themselves), and ``ClusterModel.apply`` turns
events into the tables, health, marks, arrows, samples and traces the views draw."""
from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from nodes.core.events import (
    FAULTS,
    KINDS,
    CacheChanged,
    CacheOp,
    CutOffSet,
    Dropped,
    Event,
    Fault,
    HopDone,
    LeaseChanged,
    LinksSet,
    OrderOutcome,
    OrderResult,
    PaceSet,
    Replying,
    RequestAnswered,
    RequestIn,
    Sending,
    SeqChanged,
    SlowSet,
    Snapshot,
    Unknown,
    ValidChanged,
    decode,
    encode,
    wire_keys,
)
from nodes.core.vocabulary import HealthState, NodeState
from nodes.observe.arrows import AnswerOutcome, ArrowKind
from nodes.observe.buys import PENDING_BUY_S
from nodes.observe.model import ClusterModel
from nodes.observe.observations import LogNote, ProcessChanged, StreamState, Tick
from nodes.observe.views import MarkKind, ProcessState

NODES = Path(__file__).resolve().parents[2] / "nodes"
T = 1000.0

#: One event of every kind and fault as a node puts it on the wire.
RAW = [
    {"kind": "snapshot", "node": "catalog0", "t": T, "state": {"role": "catalog", "books": []}},
    {"kind": "request_in", "node": "catalog0", "n": 1, "t": T, "method": "GET", "path": "/query/item/1",
     "from": "frontend", "trace": "a1"},
    {"kind": "request", "node": "frontend", "n": 2, "t": T, "method": "GET", "path": "/lookup/1",
     "route": "/lookup/{id}", "status": 200, "ms": 1.5, "trace": "a1"},
    {"kind": "send", "node": "frontend", "n": 3, "t": T, "to": "catalog0", "label": "GET /query/item/1",
     "held_ms": 500},
    {"kind": "reply", "node": "catalog0", "n": 4, "t": T, "to": "frontend", "status": 200, "answer": "200 OK",
     "path": "/query/item/1", "held_ms": 500},
    {"kind": "hop", "node": "frontend", "n": 5, "t": T, "to": "catalog0", "label": "GET /query/item/1",
     "answer": "no answer (timeout)", "status": None, "ms": 3.0, "t0": T - 0.003, "held_ms": 500},
    {"kind": "fault", "node": "catalog1", "n": 6, "t": T, "fault": "slow", "ms": 300},
    {"kind": "fault", "node": "catalog1", "n": 7, "t": T, "fault": "cut_off", "on": True},
    {"kind": "fault", "node": "catalog1", "n": 8, "t": T, "fault": "partition", "deaf_to": ["catalog0"],
     "mute_to": []},
    {"kind": "pace", "node": "frontend", "n": 9, "t": T, "ms": 500},
    {"kind": "cache", "node": "frontend", "n": 10, "t": T, "cache": "search", "op": "insert", "key": "graduate"},
    {"kind": "order", "node": "order0", "n": 11, "t": T, "outcome": "bought", "buy_id": "b1", "trace": "a2"},
    {"kind": "order", "node": "order0", "n": 12, "t": T, "outcome": "unreachable"},
    {"kind": "valid", "node": "catalog0", "n": 13, "t": T, "book": 2, "valid": False, "seq": 3},
    {"kind": "seq", "node": "catalog0", "n": 14, "t": T, "book": 2, "seq": 4, "quantity": 9, "price": 12.5},
    {"kind": "lease", "node": "catalog0", "n": 15, "t": T, "held": False},
    {"kind": "lease_wait", "node": "catalog0", "n": 16, "t": T, "peers": [1, 2], "ms": 1500},
    {"kind": "peer", "node": "catalog0", "n": 17, "t": T, "peer": 1, "up": False},
    {"kind": "replica", "node": "frontend", "n": 18, "t": T, "ring": "order", "replica": 1, "up": True},
    {"kind": "catch_up", "node": "catalog0", "n": 19, "t": T, "book": 2, "seq": 4},
    {"kind": "generation", "node": "catalog0", "n": 20, "t": T, "generation": 3},
    {"kind": "damaged", "node": "catalog2", "n": 21, "t": T, "book": 5, "reason": "stored checksum a, content b"},
    {"kind": "repaired", "node": "catalog2", "n": 22, "t": T, "book": 5, "seq": 2},
    {"kind": "disk", "node": "catalog1", "n": 23, "t": T, "ok": False, "message": "database or disk is full"},
    {"kind": "fault", "node": "catalog1", "n": 24, "t": T, "fault": "disk_full", "on": True},
    {"kind": "fault", "node": "catalog1", "n": 25, "t": T, "fault": "abort", "path": "/rep/update/", "p": 0.3,
     "direction": "response"},
    {"kind": "dropped", "node": "frontend", "count": 12},
]


# ---- decoding -------------------------------------------------------------------------------
def _emit_sites() -> list[tuple[str, str, set[str]]]:
    """(where, kind, JSON keys) of every event a node emits: ``telemetry.emit("kind", ...)`` and
    a core's ``self.emit("kind", ...)`` calls, and the events the stream writes as dict literals."""
    sites = []
    for path in sorted(NODES.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            where = f"{path.relative_to(NODES.parent)}:{getattr(node, 'lineno', 0)}"
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "emit"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                keys = {k.arg for k in node.keywords if k.arg is not None}
                for spread in (k.value for k in node.keywords if k.arg is None):  # **({"from": ...} if ...)
                    keys |= {key.value for d in ast.walk(spread) if isinstance(d, ast.Dict)
                             for key in d.keys if isinstance(key, ast.Constant)}
                fault = next((k.value.value for k in node.keywords if k.arg == "fault"
                              and isinstance(k.value, ast.Constant)), None)
                sites.append((where, node.args[0].value if fault is None else f"fault/{fault}", keys))
            elif isinstance(node, ast.Dict):
                literal = {k.value: v for k, v in zip(node.keys, node.values, strict=True)
                           if isinstance(k, ast.Constant)}
                if "kind" in literal and "node" in literal and isinstance(literal["kind"], ast.Constant):
                    sites.append((where, literal["kind"].value, set(literal) - {"kind", "node", "n", "t", "trace"}))
    return sites


def _class_of(kind: str) -> type[Event] | None:
    if kind.startswith("fault/"):
        return FAULTS.get(kind.removeprefix("fault/"))
    return KINDS.get(kind)


def test_every_event_a_node_emits_has_its_dataclass_with_every_field():
    sites = _emit_sites()
    kinds = {kind for _where, kind, _keys in sites}
    assert {"snapshot", "request_in", "request", "hop", "seq", "valid", "lease", "cache", "order", "dropped",
            "fault/slow", "fault/cut_off", "fault/partition", "pace"} <= kinds  # the scan finds them
    for where, kind, keys in sites:
        cls = _class_of(kind)
        assert cls is not None and cls is not Fault, f"{where}: no event class for {kind!r}"
        assert keys - {"fault"} <= wire_keys(cls), f"{where}: {kind} carries {sorted(keys - wire_keys(cls))}"


@pytest.mark.parametrize("raw", RAW, ids=[f"{r['kind']}/{r.get('fault', r.get('outcome', ''))}" for r in RAW])
def test_every_kind_decodes_to_its_dataclass_and_encodes_back_to_the_same_json(raw):
    event = decode(raw["node"], raw)
    assert not isinstance(event, Unknown), event
    assert type(event) is _class_of(f"fault/{raw['fault']}" if raw["kind"] == "fault" else raw["kind"])
    assert encode(event) == raw
    assert decode(raw["node"], encode(event)) == event


def test_the_sample_events_cover_every_class():
    covered = {type(decode(raw["node"], raw)) for raw in RAW}
    assert covered == (set(KINDS.values()) - {Fault}) | set(FAULTS.values())


@pytest.mark.parametrize("raw", [
    {"kind": "new_in_a_later_version", "node": "catalog0", "t": T, "x": 1},
    {"kind": "fault", "node": "catalog0", "t": T, "fault": "meteor"},
    {"kind": "seq", "node": "catalog0", "t": T, "book": 2},  # fields missing
    {"kind": "lease", "node": "catalog0", "held": True},  # a node's event always has its time
    {"kind": "order", "node": "order0", "t": T, "outcome": "maybe"},  # not an outcome
    {"node": "catalog0"},
    ["not", "an", "object"],
    "text",
    None,
])
def test_what_cannot_be_read_is_unknown_and_never_raises(raw):
    event = decode("catalog0", raw)
    assert isinstance(event, Unknown) and event.node == "catalog0"


def test_decoded_values_take_their_types():
    lease_wait = decode("catalog0", RAW[16])
    assert lease_wait.peers == (1, 2)
    order = decode("order0", RAW[11])
    assert order.outcome is OrderResult.BOUGHT and order.outcome == "bought"
    request_in = decode("catalog0", RAW[1])
    assert request_in.sender == "frontend"
    assert decode("frontend", {**RAW[1], "node": "frontend"}).node == "frontend"
    assert decode("x", {k: v for k, v in RAW[1].items() if k != "from"}).sender is None


# ---- applying -------------------------------------------------------------------------------
@pytest.fixture
def model() -> ClusterModel:
    endpoints = {name: f"http://127.0.0.1:{port}" for port, name in
                 enumerate(("frontend", "catalog0", "catalog1", "order0"), start=9000)}
    model = ClusterModel(endpoints, catalog_of={"order0": "catalog0"})
    for name in endpoints:
        model.apply(ProcessChanged(name, ProcessState(NodeState.UP, pid=100)))
    return model


def _catalog_snapshot(name: str, seq: int = 1, valid: bool = True) -> Snapshot:
    books = [{"id": book, "seq": seq, "quantity": 5, "price": 10.0, "valid": valid} for book in (1, 2)]
    return Snapshot({"role": "catalog", "books": books, "lease_ok": True}, node=name, t=T)


def test_snapshots_seq_valid_and_lease_events_make_the_replica_cells(model):
    model.apply(_catalog_snapshot("catalog0"))
    model.apply(_catalog_snapshot("catalog1"))
    changed = []
    model.replicas_changed.connect(changed.append)
    model.apply(SeqChanged(2, 2, 4, 10.0, node="catalog0", t=T))
    model.apply(ValidChanged(2, False, 1, node="catalog1", t=T))
    model.apply(LeaseChanged(False, node="catalog1", t=T))
    cells = model.cells(2)
    assert [(c.replica, c.seq, c.stock, c.valid, c.stale, c.lease_lapsed) for c in cells] == [
        (0, 2, 4, True, False, False), (1, 1, 5, False, True, True)]
    assert changed == ["catalog0", "catalog1", "catalog1"]
    assert model.logs["catalog1"][-1].text.startswith("lease lapsed")
    assert isinstance(model.notable[-1], LeaseChanged)


def test_a_crashed_replica_vouches_for_nothing_when_it_starts_again(model):
    """Issue 23 item 5: its valid set died with the process, so its cells are not bold while
    it starts, nor once up, until it marks a book valid again."""
    model.apply(_catalog_snapshot("catalog0"))
    assert model.cells(2)[0].valid
    model.apply(ProcessChanged("catalog0", ProcessState(NodeState.DOWN)))
    model.apply(ProcessChanged("catalog0", ProcessState(NodeState.STARTING, pid=101)))
    model.apply(ProcessChanged("catalog0", ProcessState(NodeState.UP, pid=101)))
    assert not model.cells(2)[0].valid and model.cells(2)[0].seq == 1
    model.apply(ValidChanged(2, True, 1, node="catalog0", t=T))
    assert model.cells(2)[0].valid


def test_process_changes_and_fault_events_make_health_marks_and_log_lines(model):
    model.apply(ProcessChanged("catalog0", ProcessState(NodeState.HUNG, pid=100)))
    health = model.health("catalog0")
    assert health.state is HealthState.HUNG and health.label == "hung" and not health.serving
    assert model.marks[-1].kind is MarkKind.FAULT and model.marks[-1].text == "catalog0 hung"
    assert model.health("order0").notes[-1].startswith("its catalog, catalog0, is hung")
    assert model.logs["catalog0"][-1].text.startswith("hung (SIGSTOP)")
    model.apply(ProcessChanged("catalog0", ProcessState(NodeState.UP, pid=100)))
    assert model.marks[-1].kind is MarkKind.HEAL and model.marks[-1].text == "catalog0 resumed"
    assert model.logs["catalog0"][-1].text == "resumed (SIGCONT): answering again"

    model.apply(SlowSet(300, node="catalog1", t=T))
    assert model.health("catalog1").state is HealthState.SLOW and model.health("catalog1").label == "slowed 300 ms"
    model.apply(CutOffSet(True, node="catalog1", t=T))
    assert model.health("catalog1").state == "cut off"  # a StrEnum: the old strings still compare
    model.apply(LinksSet(("catalog0",), (), node="catalog1", t=T))
    assert [type(e) for e in model.notable] == [SlowSet, CutOffSet, LinksSet]

    model.apply(ProcessChanged("catalog1", ProcessState(NodeState.UP, pid=100, mute_to=frozenset({"catalog0"}))))
    assert model.cut_links() == [("catalog1", "catalog0")]
    assert model.marks[-1].text == "link catalog1 → catalog0 cut"
    up, total, troubled = model.summary()
    # Issue 23: a cut-off node is up, and degraded (health.summarize), as a slowed one is.
    assert (up, total) == (4, 4) and [h.name for h in troubled] == ["catalog1"]


def test_cache_events_keep_each_caches_keys_and_counts(model):
    for op, key in (("miss", 1), ("insert", 1), ("insert", 2), ("hit", 1), ("invalidate", 2), ("evict", 1)):
        model.apply(CacheChanged("lookup", CacheOp(op), key, node="frontend", t=T))
    cache = model.caches["lookup"]
    assert (cache.keys, cache.hits, cache.misses, cache.evictions, cache.invalidations) == ([], 1, 1, 1, 1)
    assert [(key, op) for key, op, _t in cache.removed] == [(2, "invalidate"), (1, "evict")]
    assert (model.seconds[-1].t, model.seconds[-1].hits, model.seconds[-1].misses) == (int(T), 1, 1)


def _buy(model: ClusterModel, trace: str, t: float, status: int = 200) -> None:
    model.apply(RequestIn("PUT", "/buy/3", node="frontend", t=t, trace=trace))
    model.apply(RequestAnswered("PUT", "/buy/3", "/buy/{id}", status, 12.0, node="frontend", t=t, trace=trace))


def test_a_buy_answered_200_waits_for_its_order_outcome_to_be_charted_and_drawn(model):
    _buy(model, "sold-out", T)
    assert len(model.latency["out of stock"]) == 0 and model.arrows.count == 1  # the request only
    model.apply(OrderOutcome(OrderResult.OUT_OF_STOCK, "b1", node="order0", t=T, trace="sold-out"))
    assert [s.ms for s in model.latency["out of stock"]] == [12.0]
    answer = model.arrows.after(1)[-1]
    assert (answer.kind, answer.text, answer.outcome) == (ArrowKind.ANSWER, "200 out of stock",
                                                          AnswerOutcome.OUT_OF_STOCK)

    _buy(model, "unheard", T + 1)  # its outcome never comes: a bought copy, once it is due
    ticks = []
    model.ticked.connect(ticks.append)
    model.apply(Tick(T + 1 + PENDING_BUY_S / 2))
    assert len(model.latency["buy"]) == 0
    model.apply(Tick(T + 1 + PENDING_BUY_S))
    assert len(model.latency["buy"]) == 1 and model.arrows.after(model.arrows.count - 1)[0].text == "200"
    assert ticks == [T + 1 + PENDING_BUY_S / 2, T + 1 + PENDING_BUY_S]

    _buy(model, "failed", T + 2, status=503)
    assert len(model.latency["failed buy"]) == 1


def test_hops_tell_their_arrows_and_the_trace_at_full_speed_and_at_teaching_speed(model):
    model.apply(RequestIn("GET", "/lookup/1", node="frontend", t=T, trace="t1"))
    model.apply(HopDone("catalog0", "GET /query/item/1", "200 OK", 200, 4.0, T + 0.001, node="frontend",
                        t=T + 0.005, trace="t1"))
    model.apply(RequestAnswered("GET", "/lookup/1", "/lookup/{id}", 200, 6.0, node="frontend", t=T + 0.006,
                                trace="t1"))
    arrows = [(a.source, a.target, a.kind, a.outcome) for a in model.arrows.after(0)]
    assert arrows == [("client", "frontend", "request", ""), ("frontend", "catalog0", "request", ""),
                      ("catalog0", "frontend", "answer", "ok"), ("frontend", "client", "answer", "ok")]
    trace = model.trace("t1")
    assert (trace.entry_node, trace.operation, trace.status, trace.ms) == ("frontend", "GET /lookup/1", 200, 6.0)
    assert trace.lines()[1].split() == ["[2]", "frontend", "→", "catalog0", "GET", "/query/item/1", "200", "OK",
                                        "4.00", "ms"]
    assert model.trace_ids() == ["t1"] and len(model.latency["lookup"]) == 1

    model.apply(PaceSet(500, node="frontend", t=T))
    assert model.pace_ms() == 500
    before = model.arrows.count
    model.apply(Sending("catalog0", "GET /query/item/2", 500, node="frontend", t=T + 1, trace="t2"))
    model.apply(Replying("frontend", 404, "404 Not Found", "/query/item/2", 500, node="catalog0", t=T + 2,
                         trace="t2"))
    model.apply(HopDone("catalog0", "GET /query/item/2", "404 Not Found", 404, 1000.0, T + 1, 500,
                        node="frontend", t=T + 2, trace="t2"))  # told already, as it left
    model.apply(Replying("client", 404, "404 Not Found", "/lookup/2", 500, node="frontend", t=T + 3, trace="t2"))
    assert [(a.source, a.target, a.text, a.held_ms, a.outcome) for a in model.arrows.after(before)] == [
        ("frontend", "catalog0", "GET /query/item/2", 500, ""),
        ("catalog0", "frontend", "404 Not Found", 500, "not found"),
        ("frontend", "client", "404", 500, "not found")]


def test_streams_notes_and_unknown_events(model):
    changed = []
    model.node_changed.connect(changed.append)
    model.apply(StreamState("frontend", True))
    assert model.nodes["frontend"].connected and model.health("frontend").connected
    assert changed and set(changed) == {"frontend"}
    told = len(changed)
    model.apply(StreamState("frontend", True))  # no change, no signal
    assert len(changed) == told
    model.apply(LogNote("frontend", "reset: back to the seven books", t=T))
    assert model.logs["frontend"][-1].text == "reset: back to the seven books"
    model.apply(Dropped(12, node="frontend"))  # the stream's own event has no time
    assert model.nodes["frontend"].dropped == 12 and "lost 12 events" in model.logs["frontend"][-1].text
    count, logs = model.arrows.count, len(model.logs["catalog0"])
    model.apply(decode("catalog0", {"kind": "new_in_a_later_version", "node": "catalog0", "t": T}))
    assert (model.arrows.count, len(model.logs["catalog0"])) == (count, logs)


def test_a_cut_off_says_what_was_cut_the_node_itself_or_its_container_by_the_engine() -> None:
    """A node told to cut itself off still answers admin and telemetry; a container taken off
    its network by the engine (an attached Compose cluster) answers nothing, the window included."""
    from nodes.core.vocabulary import NodeState
    from nodes.observe.health import process_lines
    from nodes.observe.views import ProcessState

    up = ProcessState(NodeState.UP)
    assert process_lines(up, ProcessState(NodeState.UP, cut_off=True)) == [
        "cut off: drops all traffic but admin and telemetry"]
    engine_up = ProcessState(NodeState.UP, by_engine=True)
    assert process_lines(engine_up, ProcessState(NodeState.UP, cut_off=True, by_engine=True)) == [
        "cut off: the container engine took it off the network; the window cannot reach it either"]


def test_a_large_catalog_travels_as_columns_and_is_kept_as_arrays_a_keyframe_pickles_fast():
    """Issue 26: the stream's first message of a catalog of 100,000 books was its every row as
    an object, 10 MB, beyond what the window's follower read (4 MB): it reconnected at once,
    and each new stream cost the replica another snapshot, forever. The snapshot now carries
    the rows as columns, and the model keeps them as arrays: a keyframe of three such replicas
    took 0.7 s (a recording takes one every 2 s), now milliseconds."""
    import json
    import pickle

    from nodes.core.books import generate_catalog
    from nodes.core.catalog.replica import CatalogReplica
    from nodes.core.effects import Disk
    from nodes.observe.feeding import take
    from nodes.observe.follower import STREAM_MESSAGE_MOST
    from nodes.observe.views import HeldBooks, ReplicaBook
    from tests.support import Scripted

    core = CatalogReplica(0, 3, has_frontend=False, mode="bazar")
    start = Scripted(core, core.start())
    books = {book.id: book for book in generate_catalog(100_000, seed=3)}
    for asked, answer in (("load_generation", 0), ("load_books", books), ("load_buys", {}),
                          ("load_damaged", {}), ("load_tentative", [])):
        assert isinstance(start.asks, Disk) and start.asks.method == asked
        start.answer(answer)
    core.valid_ids.update(range(1, 50_001))
    rows, columns = core.describe("rows"), core.describe("columns")
    assert "books" not in columns and "book_columns" not in rows
    table = columns["book_columns"]
    assert [dict(zip(table, row, strict=True)) for row in zip(*table.values(), strict=True)] == rows["books"]
    sent = len(json.dumps(columns))
    assert sent < len(json.dumps(rows)) / 2
    assert sent * 10 < STREAM_MESSAGE_MOST, "a million books' snapshot is read whole"
    brief = core.describe("no")
    assert brief["book_count"] == 100_000 and brief["books"] == [] and brief["unverified"] == 100_000

    model = ClusterModel({name: f"http://{name}" for name in ("catalog0", "catalog1", "catalog2")})
    model.apply(Snapshot({"role": "catalog", **columns}, node="catalog0", t=T))
    model.apply(Snapshot({"role": "catalog", **rows}, node="catalog1", t=T))
    model.apply(Snapshot({"role": "catalog", **columns}, node="catalog2", t=T))
    assert "book_columns" not in model.nodes["catalog0"].state, "the rows are kept once, in the arrays"
    for book in (1, 777, 50_000, 50_001, 100_000):
        held = books[book]
        assert model.replicas["catalog0"].get(book) == model.replicas["catalog1"][book] == ReplicaBook(
            held.seq, held.quantity, held.price, book <= 50_000)
    assert model.replicas["catalog0"].get(100_001) is None and 100_001 not in model.replicas["catalog0"]
    model.apply(SeqChanged(777, 1, 3, 9.5, node="catalog0", t=T))
    model.apply(ValidChanged(50_001, True, 1, node="catalog0", t=T))
    assert model.replicas["catalog0"][777] == ReplicaBook(1, 3, 9.5, True) and model.replicas["catalog0"][50_001].valid
    assert [c.seq for c in model.cells(777)] == [1, 0, 0]
    started = time.perf_counter()
    frame = take(model)
    took = time.perf_counter() - started
    assert took < 0.2, f"a keyframe of three 100,000-book replicas took {took:.2f} s"
    copy = ClusterModel(dict.fromkeys(model.nodes, "http://x"))
    copy.restore(frame)
    assert isinstance(copy.replicas["catalog2"], HeldBooks) and copy.replicas["catalog0"][777].seq == 1
    assert pickle.loads(pickle.dumps(model.replicas["catalog1"])).get(5) == model.replicas["catalog1"].get(5)


def test_the_books_in_trouble_are_those_a_cell_at_a_time_finds_stale_or_not_valid():
    """``books_in_trouble`` works over whole arrays what ``derive_cells`` says book by book
    (the Replicas tab's "only stale or not valid" over 100,000 books); they agree, also when
    the replicas hold different books, one holds none, or one cannot vouch."""
    import random

    from nodes.observe.views import HeldBooks, ReplicaBook, books_in_trouble, derive_cells

    rng = random.Random(26)
    for case in range(200):
        ids = range(1, rng.randint(1, 40))
        held = []
        for _replica in range(rng.randint(1, 3)):
            kept = [i for i in ids if case % 5 or rng.random() < 0.9]  # every fifth case: books missing
            held.append(HeldBooks((i, ReplicaBook(rng.choice((3, 3, 3, 2)), 1, 1.0, rng.random() < 0.9))
                                  for i in kept))
        vouching = [rng.random() < 0.95 for _ in held]
        found = books_in_trouble(list(held), vouching)
        every = sorted({i for h in held for i in h})
        states = [HealthState.UP if ok else HealthState.HUNG for ok in vouching]
        expected = {book for book in every if any(
            cell.stale or not cell.valid for cell in derive_cells(book, [
                (r, None if h.get(book) is None else h[book].seq, 0, bool(h.get(book) and h[book].valid), False,
                 states[r]) for r, h in enumerate(held)]))}
        assert (set(every) if found is None else found) == expected, case

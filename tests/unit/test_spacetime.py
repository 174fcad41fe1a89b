"""Issue 24 item 4: the space-time diagram. A made-up session (lookups and buys as trees of
calls, nodes whose clocks disagree, a crash, a cut link, anomalies) is laid out: every message is
drawn once, no answer above its request and no call above the message that caused it, whatever
the clocks; fault bands run from the fault to its heal; a range with too many messages says how
many it shows; the SVG is well-formed and names the anomalies; ``launcher.py spacetime`` writes
one, and says in plain words what is wrong with a missing or damaged run, an empty range or an
--out it cannot write."""
from __future__ import annotations

import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.core.events import HopDone, OrderOutcome, OrderResult, PaceSet, RequestAnswered, RequestIn
from nodes.core.vocabulary import NodeState
from nodes.observe.arrows import ArrowKind
from nodes.observe.model import ClusterModel
from nodes.observe.observations import Anomaly, ProcessChanged, StreamState, Tick
from nodes.observe.views import MarkKind, ProcessState
from nodes.runs.runfile import Header, read_run, write_run
from nodes.runs.spacetime import SpaceTimeError, picture_of, picture_of_model, picture_of_run
from nodes.runs.spacetime_layout import lay_out
from nodes.runs.spacetime_shapes import Words
from nodes.runs.spacetime_svg import svg
from tests.unit.test_causal_order import NODES as CAUSAL_NODES
from tests.unit.test_causal_order import events_of, runs, skews

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
NODES = {name: f"http://127.0.0.1:{9100 + i}" for i, name in enumerate(
    ["frontend", "catalog0", "catalog1", "catalog2", "order0", "order1", "order2"])}
CATALOG_OF = {"order0": "catalog0", "order1": "catalog1", "order2": "catalog2"}
HEADER = Header("check", NODES, CATALOG_OF)
START = 1_700_000_000.0
CRASH = (2.0, 4.5)  # catalog2 down, seconds from the start
CUT = (5.0, 6.5)  # catalog0 → catalog1 cut, one way
ANOMALY_AT = 3.0
STALE_READ = "stale read: a lookup saw seq 6 after seq 7 was acknowledged"


class _Request:
    """One traced request of ``session`` as the nodes tell it: its calls, each told by its sender
    when it is over, on that sender's clock."""

    def __init__(self, trace: str, rng: random.Random, skew: dict[str, float]) -> None:
        self.trace, self.rng, self.skew = trace, rng, skew
        self.spans = iter(f"{trace}-s{k}" for k in range(20))
        self.root = next(self.spans)
        self.events: list[tuple[float, Any]] = []

    def clock(self, node: str, t: float) -> float:
        return START + t + self.skew[node]

    def call(self, source: str, target: str, label: str, start: float, parent: str,
             inner: list[tuple[str, str]]) -> float:
        """One call and the calls it makes in turn; when its sender had its answer."""
        span = next(self.spans)
        down = target == "catalog2" and CRASH[0] <= start < CRASH[1]
        cut = (source, target) == ("catalog0", "catalog1") and CUT[0] <= start < CUT[1]
        done = start + 0.0004
        if not (down or cut):
            for callee, what in inner:
                done = self.call(target, callee, what, done + 0.0002, span, [])
            done += self.rng.uniform(0.0008, 0.003)
        else:
            done = start + (0.001 if down else 0.25)
        answer = "200 OK" if not (down or cut) else "no answer (connection refused)" if down else "no answer (timeout)"
        self.events.append((done, HopDone(node=source, t=self.clock(source, done), trace=self.trace, span=span,
                                          parent=parent, to=target, label=label, answer=answer,
                                          status=None if down or cut else 200, ms=(done - start) * 1000,
                                          t0=self.clock(source, start))))
        return done


def session(seconds: float = 8.0, rate: float = 8.0, seed: int = 5,
            skew_s: float = 0.004) -> tuple[list[tuple[float, Any]], list[str]]:
    """A made-up session on the cluster above, as a run records it: lookups and buys (each a tree
    of calls, told by the caller when it is over, stamped by clocks ``skew_s`` apart), catalog2
    down for a while, a cut link, and two anomalies, one found during the run and one after it,
    blaming a few traces. Returns the inputs and the blamed traces."""
    rng = random.Random(seed)
    skew = {name: rng.uniform(-skew_s, skew_s) for name in NODES}
    out: list[tuple[float, Any]] = []

    def at(t: float, item: Any) -> None:
        out.append((START + t, item))

    for name in NODES:
        at(0.0, StreamState(name, True))
        at(0.0, ProcessChanged(name, ProcessState(NodeState.UP, started_at=START)))
    traces: list[str] = []
    t = 0.05
    while t < seconds:
        request = _Request(f"tr{len(traces) + 1:04d}", rng, skew)
        traces.append(request.trace)
        buy = rng.random() < 0.35
        path, method = ("/buy/2", "PUT") if buy else ("/lookup/2", "GET")
        request.events.append((t, RequestIn(node="frontend", t=request.clock("frontend", t), trace=request.trace,
                                            span=request.root, method=method, path=path)))
        catalogs = ["catalog0", "catalog1", "catalog2"]
        if buy:
            order = f"order{rng.randrange(3)}"
            catalog = CATALOG_OF[order]
            updates = [(peer, "/rep/update/2 seq_n: 8 quantity: 41") for peer in catalogs if peer != catalog]
            end = request.call("frontend", order, "PUT /buy/2", t + 0.0003, request.root,
                               [(catalog, "/rep/check/2 seq_n: 7"), *updates])
            request.events.append((end, OrderOutcome(node=order, t=request.clock(order, end), trace=request.trace,
                                                     outcome=OrderResult.BOUGHT)))
        else:
            catalog = f"catalog{rng.randrange(3)}"
            peer = rng.choice([c for c in catalogs if c != catalog])
            end = request.call("frontend", catalog, "GET /query/2", t + 0.0003, request.root,
                               [(peer, "/rep/get/2 req: [0] seq_n: 7")] if rng.random() < 0.5 else [])
            if catalog == "catalog2" and CRASH[0] <= t < CRASH[1]:  # the front-end tries the next replica
                end = request.call("frontend", "catalog0", "GET /query/2", end + 0.0002, request.root, [])
        end += 0.0003
        request.events.append((end, RequestAnswered(node="frontend", t=request.clock("frontend", end),
                                                    trace=request.trace, span=request.root, method=method, path=path,
                                                    route="/buy/{id}" if buy else "/lookup/{id}", status=200,
                                                    ms=(end - t) * 1000)))
        for when, item in request.events:
            at(when, item)
        t += rng.expovariate(rate)
    for second in range(int(seconds) + 1):
        at(float(second), Tick(START + second))
    at(CRASH[0], ProcessChanged("catalog2", ProcessState(NodeState.DOWN)))
    at(CRASH[1] - 0.3, ProcessChanged("catalog2", ProcessState(NodeState.STARTING)))
    at(CRASH[1], ProcessChanged("catalog2", ProcessState(NodeState.UP, started_at=START + CRASH[1])))
    at(CUT[0], ProcessChanged("catalog0", ProcessState(NodeState.UP, mute_to=frozenset({"catalog1"}))))
    at(CUT[0], ProcessChanged("catalog1", ProcessState(NodeState.UP, deaf_to=frozenset({"catalog0"}))))
    at(CUT[1], ProcessChanged("catalog0", ProcessState(NodeState.UP)))
    at(CUT[1], ProcessChanged("catalog1", ProcessState(NodeState.UP)))
    blamed = [traces[len(traces) // 3], traces[len(traces) // 2]]
    at(ANOMALY_AT, Anomaly(START + ANOMALY_AT, "catalog2", STALE_READ, (blamed[0],)))
    at(seconds + 0.5, Anomaly(START + seconds + 0.5, "order1", "a buy acknowledged twice", (blamed[1],)))
    out.sort(key=lambda record: record[0])
    return out, blamed


def fed(inputs: list[tuple[float, Any]]) -> ClusterModel:
    model = ClusterModel(NODES, catalog_of=CATALOG_OF)
    for when, item in inputs:
        model.replay(when, item)
    return model


def assert_causal(layout) -> None:
    """No answer above its request, no call above the message that caused it, and nothing
    arrives before it left."""
    by_span: dict[tuple[Any, Any], Any] = {}
    client: dict[Any, Any] = {}
    for drawn in layout.messages:
        arrow = drawn.arrow
        assert drawn.y2 >= drawn.y1, f"{arrow.text} arrives above where it left"
        if arrow.kind == ArrowKind.REQUEST:
            if arrow.source == "client":
                client[arrow.trace] = drawn
            by_span[(arrow.trace, arrow.span)] = drawn
    for drawn in layout.messages:
        arrow = drawn.arrow
        if arrow.kind == ArrowKind.ANSWER and arrow.span is not None:
            request = by_span.get((arrow.trace, arrow.span))
            if request is not None:
                assert drawn.y1 >= request.y2 - 1e-6, f"the answer to {request.arrow.text} above its request"
        if arrow.kind == ArrowKind.REQUEST and arrow.source != "client":
            cause = by_span.get((arrow.trace, arrow.parent))
            if cause is not None:
                assert drawn.y1 >= cause.y2 - 1e-6, f"{arrow.text} above the message that caused it"
        if arrow.target == "client" and arrow.trace in client:
            assert drawn.y1 >= client[arrow.trace].y2 - 1e-6, "the shopper answered above the request"


def test_every_message_is_drawn_once_in_causal_order_and_the_faults_span_fault_to_heal() -> None:
    inputs, blamed = session()
    model = fed(inputs)
    picture = picture_of_model(model, START, START + 8.0)
    assert not picture.capped and picture.note() is None
    layout = lay_out(picture)
    numbers = [d.arrow.number for d in layout.messages]
    inside = [a.number for a in model.arrows.arrows if START <= a.t <= START + 8.0]
    assert sorted(numbers) == sorted(inside) and len(set(numbers)) == len(numbers), "every message, once"
    assert_causal(layout)
    assert any(d.lost for d in layout.messages), "calls to the crashed replica end in a cross"
    assert {d.arrow.trace for d in layout.messages if d.blamed} == set(blamed)
    down = next(b for b in layout.bands if b.node == "catalog2" and not b.link)
    assert down.fault.kind == MarkKind.FAULT and down.heal is not None and down.heal.kind == MarkKind.HEAL
    assert (down.fault.t, down.heal.t) == (START + CRASH[0], START + CRASH[1])
    assert down.y1 == layout.y_at(START + CRASH[0]) and down.y2 == layout.y_at(START + CRASH[1])
    assert down.y1 < down.y2
    cut = next(b for b in layout.bands if b.link)
    assert (cut.node, cut.fault.peer, cut.heal is not None) == ("catalog0", "catalog1", True)
    assert [m.text for m, _y in layout.anomalies] == [
        "stale read: a lookup saw seq 6 after seq 7 was acknowledged"], "the one in range is drawn across"
    assert "a buy acknowledged twice" in " ".join(m.text for m in picture.anomalies_elsewhere)


def test_a_band_starts_at_the_range_when_its_fault_came_before_and_runs_to_the_end_unhealed() -> None:
    inputs, _ = session()
    model = fed([r for r in inputs if r[0] < START + 4.0])  # catalog2 not started again yet
    layout = lay_out(picture_of_model(model, START + 3.0, START + 4.0))
    down = next(b for b in layout.bands if b.node == "catalog2")
    assert down.heal is None and down.y1 == layout.top and down.y2 == layout.bottom


@settings(max_examples=40, deadline=None)
@given(st.data(), skews, st.integers(1, 4), st.booleans())
def test_the_diagram_is_causal_whatever_the_clocks_and_the_order_events_came_in(data, skew, count, paced) -> None:
    """Clocks up to a second apart, events heard in any order, at full or teaching speed (where
    a message is held on its way and arrives later)."""
    traced = [data.draw(runs(f"t{i}", 1000.0 + data.draw(st.floats(0, 0.01)))) for i in range(count)]
    heard = data.draw(st.permutations([event for run in traced for event in events_of(run, skew, paced)]))
    model = ClusterModel({name: f"http://127.0.0.1:{9000 + i}" for i, name in enumerate(CAUSAL_NODES)})
    for name in CAUSAL_NODES if paced else ():
        model.apply(PaceSet(node=name, t=999.0, ms=100))
    for event in heard:
        model.apply(event)
    picture = picture_of_model(model, 990.0, 1010.0)
    layout = lay_out(picture)
    assert len(layout.messages) == len(model.arrows.arrows)
    assert_causal(layout)
    times = [shape.text for item in layout.items for shape in item.shapes
             if isinstance(shape, Words) and shape.text.startswith("+") and shape.text.endswith(" s")]
    assert len(times) == len(set(times)), times  # no time said twice down the side


def test_a_crowded_range_shows_whole_requests_and_says_how_many_of_how_many() -> None:
    inputs, blamed = session(seconds=6.0, rate=120.0)
    model = fed(inputs)
    picture = picture_of_model(model, START, START + 6.0, limit=300)
    assert picture.capped and 250 <= len(picture.messages) <= 300
    note = picture.note()
    assert note is not None and f"Showing {len(picture.messages):,} of {picture.total:,} messages" in note
    kept = {a.trace for a in picture.messages}
    for trace in kept:  # whole requests: every message of a kept trace
        assert sum(a.trace == trace for a in picture.messages) == sum(
            a.trace == trace for a in model.arrows.arrows if START <= a.t <= START + 6.0)
    assert set(blamed) <= kept, "the requests an anomaly blamed are kept first"
    times = sorted(a.t for a in picture.messages)
    assert times[0] < START + 1.0 and times[-1] > START + 5.0, "spread over the range"
    layout = lay_out(picture)
    assert_causal(layout)
    assert note.split(":")[0] in svg(layout)


def test_the_svg_is_well_formed_and_names_the_anomaly_and_every_node() -> None:
    inputs, _ = session()
    layout = lay_out(picture_of(fed(inputs).arrows.arrows, fed(inputs).marks, fed(inputs).blamed, NODES,
                                START, START + 8.0, title="a <check> & its run"))
    root = ET.fromstring(svg(layout).encode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "stale read: a lookup saw seq 6 after seq 7 was acknowledged" in texts
    assert "a <check> & its run" in texts
    for name in ["client", *NODES]:
        assert name in texts
    groups = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("data-trace")]
    assert len({g.get("data-trace") for g in groups}) > 50


# ---- the command -------------------------------------------------------------------------------
def _spacetime(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "launcher.py", "spacetime", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_the_command_writes_a_range_of_a_run_as_svg(tmp_path: Path) -> None:
    inputs, _ = session()
    run = write_run(tmp_path / "check.jsonl.gz", HEADER, inputs)
    out = tmp_path / "run.svg"
    done = _spacetime(str(run), "--out", str(out), "--from", "1.5", "--to", "5")
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and str(out) in done.stdout and "+1.50 s to +5.00 s" in done.stdout
    picture = picture_of_run(read_run(run), 1.5, 5.0)
    assert f"{len(picture.messages):,} messages" in done.stdout
    root = ET.parse(out).getroot()
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "stale read" in texts and "catalog2 down" in texts


def test_the_command_says_what_is_wrong_in_plain_words(tmp_path: Path) -> None:
    inputs, _ = session(seconds=3.0)
    run = write_run(tmp_path / "check.jsonl.gz", HEADER, inputs)
    missing = _spacetime(str(tmp_path / "nope.jsonl.gz"), "--out", str(tmp_path / "a.svg"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "junk.jsonl.gz").write_bytes(b"not a run at all")
    junk = _spacetime(str(tmp_path / "junk.jsonl.gz"), "--out", str(tmp_path / "a.svg"))
    assert junk.returncode == 2 and "is not a Bazar run" in junk.stderr
    empty = _spacetime(str(run), "--out", str(tmp_path / "a.svg"), "--from", "2", "--to", "2")
    assert empty.returncode == 2 and "the range is empty" in empty.stderr
    beyond = _spacetime(str(run), "--out", str(tmp_path / "a.svg"), "--from", "50", "--to", "60")
    assert beyond.returncode == 2 and "the run lasts" in beyond.stderr
    unwritable = _spacetime(str(run), "--out", str(tmp_path / "no" / "such" / "folder" / "a.svg"))
    assert unwritable.returncode == 2 and "cannot write" in unwritable.stderr
    assert not (tmp_path / "a.svg").exists()


def test_a_range_with_nothing_in_it_is_an_error(tmp_path: Path) -> None:
    inputs, _ = session(seconds=3.0)
    quiet = [r for r in inputs if not START + 1.0 <= r[0] <= START + 1.8]
    run = read_run(write_run(tmp_path / "quiet.jsonl.gz", HEADER, quiet))
    with pytest.raises(SpaceTimeError, match="nothing happened from"):
        picture_of_run(run, 1.2, 1.5)
    assert picture_of_run(run, 0.5, 1.5).messages

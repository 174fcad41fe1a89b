"""Issue 23: every run told step by step is told in causal order. Traced buys and lookups are
generated as trees of calls, run on a made-up timeline, stamped by nodes whose clocks disagree
by up to a second, and heard of in any order, several at once; the steps the Flow and Scenarios
tabs draw (``Trace.steps``) and those the Live screen's Step goes through (``step_order`` over
the model's arrows) must show a call after the message that caused it, an answer after its call
and after every call it waited for, and the answer to the client after all its trace awaited."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.core.events import (
    Event,
    HopDone,
    OrderOutcome,
    OrderResult,
    PaceSet,
    Replying,
    RequestAnswered,
    RequestIn,
    Sending,
)
from nodes.observe.arrows import step_order, told
from nodes.observe.model import ClusterModel
from nodes.observe.traces import Hop, StepKind, Trace, causal_order, causal_steps

NODES = ["frontend", "order0", "order1", "catalog0", "catalog1", "catalog2"]
ROLE_TARGETS = {"frontend": ["order0", "order1", "catalog0", "catalog1", "catalog2"],
                "order0": ["catalog0"], "order1": ["catalog1"],
                "catalog0": ["catalog1", "catalog2"], "catalog1": ["catalog0", "catalog2"],
                "catalog2": ["catalog0", "catalog1"]}


@dataclass
class Call:
    """One call of a generated trace, with its true times (seconds on one made-up timeline)."""

    span: str
    parent: str | None  # None: the client's request caused it
    source: str
    target: str
    answered: bool
    start: float = 0.0
    end: float = 0.0  # when its sender had its answer, or gave up
    children: list[Call] = field(default_factory=list)


@dataclass
class Run:
    trace: str
    root: str
    buy: bool
    calls: list[Call]
    start: float
    end: float


@st.composite
def runs(draw, trace: str, start: float) -> Run:
    """One traced buy or lookup: a tree of up to 9 calls, each answered or given up on, whose
    children go one after another or all at once, on a timeline from ``start``."""
    buy = draw(st.booleans())
    count = draw(st.integers(0, 9))
    calls: list[Call] = []
    for k in range(count):
        parent = draw(st.integers(-1, k - 1)) if k else -1
        source = "frontend" if parent < 0 else calls[parent].target
        target = draw(st.sampled_from(ROLE_TARGETS[source]))
        call = Call(f"{trace}-s{k}", None if parent < 0 else calls[parent].span, source, target,
                    answered=draw(st.integers(0, 5)) > 0)
        calls.append(call)
        if parent >= 0:
            calls[parent].children.append(call)
    together = draw(st.booleans())
    service = draw(st.lists(st.floats(0.0005, 0.02), min_size=len(calls) + 1, max_size=len(calls) + 1))

    def serve(children: list[Call], at: float) -> float:
        """Run ``children`` from ``at``; when the last is over."""
        done = at
        for call in children:
            begin = at if together else done
            call.start = begin
            finished = serve(call.children, begin + 0.0002) + service[calls.index(call)]
            # A call given up on ends at its sender's timeout, often before its callee is done.
            call.end = finished if call.answered else begin + min(finished - begin, 0.004)
            done = max(done, call.end)
        return done

    roots = [c for c in calls if c.parent is None]
    end = serve(roots, start + 0.0001) + service[-1]
    return Run(trace, f"{trace}-root", buy, calls, start, end)


def events_of(run: Run, skew: dict[str, float], paced: bool) -> list[Event]:
    """What the nodes tell of ``run``, each stamping its own (skewed) clock."""
    trace, route = run.trace, "/buy/{id}" if run.buy else "/lookup/{id}"
    path = "/buy/2" if run.buy else "/lookup/2"
    method = "PUT" if run.buy else "GET"
    clock = lambda node, t: t + skew[node]  # noqa: E731
    said: list[Event] = [RequestIn(node="frontend", t=clock("frontend", run.start), trace=trace, span=run.root,
                                   method=method, path=path)]
    for call in run.calls:
        parent = call.parent or run.root
        held = 100.0 if paced else None
        said.append(HopDone(node=call.source, t=clock(call.source, call.end), trace=trace, span=call.span,
                            parent=parent, to=call.target, label=f"GET /x/{call.span}",
                            answer="200 OK" if call.answered else "no answer (timeout)",
                            status=200 if call.answered else None, ms=(call.end - call.start) * 1000,
                            t0=clock(call.source, call.start), held_ms=held))
        if paced:
            said.append(Sending(node=call.source, t=clock(call.source, call.start), trace=trace, span=call.span,
                                parent=parent, to=call.target, label=f"GET /x/{call.span}", held_ms=100.0))
            if call.answered:
                said.append(Replying(node=call.target, t=clock(call.target, call.end), trace=trace,
                                     span=call.span, to=call.source, status=200, answer="200 OK",
                                     path=f"/x/{call.span}", held_ms=100.0))
    if run.buy:
        said.append(OrderOutcome(node="order0", t=clock("order0", run.end), trace=trace,
                                 outcome=OrderResult.BOUGHT))
    said.append(RequestAnswered(node="frontend", t=clock("frontend", run.end), trace=trace, span=run.root,
                                method=method, path=path, route=route, status=200, ms=(run.end - run.start) * 1000))
    if paced:
        said.append(Replying(node="frontend", t=clock("frontend", run.end), trace=trace, span=run.root, to="client",
                             status=200, answer="200 OK", path=path, held_ms=100.0))
    return said


def assert_causal(order: list[tuple[StepKind, str | None, str | None]], runs_: list[Run]) -> None:
    """``order`` lists (kind, trace, span) — REQUEST and REPLY with span None — once each."""
    assert len(order) == len(set(order)), "every message once"
    place = {key: i for i, key in enumerate(order)}
    for run in runs_:
        t = run.trace
        request, reply = place[(StepKind.REQUEST, t, None)], place.get((StepKind.REPLY, t, None))
        for call in run.calls:
            sent = place[(StepKind.CALL, t, call.span)]
            cause = place[(StepKind.CALL, t, call.parent)] if call.parent else request
            assert sent > cause, f"{call.span} shown before the message that caused it"
            answer = place.get((StepKind.ANSWER, t, call.span))
            if answer is not None:
                assert answer > sent, f"{call.span}'s answer before its call"
                if call.answered:
                    for child in call.children:
                        assert answer > place[(StepKind.CALL, t, child.span)], f"{call.span} answered early"
                        child_answer = place.get((StepKind.ANSWER, t, child.span))
                        assert child_answer is None or answer > child_answer, f"{call.span} answered early"
            if reply is not None and call.parent is None:
                assert reply > sent and (answer is None or reply > answer), "the client answered early"
        assert reply is None or reply > request


skews = st.fixed_dictionaries({node: st.floats(-1.0, 1.0) for node in NODES})


@settings(max_examples=300, deadline=None)
@given(st.data(), skews)
def test_a_traces_steps_are_causal_whatever_the_clocks_and_the_arrival_order(data, skew):
    run = data.draw(runs("t0", 1000.0))
    said = events_of(run, skew, paced=False)
    said = data.draw(st.permutations(said))
    trace = Trace.from_events("t0", said)
    steps = trace.steps()
    span_of = {id(hop): hop.span for hop in trace.hops}
    order = [(s.kind, "t0", span_of[id(s.hop)] if s.hop is not None else None) for s in steps]
    assert_causal(order, [run])
    # The hops are numbered as they are first shown: [2], [3], ... in causal order.
    numbers = [s.hop.number for s in steps if s.kind == StepKind.CALL and s.hop is not None]
    assert numbers == list(range(2, len(run.calls) + 2))


@settings(max_examples=150, deadline=None)
@given(st.data(), skews, st.integers(1, 4), st.booleans())
def test_the_live_screens_steps_are_causal_for_concurrent_buys_and_lookups(data, skew, count, paced):
    runs_ = [data.draw(runs(f"t{i}", 1000.0 + data.draw(st.floats(0, 0.01)))) for i in range(count)]
    heard = [event for run in runs_ for event in events_of(run, skew, paced)]
    heard = data.draw(st.permutations(heard))
    model = ClusterModel({name: f"http://127.0.0.1:{9000 + i}" for i, name in enumerate(NODES)})
    if paced:
        for name in NODES:
            model.apply(PaceSet(node=name, t=999.0, ms=100))
    for event in heard:
        model.apply(event)
    arrows = list(model.arrows.arrows)
    stepped = step_order(arrows)
    assert sorted(a.number for a in stepped) == [a.number for a in arrows], "every message, once"
    order = []
    for arrow in stepped:
        item = told(arrow)
        order.append((item.kind, item.trace,
                      None if item.kind in (StepKind.REQUEST, StepKind.REPLY) else item.span))
    assert_causal(order, runs_)


def test_a_call_whose_cause_is_not_heard_of_yet_waits_with_what_it_caused():
    """At full speed the front-end tells of its call to an order replica only when it is over:
    the order replica's own calls, heard of first, are not stepped to before it."""
    model = ClusterModel({name: f"http://127.0.0.1:{9000 + i}" for i, name in enumerate(NODES)})
    model.apply(RequestIn(node="frontend", t=1.0, trace="b", span="root", method="PUT", path="/buy/2"))
    model.apply(HopDone(node="order0", t=1.2, trace="b", span="q", parent="o", to="catalog0", label="GET /query/2",
                        answer="200 OK", status=200, ms=5, t0=1.1))
    arrows = list(model.arrows.arrows)
    assert [a.text for a in step_order(arrows, now=1.3)] == ["PUT /buy/2"]
    assert len(step_order(arrows[1:], now=1.3)) == 2, "a trace the shopper did not start has nothing to wait for"
    assert len(step_order(arrows[1:], now=1.3, entered={"b"})) == 0, "its request was shown before the pause"
    assert len(step_order(arrows, now=1.1 + 60)) == 3, "not forever: a lost event does not stop the steps"
    model.apply(HopDone(node="frontend", t=1.3, trace="b", span="o", parent="root", to="order0", label="PUT /buy/2",
                        answer="200 OK", status=200, ms=250, t0=1.05))
    texts = [a.text for a in step_order(list(model.arrows.arrows), now=1.3)]
    assert texts[:3] == ["PUT /buy/2", "PUT /buy/2", "GET /query/2"]
    assert [a.source for a in step_order(list(model.arrows.arrows), now=1.3)][:3] == ["client", "frontend", "order0"]


def test_without_spans_the_caller_is_guessed_from_times_as_before():
    """Hops from older nodes (no span ids): the innermost open hop to the sender is its cause."""
    outer = Hop(2, "frontend", "order0", "PUT /buy/2", "200 OK", 200, 10.0, 1.000)
    inner = Hop(3, "order0", "catalog0", "GET /query/2", "200 OK", 200, 2.0, 1.003)
    steps = causal_steps([inner, outer], "frontend", "PUT /buy/2", 200, 11.0)
    assert [(s.kind, s.source, s.target) for s in steps] == [
        (StepKind.REQUEST, "client", "frontend"), (StepKind.CALL, "frontend", "order0"),
        (StepKind.CALL, "order0", "catalog0"), (StepKind.ANSWER, "catalog0", "order0"),
        (StepKind.ANSWER, "order0", "frontend"), (StepKind.REPLY, "frontend", "client")]


def test_a_cycle_of_malformed_ids_still_places_every_message_once():
    from nodes.observe.traces import Told

    items = [Told(StepKind.CALL, "t", "a", "b", 2.0), Told(StepKind.CALL, "t", "b", "a", 1.0)]
    assert sorted(causal_order(items)) == [0, 1]
    shuffled = list(range(50))
    random.Random(4).shuffle(shuffled)
    chain = [Told(StepKind.CALL, "t", f"s{k}", f"s{k - 1}" if k else None, float(-k)) for k in shuffled]
    placed = [chain[i].span for i in causal_order(chain)]
    assert placed == [f"s{k}" for k in range(50)], "a chain is told from its first call, whatever the clocks"

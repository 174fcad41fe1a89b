"""The arrows of the Live screen: every message on a link as it animates it, a request going out
or its answer coming back, coloured by what the answer says; and the order a paused screen
steps through them in, which is causal (``step_order``), not the order they were heard of."""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Sequence
from enum import StrEnum
from typing import NamedTuple

from nodes.core.events import HopDone, OrderResult, Replying, RequestAnswered, RequestIn, Sending, Timed
from nodes.observe.buys import Answer, PendingBuys
from nodes.observe.latency import OPERATIONS
from nodes.observe.traces import StepKind, Told, causal_order

#: A message whose cause has not been heard of yet is not stepped to for this long after it
#: left (at full speed a node tells of its call when it is over, after its callee's calls).
CAUSE_WAIT_S = 5.0


class ArrowKind(StrEnum):
    REQUEST = "request"
    ANSWER = "answer"


class AnswerOutcome(StrEnum):
    """What an answer says, as the Live screen colours it."""

    OK = "ok"
    OUT_OF_STOCK = "out of stock"
    CONFLICT = "conflict"
    NOT_FOUND = "not found"
    UNKNOWN = "unknown"
    FAILED = "failed"
    NONE = ""  # a request says nothing yet


#: Every outcome an answer can have (``NONE`` is a request's).
ANSWER_OUTCOMES = tuple(o for o in AnswerOutcome if o is not AnswerOutcome.NONE)


def answer_outcome(status: int | None, buy_outcome: str | None = None) -> AnswerOutcome:
    """One answer's outcome in a word: no answer at all is "failed"; a buy's 202 (and a buy
    its order replica could not confirm) is "unknown", never "failed" (W7)."""
    if buy_outcome == OrderResult.OUT_OF_STOCK:
        return AnswerOutcome.OUT_OF_STOCK
    if status == 202 or buy_outcome == OrderResult.UNKNOWN:
        return AnswerOutcome.UNKNOWN
    if status is None:
        return AnswerOutcome.FAILED
    if 200 <= status < 300:
        return AnswerOutcome.OK
    return {409: AnswerOutcome.CONFLICT, 404: AnswerOutcome.NOT_FOUND}.get(status, AnswerOutcome.FAILED)


class Arrow(NamedTuple):
    """One message on one link, as the Live screen animates it: a request going out or its
    answer coming back. ``held_ms`` is how long it was on its way at teaching speed (0 at full
    speed, where it is drawn at a pace a person can follow). A tuple of plain values, like
    ``latency.Sample``: the model keeps up to 100,000, untracked by the garbage collector."""

    number: int  # its place in the model's arrow log, from 1
    t: float  # when it left its sender (wall clock)
    source: str  # a node's name, or "client" for the shopper
    target: str
    kind: ArrowKind
    text: str
    outcome: AnswerOutcome  # NONE for a request
    held_ms: float = 0.0
    trace: str | None = None
    span: str | None = None  # a call's and its answer's own span; a client's request: the trace's
    parent: str | None = None  # a call: the span its sender was serving
    answered: bool = True  # False for "no answer": its sender gave up waiting


def told(arrow: Arrow) -> Told:
    """An arrow as ``causal_order`` sees it: the shopper's request and its answer, a call
    between nodes and its answer."""
    if arrow.kind == ArrowKind.REQUEST:
        kind = StepKind.REQUEST if arrow.source == "client" else StepKind.CALL
    else:
        kind = StepKind.REPLY if arrow.target == "client" else StepKind.ANSWER
    return Told(kind, arrow.trace, arrow.span, arrow.parent, arrow.t, arrow.answered)


def step_order(arrows: Sequence[Arrow], known: Collection[tuple[str | None, str | None]] = (),
               now: float | None = None, entered: Collection[str | None] = ()) -> list[Arrow]:
    """``arrows`` in the order a paused Live screen steps through them: causal
    (``traces.causal_order``). ``known`` holds the (trace, span) of requests and calls already
    shown or sent before the pause, ``entered`` the traces whose shopper's request was. A call
    of a trace the shopper started whose cause is neither known nor among ``arrows`` has not
    been heard of yet: it waits, with all it caused, until its cause is heard of, its trace is
    answered, or ``CAUSE_WAIT_S`` have passed since it left (``now``). (A trace the shopper did
    not start — the window's own restock, sent to a catalog replica — has no drawn cause to
    wait for.)"""
    items = [told(a) for a in arrows]
    heard = {(i.trace, i.span) for i in items if i.kind in (StepKind.REQUEST, StepKind.CALL)}
    answered = {i.trace for i in items if i.kind == StepKind.REPLY}
    started = {i.trace for i in items if i.kind == StepKind.REQUEST} | set(entered)
    held: set[tuple[str | None, str | None]] = set()
    for item, arrow in zip(items, arrows, strict=True):
        if (item.kind == StepKind.CALL and item.parent is not None and item.trace in started
                and (item.trace, item.parent) not in heard and (item.trace, item.parent) not in known
                and item.trace not in answered and (now is None or now - arrow.t < CAUSE_WAIT_S)):
            held.add((item.trace, item.span))
    while True:  # what a held call caused waits with it
        more = {(i.trace, i.span) for i in items
                if i.kind == StepKind.CALL and (i.trace, i.parent) in held and (i.trace, i.span) not in held}
        if not more:
            break
        held |= more
    kept = [k for k, i in enumerate(items) if i.kind == StepKind.REQUEST or i.kind == StepKind.REPLY
            or (i.trace, i.span) not in held]
    return [arrows[kept[k]] for k in causal_order([items[k] for k in kept])]


class ArrowLog:
    """The last arrows, oldest first, numbered on from 1 however many were dropped, and how
    events tell of them. The front-end's 200 to a buy waits in ``buys`` for its outcome."""

    def __init__(self, keep: int, buys: PendingBuys, added: Callable[[Arrow], None]) -> None:
        self.arrows: deque[Arrow] = deque(maxlen=keep)
        self.count = 0
        self.buys = buys
        self._added = added

    def tell(self, event: Timed, paced: bool) -> None:
        """The arrows one event tells of. At teaching speed a node tells when a message leaves
        (``Sending``, ``Replying``) and holds it; at full speed a hop tells its request and answer
        once it is over, and the front-end's own events tell the shopper's (``paced``: the
        front-end's answers are held, and told by ``Replying``)."""
        name, t, trace, span = event.node, event.t, event.trace, event.span
        request, answer, quiet = ArrowKind.REQUEST, ArrowKind.ANSWER, AnswerOutcome.NONE
        match event:
            case Sending(to=to, label=label, held_ms=held_ms, parent=parent):
                self.add(t, name, to, request, label, quiet, held_ms, trace, span=span, parent=parent)
            case Replying(to="client", status=status, path=path, held_ms=held_ms):
                if name == "frontend":  # not the window's own calls to a node (a restock, say)
                    self.client_answer(Answer(t, status, held_ms, trace), buy=path.startswith("/buy/"))
            case Replying(to=to, status=status, answer=said, held_ms=held_ms):
                self.add(t, name, to, answer, said, answer_outcome(status), held_ms, trace, span=span)
            case HopDone(to=to, label=label, answer=said, status=status, ms=ms, t0=t0, parent=parent) \
                    if not event.held_ms:
                self.add(t0, name, to, request, label, quiet, 0.0, trace, span=span, parent=parent)
                self.add(t0 + ms / 1000, to, name, answer, said, answer_outcome(status), 0.0, trace, span=span,
                         answered=status is not None)
            case RequestIn(sender=None, method=method, path=path) if name == "frontend":
                self.add(t, "client", name, request, f"{method} {path}", quiet, 0.0, trace, span=span)
            case RequestAnswered(route=route, status=status) if (
                    name == "frontend" and OPERATIONS.get(route) is not None and not paced):
                self.client_answer(Answer(t, status, 0.0, trace), buy=OPERATIONS[route] == "buy")

    def client_answer(self, said: Answer, *, buy: bool, wait: bool = True) -> None:
        """The front-end's answer to the shopper. A bought copy and "out of stock" are both 200:
        a buy's answer waits (a moment at most) for its order replica's outcome to tell them apart."""
        if wait and buy and said.status == 200 and said.trace is not None and not self.buys.decided(said.trace):
            self.buys.hold(said)
            return
        outcome = answer_outcome(said.status, self.buys.outcome(said.trace) if said.trace else None)
        text = "200 out of stock" if outcome == AnswerOutcome.OUT_OF_STOCK else str(said.status)
        self.add(said.t, "frontend", "client", ArrowKind.ANSWER, text, outcome, said.held_ms, said.trace)

    def add(self, t: float, source: str, target: str, kind: ArrowKind, text: str, outcome: AnswerOutcome,
            held_ms: float, trace: str | None, *, span: str | None = None, parent: str | None = None,
            answered: bool = True) -> None:
        self.count += 1
        arrow = Arrow(self.count, t, source, target, kind, text, outcome, held_ms, trace, span, parent, answered)
        self.arrows.append(arrow)
        self._added(arrow)

    def after(self, number: int, limit: int | None = None) -> list[Arrow]:
        """Arrows numbered above ``number``, oldest first (at most ``limit``, the oldest)."""
        arrows = self.arrows
        if not arrows or number >= arrows[-1].number:
            return []
        start = max(0, number - arrows[0].number + 1)
        stop = len(arrows) if limit is None else min(len(arrows), start + limit)
        return [arrows[i] for i in range(start, stop)]

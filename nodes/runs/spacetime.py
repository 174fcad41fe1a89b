"""The space-time diagram of a run, or of any range of it (issue #24): one line per node, an
arrow per message from its sender to its receiver, faults as bands on the lines they hit, the
anomalies a checker found across the picture, the messages it blamed highlighted.

Two steps, both without Qt. ``Picture`` is what to draw: the messages of a range (at most
``LIMIT``, whole requests chosen as ``choose`` says when there are more), put in causal order
(``traces.causal_order``: a message after the one that caused it, an answer after every call it
waited for, whatever the clocks of different nodes said), and the marks. ``lay_out`` turns it
into shapes at a width, a zoom and a text scale (``spacetime_layout.py``); the SVG writer and the
window's view both draw those shapes, so the file and the screen show one picture."""
from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nodes.observe.arrows import Arrow, told
from nodes.observe.model import ClusterModel
from nodes.observe.observations import Anomaly
from nodes.observe.traces import causal_order
from nodes.observe.views import Mark, MarkKind
from nodes.runs.runfile import Run

#: The most messages one picture draws; more are chosen from (``choose``).
LIMIT = 500
#: A request is "near" a fault, heal or anomaly when it comes within this long of one.
NEAR_S = 0.5
#: How long after a range's end its messages may still be told: a node tells of a call when it is
#: over, and a call's time-out is well under this.
TAIL_S = 3.0
#: The cluster's order, left to right: the shopper, the front-end, catalog and order replicas.
ROLE_RANK = {"client": 0, "frontend": 1, "catalog": 2, "order": 3}
#: When many requests must be left out, at least this part of the picture (1/N) goes to
#: requests spread over the range, whatever number are near a fault.
SPREAD_SHARE = 3
#: Spreads the requests kept when many must be left out over the range (a golden-ratio sequence).
_SPREAD = 0.6180339887498949


class SpaceTimeError(Exception):
    """A range that cannot be drawn (empty, or outside the run), in plain words."""


def node_order(names: Iterable[str]) -> list[str]:
    """The nodes left to right as the cluster is drawn: client, frontend, catalogs, orders
    (numbered in order: catalog10 after catalog9), then anything else by name."""
    def key(name: str) -> tuple[int, str, int, str]:
        role = name.rstrip("0123456789")
        digits = name[len(role):]
        return ROLE_RANK.get(role, len(ROLE_RANK)), role, int(digits) if digits else -1, name

    return sorted(set(names) | {"client"}, key=key)


@dataclass(frozen=True)
class Picture:
    """What a space-time diagram shows: ``messages`` (in causal order) of the ``total`` sent
    between ``start`` and ``end`` (wall-clock seconds; labelled from ``origin``), every fault and
    heal up to the end (a band may start before the range), the anomalies, and the traces an
    anomaly blamed."""

    nodes: tuple[str, ...]
    start: float
    end: float
    origin: float
    messages: tuple[Arrow, ...]
    total: int
    marks: tuple[Mark, ...]
    blamed: frozenset[str]
    title: str = ""

    @property
    def capped(self) -> bool:
        return len(self.messages) < self.total

    def seconds(self, t: float) -> str:
        """A moment as the diagram labels it: seconds from ``origin``."""
        return f"+{t - self.origin:.2f} s"

    @property
    def range_text(self) -> str:
        return f"{self.seconds(self.start)} to {self.seconds(self.end)}"

    def note(self) -> str | None:
        """What a person must know of what was left out, or None when every message is drawn."""
        if not self.capped:
            return None
        blamed = "first those an anomaly blamed, then " if any(m.kind == MarkKind.ANOMALY for m in self.marks) else ""
        near = f"those within {NEAR_S:g} s of a fault, heal or anomaly, then " if self.marks else ""
        return (f"Showing {len(self.messages):,} of {self.total:,} messages: whole requests, {blamed}{near}"
                "some spread over the range. Narrow the range to see every message.")

    @property
    def anomalies_elsewhere(self) -> list[Mark]:
        return [m for m in self.marks if m.kind == MarkKind.ANOMALY and not self.start <= m.t <= self.end]


def choose(arrows: Sequence[Arrow], moments: Sequence[float], blamed: Iterable[str], limit: int) -> list[Arrow]:
    """At most ``limit`` of ``arrows``, whole requests (every message of a trace, or none): the
    ones an anomaly blamed; then those nearest a fault, heal or anomaly (``moments``, within
    ``NEAR_S``), leaving a third of the picture (``SPREAD_SHARE``) to requests spread evenly over
    the range; then more near ones if room is left. A message with no trace is a request of its
    own. Oldest first."""
    if len(arrows) <= limit:
        return list(arrows)
    groups: dict[object, list[Arrow]] = {}
    for arrow in arrows:
        groups.setdefault(arrow.trace if arrow.trace is not None else ("#", arrow.number), []).append(arrow)
    moments = sorted(moments)
    blamed = set(blamed)

    def distance(group: list[Arrow]) -> float:
        first, last = min(a.t for a in group), max(a.t for a in group)
        i = bisect.bisect_left(moments, first)
        if i < len(moments) and moments[i] <= last:
            return 0.0
        around = [moments[k] for k in (i - 1, i) if 0 <= k < len(moments)]
        return min((first - m if m < first else m - last for m in around), default=float("inf"))

    ranked = sorted(groups.values(), key=lambda g: min(a.t for a in g))
    first = [g for g in ranked if g[0].trace in blamed]
    near = sorted((g for g in ranked if g[0].trace not in blamed and distance(g) <= NEAR_S), key=distance)
    taken = {id(g) for g in first + near}
    rest = [g for g in ranked if id(g) not in taken]
    spread = [rest[i] for i in sorted(range(len(rest)), key=lambda i: (i * _SPREAD) % 1.0)]
    chosen: list[Arrow] = []
    kept: set[int] = set()

    def fill(groups: list[list[Arrow]], budget: int) -> None:
        nonlocal chosen
        for group in groups:
            if id(group) not in kept and len(chosen) + len(group) <= budget:
                chosen += group
                kept.add(id(group))

    fill(first, limit)
    fill(near, limit - limit // SPREAD_SHARE)  # a share is kept for the rest of the range
    fill(spread, limit)
    fill(near, limit)
    if not chosen:  # one request larger than the limit: its first messages, at least
        chosen = list(arrows[:limit])
    return sorted(chosen, key=lambda a: a.number)


def picture_of(arrows: Iterable[Arrow], marks: Iterable[Mark], blamed: Iterable[str], nodes: Iterable[str],
               start: float, end: float, *, origin: float | None = None, title: str = "",
               limit: int = LIMIT) -> Picture:
    """The picture of the messages sent from ``start`` to ``end`` (``Arrow.t``, on the sender's
    clock) among ``arrows``, with ``marks`` (faults and heals before the end, anomalies at any time)."""
    inside = [a for a in arrows if start <= a.t <= end]
    marks = sorted((m for m in marks if m.kind == MarkKind.ANOMALY or m.t <= end), key=lambda m: m.t)
    blamed = frozenset(blamed)
    moments = [m.t for m in marks if start <= m.t <= end]
    chosen = choose(inside, moments, blamed, limit)
    ordered = tuple(chosen[i] for i in causal_order([told(a) for a in chosen]))
    names = node_order([*nodes, *(a.source for a in inside), *(a.target for a in inside)])
    return Picture(tuple(names), start, end, start if origin is None else origin, ordered, len(inside),
                   tuple(marks), blamed, title)


def picture_of_model(model: ClusterModel, start: float, end: float, *, origin: float | None = None,
                     title: str = "", limit: int = LIMIT) -> Picture:
    """The picture of a range of what ``model`` holds (the window's model, live or played)."""
    return picture_of(list(model.arrows.arrows), list(model.marks), model.blamed, model.nodes, start, end,
                      origin=origin, title=title, limit=limit)


def picture_of_run(run: Run, from_s: float | None = None, to_s: float | None = None, *,
                   limit: int = LIMIT) -> Picture:
    """The picture of a run from ``from_s`` to ``to_s`` (seconds from its start; its whole length
    when not given). The run is fed to a model of its own up to a moment after the range (a call
    is told when it is over), and read on for the anomalies found later (a checker's verdict
    comes at the end). Raises ``SpaceTimeError`` for a range with nothing in it."""
    length = run.end - run.start
    low = 0.0 if from_s is None else from_s
    high = length if to_s is None else to_s
    if high <= low:
        raise SpaceTimeError(f"the range is empty: --from {low:g} is not before --to {high:g}")
    if not run.chunks or low > length:
        raise SpaceTimeError(f"the range starts at +{low:g} s, but the run lasts {length:.1f} s")
    start, end = run.start + low, run.start + high
    model = ClusterModel(run.header.nodes, catalog_of=run.header.catalog_of, keep_arrows=1000)
    inside: list[Arrow] = []
    marks: list[Mark] = []
    model.arrow_added.connect(lambda arrow: inside.append(arrow) if start <= arrow.t <= end else None)
    model.marked.connect(marks.append)
    blamed: set[str] = set()
    for chunk in run.chunks:
        if chunk.first > end + TAIL_S:  # past the range: only the anomalies found later matter
            for _at, item in chunk.records():
                if isinstance(item, Anomaly):
                    blamed.update(item.traces)
                    marks.append(Mark(item.t, item.node, MarkKind.ANOMALY, item.text))
            continue
        for at, item in chunk.records():
            model.replay(at, item)
    blamed |= model.blamed
    if not inside and not any(start <= m.t <= end for m in marks):
        raise SpaceTimeError(f"nothing happened from +{low:g} s to +{high:g} s of the run (no message, fault or "
                             f"anomaly); the run lasts {length:.1f} s")
    source = run.header.source or "a"
    recorded = f", recorded {run.header.when}" if run.header.recorded else ""
    title = f"{run.path.name}: {source} run{recorded}"
    return picture_of(inside, marks, blamed, model.nodes, start, end, origin=run.start, title=title, limit=limit)

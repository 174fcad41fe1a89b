"""Where the space-time diagram puts things (``lay_out``): a picture (``spacetime.Picture``) as
plain shapes — lines, boxes, arrowheads, dots and words — in pixels, at a width, a zoom and a
text scale (``spacetime_shapes``). The SVG writer and the window's view draw these shapes and
nothing else.

Time runs down. Each message takes a row of its own, in the picture's causal order, at least
``ROW_PX`` (times the zoom) below the row before; where messages are sparser than that, rows are
as far apart as their times (``FIT_PX`` for the whole range, times the zoom). So no message is
drawn above the one that caused it, whatever the nodes' clocks said, while the time labels on
the left stay true: they are placed by the same rows. A message leaves its sender's line at its
row and reaches its receiver's a row later (later still when it was held at teaching speed), but
never below the first message its arrival caused. Faults and heals, and anomalies, take rows
of their own at their times."""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from nodes.core.vocabulary import HealthState
from nodes.observe.arrows import AnswerOutcome, Arrow, ArrowKind, told
from nodes.observe.traces import _constraints  # the very rules causal_order places messages by
from nodes.observe.views import Mark, MarkKind
from nodes.runs.spacetime import Picture
from nodes.runs.spacetime_shapes import (
    ANOMALY,
    CUT,
    FAULT_COLORS,
    GRID,
    LABEL_PX,
    LIFELINE,
    MUTED,
    NAME_PX,
    NOTE,
    OUTCOME_COLORS,
    REQUEST,
    TEXT,
    TEXT_PX,
    TITLE_PX,
    WHITE,
    Box,
    Dot,
    Item,
    Line,
    Measure,
    Polygon,
    Shape,
    Words,
    fit_text,
    rough_width,
    wrap,
)

#: A message's row at zoom 1 (times the text scale); and the whole range's height, as far as
#: time alone decides it.
ROW_PX = 14.0
FIT_PX = 600.0
#: How far along its way a request no answer came to is drawn: whether it arrived is not known.
UNKNOWN_SHARE = 0.7
#: A time label at least every this many lines of words.
TICK_GAP_LINES = 6
#: The least width of a node's column (times the text scale); a narrower picture is widened.
MIN_COLUMN_PX = 92.0


@dataclass(frozen=True)
class Drawn:
    """One message where it is drawn: from (``x1``, ``y1``) on its sender's line to (``x2``,
    ``y2``) on its receiver's; ``lost`` when no answer came (a cross where its sender gave up)."""

    arrow: Arrow
    x1: float
    y1: float
    x2: float
    y2: float
    blamed: bool
    lost: bool


@dataclass(frozen=True)
class Band:
    """A fault on a node's line from ``y1`` to ``y2``: the node's state (``link`` False) or a
    link it can no longer send on (``fault.peer``)."""

    node: str
    fault: Mark
    heal: Mark | None
    y1: float
    y2: float
    x: float
    w: float
    color: str
    link: bool


@dataclass
class Layout:
    picture: Picture
    width: float
    height: float
    scale: float
    zoom: float
    columns: dict[str, float]
    left: float  # where the diagram starts: the time labels are left of it
    names_y: float  # the row of node names: the window keeps it in view when scrolled past
    names_h: float
    top: float
    bottom: float
    messages: list[Drawn] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    anomalies: list[tuple[Mark, float]] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)  # back to front
    knots: list[tuple[float, float]] = field(default_factory=list)  # (time, y) of every row, in order
    _times: list[float] = field(default_factory=list, repr=False)
    _ys: list[float] = field(default_factory=list, repr=False)

    def _axis(self) -> tuple[list[float], list[float]]:
        if len(self._times) != len(self.knots):  # the knots are laid once; read many times
            self._times, self._ys = [k[0] for k in self.knots], [k[1] for k in self.knots]
        return self._times, self._ys

    def y_at(self, t: float) -> float:
        """Where a moment is drawn: the first row at it, or between the rows around it."""
        i = bisect.bisect_left(self._axis()[0], t)
        if i <= 0:
            return self.knots[0][1]
        if i >= len(self.knots):
            return self.knots[-1][1]
        (t0, y0), (t1, y1) = self.knots[i - 1], self.knots[i]
        return y1 if t1 <= t0 else y0 + (y1 - y0) * (t - t0) / (t1 - t0)

    def time_at(self, y: float) -> float:
        """The moment drawn at ``y`` (``y_at`` backwards)."""
        i = bisect.bisect_left(self._axis()[1], y)
        if i <= 0:
            return self.knots[0][0]
        if i >= len(self.knots):
            return self.knots[-1][0]
        (t0, y0), (t1, y1) = self.knots[i - 1], self.knots[i]
        return t1 if y1 <= y0 else t0 + (t1 - t0) * (y - y0) / (y1 - y0)


# ---- laying out --------------------------------------------------------------------------------
class _Labels:
    """The boxes words already take, so that a message's label is drawn only where it covers
    no other words (the rest say it in their tooltip)."""

    def __init__(self) -> None:
        self.rows: dict[int, list[tuple[float, float, float, float]]] = {}

    def free(self, x: float, y: float, w: float, h: float) -> bool:
        for row in range(int(y // 32), int((y + h) // 32) + 1):
            for a, b, c, d in self.rows.get(row, ()):
                if x < c and a < x + w and y < d and b < y + h:
                    return False
        return True

    def take(self, x: float, y: float, w: float, h: float) -> None:
        for row in range(int(y // 32), int((y + h) // 32) + 1):
            self.rows.setdefault(row, []).append((x, y, x + w, y + h))


def message_color(arrow: Arrow) -> str:
    return REQUEST if arrow.kind == ArrowKind.REQUEST else OUTCOME_COLORS.get(arrow.outcome, OUTCOME_COLORS[
        AnswerOutcome.FAILED])


def fault_color(mark: Mark) -> str:
    return CUT if mark.peer is not None else FAULT_COLORS.get(mark.state or HealthState.DOWN, FAULT_COLORS[
        HealthState.DOWN])


#: The legend: (how its swatch is drawn, colour, words).
LEGEND = (("line", REQUEST, "request"), ("dash", OUTCOME_COLORS[AnswerOutcome.OK], "answer"),
          ("dash", OUTCOME_COLORS[AnswerOutcome.OUT_OF_STOCK], "out of stock"),
          ("dash", OUTCOME_COLORS[AnswerOutcome.CONFLICT], "409 conflict"),
          ("dash", OUTCOME_COLORS[AnswerOutcome.FAILED], "failed"),
          ("cross", OUTCOME_COLORS[AnswerOutcome.FAILED], "no answer: its sender gave up"),
          ("dash", OUTCOME_COLORS[AnswerOutcome.UNKNOWN], "outcome unknown"),
          ("halo", ANOMALY, "a request an anomaly blamed"), ("band", FAULT_COLORS[HealthState.DOWN], "down"),
          ("band", FAULT_COLORS[HealthState.HUNG], "hung or slow"), ("band", CUT, "cut off"),
          ("link", CUT, "link cut (on its sender's line)"), ("rule", ANOMALY, "anomaly"))


def lay_out(picture: Picture, width: float = 1200.0, *, zoom: float = 1.0, scale: float = 1.0,
            measure: Measure = rough_width) -> Layout:
    """The picture as shapes, ``width`` pixels wide (wider when its nodes need it)."""
    s = scale
    left = measure("+0000.00 s", LABEL_PX * s, False) + 18 * s
    right = 18 * s
    count = len(picture.nodes)
    width = max(width, left + right + count * MIN_COLUMN_PX * s)
    column = (width - left - right) / max(1, count)
    columns = {name: left + column * (i + 0.5) for i, name in enumerate(picture.nodes)}
    layout = Layout(picture, width, 0.0, s, zoom, columns, left, 0.0, 0.0, 0.0, 0.0)
    labels = _Labels()
    head: list[Item] = []
    layout.names_h = NAME_PX * s * 1.5
    y = _head(layout, head, labels, measure)
    layout.names_y = y
    layout.top = y + layout.names_h + 10 * s
    rows = _rows(layout)
    back: list[Item] = []
    _ticks(layout, back, measure)
    for x in columns.values():
        back.append(Item((Line(x, layout.names_y + layout.names_h, x, layout.bottom, LIFELINE, 1.5 * s),)))
    _bands(layout, back, labels, measure)
    anomalies = _anomalies(layout, rows, labels, measure)  # before the messages: their words go first
    messages = _messages(layout, rows, labels, measure)
    layout.items = back + messages + anomalies + head
    layout.height = layout.bottom + 14 * s
    return layout


def _head(layout: Layout, items: list[Item], labels: _Labels, measure: Measure) -> float:
    """The title, what is shown, the note on what is not, the legend, the nodes' names: their
    items, and the y below them."""
    picture, s, width = layout.picture, layout.scale, layout.width
    x, y, room = 14 * s, 12 * s, width - 28 * s

    def words(text: str, px: float, color: str, bold: bool = False) -> None:
        nonlocal y
        for line in wrap(text, px, room, measure, bold) or [""]:
            shown = fit_text(line, px, room, measure, bold)
            items.append(Item((Words(x, y, measure(shown, px, bold), px * 1.3, shown, px, color, bold),)))
            y += px * 1.3
        y += 3 * s

    words(picture.title or "Space-time diagram", TITLE_PX * s, TEXT, True)
    messages = f"{len(picture.messages):,} message" + ("" if len(picture.messages) == 1 else "s")
    words(f"{picture.range_text} · {messages} · time runs down: a row for each message, in causal order (never "
          "above the message that caused it); the times on the left are as the senders' clocks said",
          TEXT_PX * s, MUTED)
    note = picture.note()
    if note:
        words(note, TEXT_PX * s, NOTE, True)
    elsewhere = picture.anomalies_elsewhere
    if elsewhere:
        said = "; ".join(f"{m.text} ({picture.seconds(m.t)})" for m in elsewhere[:3])
        more = f"; and {len(elsewhere) - 3} more" if len(elsewhere) > 3 else ""
        words(f"Anomalies outside this range: {said}{more}", TEXT_PX * s, ANOMALY, True)
    y = _legend(items, x, y + 2 * s, room, s, measure)
    y += 6 * s
    for name, cx in layout.columns.items():
        px = NAME_PX * s
        w = measure(name, px, True)
        items.append(Item((Words(cx - w / 2, y, w, layout.names_h, name, px, TEXT, True),)))
        labels.take(cx - w / 2, y, w, layout.names_h)
    px = LABEL_PX * s
    items.append(Item((Words(6 * s, y, measure("time ↓", px, False), layout.names_h, "time ↓", px, MUTED),)))
    return y


def _legend(items: list[Item], x0: float, y: float, room: float, s: float, measure: Measure) -> float:
    px, swatch, gap = LABEL_PX * s, 22 * s, 14 * s
    h = px * 1.4
    x = x0
    for how, color, text in LEGEND:
        w = swatch + 5 * s + measure(text, px, False)
        if x > x0 and x + w > x0 + room:
            x, y = x0, y + h + 2 * s
        mid = y + h / 2
        shapes: list[Shape] = []
        if how == "band" or how == "link":
            shapes.append(Box(x + 6 * s, y + 1 * s, (10 if how == "band" else 6) * s, h - 2 * s, color, 0.3, color,
                              () if how == "band" else (3 * s, 2 * s)))
        elif how == "rule":
            shapes.append(Line(x, mid, x + swatch, mid, color, 1.6 * s, (5 * s, 3 * s)))
        elif how == "cross":
            shapes += _cross(x + swatch / 2, mid, 4 * s, color, 1.6 * s)
        else:
            if how == "halo":
                shapes.append(Line(x, mid, x + swatch, mid, color, 7 * s, (), 0.3))
            shapes.append(Line(x, mid, x + swatch - 6 * s, mid, REQUEST if how == "halo" else color, 1.5 * s,
                               (5 * s, 3 * s) if how == "dash" else ()))
            shapes.append(_head_of(x, mid, x + swatch, mid, 7 * s, 3 * s, REQUEST if how == "halo" else color))
        shapes.append(Words(x + swatch + 5 * s, y, measure(text, px, False), h, text, px, TEXT))
        items.append(Item(tuple(shapes)))
        x += w + gap
    return y + h


def _rows(layout: Layout) -> dict[int, float]:
    """Every message's and mark's row (by ``id`` of the message or mark), and the knots of time
    to y; sets ``layout.bottom``."""
    picture, s, zoom = layout.picture, layout.scale, layout.zoom
    step = ROW_PX * zoom * s
    per_second = FIT_PX * zoom * s / max(picture.end - picture.start, 1e-3)
    anomaly_room = LABEL_PX * s * 1.4 + 4 * s
    marks = [m for m in picture.marks if picture.start <= m.t <= picture.end]
    rows: dict[int, float] = {}
    y, now = layout.top, picture.start
    layout.knots = [(now, y)]

    def row(thing: Arrow | Mark, t: float, least: float) -> None:
        nonlocal y, now
        t = max(now, t)
        y += max(least, (t - now) * per_second)
        now = t
        rows[id(thing)] = y
        layout.knots.append((t, y))

    waiting = iter(marks)
    mark = next(waiting, None)
    for arrow in picture.messages:
        while mark is not None and mark.t <= max(now, arrow.t):
            row(mark, mark.t, max(step, anomaly_room) if mark.kind == MarkKind.ANOMALY else step)
            mark = next(waiting, None)
        row(arrow, arrow.t, step)
    while mark is not None:
        row(mark, mark.t, max(step, anomaly_room) if mark.kind == MarkKind.ANOMALY else step)
        mark = next(waiting, None)
    end = max(now, picture.end)
    y += max(step * 1.5, (end - now) * per_second)
    layout.knots.append((end, y))
    layout.bottom = y
    return rows


def _ticks(layout: Layout, items: list[Item], measure: Measure) -> None:
    """Time labels on the left: at round seconds from the origin where they do not crowd, and
    where many rows come within little time (no round second among them), at a row's own time
    to the millisecond, so that no stretch of ``TICK_GAP_LINES`` lines goes unlabelled."""
    picture, s = layout.picture, layout.scale
    px = LABEL_PX * s
    h = px * 1.3
    length = max(picture.end - picture.start, 1e-3)
    want = length / max(layout.bottom - layout.top, 1.0) * h * 3  # about three lines apart, on average
    step = 10 ** math.floor(math.log10(want))
    step *= next(factor for factor in (1, 2, 5, 10) if step * factor >= want)
    places = max(0, -math.floor(math.log10(step) + 1e-9))
    first = math.ceil((picture.start - picture.origin) / step - 1e-9)
    last = math.floor((picture.end - picture.origin) / step + 1e-9)
    round_ones = [(picture.origin + k * step, places) for k in range(first, min(last, first + 10_000) + 1)]
    placed: list[tuple[float, float, int]] = []  # y, t, decimals
    for t, digits in [(picture.start, 2), *round_ones, (picture.end, 2)]:
        y = layout.y_at(t)
        if not placed or y - placed[-1][0] >= h * 1.2:
            placed.append((y, t, digits))
    ys = [y for y, _t, _d in placed]
    for t, y in layout.knots:
        i = bisect.bisect_left(ys, y)
        above = ys[i - 1] if i > 0 else -math.inf
        below = ys[i] if i < len(ys) else math.inf
        if y - above >= TICK_GAP_LINES * h and below - y >= 2 * h:
            ys.insert(i, y)
            placed.insert(i, (y, t, 3))
    said: set[str] = set()
    for y, t, digits in placed:
        text = f"+{t - picture.origin:.{digits}f} s"
        if text in said:
            continue  # rows within the same millisecond: the time is said once down the side
        said.add(text)
        w = measure(text, px, False)
        items.append(Item((Line(layout.left, y, layout.width - 10 * s, y, GRID, 1.0 * s),
                           Words(layout.left - w - 6 * s, y - h / 2, w, h, text, px, MUTED))))


def _bands(layout: Layout, items: list[Item], labels: _Labels, measure: Measure) -> None:
    """A band on a node's line for every fault from its mark to its heal (or the range's end):
    the node's state centred on its line, each cut link beside it."""
    picture, s = layout.picture, layout.scale
    open_: dict[tuple[str, str | None], Mark] = {}
    spans: list[tuple[Mark, Mark | None]] = []
    for mark in picture.marks:
        if mark.kind == MarkKind.ANOMALY or mark.node not in layout.columns:
            continue
        key = (mark.node, mark.peer)
        if key in open_:
            spans.append((open_.pop(key), mark))
        if mark.kind == MarkKind.FAULT:
            open_[key] = mark
        elif mark.state is not None and mark.peer is None:  # healed into a lesser fault: still in it
            open_[key] = Mark(mark.t, mark.node, MarkKind.FAULT, f"{mark.node} {mark.state}", mark.state)
    spans += [(fault, None) for fault in open_.values()]
    spans.sort(key=lambda span: span[0].t)
    slots: dict[str, list[float]] = {}  # per node: until when each link slot is taken
    px = LABEL_PX * s
    for fault, heal in spans:
        if heal is not None and heal.t < picture.start:
            continue
        y1 = layout.y_at(max(fault.t, picture.start))
        y2 = layout.y_at(heal.t) if heal is not None and heal.t <= picture.end else layout.bottom
        cx, link = layout.columns[fault.node], fault.peer is not None
        if link:
            taken = slots.setdefault(fault.node, [])
            slot = next((i for i, until in enumerate(taken) if until < y1), len(taken))
            taken[slot:slot + 1] = [y2]
            w = 6 * s
            x = cx + 7 * s + slot * (w + 2 * s)
        else:
            w = 12 * s
            x = cx - w / 2
        color = fault_color(fault)
        since = f" (since {picture.seconds(fault.t)})" if fault.t < picture.start else ""
        ended = (f"; {heal.text} at {picture.seconds(heal.t)} ({heal.t - fault.t:.2f} s)" if heal is not None
                 else f"; not healed by {picture.seconds(picture.end)}")
        tip = f"{fault.text} at {picture.seconds(fault.t)}{ended}"
        shapes: list[Shape] = [Box(x, y1, w, max(y2 - y1, 2 * s), color, 0.22, color, (3 * s, 2 * s) if link else ())]
        text = fault.text + since
        tw = measure(text, px, True)
        lx = x + w + 4 * s if x + w + 4 * s + tw <= layout.width - 4 * s else x - 4 * s - tw
        if labels.free(lx, y1, tw, px * 1.3):
            labels.take(lx, y1, tw, px * 1.3)
            shapes.append(Words(lx, y1, tw, px * 1.3, text, px, color, True, WHITE))
        if heal is not None and heal.t <= picture.end:  # its heal's words, just above the band's end
            hw = measure(heal.text, px, False)
            hx = x + w + 4 * s if x + w + 4 * s + hw <= layout.width - 4 * s else x - 4 * s - hw
            if y2 - y1 > px * 3 and labels.free(hx, y2 - px * 1.3, hw, px * 1.3):
                labels.take(hx, y2 - px * 1.3, hw, px * 1.3)
                shapes.append(Words(hx, y2 - px * 1.3, hw, px * 1.3, heal.text, px, color, False, WHITE))
        items.append(Item(tuple(shapes), tip))
        layout.bands.append(Band(fault.node, fault, heal, y1, y2, x, w, color, link))


def _head_of(x1: float, y1: float, x2: float, y2: float, length: float, half: float, color: str) -> Polygon:
    """An arrowhead at (``x2``, ``y2``) pointing away from (``x1``, ``y1``)."""
    dx, dy = x2 - x1, y2 - y1
    norm = math.hypot(dx, dy) or 1.0
    ux, uy = dx / norm, dy / norm
    bx, by = x2 - ux * length, y2 - uy * length
    return Polygon(((x2, y2), (bx - uy * half, by + ux * half), (bx + uy * half, by - ux * half)), color)


def _cross(x: float, y: float, r: float, color: str, width: float, opacity: float = 1.0) -> list[Shape]:
    return [Line(x - r, y - r, x + r, y + r, color, width, (), opacity),
            Line(x - r, y + r, x + r, y - r, color, width, (), opacity)]


def _messages(layout: Layout, rows: dict[int, float], labels: _Labels, measure: Measure) -> list[Item]:
    """Every message as an arrow (with a halo when an anomaly blamed its request), and its words
    over it where they cover no other words."""
    picture, s = layout.picture, layout.scale
    messages = picture.messages
    step = ROW_PX * layout.zoom * s
    sent = [rows[id(a)] for a in messages]
    caused: list[float] = [math.inf] * len(messages)  # the first row its arrival caused a message at
    for j, earlier in enumerate(_constraints([told(a) for a in messages])):
        for i in earlier:
            if sent[j] > sent[i]:
                caused[i] = min(caused[i], sent[j])
    unanswered = {(a.trace, a.span) for a in messages if a.kind == ArrowKind.ANSWER and not a.answered}
    px = LABEL_PX * s
    h = px * 1.3
    arrows: list[Item] = []
    words: list[Item] = []
    for i, arrow in enumerate(messages):
        y1 = sent[i]
        x1, x2 = layout.columns[arrow.source], layout.columns[arrow.target]
        blamed = arrow.trace is not None and arrow.trace in picture.blamed
        lost = arrow.kind == ArrowKind.ANSWER and not arrow.answered
        color = message_color(arrow)
        arrived = layout.y_at(arrow.t + arrow.held_ms / 1000) if arrow.held_ms else y1
        y2 = min(max(y1 + step, arrived), caused[i], layout.bottom)
        if arrow.kind == ArrowKind.REQUEST and (arrow.trace, arrow.span) in unanswered:
            # No answer came: whether it arrived is not known. It stops short, at a bar.
            x2, y2 = x1 + (x2 - x1) * UNKNOWN_SHARE, y1 + (y2 - y1) * UNKNOWN_SHARE
        shapes: list[Shape] = []
        if lost:  # nothing came: a cross on the line of the node that gave up waiting
            x1, y2 = x2, y1
            if blamed:
                shapes += _cross(x2, y1, 6 * s, ANOMALY, 6 * s, 0.3)
            shapes += _cross(x2, y1, 5 * s, color, 2 * s)
        elif (arrow.trace, arrow.span) in unanswered and arrow.kind == ArrowKind.REQUEST:
            if blamed:
                shapes.append(Line(x1, y1, x2, y2, ANOMALY, 7 * s, (), 0.3))
            shapes += [Dot(x1, y1, 2.2 * s, color), Line(x1, y1, x2, y2, color, (2.0 if blamed else 1.4) * s),
                       Line(x2, y2 - 5 * s, x2, y2 + 5 * s, color, 2 * s)]
        else:
            if blamed:
                shapes.append(Line(x1, y1, x2, y2, ANOMALY, 7 * s, (), 0.3))
            head = _head_of(x1, y1, x2, y2, 8 * s, 3.5 * s, color)
            bx, by = (head.points[1][0] + head.points[2][0]) / 2, (head.points[1][1] + head.points[2][1]) / 2
            dashed = (5 * s, 3 * s) if arrow.kind == ArrowKind.ANSWER else ()
            shapes += [Dot(x1, y1, 2.2 * s, color), Line(x1, y1, bx, by, color, (2.0 if blamed else 1.4) * s, dashed),
                       head]
        layout.messages.append(Drawn(arrow, x1, y1, x2, y2, blamed, lost))
        tip = _tip(picture, arrow, blamed, lost, (arrow.trace, arrow.span) in unanswered)
        arrows.append(Item(tuple(shapes), tip, arrow.trace))
        text = "no answer" if lost else arrow.text
        room = abs(x2 - x1) - 16 * s if not lost else 90 * s
        # Rows closer than words are tall: no words at all (they would hide the arrows; tooltips name them).
        shown = fit_text(text, px, room, measure) if room > 30 * s and step >= h * 0.75 else ""
        if not shown:
            continue
        w = measure(shown, px, False)
        lx = (x1 + x2) / 2 - w / 2 if not lost else x2 + 8 * s
        if lost and lx + w > layout.width - 4 * s:  # the rightmost line: its words on its left
            lx = x2 - 8 * s - w
        ly = (y1 + y2) / 2 - h - 1 * s if not lost else y1 - h / 2
        if labels.free(lx, ly, w, h):
            labels.take(lx, ly, w, h)
            words.append(Item((Words(lx, ly, w, h, shown, px, color, blamed, WHITE),), tip, arrow.trace))
    return arrows + words


def _tip(picture: Picture, arrow: Arrow, blamed: bool, lost: bool, unanswered: bool = False) -> str:
    if lost:
        what = f"no answer from {arrow.source}: {arrow.target} gave up waiting ({arrow.text})"
    elif arrow.kind == ArrowKind.REQUEST:
        what = f"{arrow.source} → {arrow.target}: {arrow.text}" + (
            "\nno answer came: lost on its way, or never answered" if unanswered else "")
    else:
        what = f"{arrow.source} → {arrow.target}: answer {arrow.text}"
    held = f", held {arrow.held_ms:.0f} ms on its way" if arrow.held_ms else ""
    clock = "its receiver's" if arrow.kind == ArrowKind.ANSWER and not arrow.held_ms else "its sender's"
    lines = [what, f"at {picture.seconds(arrow.t)} on {clock} clock{held}"]
    if arrow.trace:
        lines.append(f"trace {arrow.trace}" + (" · blamed by an anomaly" if blamed else ""))
    return "\n".join(lines)


def _anomalies(layout: Layout, rows: dict[int, float], labels: _Labels, measure: Measure) -> list[Item]:
    """Each anomaly in the range as a dashed line across the picture at its row, with its words
    above the line and a dot on the node it concerns most."""
    picture, s = layout.picture, layout.scale
    px = LABEL_PX * s
    h = px * 1.4
    first = layout.left
    items = []
    for mark in picture.marks:
        if mark.kind != MarkKind.ANOMALY or id(mark) not in rows:
            continue
        y = rows[id(mark)]
        layout.anomalies.append((mark, y))
        shapes: list[Shape] = [Line(first, y, layout.width - 10 * s, y, ANOMALY, 1.6 * s, (6 * s, 3 * s))]
        if mark.node in layout.columns:
            shapes.append(Dot(layout.columns[mark.node], y, 4.5 * s, ANOMALY))
        text = fit_text(f"⚠ anomaly on {mark.node}: {mark.text}", px, layout.width - first - 20 * s, measure, True)
        w = measure(text, px, True)
        shapes.append(Words(first + 4 * s, y - h - 1 * s, w, h, text, px, ANOMALY, True, WHITE))
        labels.take(first + 4 * s, y - h - 1 * s, w, h)
        items.append(Item(tuple(shapes), f"anomaly at {picture.seconds(mark.t)} on {mark.node}: {mark.text}"))
    return items

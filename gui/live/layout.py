"""Where the Live picture puts things: the nodes as the documentation figures place them (the
shopper and the front-end on the left, catalog replicas in a row on top, order replicas in a
row below), each node's box (its icon and its words: what a click chooses, and what no message
label may cover), the catalog row's caption, the colour key and the teaching-speed banner, the
links between nodes as paths a message moves along, and where each message's label goes so
that no two labels, and no label and node words, overlap (``place_labels``).

The layout is measured, not guessed: it is given the size of the words (``Measure``) and
places every box so that none overlaps another or leaves the picture. The words grow with the
presenter scale and with a large picture; in a picture too small for them at that size they
shrink (at most to ``MIN_FIT`` of it) until everything fits (``Layout.fits``). Pure functions of
the canvas's size, the scale and the measure: no painting."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Protocol

from PySide6.QtCore import QPointF, QRectF, QSizeF
from PySide6.QtGui import QPainterPath

#: Where the rows of replicas start at the least, as a share of the width.
ROWS_LEFT = 0.30
#: The rows' and the entry nodes' preferred heights, as shares of the picture's height.
CATALOG_Y = 0.27
ORDER_Y = 0.80
ENTRY_Y = 0.52
#: The picture's size at which its words are drawn at their base size; larger, they grow (up to
#: ``MAX_GROWTH``), so that a big window on a projector shows big words.
BASE_SIZE = (760, 430)
MAX_GROWTH = 1.35
#: How far the words may shrink below the presenter scale to fit a small picture.
MIN_FIT = 0.7
#: The words' base sizes in pixels (times the text scale): a catalog's ``N (seq)``, an order
#: replica's and an entry node's name, a state pill, a line of facts, the caption, the key.
NAME_PX = {"catalog": 18.0, "order": 14.0, "entry": 13.0}
PILL_PX = 11.0
FACT_PX = 11.0
CAPTION_PX = 13.0
#: Lines of facts under a replica's state (wrapped words count): a catalog replica's stock,
#: validity and lease; an order replica's catalog and its warning.
FACT_LINES = {"catalog": 4, "order": 3}
#: The colour key's lines, in the bottom left corner (painter.KEY gives their colours).
KEY_TEXTS = ("request →", "answer: ok", "out of stock", "conflict 409", "failed", "unknown")
#: The catalog row's caption, longest first: the first that fits is drawn.
CAPTIONS = ("Book {book} at each catalog replica N: N (its seq), bold when valid",
            "Book {book} at catalog replica N: N (seq), bold when valid",
            "Catalog replicas · book {book}: N (seq), bold = valid", "Catalogs · book {book}: N (seq)",
            "book {book}: N (seq)")
#: Room kept between things, at scale 1.
GAP = 6.0


class Measure(Protocol):
    """The size of words in the picture's font, at a size in pixels."""

    def width(self, text: str, px: float, bold: bool = False) -> float: ...

    def line(self, px: float) -> float: ...


@dataclass
class Layout:
    """The picture's geometry at one size and scale."""

    icon: int = 0
    text_scale: float = 1.0
    centers: dict[str, QPointF] = field(default_factory=dict)
    boxes: dict[str, QRectF] = field(default_factory=dict)
    #: Where each node's words go: beside a replica's icon, under an entry node's.
    columns: dict[str, QRectF] = field(default_factory=dict)
    paths: dict[tuple[str, str], QPainterPath] = field(default_factory=dict)
    #: The caption, the colour key and the teaching-speed banner (when on), by name.
    words: dict[str, QRectF] = field(default_factory=dict)
    caption: str = ""
    banner_lines: list[str] = field(default_factory=list)
    size: QSizeF = field(default_factory=QSizeF)

    def px(self, base: float) -> float:
        """A base pixel size at this layout's text scale (as ``painter.scaled_font`` rounds it)."""
        return float(max(8, round(base * self.text_scale)))

    def obstacles(self) -> list[QRectF]:
        """What a message label may not cover: every node's box and the picture's own words."""
        return [*self.boxes.values(), *self.words.values()]

    def fits(self) -> bool:
        """Whether every box and word is inside the picture and none overlaps another."""
        bounds = QRectF(0, 0, self.size.width(), self.size.height())
        rects = self.obstacles()
        return (all(bounds.contains(r) for r in rects)
                and not any(a.intersects(b) for a, b in combinations(rects, 2)))


def icon_height(height: int, scale: float) -> int:
    """A node's icon: 64 px at scale 1, never taller than a seventh of the picture, nor under 34."""
    return int(max(34, min(64 * scale, height * 0.14)))


def text_scale(width: int, height: int, scale: float) -> float:
    """How much larger than their base size the picture's words are drawn: the presenter
    scale, times the picture's growth beyond ``BASE_SIZE`` (at most ``MAX_GROWTH``)."""
    growth = min(width / BASE_SIZE[0], height / BASE_SIZE[1])
    return scale * min(MAX_GROWTH, max(1.0, growth))


def lay_out(width: int, height: int, scale: float, catalogs: Sequence[str], orders: Sequence[str],
            catalog_of: Mapping[str, str], measure: Measure, *, book: int = 2, banner: str | None = None) -> Layout:
    """The geometry for a picture ``width`` by ``height`` at ``scale``; ``catalog_of`` says
    which catalog replica each order replica uses (a link is drawn between them); ``banner``
    is the teaching-speed banner's words, if it is on. The words' scale is the largest, from
    ``text_scale`` down to ``MIN_FIT`` of it, at which everything fits."""
    grown = text_scale(width, height, scale)
    words_scale = grown
    while True:
        layout = _attempt(width, height, scale, words_scale, catalogs, orders, catalog_of, measure, book, banner)
        if layout.fits() or words_scale <= grown * MIN_FIT:
            return layout
        words_scale = max(grown * MIN_FIT, words_scale * 0.93)


def _attempt(w: int, h: int, scale: float, ts: float, catalogs: Sequence[str], orders: Sequence[str],
             catalog_of: Mapping[str, str], measure: Measure, book: int, banner: str | None) -> Layout:
    layout = Layout(icon_height(h, scale), ts, size=QSizeF(w, h))
    gap = GAP * ts
    rows_left = _entry_column(layout, measure, banner, gap)
    caption_px = layout.px(CAPTION_PX)
    room = w - 8 - rows_left
    layout.caption = next((c.format(book=book) for c in CAPTIONS
                           if measure.width(c.format(book=book), caption_px, True) <= room),
                          CAPTIONS[-1].format(book=book))
    layout.words["caption"] = QRectF(rows_left, 2, min(room, measure.width(layout.caption, caption_px, True) + 2),
                                     measure.line(caption_px))
    arcs = _arc_room(layout, len(catalogs))
    top = max(CATALOG_Y * h - layout.icon / 2, layout.words["caption"].bottom() + gap + arcs)
    _row(layout, catalogs, "catalog", rows_left, top, measure)
    words = _words_height(layout, "order", measure)
    _row(layout, orders, "order", rows_left, min(ORDER_Y * h - layout.icon / 2, h - 4 - max(layout.icon, words)),
         measure)
    layout.paths = _links(layout, catalogs, orders, catalog_of)
    return layout


def _entry_column(layout: Layout, measure: Measure, banner: str | None, gap: float) -> float:
    """The left column: the banner on top, the shopper and the front-end side by side, the key
    in the bottom corner; returns where the rows of replicas may start."""
    w, h, icon = layout.size.width(), layout.size.height(), layout.icon
    name_px, pill_px, fact_px = layout.px(NAME_PX["entry"]), layout.px(PILL_PX), layout.px(FACT_PX)
    client_w = max(icon * 0.8, measure.width("shopper", name_px, True))
    front_w = max(icon * 0.8, measure.width("front-end", name_px, True), measure.width("starting", pill_px, True) + 14)
    client_x = 6 + client_w / 2
    front_x = client_x + client_w / 2 + 2 * gap + front_w / 2
    rows_left = max(ROWS_LEFT * w, front_x + front_w / 2 + 3 * gap)
    key_line = measure.line(fact_px) + 1
    key_w = 20 + max(measure.width(text, fact_px) for text in KEY_TEXTS)
    layout.words["key"] = QRectF(0, h - key_line * len(KEY_TEXTS) - 6, key_w, key_line * len(KEY_TEXTS) + 6)
    above = 4.0
    if banner:
        layout.banner_lines = wrap(banner, measure, pill_px, True, rows_left - 2 * gap - 24)
        widest = max(measure.width(line, pill_px, True) for line in layout.banner_lines)
        layout.words["banner"] = QRectF(6, 4, widest + 14, len(layout.banner_lines) * measure.line(pill_px) + 6)
        above = layout.words["banner"].bottom()
    name_h, pill_h = measure.line(name_px), measure.line(pill_px) + 4
    block = icon + 2 + name_h + 2 + pill_h
    lowest = layout.words["key"].top() - gap - block
    top = min(max(ENTRY_Y * h - icon / 2, above + gap), lowest)
    for name, x, width, tall in (("client", client_x, client_w, icon + 2 + name_h), ("frontend", front_x, front_w,
                                                                                    block)):
        layout.centers[name] = QPointF(x, top + icon / 2)
        layout.boxes[name] = QRectF(x - width / 2, top, width, tall)
        layout.columns[name] = QRectF(x - width / 2, top + icon + 2, width, tall - icon - 2)
    return rows_left


def _words_height(layout: Layout, role: str, measure: Measure) -> float:
    """The height of a replica's words: its name, its state pill and its lines of facts."""
    return (measure.line(layout.px(NAME_PX[role])) + 2 + measure.line(layout.px(PILL_PX)) + 4 + 2
            + FACT_LINES[role] * measure.line(layout.px(FACT_PX)))


def _row(layout: Layout, names: Sequence[str], role: str, left: float, top: float, measure: Measure) -> None:
    """A row of replicas from ``left`` to the right edge, their icons' tops at ``top``."""
    icon = layout.icon
    slot = (layout.size.width() - 8 - left) / max(1, len(names))
    text_w = slot - icon * 0.8 - 8 - GAP * layout.text_scale
    tall = max(icon, _words_height(layout, role, measure))
    for i, name in enumerate(names):
        x = left + slot * i + icon * 0.4 + 2
        layout.centers[name] = QPointF(x, top + icon / 2)
        layout.boxes[name] = QRectF(x - icon * 0.4, top, icon * 0.8 + 8 + text_w, tall)
        layout.columns[name] = QRectF(x + icon * 0.4 + 8, top, text_w, tall)


def _lift(scale: float, apart: int) -> float:
    """How high the arc between two catalog replicas ``apart`` places apart rises."""
    return (10 + 12 * apart) * min(scale, 1.3)


def _arc_room(layout: Layout, catalogs: int) -> float:
    """The room the arcs between catalog replicas take above their icons (a cubic's peak is
    three quarters of its control points' lift)."""
    return 0.75 * 1.6 * _lift(layout.text_scale, catalogs - 1) if catalogs > 1 else 0.0


def wrap(text: str, measure: Measure, px: float, bold: bool, width: float) -> list[str]:
    """``text`` in lines no wider than ``width`` (a word wider than that has a line of its own)."""
    lines: list[str] = []
    for word in text.split():
        if lines and measure.width(f"{lines[-1]} {word}", px, bold) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _links(layout: Layout, catalogs: Sequence[str], orders: Sequence[str],
           catalog_of: Mapping[str, str]) -> dict[tuple[str, str], QPainterPath]:
    """Every link a message can take, keyed (one end, other end): shopper to front-end, the
    front-end to every replica, each order replica to its catalog, and arcs between catalogs."""
    centers, icon = layout.centers, layout.icon

    def top(n: str) -> QPointF:
        return QPointF(centers[n].x(), centers[n].y() - icon / 2)

    def bottom(n: str) -> QPointF:
        return QPointF(centers[n].x(), centers[n].y() + icon / 2)

    paths: dict[tuple[str, str], QPainterPath] = {}
    front = centers["frontend"]
    paths[("client", "frontend")] = _line(QPointF(centers["client"].x() + icon * 0.4, front.y()),
                                          QPointF(front.x() - icon * 0.4, front.y()))
    for name in catalogs:
        paths[("frontend", name)] = _line(QPointF(front.x() + icon * 0.4, front.y() - icon * 0.2), bottom(name))
    for name in orders:
        paths[("frontend", name)] = _line(QPointF(front.x() + icon * 0.4, front.y() + icon * 0.2), top(name))
        catalog = catalog_of.get(name)
        if catalog is not None and catalog in centers:
            paths[(name, catalog)] = _line(top(name) + QPointF(icon * 0.2, 0), bottom(catalog) + QPointF(icon * 0.2, 0))
    for i, a in enumerate(catalogs):
        for j in range(i + 1, len(catalogs)):
            b = catalogs[j]
            lift = _lift(layout.text_scale, j - i)
            start, end = top(a) + QPointF(icon * 0.15, 0), top(b) - QPointF(icon * 0.15, 0)
            path = QPainterPath(start)
            path.cubicTo(start - QPointF(0, lift * 1.6), end - QPointF(0, lift * 1.6), end)
            paths[(a, b)] = path
    return paths


def place_labels(anchors: Sequence[tuple[QPointF, QSizeF]], obstacles: Sequence[QRectF],
                 bounds: QRectF) -> list[QRectF | None]:
    """Where each message's label goes, in the order given (the first placed first): the first
    spot near its message, within ``bounds``, that covers no obstacle and no label placed
    before; None when there is none (the message is drawn without its label)."""
    taken = list(obstacles)
    placed: list[QRectF | None] = []
    for point, size in anchors:
        spot = None
        for dx, dy in _spots(size):
            rect = QRectF(point.x() + dx, point.y() + dy, size.width(), size.height())
            if bounds.contains(rect) and not any(rect.intersects(other) for other in taken):
                spot = rect
                break
        placed.append(spot)
        if spot is not None:
            taken.append(spot)
    return placed


def _spots(size: QSizeF) -> list[tuple[float, float]]:
    """Offsets from a message to try for its label: beside it first, then a little further."""
    w, h = size.width(), size.height()
    gap = 6.0
    near = [(gap, -h - 2), (gap, 2), (-w - gap, -h - 2), (-w - gap, 2), (-w / 2, -h - gap), (-w / 2, gap)]
    spots = list(near)
    for ring in (1, 2, 3):
        spots += [(dx, dy - ring * (h + 2)) for dx, dy in near[:4]] + [(dx, dy + ring * (h + 2)) for dx, dy in near[:4]]
    return spots


def _line(a: QPointF, b: QPointF) -> QPainterPath:
    path = QPainterPath(a)
    path.lineTo(b)
    return path


def has_link(paths: Mapping[tuple[str, str], QPainterPath], source: str, target: str) -> bool:
    """Whether a message from ``source`` to ``target`` can be drawn (links go both ways)."""
    return (source, target) in paths or (target, source) in paths


def position(paths: Mapping[tuple[str, str], QPainterPath], source: str, target: str,
             progress: float) -> tuple[QPointF, float]:
    """Where a message from ``source`` to ``target`` is when ``progress`` (0 to 1) of its way is
    done, and the angle it points in; kept just off both ends, so it never hides under an icon."""
    path = paths.get((source, target))
    p = progress
    if path is None:
        path, p = paths[(target, source)], 1 - p
        ahead = -1
    else:
        ahead = 1
    p = min(0.97, max(0.03, p))
    point = path.pointAtPercent(p)
    nudge = path.pointAtPercent(min(1.0, max(0.0, p + 0.01 * ahead)))
    return point, math.atan2(nudge.y() - point.y(), nudge.x() - point.x())


def node_at(boxes: Mapping[str, QRectF], point: QPointF) -> str | None:
    """The node whose box (with a small margin) holds ``point``; the shopper is not a node."""
    for name, box in boxes.items():
        if name != "client" and box.adjusted(-6, -6, 6, 6).contains(point):
            return name
    return None

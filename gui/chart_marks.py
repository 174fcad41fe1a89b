"""The words of a chart's fault and heal marks, and its legend's columns: where each label goes
in the strip between a chart's title and its plot so that none touches another, leaves the
chart or covers the data, and how many legend columns fit a chart's width. gui/charts.py draws
the chart; this places its words."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from nodes.observe.views import Mark, MarkKind


@dataclass(frozen=True)
class Shown:
    """A fault or heal as a chart names it: its mark, its time before the drawing's "now" (the
    x of its line) and its colour."""

    mark: Mark
    t: float
    color: str


@dataclass(frozen=True)
class Placed:
    """A fault or heal label where the mark strip draws it: its row (0 next to the plot), its
    box in the strip's coordinates and the x of its line there."""

    shown: Shown
    text: str
    row: int
    rect: QRectF
    x: float


def place_labels(wanted: Sequence[tuple[float, float]], width: float, rows: int, gap: float = 6.0,
                 taken: Sequence[tuple[int, float, float]] = ()) -> list[tuple[int, float] | None]:
    """Where each label of ``wanted`` (x of its line, its width) goes: (row, left edge), or None
    when it fits in no row. A label starts at its line, or ends there when it would cross the
    right edge; it never leaves [0, width], and no two in a row come closer than ``gap``.
    ``taken`` are (row, left, right) already placed; the first in ``wanted`` go first (the
    newest marks, so that they sit next to the plot)."""
    busy: list[list[tuple[float, float]]] = [[] for _ in range(rows)]
    for row, a, b in taken:
        busy[row].append((a, b))
    placed: list[tuple[int, float] | None] = []
    for x, w in wanted:
        left = min(max(x if x + w <= width else x - w, 0.0), max(width - w, 0.0))
        spot = None
        for row in range(rows if w <= width else 0):
            if all(left + w + gap <= a or b + gap <= left for a, b in busy[row]):
                busy[row].append((left, left + w))
                spot = (row, left)
                break
        placed.append(spot)
    return placed


class MarkStrip(pg.GraphicsWidget):
    """The band between a chart's title and its plot where each fault and heal is named: the
    words sit outside the data, never on each other, never past an edge, each with a tick down
    to its line. A mark whose words fit nowhere is named by its node alone, or else only in its
    line's tooltip (``hidden`` counts those)."""

    ROWS = 3  # at most; the chart gives it fewer when it is short
    PAD = 10  # a label's box is its words plus this
    GAP = 3  # pixels between two rows

    def __init__(self, view: pg.ViewBox, parent: pg.GraphicsWidget, window_s: float) -> None:
        super().__init__(parent)  # Qt's to delete with the chart's scene, not Python's as well
        self.view = view
        self.window_s = window_s  # the plot shows the last this many seconds
        self.shown: list[Shown] = []
        self.placed: list[Placed] = []
        self.hidden = 0
        self.rows = self.ROWS
        self.set_scale(1.0)
        self.setMinimumWidth(1)  # its words never widen the chart: the chart's width places them
        # Its x is the plot's: placed again once the layout has moved either of them (in the
        # next turn of the loop: within one pass, the plot may move after the strip).
        self._placed_for: tuple[float, float] | None = None  # where the plot's ends were, when placed
        self.geometryChanged.connect(self._later)
        view.sigResized.connect(lambda _view: self._later())
        view.sigXRangeChanged.connect(lambda _view, _range: self._later())

    def set_scale(self, scale: float) -> None:
        self.label_font = QFont()
        self.label_font.setPointSizeF(9 * scale)
        self.label_font.setBold(True)
        self.metrics = QFontMetricsF(self.label_font)
        self.line_height = self.metrics.height() + 4
        self.relayout()

    def show_marks(self, shown: list[Shown]) -> None:
        """The marks to name, oldest first."""
        self.shown = shown
        self.relayout()

    def _x(self, t: float) -> float:
        return self.mapFromScene(self.view.mapViewToScene(QPointF(t, 0))).x()

    def _span(self) -> tuple[float, float]:
        return self._x(-self.window_s), self._x(0)

    def _later(self) -> None:
        QTimer.singleShot(0, self, self.relayout)

    def relayout(self) -> None:
        """Place every label again (the marks, the width or the scale changed): each in full,
        else by its node's name, else only on its line's tooltip."""
        if self.scene() is None or self.view.scene() is None:
            return  # being taken down with its chart
        width = self.boundingRect().width()
        self._placed_for = self._span()
        spots: list[tuple[Shown, str, int, float, float, float]] = []  # shown, text, row, left, width, x
        self.hidden = 0
        # Faults first, newest first, then heals: where a heal comes close after its fault and
        # only one name fits, the fault keeps its words (its line's tooltip names the heal).
        first = sorted(reversed(self.shown), key=lambda shown: shown.mark.kind != MarkKind.FAULT)
        for shown in first:
            x = self._x(shown.t)
            taken = [(row, left, left + w) for _s, _t, row, left, w, _x in spots]
            for text in (shown.mark.text, short_text(shown.mark)):
                w = self.metrics.horizontalAdvance(text) + self.PAD
                spot = place_labels([(x, w)], width, self.rows, taken=taken)[0]
                if spot is not None:
                    spots.append((shown, text, spot[0], spot[1], w, x))
                    break
            else:
                self.hidden += 1
        used = 1 + max((row for _s, _t, row, _l, _w, _x in spots), default=-1)
        pitch = self.line_height + self.GAP
        height = used * pitch + (2 if used else 0)
        # Row 0 at the bottom, next to the plot its ticks point into; rows a few pixels apart.
        self.placed = [Placed(shown, text, row, QRectF(left, height - (row + 1) * pitch, w, self.line_height), x)
                       for shown, text, row, left, w, x in spots]
        if self.minimumHeight() != height or self.maximumHeight() != height:
            self.setMinimumHeight(height)
            self.setMaximumHeight(height)
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._placed_for is not None and max(abs(a - b) for a, b in zip(self._placed_for, self._span(),
                                                                            strict=True)) > 0.5:
            self._later()  # the plot moved since: placed again, and painted again
        bottom = self.boundingRect().height()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setFont(self.label_font)
        for placed in self.placed:  # ticks first: a label above another covers that one's tick
            painter.setPen(QPen(QColor(placed.shown.color), 2))
            painter.drawLine(QPointF(placed.x, placed.rect.bottom()), QPointF(placed.x, bottom))
        for placed in self.placed:
            painter.setPen(QPen(QColor(placed.shown.color), 1.5))
            painter.setBrush(QColor(255, 255, 255, 240))
            painter.drawRoundedRect(placed.rect.adjusted(0.75, 0.75, -0.75, -0.75), 3, 3)
            painter.drawText(placed.rect, Qt.AlignmentFlag.AlignCenter, placed.text)


def short_text(mark: Mark) -> str:
    """A mark named in fewer words, where its full words do not fit: its node, or a link's two ends."""
    if mark.text.startswith("link "):
        return mark.text.removeprefix("link ").rsplit(" ", 1)[0]
    return mark.node


def columns_that_fit(widths: Sequence[float], available: float, sample: float = 40.0) -> int:
    """The most legend columns whose widest entries (each with its sample and spacing) fit in
    ``available``; entries fill the rows left to right, as pyqtgraph's legend lays them out."""
    for columns in range(len(widths), 1, -1):
        if sum(max(widths[j::columns]) + sample for j in range(columns)) <= available:
            return columns
    return 1

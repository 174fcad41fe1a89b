"""The Live picture's still part, drawn the way the documentation figures draw servers: the
captions and the colour key, the links (dotted to a node that is down, dashed and crossed when
cut), and each node with its state on it: the icon crossed out when down or faded when hung,
cut off or starting, a pause sign when hung, a state pill, and for a catalog replica the shown
book's ``N (seq)``, bold when valid, with its stock and lease. Drawn from ``StillFacts`` only,
into a picture the canvas keeps until one of the facts changes."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen, QPixmap

from gui.common import COLORS, node_icon, role_of
from gui.live.layout import ORDER_Y, ROWS_LEFT, Layout, icon_height
from nodes.core.vocabulary import GONE, SERVING, HealthState
from nodes.observe.arrows import AnswerOutcome
from nodes.observe.views import NodeHealth, ReplicaCell

#: Darker state colours than the cards' pills, so white text on them stays readable.
STATE_FILL = {HealthState.UP: "#15803d", HealthState.SLOW: "#b45309", HealthState.STARTING: "#1d4ed8",
              HealthState.CUT_OFF: "#6d28d9", HealthState.HUNG: "#b45309", HealthState.DOWN: "#b91c1c",
              HealthState.EXITED: "#b91c1c"}
#: Requests are blue; an answer is coloured by its outcome.
OUTCOME_COLORS = {AnswerOutcome.NONE: "#1d4ed8", AnswerOutcome.OK: "#15803d", AnswerOutcome.OUT_OF_STOCK: "#b45309",
                  AnswerOutcome.CONFLICT: "#c2410c", AnswerOutcome.NOT_FOUND: "#334155",
                  AnswerOutcome.UNKNOWN: "#6d28d9", AnswerOutcome.FAILED: "#b91c1c"}
#: The colour key in the bottom left corner: (words, outcome).
KEY = (("request →", AnswerOutcome.NONE), ("answer: ok", AnswerOutcome.OK),
       ("out of stock", AnswerOutcome.OUT_OF_STOCK), ("conflict 409", AnswerOutcome.CONFLICT),
       ("failed", AnswerOutcome.FAILED), ("unknown", AnswerOutcome.UNKNOWN))
#: States drawn with a faded icon: running, but answering nobody yet or at all.
FADED = (HealthState.HUNG, HealthState.CUT_OFF, HealthState.STARTING)


class StillFacts(NamedTuple):
    """What the Live picture's still part is drawn from; drawn again when any of it changes."""

    size: QSize
    pixel_ratio: float
    font: str
    scale: float
    book: int
    selected: str
    focused: bool
    pace_ms: int
    healths: tuple[NodeHealth, ...]
    cells: tuple[ReplicaCell, ...]
    cut: tuple[tuple[str, str], ...]


def scaled_font(base: QFont, px: float, scale: float, bold: bool = False) -> QFont:
    """``base`` at ``px`` pixels times the presenter scale (never under 8 px)."""
    font = QFont(base)
    font.setPixelSize(max(8, round(px * scale)))
    font.setBold(bold)
    return font


def draw_still(facts: StillFacts, layout: Layout, base: QFont, names: Sequence[str], catalogs: Sequence[str],
               catalog_of: Mapping[str, str]) -> QPixmap:
    """The still picture for ``facts``, at the screen's pixel ratio, on white."""
    ratio = facts.pixel_ratio
    picture = QPixmap(facts.size * ratio)
    picture.setDevicePixelRatio(ratio)
    painter = QPainter(picture)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.fillRect(QRect(0, 0, facts.size.width(), facts.size.height()), QColor("#ffffff"))
    StillPainter(painter, facts, layout, base, catalogs, catalog_of).paint(names)
    painter.end()
    return picture


class StillPainter:
    """Draws one still picture with ``painter``; lives for that one picture."""

    def __init__(self, painter: QPainter, facts: StillFacts, layout: Layout, base: QFont, catalogs: Sequence[str],
                 catalog_of: Mapping[str, str]) -> None:
        self.painter = painter
        self.facts = facts
        self.layout = layout
        self.base = base
        self.catalogs = catalogs
        self.catalog_of = catalog_of
        self.scale = facts.scale
        self.width, self.height = facts.size.width(), facts.size.height()
        self.icon = icon_height(self.height, self.scale)
        self.cells = {f"catalog{c.replica}": c for c in facts.cells}

    def font(self, px: float, bold: bool = False) -> QFont:
        return scaled_font(self.base, px, self.scale, bold)

    def paint(self, names: Sequence[str]) -> None:
        """Captions first, then the links, then the nodes over their ends."""
        healths = {health.name: health for health in self.facts.healths}
        self.captions()
        cut = set(self.facts.cut)
        for (a, b), path in self.layout.paths.items():
            self.link(path, healths.get(a), healths.get(b))
            for sender, receiver, at in ((a, b, 0.7), (b, a, 0.3)):
                if (sender, receiver) in cut:  # a partition: the cross sits by the one who no longer hears
                    self.cross(path.pointAtPercent(at), "#dc2626")
        for name in names:
            self.node(name, healths.get(name))

    def captions(self) -> None:
        """The rows' titles, the teaching speed when on, and the colour key."""
        painter, scale = self.painter, self.scale
        painter.setPen(QColor(COLORS["text"]))
        painter.setFont(self.font(13, bold=True))
        left = ROWS_LEFT * self.width
        painter.drawText(QRectF(left, 2, self.width - left, 20 * scale), Qt.AlignmentFlag.AlignLeft,
                         f"Catalog replicas · book {self.facts.book}: N (seq), bold when valid")
        painter.drawText(QRectF(left, ORDER_Y * self.height + self.icon / 2 + 4 * scale, self.width - left,
                                20 * scale), Qt.AlignmentFlag.AlignLeft, "Order replicas")
        pace = self.facts.pace_ms
        y = 6.0
        if pace:
            y = self.tag(QPointF(6, y), f"Teaching speed: each message held {pace} ms", "#7c2d12") + 4
        painter.setFont(self.font(11))
        line = 16 * scale
        y = self.height - line * len(KEY) - 6
        for text, outcome in KEY:
            painter.setBrush(QColor(OUTCOME_COLORS[outcome]))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawEllipse(QPointF(10, y + line / 2), 4.5 * scale, 4.5 * scale)
            painter.setPen(QColor(COLORS["text"]))
            painter.drawText(QRectF(20, y, 0.26 * self.width, line), Qt.AlignmentFlag.AlignVCenter, text)
            y += line

    def tag(self, at: QPointF, text: str, color: str) -> float:
        """A small filled label with white text; returns its bottom."""
        painter = self.painter
        painter.setFont(self.font(11, bold=True))
        metrics = QFontMetricsF(painter.font())
        box = QRectF(at.x(), at.y(), metrics.horizontalAdvance(text) + 12, metrics.height() + 4)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(color))
        painter.drawRoundedRect(box, 6, 6)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        return box.bottom()

    def link(self, path: QPainterPath, a: NodeHealth | None, b: NodeHealth | None) -> None:
        """A link: dotted and pale to a node that is gone, dashed and crossed to one cut off."""
        states = {h.state for h in (a, b) if h is not None}
        pen = QPen(QColor("#94a3b8"), 2 * self.scale)
        if states & GONE:
            pen = QPen(QColor("#d1d5db"), 1.5 * self.scale, Qt.PenStyle.DotLine)
        elif HealthState.CUT_OFF in states:
            pen = QPen(QColor(STATE_FILL[HealthState.CUT_OFF]), 2 * self.scale, Qt.PenStyle.DashLine)
        self.painter.setPen(pen)
        self.painter.setBrush(Qt.BrushStyle.NoBrush)
        self.painter.drawPath(path)
        if HealthState.CUT_OFF in states:  # the cut, drawn where the message would go through
            self.cross(path.pointAtPercent(0.5), STATE_FILL[HealthState.CUT_OFF])

    def cross(self, at: QPointF, color: str) -> None:
        self.painter.setPen(QPen(QColor(color), 3 * self.scale))
        self.painter.drawLine(at + QPointF(-6, -6) * self.scale, at + QPointF(6, 6) * self.scale)
        self.painter.drawLine(at + QPointF(6, -6) * self.scale, at + QPointF(-6, 6) * self.scale)

    def node(self, name: str, health: NodeHealth | None) -> None:
        """A node's icon in its state, the focus ring when chosen by keyboard, and its words."""
        painter, icon = self.painter, self.icon
        center = self.layout.centers[name]
        state = health.state if health else HealthState.UP
        gone = state in GONE
        pixmap = node_icon(role_of(name) if name != "client" else "client", icon, crossed=gone,
                           faded=state in FADED)
        painter.drawPixmap(int(center.x() - pixmap.width() / 2), int(center.y() - icon / 2), pixmap)
        if name == self.facts.selected and self.facts.focused:
            painter.setPen(QPen(QColor(COLORS["accent"]), 2.5, Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(self.layout.boxes[name].adjusted(-5, -5, 5, 5), 8, 8)
        if state == HealthState.HUNG:  # the pause sign of a stopped process, on the icon
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(STATE_FILL[HealthState.HUNG]))
            bar = QRectF(center.x() - icon * 0.16, center.y() - icon * 0.2, icon * 0.1, icon * 0.4)
            painter.drawRect(bar)
            painter.drawRect(bar.translated(icon * 0.2, 0))
        if name in ("client", "frontend"):
            self.entry_words(name, center, state, health)
            return
        x = center.x() + icon * 0.4 + 8
        y = center.y() - icon / 2
        width = self.layout.boxes[name].right() - x
        if name in self.catalogs:
            self.catalog_words(name, x, y, width, state, health)
        else:
            self.order_words(name, x, y, width, state, health)

    def entry_words(self, name: str, center: QPointF, state: HealthState, health: NodeHealth | None) -> None:
        """Below the shopper or the front-end: its name, and the front-end's state pill."""
        painter, scale = self.painter, self.scale
        below = QRectF(center.x() - 70 * scale, center.y() + self.icon / 2 + 2, 140 * scale, 20 * scale)
        painter.setFont(self.font(13, bold=True))
        painter.setPen(QColor(COLORS["text"]))
        painter.drawText(below, Qt.AlignmentFlag.AlignCenter, "shopper" if name == "client" else "front-end")
        if health is not None:
            self.pill(QPointF(center.x(), below.bottom() + 2), health.label, state, centered=True, health=health)

    def catalog_words(self, name: str, x: float, y: float, width: float, state: HealthState,
                      health: NodeHealth | None) -> None:
        """Beside a catalog replica: ``N (seq)`` of the shown book (bold when valid, amber when
        stale, grey when gone), its state, and unless gone its stock, validity and lease."""
        painter, scale = self.painter, self.scale
        gone = state in GONE
        cell = self.cells.get(name)
        seq = "?" if cell is None or cell.seq is None else str(cell.seq)
        painter.setFont(self.font(18, bold=bool(cell and cell.valid)))
        color = "#9ca3af" if gone else "#b45309" if cell and cell.stale else COLORS["text"]
        painter.setPen(QColor(color))
        number = name.removeprefix("catalog")
        painter.drawText(QRectF(x, y, width, 24 * scale), Qt.AlignmentFlag.AlignLeft, f"{number} ({seq})")
        y += 24 * scale
        y = self.pill(QPointF(x, y), health.label if health else "", state, health=health) + 2
        if cell is None or gone:
            return
        words = ("valid" if cell.valid else "not valid") + (" · stale" if cell.stale else "")
        lease = "lease lapsed" if cell.lease_lapsed else "lease holds"
        painter.setFont(self.font(11))
        painter.setPen(QColor(COLORS["text"]))
        line = 15 * scale  # one fact a line: the column is narrow at 1280 px
        painter.drawText(QRectF(x, y, width, line), Qt.AlignmentFlag.AlignLeft,
                         f"stock {cell.stock if cell.stock is not None else '?'}")
        painter.drawText(QRectF(x, y + line, width, line), Qt.AlignmentFlag.AlignLeft, words)
        painter.setPen(QColor("#b91c1c" if cell.lease_lapsed else "#166534"))
        painter.drawText(QRectF(x, y + 2 * line, width, line), Qt.AlignmentFlag.AlignLeft, lease)

    def order_words(self, name: str, x: float, y: float, width: float, state: HealthState,
                    health: NodeHealth | None) -> None:
        """Beside an order replica: its name, its state, the catalog it uses, and a warning
        when that catalog is out while it serves."""
        painter, scale = self.painter, self.scale
        painter.setFont(self.font(14, bold=True))
        painter.setPen(QColor(COLORS["text"]))
        painter.drawText(QRectF(x, y, width, 22 * scale), Qt.AlignmentFlag.AlignLeft,
                         f"order {name.removeprefix('order')}")
        y = self.pill(QPointF(x, y + 22 * scale), health.label if health else "", state, health=health) + 2
        painter.setFont(self.font(11))
        catalog = self.catalog_of.get(name, "")
        painter.drawText(QRectF(x, y, width, 16 * scale), Qt.AlignmentFlag.AlignLeft,
                         f"uses catalog {catalog.removeprefix('catalog')}" if catalog else "")
        if health is not None and health.notes and health.state in SERVING:
            painter.setPen(QColor("#92400e"))
            painter.drawText(QRectF(x, y + 15 * scale, width, 16 * scale), Qt.AlignmentFlag.AlignLeft,
                             "its catalog is out")

    def pill(self, at: QPointF, text: str, state: HealthState, centered: bool = False,
             health: NodeHealth | None = None) -> float:
        """A node's state as a rounded pill in the state's colour; returns its bottom."""
        painter = self.painter
        state = health.look if health is not None else state
        painter.setFont(self.font(11, bold=True))
        metrics = QFontMetricsF(painter.font())
        width = metrics.horizontalAdvance(text) + 14
        box = QRectF(at.x() - (width / 2 if centered else 0), at.y(), width, metrics.height() + 2)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(STATE_FILL.get(state, "#334155")))
        painter.drawRoundedRect(box, box.height() / 2, box.height() / 2)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        return box.bottom()

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
from gui.live.layout import FACT_LINES, FACT_PX, KEY_TEXTS, NAME_PX, PILL_PX, Layout, wrap
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
KEY = tuple(zip(KEY_TEXTS, (AnswerOutcome.NONE, AnswerOutcome.OK, AnswerOutcome.OUT_OF_STOCK, AnswerOutcome.CONFLICT,
                            AnswerOutcome.FAILED, AnswerOutcome.UNKNOWN), strict=True))
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


def catalog_lines(cell: ReplicaCell) -> list[tuple[str, str]]:
    """The facts under a catalog replica's state, one a line, with their colours: its stock,
    whether it vouches for the book (valid, stale) and its lease. A hung replica is drawn as
    every view draws it (``views.derive_cells``): not valid, and it says why, with no lease
    claimed (it cannot renew one)."""
    stock = (f"stock {cell.stock if cell.stock is not None else '?'}", COLORS["text"])
    if cell.health == HealthState.HUNG:
        return [stock, ("hung: answers nobody", "#92400e")]
    words = ("valid" if cell.valid else "not valid") + (" · stale" if cell.stale else "")
    lease = ("lease lapsed", "#b91c1c") if cell.lease_lapsed else ("lease holds", "#166534")
    return [stock, (words, COLORS["text"]), lease]


class FontMeasure:
    """How large words are in the picture's font (``layout.Measure``), at a size in pixels."""

    def __init__(self, base: QFont) -> None:
        self.base = base
        self._metrics: dict[tuple[float, bool], QFontMetricsF] = {}

    def metrics(self, px: float, bold: bool = False) -> QFontMetricsF:
        key = (px, bold)
        if key not in self._metrics:
            self._metrics[key] = QFontMetricsF(scaled_font(self.base, px, 1.0, bold))
        return self._metrics[key]

    def width(self, text: str, px: float, bold: bool = False) -> float:
        return self.metrics(px, bold).horizontalAdvance(text)

    def line(self, px: float) -> float:
        return self.metrics(px).height()


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
    """Draws one still picture with ``painter``; lives for that one picture. Every word goes
    where the layout measured room for it (``Layout.columns``, ``Layout.words``)."""

    def __init__(self, painter: QPainter, facts: StillFacts, layout: Layout, base: QFont, catalogs: Sequence[str],
                 catalog_of: Mapping[str, str]) -> None:
        self.painter = painter
        self.facts = facts
        self.layout = layout
        self.base = base
        self.catalogs = catalogs
        self.catalog_of = catalog_of
        self.scale = layout.text_scale  # the presenter scale, grown with a large picture (or shrunk to fit)
        self.icon = layout.icon
        self.measure = FontMeasure(base)
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
        """The catalog row's caption, the teaching speed when on, and the colour key, each in
        the place the layout keeps for it (so that no message label covers them)."""
        painter, scale, words = self.painter, self.scale, self.layout.words
        painter.setPen(QColor(COLORS["text"]))
        painter.setFont(self.font(13, bold=True))
        painter.drawText(words["caption"], Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         self.layout.caption)
        if "banner" in words:
            self.tag(words["banner"], self.layout.banner_lines, "#7c2d12")
        painter.setFont(self.font(FACT_PX))
        key = words["key"]
        line = (key.height() - 6) / len(KEY)
        y = key.top()
        for text, outcome in KEY:
            painter.setBrush(QColor(OUTCOME_COLORS[outcome]))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawEllipse(QPointF(10, y + line / 2), 4.5 * scale, 4.5 * scale)
            painter.setPen(QColor(COLORS["text"]))
            painter.drawText(QRectF(20, y, key.width() - 20, line), Qt.AlignmentFlag.AlignVCenter, text)
            y += line

    def tag(self, box: QRectF, lines: Sequence[str], color: str) -> None:
        """A filled label with white text, one line each."""
        painter = self.painter
        painter.setFont(self.font(PILL_PX, bold=True))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(color))
        painter.drawRoundedRect(box, 6, 6)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, "\n".join(lines))

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
        pixmap = node_icon(role_of(name) if name != "client" else "client", icon, crossed=state in GONE,
                           faded=state in FADED)
        painter.drawPixmap(int(center.x() - pixmap.width() / 2), int(center.y() - icon / 2), pixmap)
        if name == self.facts.selected and self.facts.focused:
            painter.setPen(QPen(QColor(COLORS["accent"]), 2.5, Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(self.layout.boxes[name].adjusted(-3, -3, 3, 3), 8, 8)
        if state == HealthState.HUNG:  # the pause sign of a stopped process, on the icon
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(STATE_FILL[HealthState.HUNG]))
            bar = QRectF(center.x() - icon * 0.16, center.y() - icon * 0.2, icon * 0.1, icon * 0.4)
            painter.drawRect(bar)
            painter.drawRect(bar.translated(icon * 0.2, 0))
        column = self.layout.columns[name]
        if name in ("client", "frontend"):
            self.entry_words(name, column, state, health)
        elif name in self.catalogs:
            self.catalog_words(name, column, state, health)
        else:
            self.order_words(name, column, state, health)

    def entry_words(self, name: str, column: QRectF, state: HealthState, health: NodeHealth | None) -> None:
        """Below the shopper or the front-end: its name, and the front-end's state pill."""
        painter = self.painter
        painter.setFont(self.font(NAME_PX["entry"], bold=True))
        painter.setPen(QColor(COLORS["text"]))
        line = self.measure.line(self.layout.px(NAME_PX["entry"]))
        painter.drawText(QRectF(column.left(), column.top(), column.width(), line), Qt.AlignmentFlag.AlignCenter,
                         "shopper" if name == "client" else "front-end")
        if health is not None:
            self.pill(QPointF(column.center().x(), column.top() + line + 2), column.width(), state, health,
                      centered=True)

    def catalog_words(self, name: str, column: QRectF, state: HealthState, health: NodeHealth | None) -> None:
        """Beside a catalog replica: ``N (seq)`` of the shown book (bold when valid, amber when
        stale, grey when gone), its state, and unless gone its facts (``catalog_lines``)."""
        painter = self.painter
        cell = self.cells.get(name)
        seq = "?" if cell is None or cell.seq is None else str(cell.seq)
        painter.setFont(self.font(NAME_PX["catalog"], bold=bool(cell and cell.valid)))
        painter.setPen(QColor("#9ca3af" if state in GONE else "#b45309" if cell and cell.stale else COLORS["text"]))
        line = self.measure.line(self.layout.px(NAME_PX["catalog"]))
        painter.drawText(QRectF(column.left(), column.top(), column.width(), line), Qt.AlignmentFlag.AlignLeft,
                         f"{name.removeprefix('catalog')} ({seq})")
        y = self.pill(QPointF(column.left(), column.top() + line + 2), column.width(), state, health) + 2
        if cell is not None and state not in GONE:
            self.facts_lines(catalog_lines(cell), column, y, FACT_LINES["catalog"])

    def order_words(self, name: str, column: QRectF, state: HealthState, health: NodeHealth | None) -> None:
        """Beside an order replica: its name, its state, the catalog it uses, and a warning
        when that catalog is out while it serves."""
        painter = self.painter
        painter.setFont(self.font(NAME_PX["order"], bold=True))
        painter.setPen(QColor(COLORS["text"]))
        line = self.measure.line(self.layout.px(NAME_PX["order"]))
        painter.drawText(QRectF(column.left(), column.top(), column.width(), line), Qt.AlignmentFlag.AlignLeft,
                         f"order {name.removeprefix('order')}")
        y = self.pill(QPointF(column.left(), column.top() + line + 2), column.width(), state, health) + 2
        catalog = self.catalog_of.get(name, "").removeprefix("catalog")
        out = health is not None and health.notes and health.state in SERVING
        # One fact, so that at a large scale the warning is never the part cut off.
        if catalog:
            lines = [(f"uses catalog {catalog}, which is out", "#92400e") if out
                     else (f"uses catalog {catalog}", COLORS["text"])]
        else:
            lines = [("its catalog is out", "#92400e")] if out else []
        self.facts_lines(lines, column, y, FACT_LINES["order"])

    def facts_lines(self, lines: Sequence[tuple[str, str]], column: QRectF, y: float, most: int) -> None:
        """Facts, one a line, wrapped to the column's width, at most ``most`` lines in all; a
        fact that does not fit whole is left out (half a sentence says something else), but
        the first, which is cut with an ellipsis rather than lost."""
        painter = self.painter
        px = self.layout.px(FACT_PX)
        painter.setFont(self.font(FACT_PX))
        height = self.measure.line(px)
        drawn = 0
        for text, color in lines:
            parts = wrap(text, self.measure, px, False, column.width())
            if drawn + len(parts) > most:
                if drawn:
                    return
                parts = [*parts[:most - 1], parts[most - 1] + " …"]
            painter.setPen(QColor(color))
            for part in parts:
                painter.drawText(QRectF(column.left(), y, column.width(), height), Qt.AlignmentFlag.AlignLeft, part)
                y += height
                drawn += 1

    def pill(self, at: QPointF, room: float, state: HealthState, health: NodeHealth | None,
             centered: bool = False) -> float:
        """A node's state as a rounded pill in the state's colour, its words in full when they
        fit ``room`` and the state's one word when not; returns its bottom."""
        painter = self.painter
        look = health.look if health is not None else state
        text = health.label if health is not None else str(state)
        px = self.layout.px(PILL_PX)
        if self.measure.width(text, px, True) + 14 > room:
            text = str(state)
        painter.setFont(self.font(PILL_PX, bold=True))
        width = self.measure.width(text, px, True) + 14
        box = QRectF(at.x() - (width / 2 if centered else 0), at.y(), width, self.measure.line(px) + 2)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(STATE_FILL.get(look, "#334155")))
        painter.drawRoundedRect(box, box.height() / 2, box.height() / 2)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        return box.bottom()

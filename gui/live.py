"""The Live screen: the cluster drawn the way the documentation figures draw servers, each
node's state drawn on it, messages moving along the links as the telemetry reports them, and
beside it the latency chart with a line at every fault and heal, the front-end's caches, a
shop row (look up, buy, two buyers, restock) and the class controls (load, teaching speed,
pause and step). A view of the model; every action goes to the controller."""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from PySide6.QtCore import QPointF, QRectF, QSize, QSizeF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QMenu,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.cache import CachePanel
from gui.charts import LatencyChart, load_controls, toggle_load
from gui.common import COLORS, ModelEvents, label, node_icon, role_of, spawn
from nodes.core.books import seed_books
from nodes.observe.model import ClusterModel, Message, NodeHealth, ReplicaCell

#: How long a message is drawn on its way at full speed (it really takes a millisecond).
FLIGHT_S = 0.7
#: Full-speed messages wait this long for the rest of their request before they are drawn,
#: so that a request's hops are drawn in the order they were sent (they are reported after).
SETTLE_S = 0.15
#: Requests drawn at once at full speed; the others are counted, not drawn.
MAX_TRACES = 8
MAX_FLIGHTS = 60
FRAME_MS = 33
#: Teaching speeds offered (ms each message is held); 0 is full speed.
PACES = (0, 100, 250, 500, 1000, 2000)
SLOW_MS = 500
LABEL_PX = 12  # message labels at scale 1; 18 px at the presenter's 1.5
CHART_REDRAW_S = 0.5
#: Darker state colours than the cards' pills, so white text on them stays readable.
STATE_FILL = {"up": "#15803d", "slow": "#b45309", "starting": "#1d4ed8", "cut off": "#6d28d9",
              "hung": "#b45309", "down": "#b91c1c", "exited": "#b91c1c"}
OUTCOME_COLORS = {"": "#1d4ed8", "ok": "#15803d", "out of stock": "#b45309", "conflict": "#c2410c",
                  "not found": "#334155", "unknown": "#6d28d9", "failed": "#b91c1c"}


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


@dataclass
class Flight:
    """A message on its way across the picture: from ``start`` (monotonic) for ``duration``."""

    message: Message
    start: float
    duration: float
    stays: bool = False  # a stepped message stays where it arrived

    def progress(self, now: float) -> float:
        return min(1.0, max(0.0, (now - self.start) / self.duration))


class LiveCanvas(QWidget):
    """The cluster, its links and the messages on them. Click a node (or choose it with the
    arrow keys and press Enter) for what can be done to it."""

    def __init__(self, model: ClusterModel, controller, report) -> None:
        super().__init__()
        self.model = model
        self.controller = controller
        self.report = report
        self.scale = 1.0
        self.book = 2
        self.names = ["client", *model.nodes]
        self.catalogs = model.catalog_names()
        self.orders = [n for n in model.nodes if role_of(n) == "order"]
        self.selected = "frontend"
        self.centers: dict[str, QPointF] = {}
        self.boxes: dict[str, QRectF] = {}
        self.paths: dict[tuple[str, str], QPainterPath] = {}
        self.flights: list[Flight] = []
        self.pending: list[tuple[float, Message]] = []
        self.trace_free: dict[str | None, float] = {}
        self.skipped = 0
        #: Numbers of the messages lately drawn on their way (neither at their start nor end).
        self.moving: deque[int] = deque(maxlen=2000)
        self.frozen_at: float | None = None
        self.menu: QMenu | None = None
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._frame)
        #: The still picture (captions, links, nodes) and the facts it was drawn from: an
        #: animation frame paints it and the messages on top, and draws it again only when one of
        #: those facts changed (under load the model changes 30 times a second, mostly books
        #: other than the one shown).
        self._still: QPixmap | None = None
        self._still_facts: StillFacts | None = None
        self._labels: dict[tuple, QPixmap] = {}
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Cluster diagram: arrow keys choose a node, Enter opens what can be done to it")
        self.setMinimumSize(560, 330)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(760, 460)

    # ---- messages ---------------------------------------------------------------------------
    def take(self, messages: list[Message]) -> None:
        """Messages the model just heard of. Held ones (teaching speed) are drawn at once for
        the time they are held; full-speed ones are ordered per request first."""
        now = time.monotonic()
        for message in messages:
            if not self._drawable(message):
                continue
            if message.held_ms:
                late = max(0.0, time.time() - message.t)
                self._fly(Flight(message, now, max(0.25, message.held_ms / 1000 - late)))
            else:
                self.pending.append((now, message))
        self._run()

    def _drawable(self, message: Message) -> bool:
        return (message.source, message.target) in self.paths or (message.target, message.source) in self.paths

    def _fly(self, flight: Flight) -> None:
        if len(self.flights) >= MAX_FLIGHTS:
            self.skipped += 1
            return
        self.flights.append(flight)

    def _release(self, now: float) -> None:
        """Full-speed messages that have settled, drawn one after another per request."""
        ready = [(seen, m) for seen, m in self.pending if now - seen >= SETTLE_S]
        if not ready:
            return
        self.pending = [(seen, m) for seen, m in self.pending if now - seen < SETTLE_S]
        active = {f.message.trace for f in self.flights if f.start + f.duration > now}
        for _seen, message in sorted(ready, key=lambda item: (item[1].trace or "", item[1].t, item[1].number)):
            trace = message.trace
            if trace not in active and len(active) >= MAX_TRACES:
                self.skipped += 1
                continue
            active.add(trace)
            start = max(now, self.trace_free.get(trace, 0.0))
            self.trace_free[trace] = start + FLIGHT_S
            self._fly(Flight(message, start, FLIGHT_S))
        self.trace_free = {t: free for t, free in self.trace_free.items() if free > now}

    def _frame(self) -> None:
        now = time.monotonic()
        self._release(now)
        self.flights = [f for f in self.flights if f.start + f.duration > now or f.stays]
        if not self.pending and all(f.start + f.duration <= now for f in self.flights):
            self.timer.stop()
        self.update()  # the still picture is drawn again only if its facts changed

    def _run(self) -> None:
        if self.frozen_at is None and not self.timer.isActive():
            self.timer.start(FRAME_MS)

    def freeze(self) -> None:
        """Pause: the picture stops where it is; nothing new is drawn until ``show_step`` or
        ``thaw``."""
        self.frozen_at = time.monotonic()
        self.timer.stop()
        self.update()

    def show_step(self, message: Message) -> None:
        """While paused: the one message stepped to, moving along its link and then staying."""
        self.frozen_at = None
        self.pending.clear()
        self.flights = [Flight(message, time.monotonic(), max(0.6, message.held_ms / 1000), stays=True)]
        self.timer.start(FRAME_MS)

    def thaw(self) -> None:
        self.frozen_at = None
        self.flights.clear()
        self.pending.clear()
        self.trace_free.clear()
        self.skipped = 0
        self.update()

    def flights_on(self, source: str, target: str) -> list[Flight]:
        """The messages drawn on the link from ``source`` to ``target`` (tests and captions)."""
        return [f for f in self.flights if (f.message.source, f.message.target) == (source, target)]

    # ---- layout -----------------------------------------------------------------------------
    def icon_height(self) -> int:
        return int(max(34, min(64 * self.scale, self.height() * 0.14)))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._layout()

    def set_scale(self, scale: float) -> None:
        self.scale = scale
        self._layout()
        self.update()

    def _layout(self) -> None:
        w, h = self.width(), self.height()
        icon = self.icon_height()
        left, right = 0.30 * w, w - 8
        self.centers = {"client": QPointF(0.05 * w, 0.52 * h), "frontend": QPointF(0.18 * w, 0.52 * h)}
        for row, y in ((self.catalogs, 0.27 * h), (self.orders, 0.80 * h)):
            slot = (right - left) / max(1, len(row))
            for i, name in enumerate(row):
                self.centers[name] = QPointF(left + slot * i + icon * 0.5 + 6, y)
        self.boxes = {}
        text_width = max(90.0, (right - left) / max(1, len(self.catalogs), len(self.orders)) - icon - 14)
        for name, center in self.centers.items():
            half = icon * 0.4
            if name in ("client", "frontend"):
                self.boxes[name] = QRectF(center.x() - max(half, 46), center.y() - icon / 2, 2 * max(half, 46),
                                          icon + 44 * self.scale)
            else:
                self.boxes[name] = QRectF(center.x() - half, center.y() - icon / 2, 2 * half + 8 + text_width,
                                          max(icon, 64 * self.scale))
        self.paths = {}
        top = lambda n: QPointF(self.centers[n].x(), self.centers[n].y() - icon / 2)  # noqa: E731
        bottom = lambda n: QPointF(self.centers[n].x(), self.centers[n].y() + icon / 2)  # noqa: E731
        front = self.centers["frontend"]
        self.paths[("client", "frontend")] = _line(QPointF(self.centers["client"].x() + icon * 0.4, front.y()),
                                                   QPointF(front.x() - icon * 0.4, front.y()))
        for name in self.catalogs:
            self.paths[("frontend", name)] = _line(QPointF(front.x() + icon * 0.4, front.y() - icon * 0.2),
                                                   bottom(name))
        for name in self.orders:
            self.paths[("frontend", name)] = _line(QPointF(front.x() + icon * 0.4, front.y() + icon * 0.2),
                                                   top(name))
            catalog = self.model.catalog_of.get(name)
            if catalog in self.centers:
                self.paths[(name, catalog)] = _line(top(name) + QPointF(icon * 0.2, 0),
                                                    bottom(catalog) + QPointF(icon * 0.2, 0))
        for i, a in enumerate(self.catalogs):
            for j in range(i + 1, len(self.catalogs)):
                b = self.catalogs[j]
                lift = (14 + 16 * (j - i)) * min(self.scale, 1.3)
                start, end = top(a) + QPointF(icon * 0.15, 0), top(b) - QPointF(icon * 0.15, 0)
                path = QPainterPath(start)
                path.cubicTo(start - QPointF(0, lift * 1.6), end - QPointF(0, lift * 1.6), end)
                self.paths[(a, b)] = path

    # ---- drawing ----------------------------------------------------------------------------
    def _facts(self) -> StillFacts:
        """Everything the still picture shows, read from the model once a frame."""
        return StillFacts(self.size(), self.devicePixelRatioF(), self.font().key(), self.scale, self.book,
                          self.selected, self.hasFocus(), self.model.pace_ms(),
                          tuple(self.model.health(name) for name in self.model.nodes),
                          tuple(self.model.cells(self.book)), tuple(sorted(self.model.cut_links())))

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt's name
        if not self.centers:
            self._layout()
        facts = self._facts()
        if self._still is None or facts != self._still_facts:
            ratio = self.devicePixelRatioF()
            self._still = QPixmap(self.size() * ratio)
            self._still.setDevicePixelRatio(ratio)
            still = QPainter(self._still)
            still.setRenderHint(QPainter.RenderHint.Antialiasing)
            still.fillRect(self.rect(), QColor("#ffffff"))
            self._paint_still(still, facts)
            still.end()
            self._still_facts = facts
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._still)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        now = self.frozen_at or time.monotonic()
        self._flights(painter, now)
        painter.end()

    def _paint_still(self, painter: QPainter, facts: StillFacts) -> None:
        healths = {health.name: health for health in facts.healths}
        self._cells = {f"catalog{c.replica}": c for c in facts.cells}
        self._captions(painter)
        cut = set(facts.cut)
        for (a, b), path in self.paths.items():
            self._link(painter, path, healths.get(a), healths.get(b))
            for sender, receiver, at in ((a, b, 0.7), (b, a, 0.3)):
                if (sender, receiver) in cut:  # a partition: the cross sits by the one who no longer hears
                    self._cross(painter, path.pointAtPercent(at), "#dc2626")
        for name in self.names:
            self._node(painter, name, healths.get(name))

    def _font(self, px: float, bold: bool = False) -> QFont:
        font = QFont(self.font())
        font.setPixelSize(max(8, round(px * self.scale)))
        font.setBold(bold)
        return font

    def label_font(self) -> QFont:
        return self._font(LABEL_PX, bold=True)

    def _captions(self, painter: QPainter) -> None:
        painter.setPen(QColor(COLORS["text"]))
        painter.setFont(self._font(13, bold=True))
        left = 0.30 * self.width()
        painter.drawText(QRectF(left, 2, self.width() - left, 20 * self.scale), Qt.AlignmentFlag.AlignLeft,
                         f"Catalog replicas · book {self.book}: N (seq), bold when valid")
        painter.drawText(QRectF(left, 0.80 * self.height() + self.icon_height() / 2 + 4 * self.scale,
                                self.width() - left, 20 * self.scale), Qt.AlignmentFlag.AlignLeft, "Order replicas")
        pace = self.model.pace_ms()
        y = 6.0
        if pace:
            y = self._tag(painter, QPointF(6, y), f"Teaching speed: each message held {pace} ms", "#7c2d12") + 4
        painter.setFont(self._font(11))
        key = [("request →", ""), ("answer: ok", "ok"), ("out of stock", "out of stock"),
               ("conflict 409", "conflict"), ("failed", "failed"), ("unknown", "unknown")]
        line = 16 * self.scale
        y = self.height() - line * len(key) - 6
        for text, outcome in key:
            painter.setBrush(QColor(OUTCOME_COLORS[outcome]))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawEllipse(QPointF(10, y + line / 2), 4.5 * self.scale, 4.5 * self.scale)
            painter.setPen(QColor(COLORS["text"]))
            painter.drawText(QRectF(20, y, 0.26 * self.width(), line), Qt.AlignmentFlag.AlignVCenter, text)
            y += line

    def _tag(self, painter: QPainter, at: QPointF, text: str, color: str) -> float:
        """A small filled label with white text; returns its bottom."""
        painter.setFont(self._font(11, bold=True))
        metrics = QFontMetricsF(painter.font())
        box = QRectF(at.x(), at.y(), metrics.horizontalAdvance(text) + 12, metrics.height() + 4)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(color))
        painter.drawRoundedRect(box, 6, 6)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        return box.bottom()

    def _link(self, painter: QPainter, path: QPainterPath, a: NodeHealth | None, b: NodeHealth | None) -> None:
        states = {h.state for h in (a, b) if h is not None}
        pen = QPen(QColor("#94a3b8"), 2 * self.scale)
        if states & {"down", "exited"}:
            pen = QPen(QColor("#d1d5db"), 1.5 * self.scale, Qt.PenStyle.DotLine)
        elif "cut off" in states:
            pen = QPen(QColor(STATE_FILL["cut off"]), 2 * self.scale, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
        if "cut off" in states:  # the cut, drawn where the message would go through
            self._cross(painter, path.pointAtPercent(0.5), STATE_FILL["cut off"])

    def _cross(self, painter: QPainter, at: QPointF, color: str) -> None:
        painter.setPen(QPen(QColor(color), 3 * self.scale))
        painter.drawLine(at + QPointF(-6, -6) * self.scale, at + QPointF(6, 6) * self.scale)
        painter.drawLine(at + QPointF(6, -6) * self.scale, at + QPointF(-6, 6) * self.scale)

    def _node(self, painter: QPainter, name: str, health: NodeHealth | None) -> None:
        center, icon = self.centers[name], self.icon_height()
        state = health.state if health else "up"
        gone = state in ("down", "exited")
        pixmap = node_icon(role_of(name) if name != "client" else "client", icon, crossed=gone,
                           faded=state in ("hung", "cut off", "starting"))
        painter.drawPixmap(int(center.x() - pixmap.width() / 2), int(center.y() - icon / 2), pixmap)
        if name == self.selected and self.hasFocus():
            painter.setPen(QPen(QColor(COLORS["accent"]), 2.5, Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(self.boxes[name].adjusted(-5, -5, 5, 5), 8, 8)
        if state == "hung":  # the pause sign of a stopped process, on the icon
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(STATE_FILL["hung"]))
            bar = QRectF(center.x() - icon * 0.16, center.y() - icon * 0.2, icon * 0.1, icon * 0.4)
            painter.drawRect(bar)
            painter.drawRect(bar.translated(icon * 0.2, 0))
        if name in ("client", "frontend"):
            below = QRectF(center.x() - 70 * self.scale, center.y() + icon / 2 + 2, 140 * self.scale, 20 * self.scale)
            painter.setFont(self._font(13, bold=True))
            painter.setPen(QColor(COLORS["text"]))
            painter.drawText(below, Qt.AlignmentFlag.AlignCenter, "shopper" if name == "client" else "front-end")
            if health is not None:
                self._pill(painter, QPointF(center.x(), below.bottom() + 2), health.label, state, centered=True,
                           health=health)
            return
        x = center.x() + icon * 0.4 + 8
        y = center.y() - icon / 2
        width = self.boxes[name].right() - x
        if name in self.catalogs:
            cell = self._cells.get(name)
            seq = "?" if cell is None or cell.seq is None else str(cell.seq)
            font = self._font(18, bold=bool(cell and cell.valid))
            painter.setFont(font)
            color = "#9ca3af" if gone else "#b45309" if cell and cell.stale else COLORS["text"]
            painter.setPen(QColor(color))
            number = name.removeprefix("catalog")
            painter.drawText(QRectF(x, y, width, 24 * self.scale), Qt.AlignmentFlag.AlignLeft, f"{number} ({seq})")
            y += 24 * self.scale
            y = self._pill(painter, QPointF(x, y), health.label if health else "", state, health=health) + 2
            if cell is not None and not gone:
                words = ("valid" if cell.valid else "not valid") + (" · stale" if cell.stale else "")
                lease = "lease lapsed" if cell.lease_lapsed else "lease holds"
                painter.setFont(self._font(11))
                painter.setPen(QColor(COLORS["text"]))
                line = 15 * self.scale  # one fact a line: the column is narrow at 1280 px
                painter.drawText(QRectF(x, y, width, line), Qt.AlignmentFlag.AlignLeft,
                                 f"stock {cell.stock if cell.stock is not None else '?'}")
                painter.drawText(QRectF(x, y + line, width, line), Qt.AlignmentFlag.AlignLeft, words)
                painter.setPen(QColor("#b91c1c" if cell.lease_lapsed else "#166534"))
                painter.drawText(QRectF(x, y + 2 * line, width, line), Qt.AlignmentFlag.AlignLeft, lease)
        else:
            painter.setFont(self._font(14, bold=True))
            painter.setPen(QColor(COLORS["text"]))
            painter.drawText(QRectF(x, y, width, 22 * self.scale), Qt.AlignmentFlag.AlignLeft,
                             f"order {name.removeprefix('order')}")
            y = self._pill(painter, QPointF(x, y + 22 * self.scale), health.label if health else "", state,
                           health=health) + 2
            painter.setFont(self._font(11))
            catalog = self.model.catalog_of.get(name, "")
            painter.drawText(QRectF(x, y, width, 16 * self.scale), Qt.AlignmentFlag.AlignLeft,
                             f"uses catalog {catalog.removeprefix('catalog')}" if catalog else "")
            if health is not None and health.notes and health.state in ("up", "slow"):
                painter.setPen(QColor("#92400e"))
                painter.drawText(QRectF(x, y + 15 * self.scale, width, 16 * self.scale), Qt.AlignmentFlag.AlignLeft,
                                 "its catalog is out")

    def _pill(self, painter: QPainter, at: QPointF, text: str, state: str, centered: bool = False,
              health: NodeHealth | None = None) -> float:
        state = health.look if health is not None else state
        painter.setFont(self._font(11, bold=True))
        metrics = QFontMetricsF(painter.font())
        width = metrics.horizontalAdvance(text) + 14
        box = QRectF(at.x() - (width / 2 if centered else 0), at.y(), width, metrics.height() + 2)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(STATE_FILL.get(state, "#334155")))
        painter.drawRoundedRect(box, box.height() / 2, box.height() / 2)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        return box.bottom()

    def _flights(self, painter: QPainter, now: float) -> None:
        shown = [f for f in self.flights if f.start <= now]
        newest: dict[tuple[str, str], Flight] = {}
        for flight in shown:
            newest[(flight.message.source, flight.message.target)] = flight
        labelled = set(map(id, newest.values())) if len(shown) > 10 else set(map(id, shown))
        labels = []
        for flight in shown:
            point, angle = self._position(flight, now)
            if 0 < flight.progress(now) < 1:
                self.moving.append(flight.message.number)
            color = QColor(OUTCOME_COLORS.get(flight.message.outcome, OUTCOME_COLORS["failed"]))
            painter.setPen(QPen(QColor("#ffffff"), 2))
            painter.setBrush(color)
            radius = 7 * self.scale
            head = QPainterPath(point + QPointF(math.cos(angle), math.sin(angle)) * radius * 1.5)
            head.lineTo(point + QPointF(math.cos(angle + 2.4), math.sin(angle + 2.4)) * radius)
            head.lineTo(point + QPointF(math.cos(angle - 2.4), math.sin(angle - 2.4)) * radius)
            head.closeSubpath()
            painter.drawPath(head)
            if id(flight) in labelled:
                labels.append((point, flight, color))
        for point, flight, color in labels:
            label = self._label(_short(flight.message.text), color, flight.message.kind == "answer")
            width, height = label.deviceIndependentSize().width(), label.deviceIndependentSize().height()
            x = min(max(2.0, point.x() + 9), self.width() - width - 2)
            y = max(2.0, point.y() - height - 2)
            painter.drawPixmap(QPointF(x, y), label)

    def _label(self, text: str, color: QColor, answer: bool) -> QPixmap:
        """A message's label as a picture, drawn once for each text, colour and scale: text is
        the dearest thing to draw, and the same few labels go by thirty times a second."""
        key = (text, color.name(), answer, self.scale, self.devicePixelRatioF(), self.font().key())
        label = self._labels.get(key)
        if label is not None:
            return label
        if len(self._labels) > 400:
            self._labels.clear()
        font = self.label_font()
        metrics = QFontMetricsF(font)
        box = QRectF(0, 0, metrics.horizontalAdvance(text) + 10, metrics.height() + 4)
        ratio = self.devicePixelRatioF()
        label = QPixmap((box.size() + QSizeF(2, 2)).toSize() * ratio)
        label.setDevicePixelRatio(ratio)
        label.fill(Qt.GlobalColor.transparent)
        painter = QPainter(label)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setFont(font)
        box.translate(1, 1)
        painter.setPen(QPen(color, 1.5))
        painter.setBrush(QColor(255, 255, 255, 235))
        painter.drawRoundedRect(box, 5, 5)
        painter.setPen(color.darker(130) if answer else QColor(COLORS["text"]))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.end()
        self._labels[key] = label
        return label

    def _position(self, flight: Flight, now: float) -> tuple[QPointF, float]:
        message = flight.message
        p = flight.progress(now)
        path = self.paths.get((message.source, message.target))
        if path is None:
            path, p = self.paths[(message.target, message.source)], 1 - p
            ahead = -1
        else:
            ahead = 1
        p = min(0.97, max(0.03, p))
        point = path.pointAtPercent(p)
        nudge = path.pointAtPercent(min(1.0, max(0.0, p + 0.01 * ahead)))
        return point, math.atan2(nudge.y() - point.y(), nudge.x() - point.x())

    # ---- choosing a node and acting on it -------------------------------------------------------
    def node_at(self, point: QPointF) -> str | None:
        for name, box in self.boxes.items():
            if name != "client" and box.adjusted(-6, -6, 6, 6).contains(point):
                return name
        return None

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        name = self.node_at(event.position())
        if name is not None:
            self.selected = name
            self.update()
            self.open_menu(name, event.globalPosition().toPoint())

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        nodes = [n for n in self.names if n != "client"]
        key = event.key()
        if key in (Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_Left, Qt.Key.Key_Up):
            step = 1 if key in (Qt.Key.Key_Right, Qt.Key.Key_Down) else -1
            self.selected = nodes[(nodes.index(self.selected) + step) % len(nodes)]
            self.update()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space, Qt.Key.Key_Menu):
            box = self.boxes[self.selected]
            self.open_menu(self.selected, self.mapToGlobal(box.bottomLeft().toPoint()))
        else:
            super().keyPressEvent(event)

    def focusInEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().focusOutEvent(event)
        self.update()

    def node_menu(self, name: str) -> QMenu:
        """What can be done to ``name`` now, each through the controller."""
        health = self.model.health(name)
        state, attached = health.state, health.process.attached
        busy = self.controller.busy(name)
        menu = QMenu(self)
        menu.setTitle(name)
        head = menu.addAction(f"{name}: {health.label}")
        head.setEnabled(False)
        menu.addSeparator()
        running = state in ("up", "slow", "cut off")
        controller = self.controller
        actions = [
            ("Crash (kill the process; its memory is lost)", lambda: controller.crash(name),
             not attached and state in ("up", "slow", "cut off", "hung", "starting")),
            ("Hang (stop answering; connections still accepted)", lambda: controller.hang(name),
             not attached and state in ("up", "slow", "cut off")),
            (f"Slow (add {SLOW_MS} ms to every answer)", lambda: controller.slow(name, SLOW_MS),
             running and not health.process.slow_ms),
            ("Cut off (no traffic in or out)", lambda: controller.cut_off(name, True), running and state != "cut off"),
            (_heal_text(state), lambda: controller.heal(name), state in ("down", "exited", "hung", "cut off", "slow")),
            ("Restart (clean stop, then start)", lambda: controller.restart(name),
             not attached and state != "starting"),
        ]
        for text, action_of, enabled in actions:
            action = menu.addAction(text)
            action.setEnabled(enabled and not busy)
            action.triggered.connect(lambda _checked=False, act=action_of: spawn(act(), self.report))
        return menu

    def open_menu(self, name: str, at) -> QMenu:
        self.menu = self.node_menu(name)
        self.menu.popup(at)
        return self.menu


def _heal_text(state: str) -> str:
    return {"down": "Heal: start it again", "exited": "Heal: start it again", "hung": "Heal: resume it",
            "cut off": "Heal: reconnect it", "slow": "Heal: back to full speed"}.get(state, "Heal (nothing to heal)")


def _line(a: QPointF, b: QPointF) -> QPainterPath:
    path = QPainterPath(a)
    path.lineTo(b)
    return path


def _short(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LiveView(QWidget):
    """The Live tab: the canvas, the class controls, the shop row, the chart and the caches."""

    def __init__(self, model: ClusterModel, session, controller, events: ModelEvents, report, say) -> None:
        super().__init__()
        self.model = model
        self.session = session  # the load generator is the session's, not the model's
        self.controller = controller
        self.report = report
        self.say = say
        self.seen = 0  # the last message taken from the model
        self.paused_at: int | None = None  # the message count when paused
        self.cursor = 0  # while paused: the message stepped to
        self._chart_drawn = 0.0
        self._caches_drawn = 0.0
        self.books = seed_books()

        self.canvas = LiveCanvas(model, controller, report)
        self._skipped_at_tick = 0
        self.chart = LatencyChart(model, "Latency, faults and heals", legend_columns=2)
        self.chart.setMinimumHeight(150)
        self.caches = {name: CachePanel(name, compact=True) for name in ("lookup", "search")}
        for panel in self.caches.values():
            panel.entries.setMinimumHeight(40)

        # class controls
        self.load_button, self.rate = load_controls(20)
        self.pace = QComboBox()
        for ms in PACES:
            self.pace.addItem("full speed" if ms == 0 else f"hold {ms} ms", ms)
        self.pace.setAccessibleName("Teaching speed: how long every node holds each message it sends")
        self.pace.setToolTip("Every node holds each message it sends this long, so a class can follow it. "
                             "Timeouts grow with it, so slowness is not taken for an outage.")
        self.pause_button = QPushButton("Pause")
        self.back_button = QPushButton("◀ Back")
        self.step_button = QPushButton("Step ▶")
        self.status = label("", name="Muted")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status.setTextFormat(Qt.TextFormat.RichText)

        # shop row
        self.book = QComboBox()
        for book in self.books:
            self.book.addItem(f"Book {book.id}", book.id)
            self.book.setItemData(self.book.count() - 1, book.title, Qt.ItemDataRole.ToolTipRole)
        self.book.setCurrentIndex(1)  # book 2, the figures' sample book
        self.book.setAccessibleName("Book")
        self.lookup_button = QPushButton("Look up")
        self.buy_button = QPushButton("Buy")
        self.buy_button.setObjectName("Primary")
        self.two_button = QPushButton("Two buyers")
        self.two_button.setToolTip("Two buys of this book at the same moment")
        self.copies = QSpinBox()
        self.copies.setRange(0, 1000)
        self.copies.setValue(self.books[1].quantity)
        self.copies.setPrefix("to ")
        self.copies.setAccessibleName("Copies to restock to")
        self.restock_button = QPushButton("Restock")
        self.answer = label("", name="Muted")
        self.answer.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        top = QHBoxLayout()
        top.addWidget(self.load_button)
        top.addWidget(self.rate)
        top.addSpacing(10)
        top.addWidget(label("Teaching speed"))
        top.addWidget(self.pace)
        top.addSpacing(10)
        for button in (self.pause_button, self.back_button, self.step_button):
            top.addWidget(button)
        top.addWidget(self.status, 1)
        shop = QHBoxLayout()
        shop.addWidget(self.book)
        for widget in (self.lookup_button, self.buy_button, self.two_button, self.copies, self.restock_button):
            shop.addWidget(widget)
        left = QVBoxLayout()
        left.addWidget(self.canvas, 1)
        left.addLayout(shop)
        left.addWidget(self.answer)
        caches = QHBoxLayout()
        for panel in self.caches.values():
            caches.addWidget(panel)
        right = QVBoxLayout()
        right.addWidget(self.chart, 3)
        right.addLayout(caches, 2)
        main = QHBoxLayout()
        main.addLayout(left, 3)
        main.addLayout(right, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(top)
        layout.addLayout(main, 1)

        self.load_button.clicked.connect(self.toggle_load)
        self.rate.valueChanged.connect(self._rate)
        self.pace.currentIndexChanged.connect(lambda _i: self.set_pace(self.pace.currentData()))
        self.pause_button.clicked.connect(self.toggle_pause)
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.step_button.clicked.connect(lambda: self.step(1))
        self.book.currentIndexChanged.connect(self._book)
        self.lookup_button.clicked.connect(self.lookup)
        self.buy_button.clicked.connect(lambda: self.buy(1))
        self.two_button.clicked.connect(lambda: self.buy(2))
        self.restock_button.clicked.connect(self.restock)
        events.changed.connect(self._changed)
        self._controls()

    # ---- presenter scale ------------------------------------------------------------------------
    def set_scale(self, scale: float) -> None:
        self.canvas.set_scale(scale)
        self.chart.set_scale(scale)

    # ---- the shop row ---------------------------------------------------------------------------
    def chosen(self) -> int:
        return int(self.book.currentData())

    def _book(self) -> None:
        self.canvas.book = self.chosen()
        self.copies.setValue(next(b.quantity for b in self.books if b.id == self.chosen()))
        self.canvas.update()

    def lookup(self) -> None:
        book = self.chosen()

        def done(result) -> None:
            ok, body = result
            self.answer.setText(f"Book {book}: {body['quantity']} in stock, ${body['price']}" if ok else str(body))

        spawn(self.controller.lookup(book), self.report, done)

    def buy(self, buyers: int) -> None:
        import asyncio

        book = self.chosen()

        async def buys():
            return await asyncio.gather(*(self.controller.buy(book) for _ in range(buyers)))

        def done(outcomes) -> None:
            said = " · ".join(o.sentence if buyers == 1 else o.kind for o in outcomes)
            self.answer.setText(f"Book {book}: {said}" if buyers == 1 else f"Two buyers of book {book}: {said}")

        spawn(buys(), self.report, done)

    def restock(self) -> None:
        spawn(self.controller.restock(self.chosen(), self.copies.value()), self.report, self.answer.setText)

    # ---- class controls -------------------------------------------------------------------------
    def _rate(self) -> None:
        self.session.load.settings.rate = float(self.rate.value())

    def toggle_load(self) -> None:
        toggle_load(self.session, self.report, self._rate, self._controls)

    def set_pace(self, ms: int) -> None:
        if self.pace.currentData() != ms:
            self.pace.setCurrentIndex(self.pace.findData(ms))  # calls back here
            return
        spawn(self.controller.pace(ms), self.report, self.say)

    def toggle_pause(self) -> None:
        if self.paused_at is None:
            self.pause()
        else:
            self.resume()

    def pause(self) -> None:
        """Freeze the picture; the model keeps every message meanwhile."""
        self.paused_at = self.cursor = self.seen
        self.canvas.freeze()
        self._controls()

    def step(self, by: int) -> None:
        """While paused, go to the next (or previous) message recorded since the pause."""
        if self.paused_at is None:
            return
        target = min(max(self.paused_at + 1, self.cursor + by), self.model.message_count)
        found = self.model.messages_after(target - 1, 1)
        if target <= self.paused_at or not found:
            self._controls()
            return
        self.cursor = target
        self.canvas.show_step(found[0])
        self._controls()

    def resume(self) -> None:
        """Back to live: what happened meanwhile is drawn (chart, caches), new messages move."""
        self.paused_at = None
        self.seen = self.model.message_count
        self.canvas.thaw()
        self.redraw()

    def stepped_message(self) -> Message | None:
        if self.paused_at is None or self.cursor <= self.paused_at:
            return None
        found = self.model.messages_after(self.cursor - 1, 1)
        return found[0] if found else None

    def _controls(self) -> None:
        self.load_button.setText("Stop load" if self.session.load.running else "Start load")
        paused = self.paused_at is not None
        self.pause_button.setText("Resume live" if paused else "Pause")
        self.pause_button.setObjectName("Primary" if paused else "")
        self.pause_button.style().polish(self.pause_button)
        self.back_button.setEnabled(paused and self.cursor > self.paused_at + 1)
        self.step_button.setEnabled(paused and self.cursor < self.model.message_count)
        if paused:
            since = self.model.message_count - self.paused_at
            message = self.stepped_message()
            where = "" if message is None else (
                f" — <b>{self.cursor - self.paused_at}</b>: {message.source} → {message.target} "
                f"{_short(message.text, 40)} at {time.strftime('%H:%M:%S', time.localtime(message.t))}"
                f".{int(message.t % 1 * 1000):03d}")
            self.status.setText(f"<b>Paused</b> · the cluster keeps running · {since} messages since{where}")
        else:
            skipped = self.canvas.skipped - self._skipped_at_tick
            self._skipped_at_tick = self.canvas.skipped
            busy = f" · busy: {MAX_TRACES} drawn at once" if skipped else ""  # short: it fits at 1280 px
            self.status.setText(f"<b>Live</b>: click a node to break or heal it{busy}")
            self.status.setToolTip(f"Under load only {MAX_TRACES} requests are animated at a time; "
                                   "the others are counted on the chart." if skipped else "")

    # ---- drawing ----------------------------------------------------------------------------
    def _changed(self, topics: dict[str, set]) -> None:
        if "message" in topics:
            if self.paused_at is not None:
                self._controls()  # the count of messages since the pause moves on
            elif self.isVisible():
                self.canvas.take(self.model.messages_after(self.seen))
                self.seen = self.model.message_count
            else:
                self.seen = self.model.message_count  # nothing to replay when the tab is shown
        if self.paused_at is not None or not self.isVisible():
            return
        if topics.keys() & {"node", "replicas"}:
            self.canvas.update()
        now = time.monotonic()
        if ("cache" in topics or "tick" in topics) and now - self._caches_drawn >= CHART_REDRAW_S:
            self._caches_drawn = now  # a list rebuilt a few times a second, not every frame
            self._caches()
        if topics.keys() & {"latency", "tick", "mark"} and now - self._chart_drawn >= CHART_REDRAW_S:
            self._chart_drawn = now
            self.chart.draw_in_steps()  # begins in a later turn than the caches drawn just now
        if "tick" in topics:
            self._controls()

    def _caches(self) -> None:
        for name, panel in self.caches.items():
            panel.show(self.model.caches[name])

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.redraw()

    def redraw(self) -> None:
        self.seen = max(self.seen, self.model.message_count) if self.paused_at is None else self.seen
        self._caches()
        self.chart.draw()
        self._controls()
        self.canvas.update()

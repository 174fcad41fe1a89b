"""The Flow tab: the path of the last request, or any chosen one, drawn as the figures draw
it — servers in a row, numbered messages between them, their answers — stepped forward and
back or replayed at a chosen speed."""
from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPaintEvent, QPen, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from gui.common import COLORS, ModelEvents, label, node_icon, role_of
from gui.spacetime import SpaceTimeView
from nodes.observe.model import ClusterModel
from nodes.observe.traces import Step, StepKind, Trace

#: The space-time diagram shows the last this many seconds, unless told otherwise.
DIAGRAM_S = 10

ROW = 40
TOP = 26
HEADER = 84
LIST_REDRAW_S = 0.3
SPEEDS = {"0.5×": 1600, "1×": 800, "2×": 400, "4×": 200}


def answer_color(answer: str) -> str:
    if answer.startswith("2"):
        return "#15803d"
    if answer.startswith("409"):
        return "#b45309"
    return "#b91c1c"


def participants(trace: Trace) -> list[str]:
    seen = {"client"}
    if trace.entry_node:
        seen.add(trace.entry_node)
    for hop in trace.hops:
        seen.update((hop.source, hop.target))
    order = {"client": 0, "frontend": 1, "order": 2, "catalog": 3}
    return sorted(seen, key=lambda n: (order.get(role_of(n), 4), n))


def lanes(names: list[str], width: float) -> dict[str, float]:
    slot = width / max(1, len(names))
    return {name: slot * i + slot / 2 for i, name in enumerate(names)}


class LaneHeader(QWidget):
    """The servers' icons and names above the diagram: outside its scroll area, so that they
    stay in view at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.right_margin = 0
        self.setFixedHeight(HEADER)

    def show_names(self, names: list[str], right_margin: int) -> None:
        self.names, self.right_margin = names, right_margin
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#ffffff"))
        if self.names:
            width = self.width() - self.right_margin
            x = lanes(self.names, width)
            slot = width / len(self.names)
            font = QFont(self.font())
            font.setBold(True)
            painter.setFont(font)
            for name in self.names:
                pixmap = node_icon("client" if name == "client" else role_of(name), 52)
                painter.drawPixmap(int(x[name] - pixmap.width() / 2), 4, pixmap)
                painter.setPen(QColor(COLORS["text"]))
                painter.drawText(QRectF(x[name] - slot / 2, 58, slot, 22), Qt.AlignmentFlag.AlignCenter, name)
        painter.end()


class FlowCanvas(QWidget):
    """The diagram's arrows, one row each, in causal order (``Trace.steps``): a request, then
    every hop it caused, and an answer only after every hop it waited for."""

    def __init__(self, empty_text: str = "Nothing to show yet.") -> None:
        super().__init__()
        self.empty_text = empty_text
        self.trace: Trace | None = None
        self.rows: list[Step] = []
        self.step = 0

    @property
    def steps(self) -> int:
        return len(self.rows)

    def names(self) -> list[str]:
        return [] if self.trace is None else participants(self.trace)

    def show_trace(self, trace: Trace | None, step: int | None = None) -> None:
        self.trace = trace
        self.rows = [] if trace is None else trace.steps()
        self.step = self.steps if step is None else max(0, min(step, self.steps))
        self.setMinimumHeight(TOP + ROW * (self.steps + 1))
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(900, TOP + ROW * (self.steps + 1))

    def row_y(self, number: int) -> float:
        return TOP + ROW * (number - 1)

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#ffffff"))
        if self.trace is None:
            painter.setPen(QColor(COLORS["muted"]))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_text)
            painter.end()
            return
        names = self.names()
        x = lanes(names, self.width())
        bottom = TOP + ROW * (self.steps + 0.5)
        for name in names:
            painter.setPen(QPen(QColor("#cbd5e1"), 1.5, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(x[name], 0), QPointF(x[name], bottom))
        for number, row in enumerate(self.rows[: self.step], start=1):
            y = self.row_y(number)
            if row.kind == StepKind.ANSWER:
                color = answer_color(row.hop.answer if row.hop else "")
                self._arrow(painter, x[row.source], x[row.target], y, QColor(color), dashed=True)
                self._text(painter, x[row.source], x[row.target], y - 18, row.text, color, bold=False)
            else:
                reply = row.kind == StepKind.REPLY
                color = answer_color(str(self.trace.status or "")) if reply else COLORS["accent"]
                self._arrow(painter, x[row.source], x[row.target], y, QColor(color), dashed=reply)
                self._text(painter, x[row.source], x[row.target], y - 18, row.text, COLORS["text"], bold=True)
        painter.end()

    def _arrow(self, painter: QPainter, x1: float, x2: float, y: float, color: QColor, dashed: bool) -> None:
        pen = QPen(color, 2.2, Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
        painter.setPen(pen)
        if abs(x2 - x1) < 1:
            return
        painter.drawLine(QPointF(x1, y), QPointF(x2, y))
        direction = 1 if x2 > x1 else -1
        head = QPainterPath(QPointF(x2, y))
        head.lineTo(x2 - direction * 11, y - 6)
        head.lineTo(x2 - direction * 11, y + 6)
        head.closeSubpath()
        painter.fillPath(head, color)

    def _text(self, painter: QPainter, x1: float, x2: float, y: float, text: str, color: str, bold: bool) -> None:
        """The label over an arrow: centred on it, moved in rather than cut off at the edges."""
        font = QFont(self.font())
        font.setBold(bold)
        font.setPointSize(10)
        painter.setFont(font)
        painter.setPen(QColor(color))
        width = painter.fontMetrics().horizontalAdvance(text) + 8
        left = (x1 + x2) / 2 - width / 2
        left = max(4.0, min(left, self.width() - width - 4))
        painter.drawText(QRectF(left, y, width, 18), Qt.AlignmentFlag.AlignCenter, text)


class TraceStepper(QWidget):
    """A trace drawn by a FlowCanvas under a fixed lane header, with step back and forward and
    a replay at a chosen speed; ``stepped`` fires after every change of step. Stepping by hand
    pauses a replay, and ``note`` says so. Flow and Scenarios both use it."""

    stepped = Signal(int)

    def __init__(self, *, first_last: bool = False, speed: str = "1×", slow_down: float = 1.0,
                 empty_text: str = "Nothing to show yet.") -> None:
        super().__init__()
        self.slow_down = slow_down
        self.canvas = FlowCanvas(empty_text)
        self.header = LaneHeader()
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setWidget(self.canvas)
        self.scroll_area.setFrameShape(QScrollArea.Shape.NoFrame)
        self.area = QWidget()
        self.area.setObjectName("Diagram")
        area_layout = QVBoxLayout(self.area)
        area_layout.setContentsMargins(0, 0, 0, 0)
        area_layout.setSpacing(0)
        area_layout.addWidget(self.header)
        area_layout.addWidget(self.scroll_area, 1)
        self.back = QPushButton("◀  Back")
        self.forward = QPushButton("Step  ▶")
        self.play = QPushButton("Replay")
        self.play.setObjectName("Primary")
        self.speed = QComboBox()
        self.speed.addItems(list(SPEEDS))
        self.speed.setCurrentText(speed)
        self.note = label("", name="Muted")
        self.note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.controls = QHBoxLayout()
        buttons = [self.back, self.forward]
        if first_last:
            self.first, self.last = QPushButton("|◀  First"), QPushButton("Last  ▶|")
            buttons = [self.first, self.back, self.forward, self.last]
            self.first.clicked.connect(lambda: self.go(0))
            self.last.clicked.connect(lambda: self.go(self.canvas.steps))
        for widget in buttons + [self.play]:
            self.controls.addWidget(widget)
        self.controls.addWidget(label("speed"))
        self.controls.addWidget(self.speed)
        self.controls.addWidget(self.note, 1)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.back.clicked.connect(lambda: self.go(self.canvas.step - 1))
        self.forward.clicked.connect(lambda: self.go(self.canvas.step + 1))
        self.play.clicked.connect(lambda: self.replay())

    def show(self, trace: Trace | None, step: int | None = None) -> None:  # type: ignore[override]
        self.canvas.show_trace(trace, step)
        bar = self.scroll_area.verticalScrollBar()
        self.header.show_names(self.canvas.names(), bar.width() if bar.isVisible() else 0)
        self.keep_step_in_view()
        # Once more when Qt has laid the taller diagram out (a new trace's first steps).
        # Bound to the scroll area, which the tab's layout owns: gone with it, never called after.
        QTimer.singleShot(0, self.scroll_area, self.keep_step_in_view)
        self.stepped.emit(self.canvas.step)

    def keep_step_in_view(self) -> None:
        """Scroll the diagram so that the current step's arrow and its words are in view,
        however low the pane (the names stay above it). The canvas is given its new height
        first: Qt would otherwise lay it out later, and the scroll range would still be the old
        one, too short to reach a step of a longer trace."""
        viewport = self.scroll_area.viewport()
        self.canvas.resize(viewport.width(), max(viewport.height(), self.canvas.minimumHeight()))
        if self.canvas.step:  # the arrow, and its words 18 px above it
            self.scroll_area.ensureVisible(0, int(self.canvas.row_y(self.canvas.step)) - 6, 0, 18)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        bar = self.scroll_area.verticalScrollBar()
        self.header.show_names(self.canvas.names(), bar.width() if bar.isVisible() else 0)

    def go(self, step: int) -> None:
        if self.timer.isActive():
            self.timer.stop()
            self.note.setText("Replay paused: press Replay to start it again.")
        self.show(self.canvas.trace, step)

    def replay(self) -> None:
        if self.canvas.trace is None:
            return
        self.note.setText("")
        self.show(self.canvas.trace, 0)
        self.timer.start(int(SPEEDS[self.speed.currentText()] * self.slow_down))

    def _tick(self) -> None:
        if self.canvas.step >= self.canvas.steps:
            self.timer.stop()
            return
        self.show(self.canvas.trace, self.canvas.step + 1)


class FlowView(QWidget):
    def __init__(self, model: ClusterModel, events: ModelEvents) -> None:
        super().__init__()
        self.model = model
        self._listed_at = 0.0
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.timeout.connect(self._refresh_now)
        self.listed: list[str] = []
        self.traces = QListWidget()
        self.traces.setAccessibleName("Recent requests")
        self.follow = QCheckBox("Follow the latest request")
        self.follow.setChecked(True)
        self.crossing = QCheckBox("Only requests that crossed nodes")
        self.crossing.setChecked(True)
        self.crossing.setToolTip("Hide requests the front-end answered alone: cache hits, "
                                 "and lookups that shared a read already on its way")
        self.stepper = TraceStepper(
            first_last=True,
            empty_text="No request yet. Use the Shop tab or start the load, and its path appears here.")
        self.canvas = self.stepper.canvas
        self.caption = label("", wrap=True)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(label("Recent requests", name="CardTitle"))
        left_layout.addWidget(self.follow)
        left_layout.addWidget(self.crossing)
        left_layout.addWidget(self.traces, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addLayout(self.stepper.controls)
        right_layout.addWidget(self.caption)
        right_layout.addWidget(self.stepper.area, 1)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([300, 900])
        # Two pictures: one request as the figures draw it, or every message of the last
        # seconds as a space-time diagram (gui/spacetime.py); a message clicked there is shown here.
        self.one_request = QRadioButton("One request")
        self.one_request.setChecked(True)
        self.everything = QRadioButton("Space-time diagram of the last")
        self.span = QSpinBox()
        self.span.setRange(1, 600)
        self.span.setValue(DIAGRAM_S)
        self.span.setSuffix(" s")
        self.span.setAccessibleName("Seconds the space-time diagram shows")
        self.diagram = SpaceTimeView(model, events)
        #: Where the diagram's seconds count from: a replay's start (the strip's clock), or the
        #: range's own start live.
        self.origin: float | None = None
        #: A request's hops from the recording, when the model no longer keeps them (the window's
        #: runs set it: gui/runs.py).
        self.find_trace: Callable[[str], Trace | None] | None = None
        self.pages = QStackedWidget()
        self.pages.addWidget(splitter)
        self.pages.addWidget(self.diagram)
        modes = QHBoxLayout()
        for widget in (self.one_request, self.everything, self.span):
            modes.addWidget(widget)
        modes.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(modes)
        layout.addWidget(self.pages, 1)
        self.everything.toggled.connect(self._mode)
        self.span.valueChanged.connect(lambda _v: self._diagram_range())
        self.diagram.trace_chosen.connect(self.show_request)

        self.traces.currentRowChanged.connect(self._chosen)
        self.stepper.stepped.connect(lambda _step: self._caption())
        events.changed.connect(self._changed)
        for button in (self.stepper.back, self.stepper.forward, self.stepper.play, self.stepper.first,
                       self.stepper.last):
            button.clicked.connect(lambda: self.follow.setChecked(False))

    def set_scale(self, scale: float) -> None:
        self.diagram.set_scale(scale)

    def _mode(self) -> None:
        self.pages.setCurrentIndex(1 if self.everything.isChecked() else 0)
        self._diagram_range()

    def _diagram_range(self) -> None:
        """The diagram: the last ``span`` seconds up to the model's now (a replay's, replayed)."""
        if self.everything.isChecked():
            now = self.model.now()
            self.diagram.show_range(now - self.span.value(), now, self.origin)

    def show_request(self, trace_id: str) -> None:
        """A request clicked on the diagram, as one request (if the model still keeps it)."""
        self.one_request.setChecked(True)
        self.follow.setChecked(False)
        self.refresh()  # the list, not kept up while the diagram showed (a replay does not move on to do it)
        self.traces.blockSignals(True)
        if trace_id in self.listed:
            self.traces.setCurrentRow(self.listed.index(trace_id))
        else:
            self.traces.clearSelection()
            self.traces.setCurrentRow(-1)
        self.traces.blockSignals(False)
        if trace_id in self.model.trace_ids():
            self.show(trace_id)
            return
        found = self.find_trace(trace_id) if self.find_trace is not None else None
        if found is None or found.entry_node is None:
            self.stepper.show(None)
            self.caption.setText(f"Request {trace_id} is no longer kept: the window keeps the last "
                                 f"{self.model.keep_traces} requests' hops. Pick a newer message, or a narrower range.")
            return
        self.stepper.show(found)  # put back together from the recording

    def _chosen(self, row: int) -> None:
        if 0 <= row < len(self.listed):
            self.show(self.listed[row])

    def show(self, trace_id: str, step: int | None = None) -> None:  # type: ignore[override]
        self.stepper.show(self.model.trace(trace_id), step)

    def _caption(self) -> None:
        trace = self.canvas.trace
        if trace is None:
            self.caption.setText("")
            return
        self.caption.setText(f"<b>{trace.operation}</b> — step {self.canvas.step} of {self.canvas.steps} · "
                             f"{len(trace.hops)} message{'' if len(trace.hops) == 1 else 's'} between nodes · "
                             f"trace {trace.id}")

    def _changed(self, topics: dict[str, set]) -> None:
        if self.everything.isChecked():
            if "tick" in topics and self.isVisible():
                self._diagram_range()  # the last seconds move on with the model's clock
            return
        # Under load traces change every frame; the list is rebuilt a few times a second.
        if "trace" in topics and self.isVisible() and not self._later.isActive():
            wait = LIST_REDRAW_S - (time.monotonic() - self._listed_at)
            self._later.start(max(0, int(wait * 1000)))  # the last change is always drawn

    def _refresh_now(self) -> None:
        self._listed_at = time.monotonic()
        self.refresh()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        if self.everything.isChecked():
            self._diagram_range()
            return
        ids = list(reversed(self.model.trace_ids()))
        entries = [(i, self.model.trace(i)) for i in ids]
        entries = [(i, t) for i, t in entries
                   if t.entry_node is not None and (t.hops or not self.crossing.isChecked())]
        if [i for i, _ in entries] != self.listed:
            self.listed = [i for i, _ in entries]
            self.traces.blockSignals(True)
            self.traces.clear()
            for _i, trace in entries:
                status = "…" if trace.status is None else str(trace.status)
                hops = len(trace.hops)
                item = QListWidgetItem(f"{trace.operation}  →  {status}  ({hops} hop{'' if hops == 1 else 's'})")
                if _i in self.model.blamed:  # a checker blamed it for an anomaly (a recorded run)
                    item.setText(f"⚠ {item.text()}  · blamed for an anomaly")
                    item.setForeground(QColor(COLORS["anomaly"]))
                self.traces.addItem(item)
            self.traces.blockSignals(False)
        if self.follow.isChecked() and self.listed and not self.stepper.timer.isActive():
            self.traces.blockSignals(True)
            self.traces.setCurrentRow(0)
            self.traces.blockSignals(False)
            self.show(self.listed[0])

"""The space-time diagram of a time range, over the window's model (issue #24): the layout of
``nodes/runs/spacetime_layout.py`` drawn shape for shape (``spacetime_shapes``), as the SVG export
draws it. It scrolls,
zooms (Ctrl + wheel, the + and − buttons or keys; Fit shows the whole range), names a message
when the pointer rests on it, and a click on one says which request it belongs to
(``trace_chosen``: the window shows that request in the Flow tab)."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QPolygonF,
    QResizeEvent,
    QShowEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QPushButton,
    QSizePolicy,
    QStyleOptionGraphicsItem,
    QVBoxLayout,
    QWidget,
)

from gui.common import ModelEvents, label
from nodes.observe.model import ClusterModel
from nodes.runs.spacetime import LIMIT, Picture, picture_of_model
from nodes.runs.spacetime_layout import Layout, lay_out
from nodes.runs.spacetime_shapes import LIFELINE, NAME_PX, TEXT, WHITE, Box, Dot, Item, Line, Polygon, Shape, Words
from nodes.runs.spacetime_svg import write_svg

#: Zoom limits, and how much one step of the buttons, keys or wheel zooms.
ZOOMS = (0.02, 8.0)
ZOOM_STEP = 1.25
#: A message is hit by a click or a hover this close to its line (pixels on screen).
HIT_PX = 5.0
#: A live model's picture is drawn again at most this often while messages come.
REFRESH_S = 1.0


class FontMeasure:
    """How wide words are in the window's font (``spacetime_layout.Measure``), at a pixel size."""

    def __init__(self, base: QFont) -> None:
        self.base = base
        self._metrics: dict[tuple[int, bool], QFontMetricsF] = {}

    def font(self, px: float, bold: bool = False) -> QFont:
        font = QFont(self.base)
        font.setPixelSize(max(1, round(px)))
        font.setBold(bold)
        return font

    def __call__(self, text: str, px: float, bold: bool = False) -> float:
        key = (max(1, round(px)), bold)
        if key not in self._metrics:
            self._metrics[key] = QFontMetricsF(self.font(px, bold))
        return self._metrics[key].horizontalAdvance(text)


def _pen(color: str, width: float, dash: tuple[float, ...] = (), opacity: float = 1.0) -> QPen:
    qcolor = QColor(color)
    qcolor.setAlphaF(opacity)
    pen = QPen(qcolor, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap if not dash else Qt.PenCapStyle.FlatCap)
    if dash:
        pen.setDashPattern([d / max(width, 0.1) for d in dash])  # Qt counts dashes in pen widths
    return pen


def _fill(color: str, opacity: float = 1.0) -> QBrush:
    qcolor = QColor(color)
    qcolor.setAlphaF(opacity)
    return QBrush(qcolor)


def paint_shape(painter: QPainter, shape: Shape, measure: FontMeasure) -> None:
    """One shape of the layout, as the SVG writer writes it."""
    match shape:
        case Line(x1, y1, x2, y2, color, width, dash, opacity):
            painter.setPen(_pen(color, width, dash, opacity))
            painter.drawLine(QPointF(x1, y1), QPointF(x2, y2))
        case Box(x, y, w, h, fill, opacity, stroke, dash):
            painter.setPen(_pen(stroke, 1.0, dash) if stroke else Qt.PenStyle.NoPen)
            painter.setBrush(_fill(fill, opacity))
            painter.drawRect(QRectF(x, y, w, h))
        case Polygon(points, fill):
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(_fill(fill))
            painter.drawPolygon(QPolygonF([QPointF(x, y) for x, y in points]))
        case Dot(x, y, r, fill):
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(_fill(fill))
            painter.drawEllipse(QPointF(x, y), r, r)
        case Words(x, y, w, h, text, px, color, bold, back):
            if back:
                painter.fillRect(QRectF(x - 2, y, w + 4, h), _fill(back, 0.85))
            painter.setFont(measure.font(px, bold))
            painter.setPen(QColor(color))
            painter.drawText(QRectF(x, y, w + 2, h), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)


def _outline(shape: Shape) -> QPainterPath:
    """Where a shape can be pointed at: a line with some room either side."""
    path = QPainterPath()
    match shape:
        case Line(x1=x1, y1=y1, x2=x2, y2=y2, width=width):
            line = QPainterPath(QPointF(x1, y1))
            line.lineTo(QPointF(x2, y2))
            stroker = QPainterPathStroker()
            stroker.setWidth(max(width, 2 * HIT_PX))
            return stroker.createStroke(line)
        case Box(x=x, y=y, w=w, h=h) | Words(x=x, y=y, w=w, h=h):
            path.addRect(QRectF(x, y, w, h))
        case Polygon(points=points):
            path.addPolygon(QPolygonF([QPointF(x, y) for x, y in points]))
            path.closeSubpath()
        case Dot(x=x, y=y, r=r):
            path.addEllipse(QPointF(x, y), r, r)
    return path


class ShapesItem(QGraphicsItem):
    """One item of the layout (a message, a band, an anomaly, words): its shapes, its tooltip,
    and the trace a click on it chooses."""

    def __init__(self, item: Item, measure: FontMeasure) -> None:
        super().__init__()
        self.item = item
        self.measure = measure
        self._shape = QPainterPath()
        self._shape.setFillRule(Qt.FillRule.WindingFill)
        for shape in item.shapes:
            self._shape.addPath(_outline(shape))
        self._bounds = self._shape.boundingRect().adjusted(-2, -2, 2, 2)
        if item.tip:
            self.setToolTip(item.tip)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        return self._bounds

    def shape(self) -> QPainterPath:
        return self._shape

    def paint(self, painter: QPainter, _option: QStyleOptionGraphicsItem, _widget: QWidget | None = None) -> None:
        for shape in self.item.shapes:
            paint_shape(painter, shape, self.measure)


class DiagramView(QGraphicsView):
    """The scene's view: Ctrl + wheel and the + and − keys zoom (``zoom_by``), a click on a
    message chooses its trace, and the nodes' names stay in view when the picture scrolls."""

    zoom_by = Signal(float, float)  # factor, and the y in the view to keep still
    chosen = Signal(str)

    def __init__(self, scene: QGraphicsScene, measure: FontMeasure) -> None:
        super().__init__(scene)
        self.measure = measure
        self.layout_now: Layout | None = None
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)  # the names move
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)  # its width never changes
        self.setBackgroundBrush(QColor(WHITE))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Space-time diagram")

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt's name
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() / 120
            if steps:
                self.zoom_by.emit(ZOOM_STEP ** steps, event.position().y())
            event.accept()
            return
        super().wheelEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:  # Ctrl + and − scale the window
            super().keyPressEvent(event)
            return
        if event.key() in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by.emit(ZOOM_STEP, self.viewport().height() / 2)
        elif event.key() in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.zoom_by.emit(1 / ZOOM_STEP, self.viewport().height() / 2)
        else:
            super().keyPressEvent(event)

    def trace_at(self, x: float, y: float) -> str | None:
        """The trace of the message drawn at (``x``, ``y``) in the view, if any."""
        for found in self.items(QRect(int(x - HIT_PX), int(y - HIT_PX), int(2 * HIT_PX), int(2 * HIT_PX))):
            if isinstance(found, ShapesItem) and found.item.trace is not None:
                return found.item.trace
        return None

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        if event.button() == Qt.MouseButton.LeftButton:
            trace = self.trace_at(event.position().x(), event.position().y())
            if trace is not None:
                self.chosen.emit(trace)
                event.accept()
                return
        super().mousePressEvent(event)

    def drawForeground(self, painter: QPainter, _rect: QRectF | QRect) -> None:  # noqa: N802 - Qt's name
        """The nodes' names at the top of the view once the picture has scrolled past them."""
        layout = self.layout_now
        if layout is None:
            return
        top = self.mapToScene(0, 0).y()
        if top <= layout.names_y:
            return
        px = NAME_PX * layout.scale
        height = layout.names_h + 4 * layout.scale
        painter.fillRect(QRectF(0, top, layout.width, height), QColor(WHITE))
        painter.setPen(QPen(QColor(LIFELINE), 1))
        painter.drawLine(QPointF(0, top + height), QPointF(layout.width, top + height))
        painter.setFont(self.measure.font(px, True))
        painter.setPen(QColor(TEXT))
        for name, x in layout.columns.items():
            w = self.measure(name, px, True)
            painter.drawText(QRectF(x - w / 2 - 2, top, w + 4, layout.names_h), Qt.AlignmentFlag.AlignCenter, name)


class SpaceTimeView(QWidget):
    """The diagram of ``model``'s messages from ``start`` to ``end`` (``show_range``), with its
    zoom, Fit and Export SVG… buttons. ``trace_chosen`` fires with the trace of a message clicked."""

    trace_chosen = Signal(str)

    def __init__(self, model: ClusterModel, events: ModelEvents | None = None, *, limit: int = LIMIT) -> None:
        super().__init__()
        self.model = model
        self.limit = limit
        self.scale = 1.0
        self.zoom = 1.0
        self.range: tuple[float, float, float | None, str] | None = None
        self.picture: Picture | None = None
        self.layout_now: Layout | None = None
        self.measure = FontMeasure(self.font())
        self.scene = QGraphicsScene(self)
        self.view = DiagramView(self.scene, self.measure)
        self.zoom_out = QPushButton("−")
        self.zoom_in = QPushButton("+")
        self.fit_button = QPushButton("Fit")
        self.export_button = QPushButton("Export SVG…")
        for button, tip in ((self.zoom_out, "Zoom out (−, or Ctrl + wheel)"), (self.zoom_in, "Zoom in (+)"),
                            (self.fit_button, "The whole range in view"),
                            (self.export_button, "Save the diagram as an SVG file")):
            button.setToolTip(tip)
            button.setAccessibleName(tip)
        self.caption = label("", name="Muted")
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        controls = QHBoxLayout()
        for widget in (self.zoom_out, self.zoom_in, self.fit_button, self.export_button):
            controls.addWidget(widget)
        controls.addWidget(self.caption, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.view, 1)
        self.zoom_out.clicked.connect(lambda: self.zoom_by(1 / ZOOM_STEP))
        self.zoom_in.clicked.connect(lambda: self.zoom_by(ZOOM_STEP))
        self.fit_button.clicked.connect(self.fit)
        self.export_button.clicked.connect(self.choose_export)
        self.view.zoom_by.connect(self.zoom_by)
        self.view.chosen.connect(self.trace_chosen)
        self._relayout_later = QTimer(self)
        self._relayout_later.setSingleShot(True)
        self._relayout_later.timeout.connect(self.relayout)
        self._laid_width = 0
        self._new_range = False
        self._refreshed = 0.0
        self._refresh_later = QTimer(self)
        self._refresh_later.setSingleShot(True)
        self._refresh_later.timeout.connect(self.refresh)
        if events is not None:
            events.changed.connect(self._changed)

    # ---- what it shows --------------------------------------------------------------------------
    def show_range(self, start: float, end: float, origin: float | None = None, title: str = "") -> None:
        """Draw the messages sent from ``start`` to ``end`` (wall-clock seconds), labelled in
        seconds from ``origin`` (``start`` when not given)."""
        self.range = (start, end, origin, title)
        self._new_range = True
        self.refresh()

    def refresh(self) -> None:
        """Take the range's messages from the model again, and draw them."""
        if self.range is None:
            return
        start, end, origin, title = self.range
        self._refreshed = time.monotonic()
        self.picture = picture_of_model(self.model, start, end, origin=origin, title=title or "Space-time diagram",
                                        limit=self.limit)
        self.relayout()

    def _changed(self, topics: dict[str, set]) -> None:
        if self.range is None or not self.isVisible() or not {"message", "mark"} & set(topics):
            return
        if self.model.arrows.arrows and self.model.arrows.arrows[-1].t < self.range[0]:
            return
        if not self._refresh_later.isActive():
            wait = REFRESH_S - (time.monotonic() - self._refreshed)
            self._refresh_later.start(max(0, int(wait * 1000)))

    # ---- drawing --------------------------------------------------------------------------------
    def relayout(self, keep_y: float | None = None) -> None:
        """Lay the picture out for the view's width, the zoom and the scale, and draw it; the
        moment at ``keep_y`` in the view (its middle when not given) stays where it was."""
        if self.picture is None:
            return
        viewport = self.view.viewport()
        keep_y = viewport.height() / 2 if keep_y is None else keep_y
        moment = None
        if self.layout_now is not None:
            scene_y = self.view.mapToScene(0, int(keep_y)).y()
            if scene_y > self.layout_now.top:
                moment = self.layout_now.time_at(scene_y)
        self._laid_width = viewport.width()
        self.layout_now = lay_out(self.picture, max(320.0, viewport.width() - 2.0), zoom=self.zoom, scale=self.scale,
                                  measure=self.measure)
        self.view.layout_now = self.layout_now
        self.scene.clear()
        for item in self.layout_now.items:
            self.scene.addItem(ShapesItem(item, self.measure))
        self.scene.setSceneRect(0, 0, self.layout_now.width, self.layout_now.height)
        bar = self.view.verticalScrollBar()
        if moment is not None:
            bar.setValue(int(self.layout_now.y_at(moment) - keep_y))
        elif self._new_range and bar.value() == 0 and self.layout_now.names_y > viewport.height() / 3:
            # A small view (a projector's scale on a small screen): the title, notes and key
            # above the picture would fill it; a new range opens at the nodes' names instead.
            bar.setValue(int(self.layout_now.names_y))
        self._new_range = False
        self._caption()

    def _caption(self) -> None:
        picture = self.picture
        if picture is None:
            return
        shown = f"{len(picture.messages):,} of {picture.total:,} messages" if picture.capped else \
            f"{len(picture.messages):,} messages"
        self.caption.setText(f"{shown} · zoom {self.zoom:.0%} · click a message to see its request in Flow")
        self.caption.setToolTip(f"{shown}, {picture.range_text}. Ctrl + wheel, or + and −, zoom; rest the pointer "
                                "on a message to name it; click it to see its request in the Flow tab.")

    def zoom_by(self, factor: float, keep_y: float | None = None) -> None:
        self.set_zoom(self.zoom * factor, keep_y)

    def set_zoom(self, zoom: float, keep_y: float | None = None) -> None:
        zoom = min(max(zoom, ZOOMS[0]), ZOOMS[1])
        if abs(zoom - self.zoom) > 1e-9:
            self.zoom = zoom
            self.relayout(keep_y)

    def fit(self) -> None:
        """The whole range in the view, from the nodes' names down."""
        if self.picture is None:
            return
        room = self.view.viewport().height() - 4
        for _ in range(3):  # rows grow with the zoom, the words above them do not
            layout = lay_out(self.picture, max(320.0, self.view.viewport().width() - 2.0), zoom=self.zoom,
                             scale=self.scale, measure=self.measure)
            wanted = room - (layout.height - layout.bottom) - (layout.top - layout.names_y)
            rows = layout.bottom - layout.top
            if rows <= 0:
                break
            self.zoom = min(max(self.zoom * wanted / rows, ZOOMS[0]), ZOOMS[1])
        self.relayout()
        if self.layout_now is not None:
            self.view.verticalScrollBar().setValue(int(self.layout_now.names_y))

    def set_scale(self, scale: float) -> None:
        """Presenter mode: words, rows and lines ``scale`` times as large."""
        self.scale = scale
        self.measure = FontMeasure(self.font())
        self.view.measure = self.measure
        self.relayout()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if self.picture is not None and self.view.viewport().width() != self._laid_width:
            self._relayout_later.start(0)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self.picture is not None and self.view.viewport().width() != self._laid_width:
            self.relayout()

    # ---- export ---------------------------------------------------------------------------------
    def export_svg(self, path: str | Path) -> Path:
        """The diagram as shown (its range, zoom and scale) as an SVG file at ``path``."""
        if self.layout_now is None:
            raise ValueError("nothing is drawn yet: choose a range first")
        return write_svg(self.layout_now, path)

    def choose_export(self) -> None:
        if self.layout_now is None:
            return
        path, _filter = QFileDialog.getSaveFileName(self, "Export the diagram as SVG", "spacetime.svg",
                                                    "SVG pictures (*.svg)")
        if not path:
            return
        try:
            self.export_svg(path)
        except OSError as error:
            self.caption.setText(f"Could not write {path}: {error.strerror or error}")
            return
        self.caption.setText(f"Saved {path}")

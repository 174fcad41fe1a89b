"""The Live picture as a widget: it wires Qt's events to the parts that do the work. Resizes
and the presenter scale go to the layout, the model's messages to the schedule, each frame to
the painters (the still part drawn again only when what it shows changed), and clicks and keys
to the node menus. Click a node, or choose it with the arrow keys and press Enter."""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import (
    QFocusEvent,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import QMenu, QSizePolicy, QWidget

from gui.common import role_of
from gui.live.arrows import Labels, draw_flights, label_font, label_rects
from gui.live.layout import Layout, has_link, icon_height, lay_out, node_at
from gui.live.menus import node_menu
from gui.live.painter import FontMeasure, StillFacts, draw_still
from gui.live.schedule import Flight, Schedule
from nodes.observe.arrows import Arrow
from nodes.observe.model import ClusterModel

if TYPE_CHECKING:
    from nodes.session.actions import Controller

FRAME_MS = 33
ARROW_KEYS = (Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_Left, Qt.Key.Key_Up)
OPEN_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space, Qt.Key.Key_Menu)


class LiveCanvas(QWidget):
    """The cluster, its links and the messages on them. Click a node (or choose it with the
    arrow keys and press Enter) for what can be done to it."""

    def __init__(self, model: ClusterModel, controller: Controller, report: Callable[[str], None]) -> None:
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
        self.layout_now = Layout()
        self._laid_out_for: tuple[object, ...] = ()
        self.schedule = Schedule()
        self.menu: QMenu | None = None
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._frame)
        #: The still picture (captions, links, nodes) and the facts it was drawn from: an
        #: animation frame paints it and the messages on top, and draws it again only when one of
        #: those facts changed (under load the model changes 30 times a second, mostly books
        #: other than the one shown).
        self._still: QPixmap | None = None
        self._still_facts: StillFacts | None = None
        self._labels = Labels()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Cluster diagram: arrow keys choose a node, Enter opens what can be done to it")
        self.setMinimumSize(480, 260)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(760, 460)

    # ---- what the views and tests read ---------------------------------------------------------
    @property
    def centers(self) -> dict[str, QPointF]:
        return self.layout_now.centers

    @property
    def boxes(self) -> dict[str, QRectF]:
        return self.layout_now.boxes

    @property
    def paths(self) -> dict[tuple[str, str], QPainterPath]:
        return self.layout_now.paths

    @property
    def flights(self) -> list[Flight]:
        return self.schedule.flights

    @property
    def pending(self) -> list[tuple[float, Arrow]]:
        return self.schedule.pending

    @property
    def skipped(self) -> int:
        return self.schedule.skipped

    @property
    def moving(self) -> deque[int]:
        """Numbers of the messages lately drawn on their way (neither at their start nor end)."""
        return self.schedule.moving

    @property
    def frozen_at(self) -> float | None:
        return self.schedule.frozen_at

    # ---- messages ---------------------------------------------------------------------------
    def take(self, messages: Iterable[Arrow]) -> None:
        """Messages the model just heard of; those with a link drawn are scheduled."""
        self.schedule.take([m for m in messages if self._drawable(m)], time.monotonic(), self.model.now())
        self._run()

    def _drawable(self, message: Arrow) -> bool:
        return has_link(self.paths, message.source, message.target)

    def _frame(self) -> None:
        if not self.schedule.advance(time.monotonic()):
            self.timer.stop()
        self.update()  # the still picture is drawn again only if its facts changed

    def _run(self) -> None:
        if self.frozen_at is None and not self.timer.isActive():
            self.timer.start(FRAME_MS)

    def freeze(self) -> None:
        """Pause: the picture stops where it is; nothing new is drawn until ``show_step`` or
        ``thaw``."""
        self.schedule.freeze(time.monotonic())
        self.timer.stop()
        self.update()

    def show_step(self, message: Arrow) -> None:
        """While paused: the one message stepped to, moving along its link and then staying."""
        self.schedule.step(message, time.monotonic())
        self.timer.start(FRAME_MS)

    def thaw(self) -> None:
        self.schedule.thaw()
        self.update()

    def flights_on(self, source: str, target: str) -> list[Flight]:
        """The messages drawn on the link from ``source`` to ``target`` (tests and captions)."""
        return self.schedule.on(source, target)

    # ---- layout -----------------------------------------------------------------------------
    def icon_height(self) -> int:
        return icon_height(self.height(), self.scale)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._layout()

    def set_scale(self, scale: float) -> None:
        self.scale = scale
        self._layout()
        self.update()

    def _layout(self) -> None:
        """Lay the picture out for its size, scale, shown book and teaching speed (the caption
        and the banner take room)."""
        pace = self.model.pace_ms()
        banner = f"Teaching speed: each message held {pace} ms" if pace else None
        self._laid_out_for = (self.width(), self.height(), self.scale, self.book, pace, self.font().key())
        self.layout_now = lay_out(self.width(), self.height(), self.scale, self.catalogs, self.orders,
                                  self.model.catalog_of, FontMeasure(self.font()), book=self.book, banner=banner)

    # ---- drawing ----------------------------------------------------------------------------
    def _facts(self) -> StillFacts:
        """Everything the still picture shows, read from the model once a frame."""
        return StillFacts(self.size(), self.devicePixelRatioF(), self.font().key(), self.scale, self.book,
                          self.selected, self.hasFocus(), self.model.pace_ms(),
                          tuple(self.model.health(name) for name in self.model.nodes),
                          tuple(self.model.cells(self.book)), tuple(sorted(self.model.cut_links())))

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        if self._laid_out_for != (self.width(), self.height(), self.scale, self.book, self.model.pace_ms(),
                                  self.font().key()):
            self._layout()
        facts = self._facts()
        if self._still is None or facts != self._still_facts:
            self._still = draw_still(facts, self.layout_now, self.font(), self.names, self.catalogs,
                                     self.model.catalog_of)
            self._still_facts = facts
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._still)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        now = self.frozen_at or time.monotonic()
        self.moving.extend(draw_flights(painter, self.schedule.shown(now), now, self.layout_now,
                                        QRectF(self.rect()), self._labels, self.font(), self.devicePixelRatioF(),
                                        self.model.blamed))
        painter.end()

    def label_font(self) -> QFont:
        return label_font(self.font(), self.layout_now.text_scale)

    def label_rects(self) -> list[QRectF]:
        """Where the labels of the messages drawn now go (the tests check they overlap nothing)."""
        now = self.frozen_at or time.monotonic()
        return label_rects(self.schedule.shown(now), now, self.layout_now, QRectF(self.rect()), self.font())

    # ---- choosing a node and acting on it -------------------------------------------------------
    def node_at(self, point: QPointF) -> str | None:
        return node_at(self.boxes, point)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        name = self.node_at(event.position())
        if name is not None:
            self.selected = name
            self.update()
            self.open_menu(name, event.globalPosition().toPoint())

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        nodes = [n for n in self.names if n != "client"]
        key = event.key()
        if key in ARROW_KEYS:
            step = 1 if key in (Qt.Key.Key_Right, Qt.Key.Key_Down) else -1
            self.selected = nodes[(nodes.index(self.selected) + step) % len(nodes)]
            self.update()
        elif key in OPEN_KEYS:
            box = self.boxes[self.selected]
            self.open_menu(self.selected, self.mapToGlobal(box.bottomLeft().toPoint()))
        else:
            super().keyPressEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802 - Qt's name
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802 - Qt's name
        super().focusOutEvent(event)
        self.update()

    def node_menu(self, name: str) -> QMenu:
        """What can be done to ``name`` now, each through the controller."""
        return node_menu(self, name, self.model, self.controller, self.report)

    def open_menu(self, name: str, at: QPoint) -> QMenu:
        self.menu = self.node_menu(name)
        self.menu.popup(at)
        return self.menu

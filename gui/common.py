"""What every view shares: colours, Bazar's icons, the model's events coalesced per frame,
and a way to run a coroutine from a click with its errors shown, never swallowed."""
from __future__ import annotations

import asyncio
import contextlib
import re
import traceback
import weakref
from collections.abc import Callable, Coroutine, Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QEvent, QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap, QResizeEvent, QShowEvent
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QComboBox, QCompleter, QLabel, QPushButton, QScrollArea, QSpinBox, QToolButton, QWidget

from nodes.core.vocabulary import BuyResult, HealthState

if TYPE_CHECKING:
    from nodes.session.session import ClusterSession

ASSETS = Path(__file__).resolve().parent.parent / "assets"

COLORS = {
    "text": "#0f172a",
    "muted": "#64748b",
    "line": "#cbd5e1",
    "accent": "#2563eb",
    "up": "#16a34a",
    "starting": "#2563eb",
    "down": "#dc2626",
    "exited": "#dc2626",
    "hung": "#d97706",
    "slow": "#d97706",
    "cut": "#7c3aed",
    "anomaly": "#be185d",
    "stale": "#fef3c7",
    "valid": "#dcfce7",
    "lookup": "#2563eb",
    "search": "#9333ea",
    "buy": "#059669",
    "out of stock": "#d97706",
    "failed buy": "#dc2626",
}
#: (background, text) colours of each buy's result in the shop.
OUTCOME_STYLE = {
    BuyResult.BOUGHT: ("#dcfce7", "#166534"),
    BuyResult.OUT_OF_STOCK: ("#fef3c7", "#92400e"),
    BuyResult.BOOK_UNKNOWN: ("#fee2e2", "#991b1b"),
    BuyResult.INVALID: ("#fee2e2", "#991b1b"),
    BuyResult.UNREACHABLE: ("#fee2e2", "#991b1b"),
    BuyResult.REFUSED: ("#fee2e2", "#991b1b"),
    BuyResult.UNKNOWN: ("#ede9fe", "#5b21b6"),
}


def stylesheet() -> str:
    return (ASSETS / "bazar.qss").read_text(encoding="utf-8")


def scaled_stylesheet(scale: float) -> str:
    """Bazar's stylesheet with every size (pt and px) times ``scale``: presenter mode."""
    def scaled(match: re.Match) -> str:
        value = float(match[1]) * scale
        return f"{max(1, round(value))}{match[2]}" if match[2] == "px" else f"{value:.1f}{match[2]}"

    return re.sub(r"(?<![\w#])(\d+(?:\.\d+)?)(pt|px)", scaled, stylesheet())


def role_of(name: str) -> str:
    return "frontend" if name == "frontend" else name.rstrip("0123456789")


@lru_cache(maxsize=64)
def node_icon(role: str, height: int = 64, crossed: bool = False, faded: bool = False) -> QPixmap:
    """Bazar's server icon for a role, optionally crossed out (down) or faded."""
    width = int(height * 0.8)
    pixmap = QPixmap(width, height)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    if faded:
        painter.setOpacity(0.35)
    QSvgRenderer(str(ASSETS / "icons" / f"{role}.svg")).render(painter, QRectF(0, 0, width, height))
    if crossed:
        painter.setOpacity(1.0)
        painter.setPen(QPen(QColor("#111827"), max(3, height // 14), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        margin = height * 0.08
        painter.drawLine(QRectF(margin, margin, width - 2 * margin, height - 2 * margin).topLeft(),
                         QRectF(margin, margin, width - 2 * margin, height - 2 * margin).bottomRight())
        painter.drawLine(QRectF(margin, margin, width - 2 * margin, height - 2 * margin).topRight(),
                         QRectF(margin, margin, width - 2 * margin, height - 2 * margin).bottomLeft())
    painter.end()
    return pixmap


def status_color(status: str) -> str:
    if status.startswith("exited"):
        return COLORS["exited"]
    if HealthState.CUT_OFF in status:
        return COLORS["cut"]
    if "slowed" in status:
        return COLORS["slow"]
    return COLORS.get(status.split(",")[0], COLORS["muted"])


def pill(text: str, color: str) -> str:
    """Rich text for a small coloured status label."""
    return (f'<span style="background:{color}; color:white; font-weight:700; padding:2px 8px; '
            f'border-radius:8px;">&nbsp;{text}&nbsp;</span>')


def label(text: str = "", *, name: str | None = None, wrap: bool = False) -> QLabel:
    widget = QLabel(text)
    if name:
        widget.setObjectName(name)
    widget.setWordWrap(wrap)
    return widget


#: The colour of each node state (NodeHealth.state), one per state.
STATE_COLORS = {
    HealthState.UP: COLORS["up"],
    HealthState.SLOW: COLORS["slow"],
    HealthState.STARTING: COLORS["starting"],
    HealthState.CUT_OFF: COLORS["cut"],
    HealthState.HUNG: COLORS["hung"],
    HealthState.DOWN: COLORS["down"],
    HealthState.EXITED: COLORS["exited"],
}


class ModelEvents(QObject):
    """The model's events, coalesced per frame: many changes within one frame reach the views
    as one ``changed`` call, a dict from topic ("node", "replicas", "cache", "latency",
    "trace", "log", "tick", "message" (an arrow on the Live screen), "mark") to the set of names
    that changed."""

    changed = Signal(object)
    FRAME_MS = 33

    def __init__(self, model: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.pending: dict[str, set] = {}
        self._held = False
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.flush)
        self._slots = [
            (model.node_changed, lambda name: self.mark("node", name)),
            (model.replicas_changed, lambda name: self.mark("replicas", name)),
            (model.cache_changed, lambda name: self.mark("cache", name)),
            (model.latency_added, lambda series, _sample: self.mark("latency", series)),
            (model.trace_changed, lambda trace: self.mark("trace", trace)),
            (model.logged, lambda name, _line: self.mark("log", name)),
            (model.ticked, lambda _now: self.mark("tick", None)),
            (model.arrow_added, lambda _arrow: self.mark("message", None)),
            (model.marked, lambda mark: self.mark("mark", mark.node)),
        ]
        for signal, slot in self._slots:
            signal.connect(slot)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Nothing marked meanwhile: the model is being put to another instant (a replay's
        seek), and ``everything`` is said after it (a seek applies thousands of inputs, and
        marking each was a tenth of a drag step)."""
        self._held = True
        try:
            yield
        finally:
            self._held = False

    def mark(self, topic: str, key: Any) -> None:
        if self._held:
            return
        self.pending.setdefault(topic, set()).add(key)
        if not self.timer.isActive():
            self.timer.start(self.FRAME_MS)

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        if pending:
            self.changed.emit(pending)

    def everything(self) -> None:
        """Every topic, for every name, at once: the model was put back to another instant."""
        model = self.model
        names = set(model.nodes)
        self.pending = {"node": set(names), "replicas": set(model.catalog_names()), "cache": set(model.caches),
                        "latency": set(), "trace": set(model.trace_ids()), "log": set(names), "tick": {None},
                        "message": {None}, "mark": set(names)}
        self.timer.stop()
        self.flush()

    def disconnect_model(self) -> None:
        for signal, slot in self._slots:
            signal.disconnect(slot)
        self.timer.stop()


def header_menu_button(text: str) -> QToolButton:
    """A button in the dark header that opens its menu (Runs, Help), drawn light on dark."""
    button = QToolButton()
    button.setText(text)
    button.setObjectName("HelpButton")
    button.setStyleSheet("QToolButton { color: #e2e8f0; border: 1px solid #475569; border-radius: 6px; "
                         "padding: 3px 10px; } QToolButton::menu-indicator { image: none; }")
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    return button


def searchable(box: QComboBox) -> None:
    """A chooser of many items that finds one by any part of its words as a person types (a
    catalog of thousands of books); the list stays a list to pick from."""
    box.setEditable(True)
    box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
    completer = box.completer()
    assert completer is not None  # an editable combo box has one
    completer.setFilterMode(Qt.MatchFlag.MatchContains)
    completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
    completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)


def plain_error(error: BaseException) -> str:
    """An error in plain words: Bazar's own errors say what happened; anything else gets a
    sentence, never an exception's class name."""
    from nodes.control.supervisor import ClusterError

    if isinstance(error, ClusterError):
        return str(error)
    if isinstance(error, TimeoutError):
        return "It took too long and was given up."
    if isinstance(error, ConnectionError | OSError):
        return "A node could not be reached."
    text = str(error).strip()
    return text if text else "Something went wrong (details are in the terminal)."


def expected(error: BaseException) -> bool:
    """An error the cluster can give in the normal run of things (a node busy, down or slow):
    said in the status bar in words, never as a traceback in the terminal."""
    from nodes.control.supervisor import ClusterError

    return isinstance(error, ClusterError | TimeoutError | ConnectionError | OSError)


def spawn(coro: Coroutine[Any, Any, Any], report: Callable[[str], None],
          done: Callable[[Any], None] | None = None) -> asyncio.Task:
    """Run ``coro`` on the window's loop; show any error through ``report``, in plain words."""
    task = asyncio.ensure_future(coro)

    def finished(t: asyncio.Task) -> None:
        if t.cancelled():
            return
        error = t.exception()
        if error is not None:
            report(plain_error(error))
            if not expected(error):  # a bug: its traceback is for whoever fixes it
                traceback.print_exception(error)
        elif done is not None:
            done(t.result())

    task.add_done_callback(finished)
    return task


# ---- the load generator's controls (the Live and Charts tabs both show them) -----------------
class RateBox(QSpinBox):
    """The load generator's rate as one setting: the Live and Charts tabs each show a box, and
    every box in one window shows the value last set in any of them (the session holds it;
    issue 23: "Live 20 req/s, Charts 50 req/s" told two stories about one load)."""

    _boxes: weakref.WeakSet[RateBox] = weakref.WeakSet()
    _edits = 0  # counts edits in any box, so that a box shown later takes the latest

    def __init__(self, rate: int) -> None:
        super().__init__()
        self.edited = 0
        self.setRange(1, 1000)
        self.setValue(rate)
        self.setSuffix(" req/s")
        self.setAccessibleName("Load rate")
        self.setMaximumWidth(self.fontMetrics().horizontalAdvance("1000 req/s") + 48)  # no wider than it needs
        RateBox._boxes.add(self)
        self.valueChanged.connect(self._share)

    def siblings(self) -> list[RateBox]:
        """The other rate boxes of this window (a box Qt deleted with an earlier window, still in
        the set until Python lets go of it, is never asked for its window again)."""
        top = self.window()
        return [box for box in list(RateBox._boxes)
                if box is not self and shiboken6.isValid(box) and box.window() is top]

    def _share(self, value: int) -> None:
        RateBox._edits += 1
        self.edited = RateBox._edits
        for box in self.siblings():
            box.edited = self.edited
            box._quietly(value)  # the session already has it, from the box that was edited

    def _quietly(self, value: int) -> None:
        if self.value() != value:
            self.blockSignals(True)
            self.setValue(value)
            self.blockSignals(False)

    def show_rate(self, rate: float) -> None:
        """Show the session's rate in this box and its siblings, when it was set elsewhere (a
        scripted demo): nothing is sent back to the session."""
        if self.value() != round(rate):
            self._quietly(round(rate))
            for box in self.siblings():
                box._quietly(round(rate))

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        """Take the latest edit made in a box of this window before this one was in it."""
        super().showEvent(event)
        latest = max(self.siblings(), key=lambda box: box.edited, default=None)
        if latest is not None and latest.edited > self.edited:
            self._quietly(latest.value())
            self.edited = latest.edited


def load_controls(rate: int) -> tuple[QPushButton, RateBox]:
    """The load generator's start/stop button and its rate, as the Charts and Live tabs show them."""
    button = QPushButton("Start load")
    button.setObjectName("Primary")
    return button, RateBox(rate)


def toggle_load(session: ClusterSession, report: Callable[[str], None], apply_settings: Callable[[], None],
                relabel: Callable[[], None]) -> None:
    """Start the load generator with the settings shown, or stop it; ``relabel`` either way."""
    if session.load.running:
        spawn(session.load.stop(), report, lambda _r: relabel())
    else:
        apply_settings()
        session.load.start()
    relabel()


class FitScroll(QScrollArea):
    """A page that fills the view and scrolls only when even its least height does not fit (a
    small screen at a large scale). Unlike ``setWidgetResizable``, a page whose words wrap is
    not grown to its preferred height, so it does not scroll at sizes where it fits."""

    def __init__(self, page: QWidget) -> None:
        super().__init__()
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(page)
        page.installEventFilter(self)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.fit()

    def fit(self) -> None:
        page = self.widget()
        if page is None:
            return
        width = self.viewport().width()
        least = self._least(page, width)
        if least > self.viewport().height():  # it scrolls: the bar takes some width
            width = self.width() - self.verticalScrollBar().sizeHint().width()
            least = self._least(page, width)
        page.resize(width, max(self.viewport().height(), least))

    @staticmethod
    def _least(page: QWidget, width: int) -> int:
        """The page's least height at ``width``, wrapped words taking the lines they need."""
        layout = page.layout()
        least = max(page.minimumSizeHint().height(), page.minimumHeight())
        if layout is not None and layout.hasHeightForWidth():
            least = max(least, layout.minimumHeightForWidth(width))
        return least

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            QTimer.singleShot(0, self, self.fit)  # its least height may have changed (a longer answer)
        return False

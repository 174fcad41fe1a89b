"""Bazar's window: a header with the cluster's health and a Help menu, one tab per view of the
model, and a status bar for progress and errors. It opens on the Live tab, no larger than the
screen, and at any presenter scale it keeps its size (Ctrl 0 brings back the size it had at
100 %). Closing it (or Ctrl+Q) stops every node.

The window gets the cluster to run and a small options object; it makes the session, owns
its tab list, and hands each view the model (what to draw) and the controller (what to do)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import shiboken6
from PySide6.QtCore import QRect, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import (
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QFontMetrics,
    QKeySequence,
    QResizeEvent,
    QShortcut,
    QTextDocumentFragment,
)
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QSizePolicy,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.cache import CacheTab
from gui.charts import ChartsView
from gui.cluster import ClusterView
from gui.common import COLORS, STATE_COLORS, ModelEvents, header_menu_button, label, pill, scaled_stylesheet, spawn
from gui.experiments import ExperimentsView
from gui.flow import FlowView
from gui.live import LiveView
from gui.replicas import ReplicasView
from gui.runs import TimeControl, header_books, replay_cluster
from gui.scenarios import ScenariosView
from gui.shop import ShopView
from nodes.control.clusterfile import Cluster
from nodes.core.vocabulary import HealthState
from nodes.observe.health import summarize
from nodes.observe.views import link_text
from nodes.runs.runfile import Run
from nodes.session.session import ClusterSession

#: The tabs, in order: (name used by --tab and tests, title).
TABS = (("live", "Live"), ("shop", "Shop"), ("cluster", "Cluster"), ("charts", "Charts"), ("cache", "Cache"),
        ("replicas", "Replicas"), ("flow", "Flow"), ("scenarios", "Scenarios"), ("experiments", "Experiments"))
#: How long a message (not an error) stays in the status bar.
MESSAGE_S = 8
#: Presenter mode: the window's scale goes by these steps, within these bounds.
SCALE_STEP = 0.25
SCALES = (0.75, 2.0)
#: The lesson the Help menu opens.
TEACHING = Path(__file__).resolve().parent.parent / "docs" / "teaching.md"
#: Every keyboard shortcut, as the Help menu lists them.
SHORTCUTS = (("Alt+1 … Alt+9", "switch tabs"), ("Ctrl + / Ctrl −", "scale the whole window up or down"),
             ("Ctrl 0", "back to 100 %, and to the size the window had there"),
             ("arrow keys, Enter", "on the Live picture: choose a node, then what to do to it"),
             ("Ctrl+B", "in the Shop: buy the chosen book"), ("Ctrl+F", "in the Shop: search"),
             ("Ctrl+S", "save this session's run (docs/runs.md)"), ("Ctrl+O", "open a recorded run to replay"),
             ("F1", "these shortcuts"), ("Ctrl+Q", "quit: stop every node and close"))
#: Platforms with no real screen: a window there is as large as asked (screenshots, tests).
SCREENLESS = ("offscreen", "minimal")


@dataclass(frozen=True)
class WindowOptions:
    """What the launcher tells the window beyond the cluster: its size (never larger than the
    screen's available area) and its presenter scale."""

    width: int = 1440
    height: int = 920
    scale: float = 1.0


def opening_size(width: int, height: int, available: QRect | None) -> QSize:
    """The size the window opens at: as asked, but no larger than ``available`` (the screen's
    area without its panels; None on a platform without a real screen)."""
    if available is None or available.isEmpty():
        return QSize(width, height)
    return QSize(min(width, available.width()), min(height, available.height()))


class MainWindow(QMainWindow):
    """The window over a cluster it starts (or attaches to), or, given a ``run``, over a
    recorded run it replays (nothing is started; nothing acts on a cluster)."""

    def __init__(self, cluster: Cluster, options: WindowOptions = WindowOptions(), run: Run | None = None) -> None:
        super().__init__()
        self.options = options
        self.replaying = run is not None
        self.session = session = ClusterSession(replay_cluster(run.header) if run is not None else cluster)
        if run is not None and run.header.books:
            session.books = header_books(run.header)
        self.model = model = session.model
        self.time = TimeControl(self, run, lambda other: MainWindow(
            cluster, WindowOptions(self.width(), self.height(), self.scale), run=other))
        self.controller = controller = session.controller
        self.ready = False
        self.closing = False
        self.stopped = asyncio.Event()
        self.setWindowTitle("Bazar — a replicated bookstore you can break")
        self.events = ModelEvents(model, self)

        header = QWidget()
        header.setObjectName("Header")
        header.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        title = label("Bazar", name="Title")
        shape = session.cluster  # a replay's: the recorded cluster's
        self.subtitle = label(f"{shape.catalogs} catalog replicas · {shape.orders} order replicas · front-end "
                              f"{model.nodes['frontend'].address}" + (" when recorded" if run is not None else ""),
                              name="Subtitle")
        self.health = QLabel()
        self.health.setTextFormat(Qt.TextFormat.RichText)
        self.health.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        # The header never widens the window: the subtitle may be cut at the very narrowest,
        # and the health line says as much as its room holds (``_health``).
        self.subtitle.setMinimumWidth(1)
        self.health.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.help_button = help_menu(self)
        self.runs_button = self.time.menu_button()
        header_layout = QHBoxLayout(header)
        header_layout.setContentsMargins(18, 10, 18, 10)
        text = QVBoxLayout()
        text.addWidget(title)
        text.addWidget(self.subtitle)
        header_layout.addLayout(text)
        header_layout.addWidget(self.health, 1)
        menus = QVBoxLayout()  # one above the other: the header's width is the subtitle's and the count's
        menus.setSpacing(4)
        menus.addWidget(self.runs_button)
        menus.addWidget(self.help_button)
        header_layout.addLayout(menus)

        self.scale = 1.0
        self.live = LiveView(model, session, controller, self.events, self.report, self.say)
        self.shop = ShopView(model, controller, self.events, self.report)
        self.cluster_view = ClusterView(model, controller, self.events, self.report, self.say,
                                        where=f"a replay of {run.path.name}" if run is not None else _where(session))
        self.charts = ChartsView(model, session, self.events, self.report)
        self.cache = CacheTab(model, self.events)
        self.replicas = ReplicasView(model, self.events, session.books)
        self.flow = FlowView(model, self.events)
        self.scenarios = ScenariosView(self.report)
        self.experiments = ExperimentsView(self.report)
        self.views = {"live": self.live, "shop": self.shop, "cluster": self.cluster_view, "charts": self.charts,
                      "cache": self.cache, "replicas": self.replicas, "flow": self.flow, "scenarios": self.scenarios,
                      "experiments": self.experiments}
        self.tabs = QTabWidget()
        for name, title_text in TABS:
            self.tabs.addTab(self.views[name], title_text)
        # No tab widens the window past the size asked (a stack is as wide as its widest page,
        # shown or not): each page lays itself out in the room there is. The Live tab fits
        # 1280×720 at 150 %.
        self.tabs.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.shortcuts = install_shortcuts(self)
        self.setAcceptDrops(True)  # a run file dropped on the window opens as a replay

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(header)
        self.bar_slot = QVBoxLayout()  # the time slider (gui/replay.py), once there is something to go back over
        self.bar_slot.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.bar_slot)
        body = QVBoxLayout()
        body.setContentsMargins(12, 12, 12, 12)
        body.addWidget(self.tabs)
        layout.addLayout(body, 1)
        self.setCentralWidget(central)

        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setMaximumWidth(220)
        self.message = QLabel("")
        self.message.setMinimumWidth(1)  # a long message is cut, it never widens the window
        self.statusBar().addWidget(self.message, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.message_timer = QTimer(self)
        self.message_timer.setSingleShot(True)
        self.message_timer.timeout.connect(lambda: self.message.setText(""))

        self.events.changed.connect(self._changed)
        # Live from the first frame: no other tab shows while the cluster starts.
        self.tabs.setCurrentWidget(self.live)
        self.shop.setEnabled(False)
        self._size_at_100: QSize | None = None
        self.resize(opening_size(options.width, options.height, self._available()))
        if options.scale != 1.0:
            self.set_scale(options.scale)
        self._health()

    def view(self, name: str) -> QWidget:
        return self.views[name]

    # ---- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self.replaying:
            self.ready = True
            self.progress.setVisible(False)
            self.setWindowTitle(f"Bazar — replay of {self.time.run.path.name}" if self.time.run else "Bazar")
            self.time.start_replay()
            self._health()
            return
        self.say("Starting the cluster …", keep=True)
        spawn(self.session.start(lambda m: self.say(m, keep=True)), self._failed_to_start,
              lambda _r: self._started())

    def _started(self) -> None:
        self.ready = True
        self.time.start_live()
        self.progress.setVisible(False)
        self.shop.setEnabled(True)
        # The order history only: the shop searches when the shopper does, so that the
        # front-end's caches start empty (a search and a look-up of its own filled them).
        self.shop.refresh_history()
        self._health()
        self.say(f"Ready. Alt+1…{self.tabs.count()} switch tabs; Ctrl + and Ctrl − scale the window; "
                 "F1 lists every shortcut.")

    def _failed_to_start(self, message: str) -> None:
        self.progress.setVisible(False)
        self.report(f"The cluster could not start: {message}")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing stops the cluster first; the window goes once every node has."""
        if self.stopped.is_set():
            self._gone()
            event.accept()
            return
        if self.replaying:  # nothing to stop but the window's own timers
            self.events.disconnect_model()
            self.stopped.set()
            self._gone()
            event.accept()
            return
        event.ignore()
        if self.closing:
            return
        self.closing = True
        self.progress.setVisible(True)
        self.say("Stopping every node …", keep=True)
        self.events.disconnect_model()
        spawn(self.session.stop(), self._stopped, lambda _r: self._stopped(""))

    def _gone(self) -> None:
        if self in OPEN_WINDOWS:
            OPEN_WINDOWS.remove(self)
        share_shortcuts()

    def _stopped(self, error: str) -> None:
        if error:  # stop what we can the blunt way; nothing may outlive the window
            self.session.supervisor.stop_all()
        self.stopped.set()
        self.close()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        self.time.drag_enter(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        self.time.drop(event)

    # ---- help --------------------------------------------------------------------------------------
    def show_shortcuts(self) -> QMessageBox:
        rows = "".join(f"<tr><td><b>{keys}</b>&nbsp;&nbsp;</td><td>{what}</td></tr>" for keys, what in SHORTCUTS)
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", f"<table>{rows}</table>",
                          QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.open()  # not exec(): the cluster's loop keeps running behind it
        self.shortcuts_box = box
        return box

    def open_lesson(self) -> None:
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(TEACHING))):
            self.report(f"Could not open the lesson; it is at {TEACHING}")

    # ---- presenter mode --------------------------------------------------------------------------
    def set_scale(self, scale: float) -> None:
        """Every text and drawing of the window at ``scale`` (1 is normal), for a projector. The
        window keeps its size (it fits 1280×720 at 150 %); back at 100 % it takes the size it
        had there."""
        scale = round(min(max(scale, SCALES[0]), SCALES[1]), 2)
        if self.scale == 1.0 and scale != 1.0:
            self._size_at_100 = self.size()
        size = self._size_at_100 if scale == 1.0 and self._size_at_100 is not None else self.size()
        self.scale = scale
        app = cast(QApplication | None, QApplication.instance())
        if app is not None:
            app.setStyleSheet(scaled_stylesheet(self.scale) + self._scaled_extras())
        for view in self.views.values():
            if hasattr(view, "set_scale"):
                view.set_scale(self.scale)
        self._keep_size(size)
        self.say(f"Scale {self.scale:.0%} (Ctrl 0: back to 100%)")

    def _scaled_extras(self) -> str:
        """Rules beyond the scaled stylesheet: narrower tabs when scaled up, so that every tab's
        name still shows in full at 1280 px."""
        if self.scale <= 1.0:
            return ""
        return f"\nQTabBar::tab {{ padding: {round(7 * self.scale)}px {round(9 * self.scale)}px; }}"

    def _keep_size(self, size: QSize) -> None:
        """Stay at ``size`` (within the screen): now, and once Qt has polished the new style."""
        available = self._available()
        size = opening_size(size.width(), size.height(), available)
        self.resize(size)
        QTimer.singleShot(0, self, lambda: self.resize(size))

    def _available(self) -> QRect | None:
        """The screen's area without its panels; None where there is no real screen."""
        app = cast(QApplication | None, QApplication.instance())
        if app is None or app.platformName() in SCREENLESS:
            return None
        screen = self.screen() or app.primaryScreen()
        return screen.availableGeometry() if screen is not None else None

    # ---- drawing -------------------------------------------------------------------------------
    def say(self, message: str, keep: bool = False) -> None:
        """A message in the status bar; it goes after a while (unless ``keep``), so that it never
        stays to contradict what the cluster does next."""
        self.message.setStyleSheet("")
        self.message.setText(message)
        self.message_timer.stop()
        if not keep:
            self.message_timer.start(MESSAGE_S * 1000)

    def report(self, message: str) -> None:
        """An error: in red, until the next message."""
        self.message_timer.stop()
        self.message.setStyleSheet(f"color: {COLORS['down']}; font-weight: 700;")
        self.message.setText(message)

    def _changed(self, topics: dict[str, set]) -> None:
        if "node" in topics:
            self._health()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._health()  # the health line says as much as its new room holds

    def _health(self) -> None:
        """The header's count of nodes up, and of those degraded, one way for every fault
        (``health.summarize``: a slowed, cut-off or partitioned node is up, and degraded; a hung
        or crashed one is not up), and the troubled nodes by name, as many as fit."""
        healths = self.model.healths()
        up, degraded, total = summarize(healths)
        color = (COLORS["starting"] if not self.ready else COLORS["up"] if up == total and not degraded
                 else COLORS["hung"] if up else COLORS["down"])
        count = f"{up} of {total} nodes up" + (f" · {degraded} degraded" if degraded else "")
        if not self.ready:
            count = f"starting · {count}"
        troubled = [h for h in healths if h.state != HealthState.UP] if self.ready else []
        parts = [f"<span style='color:{STATE_COLORS[h.state]}'>■</span> {h.name} {h.label}" for h in troubled]
        if self.model.cut_links():
            parts.append(f"links cut: {link_text(self.model.cut_links())}")
        details = self._fitted_details(parts)
        self.health.setText(f"<div align='right'>{pill(count, color)}"
                            + (f"<br><span style='color:#e2e8f0'>{details}</span>" if details else "") + "</div>")
        self.health.setToolTip(" · ".join(QTextDocumentFragment.fromHtml(p).toPlainText() for p in parts))

    def _fitted_details(self, parts: list[str]) -> str:
        """As many of ``parts`` as fit the header's room, then "N more"."""
        metrics = QFontMetrics(self.health.font())
        room = self.health.contentsRect().width() or 400
        for shown in range(len(parts), 0, -1):
            text = " · ".join(parts[:shown]) + (f" · {len(parts) - shown} more" if shown < len(parts) else "")
            if metrics.horizontalAdvance(QTextDocumentFragment.fromHtml(text).toPlainText()) <= room:
                return text
        return f"{len(parts)} nodes in trouble" if parts else ""


#: Every window open: with more than one (a replay opened beside another), each keeps its
#: shortcuts to itself, as one application-wide Ctrl+Q in each would be ambiguous and Qt then
#: fires neither; alone, they work from its dialogs too.
OPEN_WINDOWS: list[MainWindow] = []


def share_shortcuts() -> None:
    # A window deleted without being closed (a test's, say) is no longer counted, nor touched:
    # its shortcuts' C++ objects are gone with it.
    OPEN_WINDOWS[:] = [w for w in OPEN_WINDOWS if shiboken6.isValid(w) and not w.stopped.is_set()]
    reach = Qt.ShortcutContext.ApplicationShortcut if len(OPEN_WINDOWS) == 1 else Qt.ShortcutContext.WindowShortcut
    for window in OPEN_WINDOWS:
        for shortcut in window.shortcuts:
            if shiboken6.isValid(shortcut):
                shortcut.setContext(reach)


def install_shortcuts(window: MainWindow) -> list[QShortcut]:
    """The window's keyboard: Alt+1…9 for the tabs, Ctrl+S and Ctrl+O for runs, and the ones it
    shares with its dialogs while it is the only window (returned): presenter scale, Ctrl+Q, F1."""
    for number in range(window.tabs.count()):
        # PySide6 connects a signal given as a keyword (activated=); its stubs do not list them.
        QShortcut(QKeySequence(f"Alt+{number + 1}"), window,  # type: ignore[call-overload]
                  activated=lambda n=number: window.tabs.setCurrentIndex(n))
    QShortcut(QKeySequence("Ctrl+S"), window, activated=window.time.save_dialog)  # type: ignore[call-overload]
    QShortcut(QKeySequence("Ctrl+O"), window, activated=window.time.open_dialog)  # type: ignore[call-overload]
    shared = []
    for key, change in (("Ctrl++", SCALE_STEP), ("Ctrl+=", SCALE_STEP), ("Ctrl+-", -SCALE_STEP), ("Ctrl+0", 0)):
        shared.append(QShortcut(QKeySequence(key), window,  # type: ignore[call-overload]
                                activated=lambda c=change: window.set_scale(window.scale + c if c else 1.0)))
    shared += [QShortcut(QKeySequence("Ctrl+Q"), window, activated=window.close),  # type: ignore[call-overload]
               QShortcut(QKeySequence("F1"), window, activated=window.show_shortcuts)]  # type: ignore[call-overload]
    window.shortcuts = shared
    OPEN_WINDOWS.append(window)
    share_shortcuts()
    return shared


def help_menu(window: MainWindow) -> QToolButton:
    """The header's Help menu: the keyboard shortcuts, and the lesson (docs/teaching.md)."""
    button = header_menu_button("Help")
    menu = QMenu(button)
    menu.addAction("Keyboard shortcuts\tF1", window.show_shortcuts)
    lesson = menu.addAction("The lesson: docs/teaching.md", window.open_lesson)
    lesson.setData(QUrl.fromLocalFile(str(TEACHING)))
    menu.addSeparator()
    menu.addAction("Quit (stops every node)\tCtrl+Q", window.close)
    button.setMenu(menu)
    return button


def _where(session: ClusterSession) -> str:
    """Where the cluster's data lives, as the Cluster tab says it."""
    engine = session.supervisor.engine
    if engine is not None:
        return f"attached: containers of the Compose project '{engine.project}'"
    if session.cluster.attached:
        return "attached: nodes started elsewhere"
    return f"data in {session.supervisor.data_dir}"

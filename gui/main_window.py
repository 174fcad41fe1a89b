"""Bazar's window: a header with the cluster's health, one tab per view of the model, and a
status bar for progress and errors. Closing it stops every node.

The window gets the cluster to run and a small options object; it makes the session, owns
its tab list, and hands each view the model (what to draw) and the controller (what to do)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.cache import CacheTab
from gui.charts import ChartsView
from gui.cluster import ClusterView
from gui.common import COLORS, STATE_COLORS, ModelEvents, label, pill, scaled_stylesheet, spawn
from gui.experiments import ExperimentsView
from gui.flow import FlowView
from gui.live import LiveView
from gui.replicas import ReplicasView
from gui.scenarios import ScenariosView
from gui.shop import ShopView
from nodes.control.clusterfile import Cluster
from nodes.core.vocabulary import HealthState
from nodes.observe.views import link_text
from nodes.session.session import ClusterSession

#: The tabs, in order: (name used by --tab and tests, title).
TABS = (("live", "Live"), ("shop", "Shop"), ("cluster", "Cluster"), ("charts", "Charts"), ("cache", "Cache"),
        ("replicas", "Replicas"), ("flow", "Flow"), ("scenarios", "Scenarios"), ("experiments", "Experiments"))
#: How long a message (not an error) stays in the status bar.
MESSAGE_S = 8
#: Presenter mode: the window's scale goes by these steps, within these bounds.
SCALE_STEP = 0.25
SCALES = (0.75, 2.0)


@dataclass(frozen=True)
class WindowOptions:
    """What the launcher tells the window beyond the cluster."""

    width: int = 1440
    height: int = 920


class MainWindow(QMainWindow):
    def __init__(self, cluster: Cluster, options: WindowOptions = WindowOptions()) -> None:
        super().__init__()
        self.options = options
        self.session = session = ClusterSession(cluster)
        self.model = model = session.model
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
        self.subtitle = label(f"{cluster.catalogs} catalog replicas · {cluster.orders} order replicas · front-end "
                              f"{model.nodes['frontend'].address}", name="Subtitle")
        self.health = QLabel()
        self.health.setTextFormat(Qt.TextFormat.RichText)
        self.health.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        header_layout = QHBoxLayout(header)
        header_layout.setContentsMargins(18, 10, 18, 10)
        text = QVBoxLayout()
        text.addWidget(title)
        text.addWidget(self.subtitle)
        header_layout.addLayout(text, 1)
        header_layout.addWidget(self.health)

        self.scale = 1.0
        self.live = LiveView(model, session, controller, self.events, self.report, self.say)
        self.shop = ShopView(model, controller, self.events, self.report)
        self.cluster_view = ClusterView(model, controller, self.events, self.report, self.say,
                                        data_dir=str(session.supervisor.data_dir))
        self.charts = ChartsView(model, session, self.events, self.report)
        self.cache = CacheTab(model, self.events)
        self.replicas = ReplicasView(model, self.events)
        self.flow = FlowView(model, self.events)
        self.scenarios = ScenariosView(self.report)
        self.experiments = ExperimentsView(self.report)
        self.views = {"live": self.live, "shop": self.shop, "cluster": self.cluster_view, "charts": self.charts,
                      "cache": self.cache, "replicas": self.replicas, "flow": self.flow, "scenarios": self.scenarios,
                      "experiments": self.experiments}
        self.tabs = QTabWidget()
        for name, title_text in TABS:
            self.tabs.addTab(self.views[name], title_text)
        for number in range(self.tabs.count()):
            # PySide6 connects a signal given as a keyword (activated=); its stubs do not list them.
            QShortcut(QKeySequence(f"Alt+{number + 1}"), self,  # type: ignore[call-overload]
                      activated=lambda n=number: self.tabs.setCurrentIndex(n))
        # Presenter mode: one scale for the whole window.
        for key, change in (("Ctrl++", SCALE_STEP), ("Ctrl+=", SCALE_STEP), ("Ctrl+-", -SCALE_STEP), ("Ctrl+0", 0)):
            QShortcut(QKeySequence(key), self,  # type: ignore[call-overload]
                      context=Qt.ShortcutContext.ApplicationShortcut,
                      activated=lambda c=change: self.set_scale(self.scale + c if c else 1.0))

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(header)
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
        self._health()
        self.tabs.setCurrentWidget(self.cluster_view)
        self.shop.setEnabled(False)
        self.resize(options.width, options.height)

    def view(self, name: str) -> QWidget:
        return self.views[name]

    # ---- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.say("Starting the cluster …", keep=True)
        spawn(self.session.start(lambda m: self.say(m, keep=True)), self._failed_to_start,
              lambda _r: self._started())

    def _started(self) -> None:
        self.ready = True
        self.progress.setVisible(False)
        self.shop.setEnabled(True)
        self.shop.activate()
        self.say(f"Ready. Alt+1…{self.tabs.count()} switch tabs; Ctrl + and Ctrl − scale the window; Ctrl+B buys.")
        self.tabs.setCurrentWidget(self.live)

    def _failed_to_start(self, message: str) -> None:
        self.progress.setVisible(False)
        self.report(f"The cluster could not start: {message}")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing stops the cluster first; the window goes once every node has."""
        if self.stopped.is_set():
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

    def _stopped(self, error: str) -> None:
        if error:  # stop what we can the blunt way; nothing may outlive the window
            self.session.supervisor.stop_all()
        self.stopped.set()
        self.close()

    # ---- presenter mode --------------------------------------------------------------------------
    def set_scale(self, scale: float) -> None:
        """Every text and drawing of the window at ``scale`` (1 is normal), for a projector."""
        self.scale = round(min(max(scale, SCALES[0]), SCALES[1]), 2)
        app = cast(QApplication | None, QApplication.instance())
        if app is not None:
            app.setStyleSheet(scaled_stylesheet(self.scale))
        for view in self.views.values():
            if hasattr(view, "set_scale"):
                view.set_scale(self.scale)
        self.say(f"Scale {self.scale:.0%} (Ctrl 0: back to 100%)")

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

    def _health(self) -> None:
        up, total, troubled = self.model.summary()
        color = COLORS["up"] if up == total else COLORS["hung"] if up else COLORS["down"]
        troubled = [h for h in troubled if h.state != HealthState.UP]
        details = " · ".join(f"<span style='color:{STATE_COLORS[h.state]}'>■</span> {h.name} {h.label}"
                             for h in troubled[:3])  # a few, so the header never widens the window
        if len(troubled) > 3:
            details += f" · {len(troubled) - 3} more"
        if self.model.cut_links():
            details += (" · " if details else "") + f"links cut: {link_text(self.model.cut_links())}"
        self.health.setText(pill(f"{up} of {total} nodes up", color) +
                            (f"<br><span style='color:#e2e8f0'>{details}</span>" if details else ""))

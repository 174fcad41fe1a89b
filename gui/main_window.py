"""Bazar's window: a header with the cluster's health, one tab per view of the session, and
a status bar that shows progress and errors. Closing it stops every node."""
from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QProgressBar, QTabWidget, QVBoxLayout, QWidget

from nodes.control.session import ClusterSession

from .cache import CacheTab
from .charts import ChartsView
from .cluster import ClusterView
from .common import COLORS, SupervisorBridge, label, pill, spawn
from .experiments import ExperimentsView
from .flow import FlowView
from .replicas import ReplicasView
from .scenarios import ScenariosView
from .shop import ShopView

REFRESH_MS = 250


class MainWindow(QMainWindow):
    def __init__(self, session: ClusterSession) -> None:
        super().__init__()
        self.session = session
        self.ready = False
        self.closing = False
        self.stopped = asyncio.Event()
        self.setWindowTitle("Bazar — a replicated bookstore you can break")

        header = QWidget()
        header.setObjectName("Header")
        header.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        title = label("Bazar", name="Title")
        cluster = session.cluster
        self.subtitle = label(f"{cluster.catalogs} catalog replicas · {cluster.orders} order replicas · front-end "
                              f"{session.supervisor.frontend.address}", name="Subtitle")
        self.health = QLabel()
        self.health.setTextFormat(Qt.TextFormat.RichText)
        header_layout = QHBoxLayout(header)
        header_layout.setContentsMargins(18, 10, 18, 10)
        text = QVBoxLayout()
        text.addWidget(title)
        text.addWidget(self.subtitle)
        header_layout.addLayout(text, 1)
        header_layout.addWidget(self.health)

        self.shop = ShopView(session, self.report)
        self.cluster_view = ClusterView(session, self.report)
        self.charts = ChartsView(session, self.report)
        self.cache = CacheTab(session)
        self.replicas = ReplicasView(session)
        self.flow = FlowView(session)
        self.experiments = ExperimentsView(self.report)
        self.scenarios = ScenariosView(self.report)
        self.tabs = QTabWidget()
        for widget, name in ((self.shop, "Shop"), (self.cluster_view, "Cluster"), (self.charts, "Charts"),
                             (self.cache, "Cache"), (self.replicas, "Replicas"), (self.flow, "Flow"),
                             (self.scenarios, "Scenarios"), (self.experiments, "Experiments")):
            self.tabs.addTab(widget, name)
        for number in range(self.tabs.count()):
            QShortcut(QKeySequence(f"Alt+{number + 1}"), self, activated=lambda n=number: self.tabs.setCurrentIndex(n))

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
        self.statusBar().addWidget(self.message, 1)
        self.statusBar().addPermanentWidget(self.progress)

        self.bridge = SupervisorBridge()
        self.bridge.node_changed.connect(self._node_changed)
        session.supervisor.listeners.append(self.bridge)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(REFRESH_MS)
        self.tabs.setCurrentWidget(self.cluster_view)
        self.shop.setEnabled(False)

    # ---- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.say("Starting the cluster …")
        spawn(self.session.start(self.say), self._failed_to_start, lambda _r: self._started())

    def _started(self) -> None:
        self.ready = True
        self.progress.setVisible(False)
        self.shop.setEnabled(True)
        self.shop.activate()
        self.say(f"Ready: {len(self.session.supervisor.nodes)} nodes up. Alt+1…8 switch tabs; Ctrl+B buys.")
        self.tabs.setCurrentWidget(self.shop)

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
        self.say("Stopping every node …")
        spawn(self.session.stop(), self._stopped, lambda _r: self._stopped(""))

    def _stopped(self, error: str) -> None:
        if error:  # stop what we can the blunt way; nothing may outlive the window
            self.session.supervisor.stop_all()
        self.stopped.set()
        self.close()

    # ---- drawing -------------------------------------------------------------------------------
    def say(self, message: str) -> None:
        self.message.setStyleSheet("")
        self.message.setText(message)

    def report(self, message: str) -> None:
        self.message.setStyleSheet(f"color: {COLORS['down']}; font-weight: 700;")
        self.message.setText(message)

    def _node_changed(self, name: str) -> None:
        self.cluster_view.node_changed(name)
        self._health()

    def _health(self) -> None:
        nodes = list(self.session.supervisor.nodes.values())
        up = sum(1 for n in nodes if n.state == "up" and not n.cut_off)
        troubled = [n for n in nodes if n.state != "up" or n.cut_off or n.slow_ms]
        color = COLORS["up"] if not troubled else COLORS["hung"] if up else COLORS["down"]
        details = ", ".join(f"{n.name} {n.status}" for n in troubled[:4])
        self.health.setText(pill(f"{up}/{len(nodes)} nodes up", color) +
                            (f"<br><span style='color:#fbbf24'>{details}</span>" if details else ""))

    def refresh(self) -> None:
        self._health()
        current = self.tabs.currentWidget()
        if current is self.cluster_view:
            self.cluster_view.refresh()
        elif current is self.charts:
            self.charts.tick()
        elif current is self.cache:
            self.cache.refresh()
        elif current is self.replicas:
            self.replicas.refresh()
        elif current is self.flow:
            self.flow.refresh()

"""The Cluster tab: one card per node (role, number, address, pid, state, uptime, requests
per second, and why it may do less than its state says) with the outage toggles, its log on
demand; the network bar, which cuts and restores links between two nodes (partitions, W8);
and Reset with a confirmation. A view of the model; actions go to the controller."""
from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.common import STATE_COLORS, ModelEvents, label, node_icon, pill, spawn
from nodes.core.vocabulary import HealthState
from nodes.observe.model import ClusterModel
from nodes.observe.views import link_text
from nodes.session.actions import Controller

ROLE_TITLE = {"frontend": "Front-end", "catalog": "Catalog", "order": "Order"}
#: States in which a node runs and takes its slow and cut-off toggles.
ALIVE = (HealthState.UP, HealthState.SLOW, HealthState.CUT_OFF)
#: States drawn with a faded icon: running, but answering nobody.
FADED = (HealthState.HUNG, HealthState.CUT_OFF)


class NodeCard(QFrame):
    def __init__(self, model: ClusterModel, controller: Controller, name: str, report: Callable[[str], None]) -> None:
        super().__init__()
        self.setObjectName("Card")
        self.model = model
        self.controller = controller
        self.name = name
        self.report = report
        health = model.health(name)
        self.role = health.role
        self.attached = health.process.attached
        self.icon = QLabel()
        number = "" if health.role == "frontend" else f" {name.removeprefix(health.role)}"
        self.title = label(f"{ROLE_TITLE[health.role]}{number}", name="CardTitle")
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.details = label("", name="Muted", wrap=True)  # narrow windows: wraps, no sideways scroll
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.rate = label("", name="Muted")
        self.note = label("", name="Note", wrap=True)
        self.note.setVisible(False)

        self.crash_button = QPushButton("Crash")
        self.crash_button.setObjectName("Danger")
        self.crash_button.setToolTip("SIGKILL: the database stays, everything in memory is lost")
        self.hang_button = QPushButton("Hang")
        self.hang_button.setToolTip("SIGSTOP: connections are accepted and never answered (Resume undoes it)")
        self.slow_ms = QSpinBox()
        self.slow_ms.setRange(0, 10_000)
        self.slow_ms.setSingleStep(100)
        self.slow_ms.setValue(500)
        self.slow_ms.setSuffix(" ms")
        self.slow_button = QPushButton("Slow")
        self.slow_button.setToolTip("Add this delay to every answer the node gives")
        self.cut_button = QPushButton("Cut off")
        self.cut_button.setToolTip("Drop all traffic but admin and telemetry; it keeps running and its memory")
        self.restart_button = QPushButton("Restart")
        self.restart_button.setToolTip("A clean stop (SIGTERM) and a start; same port, same database")
        self.disk_button = QPushButton("Fill disk")
        self.disk_button.setToolTip("Its database may not grow: SQLite refuses new writes with "
                                    "\"database or disk is full\" until the disk is freed")
        self.disk_button.setVisible(health.role == "catalog")
        self.log_button = QPushButton("Log")
        self.log_button.setToolTip("What happened to the node, and its own log file")
        for button in (self.crash_button, self.hang_button, self.slow_button, self.cut_button, self.restart_button,
                       self.disk_button, self.log_button):
            button.setAccessibleName(f"{button.text()} {name}")
        if self.attached:
            for button in (self.crash_button, self.hang_button, self.restart_button, self.disk_button):
                button.setEnabled(False)
                button.setToolTip("Attached node: only slow and cut off work on it")

        head = QHBoxLayout()
        head.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        text = QVBoxLayout()
        title_row = QHBoxLayout()
        title_row.addWidget(self.title, 1)
        title_row.addWidget(self.log_button)
        text.addLayout(title_row)
        text.addWidget(self.status)
        text.addWidget(self.details)
        text.addWidget(self.rate)
        head.addLayout(text, 1)
        buttons = QGridLayout()
        buttons.addWidget(self.crash_button, 0, 0)
        buttons.addWidget(self.hang_button, 0, 1)
        buttons.addWidget(self.restart_button, 0, 2)
        buttons.addWidget(self.slow_ms, 1, 0)
        buttons.addWidget(self.slow_button, 1, 1)
        buttons.addWidget(self.cut_button, 1, 2)
        if health.role == "catalog":
            buttons.addWidget(self.disk_button, 2, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.note)
        layout.addStretch(1)
        layout.addLayout(buttons)

        self.crash_button.clicked.connect(lambda: self._do(self.controller.crash_or_start(name)))
        self.hang_button.clicked.connect(lambda: self._do(self.controller.hang_or_resume(name)))
        self.slow_button.clicked.connect(self.slow)
        self.cut_button.clicked.connect(
            lambda: self._do(self.controller.cut_off(name, self.model.health(name).state != HealthState.CUT_OFF)))
        self.restart_button.clicked.connect(lambda: self._do(self.controller.restart(name)))
        self.disk_button.clicked.connect(
            lambda: self._do(self.controller.fill_disk(name, not self.model.health(name).process.disk_full)))
        self.log_button.clicked.connect(self.show_log)
        self.refresh()

    # ---- actions (each reversible from the same card; none waits on the window's loop) ----
    def _do(self, action: Coroutine[Any, Any, Any]) -> None:
        spawn(action, self.report, lambda _r: self.refresh())
        self.refresh()  # buttons wait while the action is under way

    def slow(self) -> None:
        delay = 0 if self.model.health(self.name).process.slow_ms else self.slow_ms.value()
        self._do(self.controller.slow(self.name, delay))

    def show_log(self) -> None:
        dialog = LogDialog(self.model, self.controller, self.name, self)
        dialog.show()

    # ---- drawing --------------------------------------------------------------------------
    def refresh(self) -> None:
        health = self.model.health(self.name)
        process = health.process
        self.icon.setPixmap(node_icon(self.role, 64, crossed=health.gone, faded=health.state in FADED))
        self.status.setText(pill(health.label, STATE_COLORS[health.look]))
        uptime = "" if not process.started_at or health.gone else \
            f" · up {_clock(self.model.now() - process.started_at)}"
        self.details.setText(f"{health.address} · pid {process.pid or '–'}{uptime}")
        view = self.model.nodes[self.name]
        rate = view.requests_per_second(self.model.now())
        if health.gone:
            self.rate.setText("no requests: not running")  # its recent rate would read as live
        else:
            self.rate.setText(f"{rate:.0f} requests/s" + ("" if view.connected or health.state == HealthState.STARTING
                                                           else " · telemetry lost"))
        self.note.setText(" ".join(n[:1].upper() + n[1:] + "." for n in health.notes))
        self.note.setVisible(bool(health.notes))
        busy = self.controller.busy(self.name)
        if not self.attached:
            self.crash_button.setText("Start" if health.gone else "Crash")
            self.crash_button.setObjectName("Primary" if health.gone else "Danger")
            self.crash_button.style().polish(self.crash_button)
            self.crash_button.setEnabled(not busy and health.state != HealthState.STARTING)
            self.hang_button.setText("Resume" if health.state == HealthState.HUNG else "Hang")
            self.hang_button.setEnabled(not busy and health.state in (*ALIVE, HealthState.HUNG))
            self.restart_button.setEnabled(not busy and health.state != HealthState.STARTING)
        alive = health.state in ALIVE
        self.slow_button.setEnabled(alive and not busy)
        self.cut_button.setEnabled(alive and not busy)
        self.slow_button.setText("Normal speed" if process.slow_ms else "Slow")
        self.cut_button.setText("Heal" if health.state == HealthState.CUT_OFF else "Cut off")
        if not self.attached:
            self.disk_button.setEnabled(alive and not busy)
            self.disk_button.setText("Free disk" if process.disk_full else "Fill disk")


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


class LogDialog(QDialog):
    """What happened to one node as the window saw it (process changes, faults, leases,
    catch-ups, resets), then the node's own log file."""

    def __init__(self, model: ClusterModel, controller: Controller, name: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Log of {name}")
        self.events = QPlainTextEdit("\n".join(f"{time.strftime('%H:%M:%S', time.localtime(line.t))}  {line.text}"
                                               for line in model.logs[name]) or "Nothing has happened to it yet.")
        self.file = QPlainTextEdit(controller.log_tail(name, 300))
        for text in (self.events, self.file):
            text.setReadOnly(True)
            text.setFont(QFont("monospace", 9))
            text.moveCursor(text.textCursor().MoveOperation.End)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(label("What happened to it (hang, resume, cut off, heal, leases, catch-ups, resets):",
                               name="CardTitle"))
        layout.addWidget(self.events, 1)
        layout.addWidget(label("Its own output (log file):", name="CardTitle"))
        layout.addWidget(self.file, 2)
        layout.addWidget(buttons)
        self.resize(900, 560)


class NetworkBar(QFrame):
    """Cut the link between two nodes, both ways or one way only, and restore it: a partition
    on real processes, where messages on a cut link are lost and calls time out. The cut links
    are read from the model, as every card's note is."""

    # Named as the tests name it; it hides QObject.sender(), which this card never calls.
    sender: QComboBox  # type: ignore[assignment]

    def __init__(self, model: ClusterModel, controller: Controller, report: Callable[[str], None]) -> None:
        super().__init__()
        self.setObjectName("Card")
        self.model = model
        self.controller = controller
        self.report = report
        self.busy = False
        names = [name for name in model.nodes if not model.health(name).process.attached]
        self.sender = QComboBox()
        self.receiver = QComboBox()
        for box, accessible in ((self.sender, "Link from"), (self.receiver, "Link to")):
            box.addItems(names)
            box.setAccessibleName(accessible)
        catalogs = [name for name in names if name.startswith("catalog")]
        if len(catalogs) >= 2:  # the partition the lessons start with: two catalog replicas
            self.sender.setCurrentText(catalogs[0])
            self.receiver.setCurrentText(catalogs[1])
        self.one_way = QCheckBox("one way only")
        self.one_way.setToolTip("Only the first node's messages to the second are lost; the second still "
                                "reaches the first")
        self.cut_button = QPushButton("Cut link")
        self.cut_button.setToolTip("Messages on the link are lost and calls time out, as on a network that "
                                   "stopped delivering; both nodes keep running")
        self.restore_button = QPushButton("Restore all links")
        self.links = label("", name="Muted", wrap=True)
        row = QHBoxLayout()
        row.addWidget(label("Network:", name="CardTitle"))
        row.addWidget(self.sender)
        self.arrow = label("↔")
        row.addWidget(self.arrow)
        row.addWidget(self.receiver)
        row.addWidget(self.one_way)
        row.addWidget(self.cut_button)
        row.addWidget(self.restore_button)
        row.addWidget(self.links, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        layout.addLayout(row)
        for widget in (self.sender, self.receiver):
            widget.currentTextChanged.connect(lambda _t: self.refresh())
        self.one_way.toggled.connect(lambda _on: self.refresh())
        self.cut_button.clicked.connect(self.toggle)
        self.restore_button.clicked.connect(lambda: self._do(self.controller.restore_links()))
        self.refresh()

    def _chosen(self) -> tuple[str, str, bool, bool]:
        """(sender, receiver, one way, whether that link is cut now)."""
        sender, receiver, one_way = self.sender.currentText(), self.receiver.currentText(), self.one_way.isChecked()
        cut = set(self.model.cut_links())
        wanted = {(sender, receiver)} if one_way else {(sender, receiver), (receiver, sender)}
        return sender, receiver, one_way, wanted <= cut

    def toggle(self) -> None:
        sender, receiver, one_way, cut = self._chosen()
        self._do(self.controller.cut_link(sender, receiver, one_way=one_way, on=not cut))

    def _do(self, action: Coroutine[Any, Any, Any]) -> None:
        self.busy = True

        def done(_result: object = None) -> None:
            self.busy = False
            self.refresh()

        def failed(text: str) -> None:
            done()
            self.report(text)

        spawn(action, failed, done)
        self.refresh()

    def refresh(self) -> None:
        sender, receiver, one_way, cut = self._chosen()
        links = self.model.cut_links()
        self.arrow.setText("→" if one_way else "↔")
        self.cut_button.setText("Restore link" if cut else "Cut link")
        held = self.controller.held is not None  # a replay, or the live cluster rewound
        self.cut_button.setEnabled(not self.busy and not held and sender != receiver)
        self.restore_button.setEnabled(not self.busy and not held and bool(links))
        self.links.setText(f"Cut: {link_text(links)}" if links else "Every link delivers.")


class ClusterView(QWidget):
    def __init__(self, model: ClusterModel, controller: Controller, events: ModelEvents,
                 report: Callable[[str], None], say: Callable[[str], None], where: str = "") -> None:
        super().__init__()
        self.model = model
        self.controller = controller
        self.report = report
        self.say = say
        self.where = where  # "data in FOLDER", or where an attached cluster's nodes run
        self.cards: dict[str, NodeCard] = {}
        self.summary = label("", name="Muted")
        self.reset_button = QPushButton("Reset data…")
        self.reset_button.setObjectName("Danger")
        self.reset_button.setToolTip("Put every replica's database back to the seven books")

        grid_host = QWidget()
        grid = QGridLayout(grid_host)
        grid.setSpacing(12)
        roles = [model.health(name).role for name in model.nodes]
        columns = max(3, roles.count("catalog"), roles.count("order"))
        rows = {"frontend": 0, "catalog": 1, "order": 2}
        placed = {"frontend": 0, "catalog": 0, "order": 0}
        for name, role in zip(model.nodes, roles, strict=True):
            card = NodeCard(model, controller, name, report)
            self.cards[name] = card
            column = placed[role]
            placed[role] += 1
            grid.addWidget(card, rows[role] * 10 + column // columns, column % columns)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(grid_host)
        scroll.setFrameShape(QFrame.Shape.NoFrame)

        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.reset_button)
        self.network = NetworkBar(model, controller, report)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.network)
        layout.addWidget(scroll)
        self.reset_button.clicked.connect(self.reset)
        events.changed.connect(self._changed)
        self._summary()

    def reset(self) -> None:
        answer = QMessageBox.question(
            self, "Reset every database?",
            "Every catalog replica goes back to the seven books at seq 0; order histories and the "
            "front-end's caches are emptied. This cannot be undone.",
            QMessageBox.StandardButton.Reset | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Reset:
            spawn(self.controller.reset(), self.report, self.say)

    def _changed(self, topics: dict[str, set]) -> None:
        if "node" in topics:
            for name in topics["node"]:
                if name in self.cards:
                    self.cards[name].refresh()
            self.network.refresh()
            self._summary()
        if "tick" in topics and self.isVisible():
            for card in self.cards.values():
                card.refresh()  # uptimes and rates move with time

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        """Current numbers the moment the tab shows: while hidden, the cards were not redrawn
        each second (issue 23: "up 1:23 · 0 requests/s" for 2 s under 20 req/s)."""
        super().showEvent(event)
        self.refresh()

    def _summary(self) -> None:
        up, total, _troubled = self.model.summary()
        self.summary.setText(f"{up} of {total} nodes up · secret-protected internals · {self.where}")

    def refresh(self) -> None:
        for card in self.cards.values():
            card.refresh()
        self.network.refresh()
        self._summary()

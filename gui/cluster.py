"""The Cluster tab: one card per node (role, number, address, pid, status, uptime, requests
per second) with the outage toggles, its log on demand, and Reset with a confirmation."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
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

from nodes.control.session import ClusterSession
from nodes.control.supervisor import ManagedNode

from .common import label, node_icon, pill, spawn, status_color

ROLE_TITLE = {"frontend": "Front-end", "catalog": "Catalog", "order": "Order"}


class NodeCard(QFrame):
    def __init__(self, session: ClusterSession, node: ManagedNode, report) -> None:
        super().__init__()
        self.setObjectName("Card")
        self.session = session
        self.node = node
        self.report = report
        self.icon = QLabel()
        number = "" if node.role == "frontend" else f" {node.index}"
        self.title = label(f"{ROLE_TITLE[node.role]}{number}", name="CardTitle")
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.details = label("", name="Muted")
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.rate = label("", name="Muted")

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
        self.log_button = QPushButton("Log")
        self.log_button.setToolTip("The node's own log file, last lines")
        for button in (self.crash_button, self.hang_button, self.slow_button, self.cut_button, self.restart_button,
                       self.log_button):
            button.setAccessibleName(f"{button.text()} {node.name}")
        if node.attached:
            for button in (self.crash_button, self.hang_button, self.restart_button, self.log_button):
                button.setEnabled(False)
                button.setToolTip("Attached node: only slow and cut off work on it")

        head = QHBoxLayout()
        head.addWidget(self.icon)
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
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addLayout(buttons)

        self.crash_button.clicked.connect(self.crash_or_start)
        self.hang_button.clicked.connect(self.hang_or_resume)
        self.slow_button.clicked.connect(self.slow)
        self.cut_button.clicked.connect(self.cut_or_heal)
        self.restart_button.clicked.connect(self.restart)
        self.log_button.clicked.connect(self.show_log)
        self.refresh()

    # ---- actions (each reversible from the same card) ------------------------------------
    @property
    def supervisor(self):
        return self.session.supervisor

    def crash_or_start(self) -> None:
        if self.node.state in ("down", "exited"):
            self.supervisor.start(self.node.name)
        else:
            self.supervisor.crash(self.node.name)
        self.refresh()

    def hang_or_resume(self) -> None:
        if self.node.state == "hung":
            self.supervisor.resume(self.node.name)
        elif self.node.state == "up":
            self.supervisor.hang(self.node.name)
        self.refresh()

    def slow(self) -> None:
        delay = 0 if self.node.slow_ms else self.slow_ms.value()
        spawn(self.supervisor.slow(self.node.name, delay), self.report, lambda _r: self.refresh())

    def cut_or_heal(self) -> None:
        spawn(self.supervisor.cut_off(self.node.name, not self.node.cut_off), self.report, lambda _r: self.refresh())

    def restart(self) -> None:
        self.supervisor.restart(self.node.name)
        self.refresh()

    def show_log(self) -> None:
        dialog = QDialog(self)
        dialog.setWindowTitle(f"Log of {self.node.name}")
        text = QPlainTextEdit(self.supervisor.log_tail(self.node.name, 300))
        text.setReadOnly(True)
        text.setFont(QFont("monospace", 9))
        text.moveCursor(text.textCursor().MoveOperation.End)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(text)
        layout.addWidget(buttons)
        dialog.resize(900, 500)
        dialog.show()

    # ---- drawing --------------------------------------------------------------------------
    def refresh(self) -> None:
        node = self.node
        down = node.state in ("down", "exited")
        self.icon.setPixmap(node_icon(node.role, 64, crossed=down, faded=node.state == "hung"))
        self.status.setText(pill(node.status, status_color(node.status)))
        uptime = node.uptime_s
        uptime_text = "" if uptime is None else f" · up {int(uptime // 60)}:{int(uptime % 60):02d}"
        self.details.setText(f"{node.address} · pid {node.pid or '–'}{uptime_text}")
        view = self.session.model.nodes.get(node.name)
        rate = view.requests_per_second() if view is not None else 0.0
        self.rate.setText(f"{rate:.0f} requests/s" + ("" if view is None or view.connected or down
                                                       else " · telemetry lost"))
        if not node.attached:
            self.crash_button.setText("Start" if down else "Crash")
            self.crash_button.setObjectName("Primary" if down else "Danger")
            self.crash_button.style().polish(self.crash_button)
            self.hang_button.setText("Resume" if node.state == "hung" else "Hang")
            self.hang_button.setEnabled(node.state in ("up", "hung"))
            self.restart_button.setEnabled(node.state in ("up", "hung", "exited", "down"))
        alive = node.state == "up"
        self.slow_button.setEnabled(alive)
        self.cut_button.setEnabled(alive)
        self.slow_button.setText("Normal speed" if node.slow_ms else "Slow")
        self.cut_button.setText("Heal" if node.cut_off else "Cut off")


class ClusterView(QWidget):
    def __init__(self, session: ClusterSession, report) -> None:
        super().__init__()
        self.session = session
        self.report = report
        self.cards: dict[str, NodeCard] = {}
        self.summary = label("", name="Muted")
        self.reset_button = QPushButton("Reset data…")
        self.reset_button.setObjectName("Danger")
        self.reset_button.setToolTip("Put every replica's database back to the seven books")

        grid_host = QWidget()
        grid = QGridLayout(grid_host)
        grid.setSpacing(12)
        columns = max(3, session.cluster.catalogs, session.cluster.orders)
        rows = {"frontend": 0, "catalog": 1, "order": 2}
        placed = {"frontend": 0, "catalog": 0, "order": 0}
        for node in session.supervisor.nodes.values():
            card = NodeCard(session, node, report)
            self.cards[node.name] = card
            column = placed[node.role]
            placed[node.role] += 1
            grid.addWidget(card, rows[node.role] * 10 + column // columns, column % columns)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(grid_host)
        scroll.setFrameShape(QFrame.Shape.NoFrame)

        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.reset_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(scroll)
        self.reset_button.clicked.connect(self.reset)

    def reset(self) -> None:
        answer = QMessageBox.question(
            self, "Reset every database?",
            "Every catalog replica goes back to the seven books at seq 0; order histories and the "
            "front-end's caches are emptied. This cannot be undone.",
            QMessageBox.StandardButton.Reset | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Reset:
            spawn(self.session.supervisor.reset(), self.report, lambda _r: self.report("Every replica was reset."))

    def refresh(self) -> None:
        for card in self.cards.values():
            card.refresh()
        nodes = list(self.session.supervisor.nodes.values())
        up = sum(1 for n in nodes if n.state == "up")
        self.summary.setText(f"{up} of {len(nodes)} nodes up · secret-protected internals · "
                             f"data in {self.session.supervisor.data_dir}")

    def node_changed(self, name: str) -> None:
        if name in self.cards:
            self.cards[name].refresh()

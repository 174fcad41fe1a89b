"""The Scenarios tab: each documented figure (S1–S12) and each weak point (W1–W7) replayed
on a real cluster of its own shape, drawn step by step as the figure draws it, one plain
sentence per step, the replicas before and after, and a verdict."""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import cast

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui.common import label, spawn
from gui.flow import TraceStepper
from gui.replicas import ServerRow
from nodes.core.vocabulary import HealthState
from nodes.observe.traces import StepKind, Trace
from nodes.observe.views import ReplicaCell, derive_cells
from nodes.session.scenarios import Outcome, Player, Scenario, load_all

#: The tables' height and the diagram's least (its header and four messages) at 100 %.
TABLE_PX, DIAGRAM_PX = 92, 220
#: What each setup step leaves a node in (the steps ``nodes.session.scenarios`` plays).
SETUP_STATES = {"crash": HealthState.DOWN, "hang": HealthState.HUNG, "cut": HealthState.CUT_OFF,
                "start": HealthState.UP, "restart": HealthState.UP, "resume": HealthState.UP, "heal": HealthState.UP}


def setup_states(scenario: Scenario) -> dict[int, HealthState]:
    """Each catalog replica's state as the scenario's setup leaves it (those it names)."""
    states: dict[int, HealthState] = {}
    for step in scenario.setup:
        what = step.get("do")
        for node in [step["node"]] if "node" in step else step.get("nodes", []):
            if node.startswith("catalog") and what in SETUP_STATES:
                states[int(node.removeprefix("catalog"))] = SETUP_STATES[what]
            elif node.startswith("catalog") and what == "slow":
                states[int(node.removeprefix("catalog"))] = HealthState.SLOW if step.get("ms") else HealthState.UP
    return states


def scenario_cells(table: list[tuple], book: int = 2, states: dict[int, HealthState] | None = None
                   ) -> list[ReplicaCell]:
    """A scenario's replica table — (seq, valid, quantity) per replica, seq None when it could
    not be read — as cells derived the one way the model derives them, each replica in the
    state its setup left it in (``states``): a hung replica is drawn as every view draws one,
    not as down; one that could not be read and was not broken on purpose is down."""
    states = states or {}
    return derive_cells(book, [(i, seq, quantity, bool(valid), False,
                                states.get(i, HealthState.DOWN if seq is None else HealthState.UP))
                               for i, (seq, valid, quantity) in enumerate(table)])


class ScenariosView(QWidget):
    def __init__(self, report: Callable[[str], None]) -> None:
        super().__init__()
        self.report = report
        self.scenarios = load_all()
        self.outcome: Outcome | None = None
        self.player = Player(Path(tempfile.mkdtemp(prefix="bazar-scenarios-")), say=self._say)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        for scenario in self.scenarios:
            self.list.addItem(f"{scenario.id}  {scenario.title}")
            self.list.item(self.list.count() - 1).setToolTip(scenario.title)
        widest = max(self.list.fontMetrics().horizontalAdvance(self.list.item(i).text())
                     for i in range(self.list.count()))
        self._widest_title = widest
        self.set_scale(1.0)
        self.title = label("", name="CardTitle", wrap=True)
        self.about = label("", name="Muted", wrap=True)
        self.play_button = QPushButton("Play on a real cluster")
        self.play_button.setObjectName("Primary")
        self.stepper = TraceStepper(
            speed="0.5×", slow_down=2.0,
            empty_text="Press “Play on a real cluster”: the figure's request is sent and drawn here step by step.")
        self.canvas = self.stepper.canvas
        self.speed = self.stepper.speed
        self.status = label("", name="Muted", wrap=True)
        self.sentence = label("", name="Answer", wrap=True)
        self.verdict = label("", name="Answer", wrap=True)
        self.before = ServerRow()
        self.after = ServerRow()
        for row in (self.before, self.after):
            # The diagram gets the height at 720 px: it is what is stepped (the row's icons
            # shrink to fit, and its seq and marks stay whole).
            row.setFixedHeight(TABLE_PX)
        controls = self.stepper.controls
        controls.insertWidget(0, self.play_button)
        rows = QHBoxLayout()
        self.tables: list[QGroupBox] = []  # shown once played: empty before, they only take room
        for row, name in ((self.before, "Before the request"), (self.after, "After")):
            box = QGroupBox(name)
            inside = QVBoxLayout(box)
            inside.setContentsMargins(4, 2, 4, 2)
            inside.addWidget(row)
            rows.addWidget(box)
            box.setVisible(False)
            self.tables.append(box)
        right = QWidget()
        layout = QVBoxLayout(right)
        layout.setContentsMargins(0, 0, 0, 0)
        # The controls first: they stay put whatever the length of the description below them.
        layout.addLayout(controls)
        layout.addWidget(self.title)
        layout.addWidget(self.about)
        layout.addWidget(self.status)
        # The step's sentence, and in its place at the last step the verdict with it: one line
        # of words above the diagram, so that at 1280×720 the diagram keeps its room.
        layout.addWidget(self.sentence)
        layout.addWidget(self.verdict)
        layout.addWidget(self.stepper.area, 1)
        layout.addLayout(rows, 0)
        # Scaled up at 720 px the words, the diagram and the tables need more than the window's
        # height: the pane scrolls then, rather than squeezing them until they are cut.
        pane = QScrollArea()
        pane.setWidgetResizable(True)
        pane.setFrameShape(QFrame.Shape.NoFrame)
        pane.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        pane.setWidget(right)
        pane.viewport().setAutoFillBackground(False)  # the card's colour, not the scroll area's
        right.setAutoFillBackground(False)
        splitter = QSplitter()
        splitter.addWidget(self.list)
        splitter.addWidget(pane)
        splitter.setSizes([self.list.minimumWidth(), 1000])
        splitter.setCollapsible(0, False)
        QVBoxLayout(self).addWidget(splitter)

        self.set_scale(1.0)  # the tables' and the diagram's heights, now that they are made
        self.list.currentRowChanged.connect(self._chosen)
        self.play_button.clicked.connect(lambda: self.play())
        self.stepper.stepped.connect(lambda _step: self._caption())
        self.list.setCurrentRow(0)

    def set_scale(self, scale: float) -> None:
        """The list as wide as its titles at 100 % (up to a third of 1280 px); scaled up, the
        titles wrap instead, so that the controls and the diagram keep their room. The tables
        and the diagram keep their height at any scale (the pane scrolls instead)."""
        self.list.setMinimumWidth(min(self._widest_title + 36, 420 if scale <= 1.0 else 280))
        grown = max(1.0, scale)
        for row in (getattr(self, "before", None), getattr(self, "after", None)):
            if row is not None:
                row.setFixedHeight(int(TABLE_PX * grown))
        if hasattr(self, "stepper"):
            self.stepper.area.setMinimumHeight(int(DIAGRAM_PX * grown))

    def _say(self, message: str) -> None:
        self.status.setText(message[:1].upper() + message[1:] + " …")

    def _chosen(self, row: int) -> None:
        scenario = self.scenarios[row]
        figure = f"  ·  replays {scenario.figure}" if scenario.figure else ""
        self.title.setText(f"{scenario.id} — {scenario.title}{figure}")
        self.title.setToolTip("")
        self.about.setText(scenario.about)
        self.about.setVisible(True)
        self.status.setVisible(True)
        self.outcome = None
        self.stepper.show(None)
        self.sentence.setVisible(False)
        self.verdict.setVisible(False)
        self.status.setText(f"{scenario.catalogs} catalog and {scenario.orders} order replicas, rules: "
                            f"{scenario.catalog_mode}. Press Play: the cluster is started and brought to the "
                            "starting state through real crashes, restarts and writes.")
        self.before.show_cells([])
        for box in self.tables:
            box.setVisible(False)
        self.after.show_cells([])

    def play(self) -> None:
        scenario = self.scenarios[self.list.currentRow()]
        self.play_button.setEnabled(False)
        self.list.setEnabled(False)
        spawn(self.player.play(scenario), self._failed, self._played)

    def _failed(self, message: str) -> None:
        self.play_button.setEnabled(True)
        self.list.setEnabled(True)
        self.report(f"The scenario could not be played: {message}")

    def _played(self, outcome: Outcome) -> None:
        for box in self.tables:
            box.setVisible(True)
        self.play_button.setEnabled(True)
        self.list.setEnabled(True)
        self.outcome = outcome
        # Played, the diagram takes their room (at 1280×720 it had 59 px, two messages): the
        # description stays on the title's tooltip, and each step's sentence says the rest.
        self.title.setToolTip(outcome.scenario.about)
        self.about.setVisible(False)
        self.status.setVisible(False)
        self.before.show_cells(scenario_cells(outcome.start, outcome.scenario.book, setup_states(outcome.scenario)))
        self.after.show_cells([])
        ok = outcome.matched
        self.verdict.setStyleSheet(f"background:{'#dcfce7' if ok else '#fee2e2'}; "
                                   f"color:{'#166534' if ok else '#991b1b'};")
        self.verdict.setVisible(False)
        self.stepper.show(self._trace(), 0)
        self.stepper.replay()

    def _trace(self) -> Trace:
        outcome = self.outcome
        assert outcome is not None
        whole = outcome.trace or Trace("")
        # Numbered as the figure numbers them: the request is [1], its hops [2], [3], ...
        hops = [replace(hop, number=number) for number, hop in enumerate(outcome.hops, start=2)]
        return Trace(whole.id, whole.entry_node, whole.method, whole.path, whole.status, whole.ms, hops=hops)

    def _caption(self) -> None:
        outcome = self.outcome
        if outcome is None:
            return
        step, steps = self.canvas.step, self.canvas.steps
        sentences = dict(enumerate(outcome.sentences(), start=2))
        row = self.canvas.rows[step - 1] if step else None
        if row is None:
            text = "Before the request: the replicas as the figure starts them (below, left)."
        elif row.kind == StepKind.REQUEST:
            operation = cast(Trace, self.canvas.trace).operation
            text = f"The request arrives: {operation or outcome.scenario.request['path']}."
        elif row.kind == StepKind.CALL and row.hop is not None:
            text = sentences.get(row.hop.number, row.text)
        elif row.kind == StepKind.ANSWER and row.hop is not None:
            text = f"{row.source} answers {row.target}: {row.hop.answer}."
        else:
            # The entry node's own time, as the diagram's last arrow says it; the client's
            # round trip, timed by the player, is longer by the connection's cost.
            trace = cast(Trace, self.canvas.trace)
            took = f" after {trace.ms:.1f} ms there ({outcome.seconds * 1000:.0f} ms at the client)" \
                if trace.ms is not None else ""
            text = f"The answer goes back to the client: {trace.status}{took}."
        self.sentence.setStyleSheet("background:#eff6ff; color:#1e3a8a;")
        self.sentence.setText(f"Step {step} of {steps}. {text}")
        finished = step >= steps
        if finished:
            self.after.show_cells(scenario_cells(outcome.end, outcome.scenario.book, setup_states(outcome.scenario)))
            verdict = outcome.verdict()
            self.verdict.setText(f"Step {step} of {steps}. {text} {verdict[:1].upper()}{verdict[1:]}")
        self.sentence.setVisible(not finished)
        self.verdict.setVisible(finished)

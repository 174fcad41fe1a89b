"""The Experiments tab: the documents' measurement tables reproduced with one click — the
same experiments as ``launcher.py bench`` — with the time they should take, progress with the
time left, a Cancel that stops every cluster the run started, a verdict in words, the tables,
a plot of the means, and export to CSV and PNG. Each experiment starts clusters of its own, in
a temporary folder removed when it ends, however it ends."""
from __future__ import annotations

import asyncio
import csv
import math
from collections.abc import Callable
from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.common import COLORS, FitScroll, label, spawn
from nodes.bench.common import Context, Progress, Table, cell_text, duration_text
from nodes.bench.experiments import ESTIMATE_S, EXPERIMENTS
from nodes.bench.load_fault import FAULTS

#: Each bar of the plot is at least this many text lines apart, so that no two names touch.
ROW_LINES = 1.5


class ExperimentsView(QWidget):
    def __init__(self, report: Callable[[str], None]) -> None:
        super().__init__()
        self.report = report
        self.tables: list[Table] = []
        self.scale = 1.0
        self.task: asyncio.Task | None = None
        self.context: Context | None = None
        self._watched: QObject | None = None  # the window whose closing cancels a run
        self.choice = QComboBox()
        for name, (title, _run) in EXPERIMENTS.items():
            self.choice.addItem(f"{title}  ({name})", name)
        # Both lists are sized by the space the row gives, not by their longest entry (the open
        # list shows every entry in full): shown beside the experiment's, the fault's words
        # widened the window past 1280 pixels.
        self.choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.choice.setMinimumContentsLength(28)
        # The load-fault experiment's fault, shown only when that experiment is chosen.
        self.fault = QComboBox()
        for name, words in FAULTS.items():
            self.fault.addItem(f"{name}: {words}", name)
        self.fault.setCurrentIndex(list(FAULTS).index("hang"))
        self.fault.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.fault.setMinimumContentsLength(16)
        self.count = QSpinBox()
        self.count.setRange(20, 2000)
        self.count.setValue(200)
        self.count.setSuffix(" requests")
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("Primary")
        self.csv_button = QPushButton("Export CSV…")
        self.png_button = QPushButton("Export PNG…")
        for button in (self.csv_button, self.png_button):
            button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.doing = label("", name="Muted", wrap=True)
        # What a run writes here never widens the window: text wraps, tables scroll.
        self.doing.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.verdict = label("", name="Answer", wrap=True)
        self.verdict.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verdict.setVisible(False)
        self.results = QWidget()
        self.results_layout = QVBoxLayout(self.results)
        self.results_layout.setContentsMargins(0, 0, 0, 0)
        self.results_scroll = QScrollArea()
        self.results_scroll.setWidgetResizable(True)
        self.results_scroll.setWidget(self.results)
        self.results_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.results_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.plot = pg.PlotWidget(background="w")
        self.plot.showGrid(x=True, alpha=0.25)
        self.plot.setMinimumWidth(1)
        self.clock = QTimer(self)
        self.clock.setInterval(1000)
        self.clock.timeout.connect(self._tell_time)

        controls = QHBoxLayout()
        controls.addWidget(self.choice, 1)
        controls.addWidget(self.fault, 1)
        controls.addWidget(self.count)
        controls.addWidget(self.run_button)
        controls.addWidget(self.csv_button)
        controls.addWidget(self.png_button)
        # The verdict and tables, and the plot, each with the whole area: side by side, the plot's
        # rows were squeezed until their names touched, or the verdict had three lines left.
        self.outputs = QTabWidget()
        self.outputs.addTab(self.results_scroll, "Verdict and tables")
        self.outputs.addTab(FitScroll(self.plot), "Plot of the means")  # scrolls before names touch
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.progress)
        layout.addWidget(self.doing)
        layout.addWidget(self.outputs, 1)
        self.results_layout.addWidget(self.verdict)

        self.run_button.clicked.connect(lambda: self.cancel() if self.running else self.run())
        self.csv_button.clicked.connect(lambda: self.export_csv())
        self.png_button.clicked.connect(lambda: self.export_png())
        self.choice.currentIndexChanged.connect(lambda _i: self._before())
        self.fault.currentIndexChanged.connect(lambda _i: self._before())
        self.count.valueChanged.connect(lambda _v: self._before())
        self._before()

    def set_scale(self, scale: float) -> None:
        """Presenter mode: the plot's words grow with the window's."""
        self.scale = scale
        if self.tables:
            self._plot(self.tables[0])

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    # ---- before, during and after a run ----------------------------------------------------------
    def estimate_s(self) -> float:
        return ESTIMATE_S.get(self.choice.currentData(), lambda count: 60)(self.count.value())

    def _before(self) -> None:
        self.fault.setVisible(self.choice.currentData() == "load-fault")
        for box in (self.choice, self.fault):
            box.setToolTip(box.currentText())  # in full, where the box cuts it
        if not self.running:
            self.doing.setText(f"Takes about {duration_text(self.estimate_s())} on a laptop. Each experiment starts "
                               "its own clusters, so the one above keeps running untouched; Cancel stops them.")

    def run(self) -> None:
        name = self.choice.currentData()
        self.run_button.setText("Cancel")
        self.run_button.setObjectName("Danger")
        self.run_button.style().polish(self.run_button)
        self.choice.setEnabled(False)
        self.fault.setEnabled(False)
        self.count.setEnabled(False)
        self.context = Context(Progress(self._progress), count=self.count.value(), fault=self.fault.currentData())
        self.task = spawn(EXPERIMENTS[name][1](self.context), self._failed, self._show)
        self.task.add_done_callback(lambda task: self._cancelled() if task.cancelled() else None)
        self.clock.start()
        self._watch_window()

    def cancel(self) -> None:
        """Stop the run now: its clusters are stopped and its files removed as it unwinds."""
        if self.running:
            assert self.task is not None
            self.task.cancel()
            self.run_button.setEnabled(False)
            self.doing.setText("Cancelling: stopping every cluster the experiment started …")

    def _progress(self, done: int, total: int, what: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self._tell_time()

    def _tell_time(self) -> None:
        """What is under way, how far, and how long is left at the pace of the last steps."""
        progress = self.context.progress if self.context is not None else None
        if progress is None or not self.running or not self.run_button.isEnabled():
            return
        left = progress.seconds_left()
        if left is None:
            left = max(self.estimate_s() - progress.elapsed(), 0)
        what = f"{progress.what} — " if progress.what else ""
        self.doing.setText(f"{what}{progress.done} of {progress.total} requests · {duration_text(progress.elapsed())} "
                           f"so far, about {duration_text(left)} left")

    def _finished(self) -> None:
        """However the run ended: its folder goes, the controls come back."""
        self.clock.stop()
        if self.context is not None:
            self.context.close()
        self.run_button.setEnabled(True)
        self.run_button.setText("Run")
        self.run_button.setObjectName("Primary")
        self.run_button.style().polish(self.run_button)
        self.choice.setEnabled(True)
        self.count.setEnabled(True)
        self.fault.setEnabled(True)

    def _cancelled(self) -> None:
        elapsed = self.context.progress.elapsed() if self.context is not None else 0.0
        self._finished()
        self.doing.setText(f"Cancelled after {duration_text(elapsed)}: every cluster it started is stopped and its "
                           "files are removed.")

    def _failed(self, message: str) -> None:
        self._finished()
        self.doing.setText("The experiment failed; its clusters are stopped.")
        self.report(f"The experiment failed: {message}")

    def _watch_window(self) -> None:
        """Closing the window stops a run's clusters at once (nothing may outlive the window)."""
        window = self.window()
        if window is not self and self._watched is not window:
            window.installEventFilter(self)
            self._watched = window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if watched is self._watched and event.type() == QEvent.Type.Close and self.running:
            assert self.task is not None and self.context is not None
            self.task.cancel()
            self.context.stop_now()
            self.context.close()
        return False

    # ---- results ---------------------------------------------------------------------------------
    def _show(self, tables: list[Table]) -> None:
        elapsed = self.context.progress.elapsed() if self.context is not None else 0.0
        self._finished()
        self.tables = tables
        self.doing.setText(f"Done in {duration_text(elapsed)}.")
        while self.results_layout.count() > 1:  # all but the verdict
            taken = self.results_layout.takeAt(1)
            if taken is not None and (old := taken.widget()) is not None:
                old.deleteLater()
        notes = [note for table in tables for note in table.notes]
        self.verdict.setText("\n\n".join(notes))
        self.verdict.setVisible(bool(notes))
        for table in tables:
            title = label(table.title, name="CardTitle", wrap=True)
            title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            self.results_layout.addWidget(title)
            self.results_layout.addWidget(_table_widget(table))
        self.results_layout.addStretch(1)
        self.outputs.setCurrentWidget(self.results_scroll)
        self._plot(tables[0])
        self.csv_button.setEnabled(True)
        self.png_button.setEnabled(True)

    def _plot(self, table: Table) -> None:
        """One column of the table as horizontal bars (the mean of the requests answered, or what
        ``Table.plot`` names: the cache experiment's hit ratio), each row named in full on the left
        (names such as "reads, catalog replica crashed" and "... hung" differ only at their
        end), rows far enough apart that no two names touch; a row whose every request failed
        says so instead of drawing a bar of no length."""
        self.plot.clear()
        column, unit, what = table.plot
        means = [(str(row[0]), row[column]) for row in table.rows if isinstance(row[column], (int, float))]
        if not means:
            return
        rows = list(range(len(means)))[::-1]  # the table's first row on top
        measured = [(y, m) for y, (_name, m) in zip(rows, means, strict=True) if not math.isnan(m)]
        top = max((m for _y, m in measured), default=1.0)
        if measured:
            self.plot.addItem(pg.BarGraphItem(x0=0, y=[y for y, _m in measured], width=[m for _y, m in measured],
                                              height=0.6, brush=COLORS["accent"]))
        for y, (_name, mean) in zip(rows, means, strict=True):
            if math.isnan(mean):
                text = pg.TextItem("every request failed: no latency to compare", color=COLORS["down"],
                                   anchor=(0, 0.5))
                text.setPos(0, y)
                self.plot.addItem(text)
        font = QFont()
        font.setPointSizeF(9 * self.scale)
        metrics = QFontMetrics(font)
        left = self.plot.getAxis("left")
        left.setTicks([[(y, name) for y, (name, _) in zip(rows, means, strict=True)]])
        for axis in (left, self.plot.getAxis("bottom")):
            axis.setStyle(tickFont=font)
            axis.setTextPen("#1e293b")
        widest = max(metrics.horizontalAdvance(name) for name, _ in means)
        left.setWidth(min(widest + 16, round(420 * self.scale)))
        left.setLabel("")
        # Each row at least ROW_LINES lines high: the plot asks for the height its names need
        # (and its tab scrolls when the window has less).
        self.plot.setMinimumHeight(int(len(means) * metrics.height() * ROW_LINES + 100 * self.scale))
        self.plot.setLabel("bottom", unit, color="#334155", **{"font-size": f"{10 * self.scale:.0f}pt"})
        short = table.title.split(" (")[0]  # in full above the table; here it must fit at 150 %
        self.plot.setTitle(f"<span style='color:#0f172a; font-size:{11 * self.scale:.0f}pt; font-weight:700'>"
                           f"{short}: {what}</span>")
        self.plot.setYRange(-0.6, len(means) - 0.4, padding=0)
        self.plot.setXRange(0, top * 1.1, padding=0)

    def export_csv(self, path: str | None = None) -> Path | None:
        path = path or QFileDialog.getSaveFileName(self, "Export tables as CSV", "bazar-experiment.csv",
                                                   "CSV (*.csv)")[0]
        if not path:
            return None
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            for table in self.tables:
                writer.writerow([table.title])
                writer.writerow(table.columns)
                writer.writerows(table.rows)
                for note in table.notes:
                    writer.writerow([note])
                writer.writerow([])
        self.doing.setText(f"Saved {path}")
        return Path(path)

    def export_png(self, path: str | None = None) -> Path | None:
        path = path or QFileDialog.getSaveFileName(self, "Export the plot as PNG", "bazar-experiment.png",
                                                   "PNG (*.png)")[0]
        if not path:
            return None
        pyqtgraph.exporters.ImageExporter(self.plot.plotItem).export(path)
        self.doing.setText(f"Saved {path}")
        return Path(path)


def _table_widget(table: Table) -> QTableWidget:
    """One result table, as tall as its rows (the results area scrolls, not each table)."""
    widget = QTableWidget(len(table.rows), len(table.columns))
    widget.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
    widget.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    widget.setHorizontalHeaderLabels(table.columns)
    widget.verticalHeader().setVisible(False)
    widget.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    widget.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    for r, row in enumerate(table.rows):
        for c, value in enumerate(row):
            item = QTableWidgetItem(cell_text(value))
            if c:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if value == "MISSED" or (isinstance(value, str) and value.startswith("not met")):
                item.setForeground(pg.mkBrush(COLORS["down"]))
            widget.setItem(r, c, item)
    widget.setFixedHeight(widget.horizontalHeader().height() + widget.verticalHeader().length() + 4)
    return widget

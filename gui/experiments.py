"""The Experiments tab: the documents' measurement tables reproduced with one click — the
same experiments as ``launcher.py bench`` — with a progress bar, the tables, a plot of the
means, and export to CSV and PNG. Each experiment starts clusters of its own."""
from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import Qt
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
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.common import COLORS, label, spawn
from nodes.bench.common import Context, Progress, Table, cell_text
from nodes.bench.experiments import EXPERIMENTS


class ExperimentsView(QWidget):
    def __init__(self, report: Callable[[str], None]) -> None:
        super().__init__()
        self.report = report
        self.tables: list[Table] = []
        self.choice = QComboBox()
        for name, (title, _run) in EXPERIMENTS.items():
            self.choice.addItem(f"{title}  ({name})", name)
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
        self.doing = label("Each experiment starts its own clusters, so the one above keeps running untouched.",
                           name="Muted", wrap=True)
        # What a run writes here never widens the window: text wraps, tables scroll.
        self.doing.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
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

        controls = QHBoxLayout()
        controls.addWidget(self.choice, 1)
        controls.addWidget(self.count)
        controls.addWidget(self.run_button)
        controls.addWidget(self.csv_button)
        controls.addWidget(self.png_button)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.results_scroll)
        splitter.addWidget(self.plot)
        splitter.setSizes([420, 260])
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.progress)
        layout.addWidget(self.doing)
        layout.addWidget(splitter, 1)

        self.run_button.clicked.connect(lambda: self.run())
        self.csv_button.clicked.connect(lambda: self.export_csv())
        self.png_button.clicked.connect(lambda: self.export_png())

    def _progress(self, done: int, total: int, what: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        if what:
            self.doing.setText(f"{what} …")

    def run(self) -> None:
        name = self.choice.currentData()
        self.run_button.setEnabled(False)
        self.run_button.setText("Running…")
        context = Context(Progress(self._progress), count=self.count.value())
        spawn(EXPERIMENTS[name][1](context), self._failed, self._show)

    def _failed(self, message: str) -> None:
        self._done()
        self.report(f"The experiment failed: {message}")

    def _done(self) -> None:
        self.run_button.setEnabled(True)
        self.run_button.setText("Run")

    def _show(self, tables: list[Table]) -> None:
        self._done()
        self.tables = tables
        self.doing.setText("Done. " + " ".join(note for table in tables for note in table.notes[:1]))
        while self.results_layout.count():
            taken = self.results_layout.takeAt(0)
            if taken is not None and (old := taken.widget()) is not None:
                old.deleteLater()
        for table in tables:
            title = label(table.title, name="CardTitle", wrap=True)
            title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            self.results_layout.addWidget(title)
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
                    if value == "MISSED":
                        item.setForeground(pg.mkBrush(COLORS["down"]))
                    widget.setItem(r, c, item)
            widget.setFixedHeight(widget.horizontalHeader().height() + widget.verticalHeader().length() + 4)
            self.results_layout.addWidget(widget)
        self.results_layout.addStretch(1)
        self._plot(tables[0])
        self.csv_button.setEnabled(True)
        self.png_button.setEnabled(True)

    def _plot(self, table: Table) -> None:
        """Means as horizontal bars, each named in full on the left (names such as "reads,
        catalog replica crashed" and "... hung" differ only at their end)."""
        self.plot.clear()
        means = [(str(row[0]), row[1]) for row in table.rows if isinstance(row[1], (int, float))]
        if not means:
            return
        rows = list(range(len(means)))[::-1]  # the table's first row on top
        bars = pg.BarGraphItem(x0=0, y=rows, width=[m for _, m in means], height=0.6, brush=COLORS["accent"])
        self.plot.addItem(bars)
        left = self.plot.getAxis("left")
        left.setTicks([[(y, name) for y, (name, _) in zip(rows, means, strict=True)]])
        widest = max(self.plot.fontMetrics().horizontalAdvance(name) for name, _ in means)
        left.setWidth(min(widest + 16, 420))
        left.setLabel("")
        self.plot.setLabel("bottom", "mean ms", color="#334155")
        self.plot.setTitle(f"<span style='color:#0f172a; font-weight:700'>{table.title}</span>")
        self.plot.setYRange(-0.6, len(means) - 0.4, padding=0)
        self.plot.setXRange(0, max(m for _, m in means) * 1.1, padding=0)

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

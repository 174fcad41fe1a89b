"""The Charts tab (pyqtgraph): latency per operation as points with rolling p50 and p95,
throughput, cache hit ratio, and the built-in load generator that makes them move."""
from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from nodes.control.model import OPERATIONS
from nodes.control.session import ClusterSession

from .common import COLORS, label, spawn

WINDOW_S = 60
MAX_POINTS = 400


def _plot(title: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.setTitle(f"<span style='color:#0f172a; font-size:12pt; font-weight:700'>{title}</span>")
    plot.setLabel("left", y_label, color="#334155")
    plot.setLabel("bottom", "seconds ago", color="#334155")
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setXRange(-WINDOW_S, 0, padding=0.01)
    plot.setMouseEnabled(x=False, y=True)
    for axis in ("left", "bottom"):
        plot.getAxis(axis).setTextPen("#334155")
        plot.getAxis(axis).setPen("#94a3b8")
    return plot


class ChartsView(QWidget):
    def __init__(self, session: ClusterSession, report) -> None:
        super().__init__()
        self.session = session
        self.report = report
        self.paused = False

        self.load_button = QPushButton("Start load")
        self.load_button.setObjectName("Primary")
        self.rate = QSpinBox()
        self.rate.setRange(1, 1000)
        self.rate.setValue(50)
        self.rate.setSuffix(" req/s")
        self.rate.setAccessibleName("Load rate")
        self.writes = QSpinBox()
        self.writes.setRange(0, 100)
        self.writes.setValue(10)
        self.writes.setSuffix(" % buys")
        self.writes.setAccessibleName("Share of buys")
        self.pause = QCheckBox("Pause charts")
        self.clear_button = QPushButton("Clear")
        self.lag = label("", name="Muted")
        self.figures = label("", name="Muted")

        load_box = QGroupBox("Load generator")
        load_row = QHBoxLayout(load_box)
        load_row.addWidget(self.load_button)
        load_row.addWidget(label("rate"))
        load_row.addWidget(self.rate)
        load_row.addWidget(label("mix"))
        load_row.addWidget(self.writes)
        load_row.addStretch(1)
        load_row.addWidget(self.pause)
        load_row.addWidget(self.clear_button)

        self.latency_plot = _plot("Latency per operation (points; rolling p50 solid, p95 dashed)", "ms")
        self.latency_plot.addLegend(offset=(10, 10), labelTextColor="#0f172a")
        self.points = {}
        self.p50 = {}
        self.p95 = {}
        for op in OPERATIONS.values():
            color = COLORS[op]
            self.points[op] = pg.ScatterPlotItem(size=5, pen=None, brush=pg.mkBrush(color + "66"), name=op)
            self.latency_plot.addItem(self.points[op])
            self.p50[op] = self.latency_plot.plot(pen=pg.mkPen(color, width=2.5), name=f"{op} p50")
            self.p95[op] = self.latency_plot.plot(pen=pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine))
        self.throughput_plot = _plot("Throughput at the front-end", "answers / s")
        self.throughput = self.throughput_plot.plot(pen=pg.mkPen(COLORS["accent"], width=2.5), fillLevel=0,
                                                    brush=pg.mkBrush("#2563eb33"), stepMode=None)
        self.hit_plot = _plot("Cache hit ratio (lookups and searches)", "%")
        self.hit_plot.setYRange(0, 100, padding=0)
        for plot in (self.latency_plot, self.throughput_plot, self.hit_plot):
            plot.enableAutoRange(axis="y", enable=False)
        self.hits = self.hit_plot.plot(pen=pg.mkPen(COLORS["buy"], width=2.5), symbol="o", symbolSize=4,
                                       symbolBrush=COLORS["buy"])

        grid = QGridLayout()
        grid.addWidget(self.latency_plot, 0, 0, 1, 2)
        grid.addWidget(self.throughput_plot, 1, 0)
        grid.addWidget(self.hit_plot, 1, 1)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(load_box)
        layout.addLayout(grid, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.figures, 1)
        bottom.addWidget(self.lag)
        layout.addLayout(bottom)

        self.load_button.clicked.connect(self.toggle_load)
        self.rate.valueChanged.connect(self._settings)
        self.writes.valueChanged.connect(self._settings)
        self.pause.toggled.connect(self._pause)
        self.clear_button.clicked.connect(self.clear)

    # ---- controls ---------------------------------------------------------------------------
    def _settings(self) -> None:
        self.session.load.settings.rate = float(self.rate.value())
        self.session.load.settings.write_fraction = self.writes.value() / 100

    def toggle_load(self) -> None:
        if self.session.load.running:
            spawn(self.session.load.stop(), self.report, lambda _r: self._load_label())
        else:
            self._settings()
            self.session.load.start()
            self._load_label()

    def _load_label(self) -> None:
        self.load_button.setText("Stop load" if self.session.load.running else "Start load")

    def _pause(self, paused: bool) -> None:
        self.paused = paused

    def clear(self) -> None:
        self.session.model.clear_measurements()
        self.session.lag.clear()
        self.refresh(force=True)

    # ---- drawing ----------------------------------------------------------------------------
    #: One plot redrawn per tick, so no tick blocks the loop for all three (latency at 2 Hz).
    ROTATION = ("latency", "throughput", "latency", "hits")

    def refresh(self, force: bool = False) -> None:
        """Redraw everything (after Clear, say)."""
        for part in set(self.ROTATION):
            self.refresh_part(part, force)

    def tick(self) -> None:
        """Called on every window tick: readouts, then one plot in turn."""
        self._tick = getattr(self, "_tick", -1) + 1
        self.refresh_part(self.ROTATION[self._tick % len(self.ROTATION)])

    def refresh_part(self, part: str, force: bool = False) -> None:
        self._load_label()
        lag = self.session.lag.summary()
        if lag["count"]:
            self.lag.setText(f"window's event-loop lag: p50 {lag['p50']:.1f} ms · p99 {lag['p99']:.1f} ms")
        if self.paused and not force:
            return
        model = self.session.model
        now = time.time()
        since = now - WINDOW_S
        if part == "latency":
            figures, highest = [], 1.0
            for op in OPERATIONS.values():
                times, ms = model.latency_since(op, since)
                shown = slice(None, None, max(1, len(ms) // MAX_POINTS))  # thin evenly: a chart shows a few hundred
                self.points[op].setData(times[shown] - now, ms[shown])
                t50, v50 = model.rolling(op, 50, since)
                t95, v95 = model.rolling(op, 95, since)
                self.p50[op].setData(t50 - now, v50)
                self.p95[op].setData(t95 - now, v95)
                if len(ms):
                    figures.append(f"{op}: {len(ms)} in {WINDOW_S} s, median {np.median(ms):.1f} ms")
                    highest = max(highest, float(np.percentile(ms, 99)))
            self._ceiling(self.latency_plot, highest * 1.15)
            self.figures.setText(" · ".join(figures) or "No requests yet: start the load or use the Shop tab.")
            return
        seconds = [s for s in model.seconds if since <= s.t < int(now)]
        if part == "throughput":
            answers = [s.answers for s in seconds]
            self.throughput.setData([s.t - now for s in seconds], answers)
            self._ceiling(self.throughput_plot, max(answers, default=1) * 1.15)
        else:
            ratio = [(s.t - now, 100 * s.hits / (s.hits + s.misses)) for s in seconds if s.hits + s.misses]
            self.hits.setData([x for x, _ in ratio], [y for _, y in ratio])

    @staticmethod
    def _ceiling(plot: pg.PlotWidget, top: float) -> None:
        """Set the y range to a round ceiling above ``top``, changing it (and so re-rendering the
        axis) only when that ceiling changes."""
        step = 10 ** math.floor(math.log10(max(top, 1e-3)))
        ceiling = math.ceil(top / step) * step
        if getattr(plot, "_ceiling", None) != ceiling:
            plot._ceiling = ceiling
            plot.setYRange(0, ceiling, padding=0)

"""The Charts tab (pyqtgraph): latency per series as points with rolling p50 and p95 (buys
that bought and "out of stock" answers apart, since they cost very differently), throughput,
cache hit ratio, and the built-in load generator that makes them move. Lines break across
idle gaps; the y-axis follows the last seconds, not the worst minute."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPen, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsItem,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.chart_marks import MarkStrip, Shown, columns_that_fit
from gui.common import COLORS, FitScroll, ModelEvents, label, load_controls, toggle_load
from nodes.observe.latency import SERIES, Second
from nodes.observe.model import ClusterModel
from nodes.observe.views import MarkKind

if TYPE_CHECKING:
    from nodes.session.session import ClusterSession

WINDOW_S = 60
MAX_POINTS = 250
#: A pause between two answers longer than this breaks a line instead of bridging it.
GAP_S = 3.0
#: The y-axis is scaled to what happened in the last this many seconds.
SCALE_S = 15.0
LATENCY_REDRAW_S = 0.5
#: The Charts tab's least heights, at 100 %: the latency chart, then each chart under it.
MIN_HEIGHTS = (220, 150)
#: Series with rolling percentiles drawn (failed buys are points only: too few to roll).
ROLLED = ("lookup", "search", "buy", "out of stock")
LEGEND = {"lookup": "lookup", "search": "search", "buy": "buy (bought)", "out of stock": "buy: out of stock",
          "failed buy": "buy: failed or unknown"}
#: The same in the legend, short: it sits under the plot and must stay one or two lines.
KEY = {"lookup": "lookup", "search": "search", "buy": "buy", "out of stock": "out of stock",
       "failed buy": "failed/unknown"}


def with_gaps(times: np.ndarray, values: np.ndarray, gap: float = GAP_S) -> tuple[np.ndarray, np.ndarray]:
    """The series with a NaN put wherever consecutive points are more than ``gap`` apart, so
    that a line drawn with ``connect="finite"`` breaks there instead of bridging the pause."""
    if len(times) < 2:
        return times, values
    breaks = np.nonzero(np.diff(times) > gap)[0] + 1
    if not len(breaks):
        return times, values
    return (np.insert(times.astype(float), breaks, np.nan), np.insert(values.astype(float), breaks, np.nan))


def _plot(title: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    _style(plot, title, y_label)
    plot.enableAutoRange(axis="y", enable=False)
    return plot


def _style(plot: pg.PlotWidget, title: str, y_label: str, scale: float = 1.0) -> None:
    """Title, axes and grid of every Bazar chart, at the window's presenter scale."""
    plot.setTitle(f"<span style='color:#0f172a; font-size:{12 * scale:.0f}pt; font-weight:700'>{title}</span>")
    size = f"{10 * scale:.0f}pt"
    plot.setLabel("left", y_label, color="#1e293b", **{"font-size": size})
    plot.setLabel("bottom", "seconds ago", color="#1e293b", **{"font-size": size})
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setXRange(-WINDOW_S, 0, padding=0.01)
    plot.setMouseEnabled(x=False, y=True)
    font = QFont()
    font.setPointSizeF(9 * scale)
    for axis in ("left", "bottom"):
        plot.getAxis(axis).setTextPen("#1e293b")
        plot.getAxis(axis).setPen("#94a3b8")
        plot.getAxis(axis).setStyle(tickFont=font)
        # Kept as a picture until the axis changes: replaying its text and grid took half of
        # each chart redraw, twice a second under load.
        plot.getAxis(axis).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


class ChartsView(QWidget):
    def __init__(self, model: ClusterModel, session: ClusterSession, events: ModelEvents,
                 report: Callable[[str], None]) -> None:
        super().__init__()
        self.model = model
        self.session = session  # for the load generator and the lag monitor, which are not the model's
        self.report = report
        self.paused = False
        self._latency_drawn = 0.0

        self.load_button, self.rate = load_controls(round(session.load.settings.rate))  # the session's one rate
        self.writes = QSpinBox()
        self.writes.setRange(0, 100)
        self.writes.setValue(10)
        self.writes.setSuffix(" % buys")
        self.writes.setAccessibleName("Share of buys")
        self.pause = QCheckBox("Pause charts")
        self.clear_button = QPushButton("Clear")
        self.lag = label("", name="Muted")
        self.figures = label("", name="Muted", wrap=True)
        # A long readout wraps; it never widens the window.
        self.figures.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

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

        self.latency_plot = LatencyChart(model, "Latency per request (points; rolling p50 solid, p95 dashed)")
        self.points, self.p50, self.p95 = self.latency_plot.points, self.latency_plot.p50, self.latency_plot.p95
        self.throughput_plot = _plot("Throughput at the front-end", "answers / s")
        self.throughput = self.throughput_plot.plot(pen=pg.mkPen(COLORS["accent"], width=2.5), fillLevel=0,
                                                    brush=pg.mkBrush("#2563eb33"), stepMode=None)
        self.hit_plot = _plot("Cache hit ratio (lookups and searches)", "%")
        self.hit_plot.setYRange(0, 100, padding=0)
        for plot in (self.throughput_plot, self.hit_plot):
            plot.enableAutoRange(axis="y", enable=False)
        self.hits = self.hit_plot.plot(pen=pg.mkPen(COLORS["buy"], width=2.5), symbol="o", symbolSize=4,
                                       symbolBrush=COLORS["buy"], connect="finite")

        grid = QGridLayout()
        grid.addWidget(self.latency_plot, 0, 0, 1, 2)
        grid.addWidget(self.throughput_plot, 1, 0)
        grid.addWidget(self.hit_plot, 1, 1)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(load_box)
        layout.addLayout(grid, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.figures, 1)
        bottom.addWidget(self.lag)
        layout.addLayout(bottom)
        # Each chart keeps the height its words need; on a small screen at a large scale the
        # tab scrolls rather than squeeze their ticks onto each other.
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(FitScroll(page))
        self._heights(1.0)

        self.load_button.clicked.connect(self.toggle_load)
        self.rate.valueChanged.connect(self._settings)
        self.writes.valueChanged.connect(self._settings)
        self.pause.toggled.connect(self._pause)
        self.clear_button.clicked.connect(self.clear)
        events.changed.connect(self._changed)

    # ---- controls ---------------------------------------------------------------------------
    def _settings(self) -> None:
        self.session.load.settings.rate = float(self.rate.value())
        self.session.load.settings.write_fraction = self.writes.value() / 100

    def toggle_load(self) -> None:
        toggle_load(self.session, self.report, self._settings, self._load_label)

    def _load_label(self) -> None:
        self.load_button.setText("Stop load" if self.session.load.running else "Start load")

    def _pause(self, paused: bool) -> None:
        self.paused = paused

    def clear(self) -> None:
        self.model.clear_measurements()
        self.session.lag.clear()
        self.redraw()

    # ---- drawing ----------------------------------------------------------------------------
    def _changed(self, topics: dict[str, set]) -> None:
        if "tick" in topics:
            self._readouts()
        if not self.isVisible() or self.paused:
            return
        now = time.monotonic()
        if ("latency" in topics or "tick" in topics) and now - self._latency_drawn >= LATENCY_REDRAW_S:
            self._latency_drawn = now
            self.latency_plot.draw_in_steps(self._figures)
        if "tick" in topics:
            self.draw_seconds()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.redraw()

    def redraw(self) -> None:
        """Everything at once (on showing the tab, after Clear, for a screenshot)."""
        self._readouts()
        self.draw_latency()
        self.draw_seconds()

    def refresh(self, force: bool = False) -> None:
        self.redraw()

    def set_scale(self, scale: float) -> None:
        self.latency_plot.set_scale(scale)
        _style(self.throughput_plot, "Throughput at the front-end", "answers / s", scale)
        _style(self.hit_plot, "Cache hit ratio (lookups and searches)", "%", scale)
        self._heights(scale)

    def _heights(self, scale: float) -> None:
        """The least height at which each chart's title, ticks and legend stay apart; and two
        lines for the figures under them, so that a readout that wraps onto a second line (it
        changes with every redraw: a replay's drag, say) does not resize the charts, whose
        repaint then took 50 ms."""
        self.latency_plot.setMinimumHeight(round(MIN_HEIGHTS[0] * scale))
        for plot in (self.throughput_plot, self.hit_plot):
            plot.setMinimumHeight(round(MIN_HEIGHTS[1] * scale))
        self.figures.setMinimumHeight(math.ceil(2 * self.figures.fontMetrics().lineSpacing()) + 2)

    def _readouts(self) -> None:
        self._load_label()
        self.rate.show_rate(self.session.load.settings.rate)
        lag = self.session.lag.summary()
        if lag["count"]:
            self.lag.setText(f"window's event-loop lag: p50 {lag['p50']:.1f} ms · p99 {lag['p99']:.1f} ms")

    def draw_latency(self) -> None:
        self._figures(self.latency_plot.draw())

    def _figures(self, text: str) -> None:
        self.figures.setText(f"Last {WINDOW_S} s — {text}")

    def draw_seconds(self) -> None:
        """Answers per second and the caches' hit ratio over the last WINDOW_S whole seconds.
        A second with no answer is a 0 (and no ratio), not a gap to look a bucket up in."""
        now = self.model.now()
        since = now - WINDOW_S
        counted = {s.t: s for s in self.model.seconds if since <= s.t < int(now)}
        if not counted:
            self.throughput.setData([], [])
            self.hits.setData([], [])
            return
        span = range(min(counted), int(now))
        empty = Second(0)
        seconds = [counted.get(t, empty) for t in span]
        ago = [t - now for t in span]
        self.throughput.setData(ago, [s.answers for s in seconds])
        recent = [s.answers for t, s in zip(span, seconds, strict=True) if t >= now - SCALE_S]
        _ceiling(self.throughput_plot, max([1, *recent]) * 1.15)  # an idle minute is not a 0-to-0 axis
        ratio = [100 * s.hits / (s.hits + s.misses) if s.hits + s.misses else np.nan for s in seconds]
        self.hits.setData(ago, ratio, connect="finite")


def _ceiling(plot: pg.PlotWidget, top: float) -> float:
    """Set the y range to a round ceiling above ``top``, changing it (and so re-rendering the
    axis, and the grid with it: a tenth of a replay's drag step) only when that ceiling changes:
    up as soon as ``top`` passes it, down only once ``top`` is under half of it."""
    step = 10 ** math.floor(math.log10(max(top, 1e-3)))
    ceiling = math.ceil(top / step) * step
    held = getattr(plot, "_ceiling", None)
    if held is not None and ceiling < held and top > held / 2:
        return float(held)
    if held != ceiling:
        plot._ceiling = ceiling
        plot.setYRange(0, ceiling, padding=0)
    return ceiling


class LatencyChart(pg.PlotWidget):
    """Latency per series as points with rolling p50 (solid) and p95 (dashed), buys that bought
    and "out of stock" answers apart, and a vertical line at every fault and heal the model
    marked, named in a strip above the plot. The legend sits below the plot, never on the
    data; both grow with the presenter scale. The Charts tab and the Live screen both draw it."""

    def __init__(self, model: ClusterModel, title: str, *, legend_columns: int = 4) -> None:
        super().__init__(background="w")
        self.model = model
        self.title = title
        self.scale = 1.0
        _style(self, title, "ms")
        self.enableAutoRange(axis="y", enable=False)
        layout = self.plotItem.layout
        # The strip takes the (hidden) top axis' cell, between the title and the plot.
        layout.removeItem(self.plotItem.getAxis("top"))
        self.strip = MarkStrip(self.plotItem.vb, self.plotItem, WINDOW_S)
        layout.addItem(self.strip, 1, 1)
        self.legend = pg.LegendItem(labelTextColor="#0f172a", colCount=legend_columns, labelTextSize="9pt",
                                    verSpacing=-4, horSpacing=6)
        self.legend.setParentItem(self.plotItem)
        self.legend.layout.setContentsMargins(2, 0, 2, 0)
        self.legend.setMinimumWidth(1)  # its columns are chosen to fit: it never widens the chart
        self.plotItem.legend = self.legend  # items named below join it
        layout.addItem(self.legend, 4, 1)
        self._short: bool | None = None  # whether the chart gave up its title for its data
        self.points: dict[str, pg.ScatterPlotItem] = {}
        self.p50: dict[str, pg.PlotCurveItem] = {}
        self.p95: dict[str, pg.PlotCurveItem] = {}
        self.marks: list[pg.InfiniteLine] = []
        self.text = ""  # the last redraw's figures in words
        self._stepping: Iterator[None] | None = None  # the redraw under way, if any
        for series in SERIES:
            color = COLORS[series]
            symbol = "x" if series == "failed buy" else "o"
            self.points[series] = pg.ScatterPlotItem(size=6 if symbol == "x" else 5, pen=None, symbol=symbol,
                                                     brush=pg.mkBrush(color + "88"), name=KEY[series])
            self.addItem(self.points[series])
            if series in ROLLED:
                # A thin dash for p95: a dashed line twice as wide took a third of a redraw.
                self.p50[series] = pg.PlotCurveItem(pen=pg.mkPen(color, width=2), connect="finite")
                self.p95[series] = pg.PlotCurveItem(pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine),
                                                    connect="finite")
                self.addItem(self.p50[series])  # bare curves: a PlotDataItem's setData cost 0.5 ms each
                self.addItem(self.p95[series])
        self.legend.addItem(pg.PlotDataItem(pen=pg.mkPen("#334155", width=2)), "p50")
        self.legend.addItem(pg.PlotDataItem(pen=pg.mkPen("#334155", width=1, style=Qt.PenStyle.DashLine)), "p95")

    def set_scale(self, scale: float) -> None:
        self.scale = scale
        _style(self, self.title, "ms", scale)
        self.legend.setLabelTextSize(f"{9 * scale:.1f}pt")
        for _sample, key in self.legend.items:
            key.setText(key.text)  # pyqtgraph applies a new size only to text set after it
        self.legend.layout.invalidate()  # and the legend's rows take the new height
        self.legend.updateGeometry()
        self.strip.set_scale(scale)
        self._short = None  # the title is back: whether it fits is decided again
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if "strip" not in self.__dict__ or self.closed:
            return  # pyqtgraph resizes once before this chart is built, and once after its scene is gone
        self._fit()

    #: Below this height (at 100 %) the chart gives its title and axis label's lines to the data.
    SHORT_PX = 200
    #: The data keeps at least this share of the chart's height (and 50 px at 100 %).
    DATA_SHARE = 0.35

    def _fit(self) -> None:
        """Share the chart's height out: the plot keeps at least DATA_SHARE of it; a short
        chart gives up its title (said in its tooltip instead) and axis label; the legend takes
        as many columns as fit; the mark strip gets the rows left over (with none, each mark is
        named in its line's tooltip, and the figures say how many)."""
        self._legend_columns()
        height = self.height()
        short = height < self.SHORT_PX * self.scale
        if short != self._short:
            self._short = short
            self.plotItem.setTitle(None if short else self.plotItem.titleLabel.text)
            self.getAxis("bottom").showLabel(not short)
            self.setToolTip(self.title if short else "")
        minimum = Qt.SizeHint.MinimumSize
        taken = (0 if short else 30) + self.getAxis("bottom").effectiveSizeHint(minimum).height() + \
            self.legend.effectiveSizeHint(minimum).height() + 4
        left = height - taken - max(50 * self.scale, self.DATA_SHARE * height)
        rows = int(max(0, min(MarkStrip.ROWS, left // (self.strip.line_height + MarkStrip.GAP))))
        if rows != self.strip.rows:
            self.strip.rows = rows
        self.strip.relayout()

    def _legend_columns(self) -> None:
        """As many legend columns as fit the chart's width (``legend_columns`` only until the
        chart has one), so that the legend takes as few lines under the plot as it can."""
        font = QFont()
        font.setPointSizeF(9 * self.scale)
        metrics = QFontMetricsF(font)
        widths = [metrics.horizontalAdvance(label.text) for _sample, label in self.legend.items]
        columns = columns_that_fit(widths, self.width() - 40)
        if columns != self.legend.columnCount:
            self.legend.setColumnCount(columns)

    def draw(self, now: float | None = None) -> str:
        """Draw the last WINDOW_S seconds up to ``now``; the figures in words."""
        self._stop_stepping()  # this drawing is newer than the one under way
        for _ in self._steps(self.model.now() if now is None else now):
            pass
        return self.text

    def draw_in_steps(self, done: Callable[[str], None] = lambda text: None) -> None:
        """The same as ``draw``, one series per turn of the event loop, beginning in the next
        turn, and painted once at the end, so that the window's loop never waits on the whole
        chart at once, nor on it and whatever else was drawn in this turn (under load a
        redraw took 10 ms and its paint as long again). A redraw asked for while one is under
        way is the one under way."""
        if self._stepping is not None:
            return
        steps = self._stepping = self._steps(self.model.now())
        self.setUpdatesEnabled(False)

        def step() -> None:
            if self._stepping is not steps:
                return  # a full draw came in between
            try:
                next(steps)
            except StopIteration:
                self._stop_stepping()
                done(self.text)
                return
            except Exception:
                self._stop_stepping()  # never left holding the chart's painting
                raise
            QTimer.singleShot(0, self, step)

        QTimer.singleShot(0, self, step)

    def _stop_stepping(self) -> None:
        if self._stepping is not None:
            self._stepping = None
            self.setUpdatesEnabled(True)
            self.viewport().update()

    def _steps(self, now: float) -> Iterator[None]:
        model = self.model
        since = now - WINDOW_S
        figures: list[str] = []
        recent: list[np.ndarray] = []  # joined once at the end: a list of numbers was a third of a redraw
        everything: list[np.ndarray] = []
        for series in SERIES:
            times, ms = model.latency.since(series, since)
            keep = times <= now
            times, ms = times[keep], ms[keep]
            shown = slice(None, None, max(1, len(ms) // MAX_POINTS))  # thin evenly: a chart shows a few hundred
            self.points[series].setData(times[shown] - now, ms[shown])
            if series in ROLLED:
                t, (v50, v95) = model.latency.rolling(series, (50, 95), since)
                t50, v50 = with_gaps(t, v50)
                t95, v95 = with_gaps(t, v95)
                self.p50[series].setData(t50 - now, v50, connect="finite")
                self.p95[series].setData(t95 - now, v95, connect="finite")
            if len(ms):
                figures.append(f"{LEGEND[series]}: {len(ms)}, median {np.median(ms):.1f} ms")
                recent.append(ms[times >= now - SCALE_S])
                everything.append(ms)
            yield
        # Scaled to the recent answers; with none recent, to those shown, so that a few slow
        # answers a while ago (at teaching speed, say) are drawn rather than left above an empty chart.
        scale_to = np.concatenate(recent) if recent else np.empty(0)
        if not len(scale_to) and everything:
            scale_to = np.concatenate(everything)
        top = float(np.percentile(scale_to, 99)) if len(scale_to) else 1.0
        ceiling = _ceiling(self, max(top, 1.0) * 1.15)
        above = sum(int(np.sum(model.latency.since(s, now - SCALE_S)[1] > ceiling)) for s in SERIES)
        self.draw_marks(now)
        text = " · ".join(figures) or "No requests yet: start the load or use the Shop tab."
        if above:
            text += f" · {above} slower answers above the chart"
        if self.strip.hidden:
            text += f" · {self.strip.hidden} fault and heal marks named only when you hover their lines"
        self.text = text

    def draw_marks(self, now: float) -> None:
        """A vertical line at each fault (red) and heal (green) of the last WINDOW_S seconds,
        named in the strip above the plot. Solid and wide, unlike the percentile lines, whose
        jumps are thin and in their series' colour."""
        marks = [m for m in self.model.marks_since(now - WINDOW_S) if m.t <= now]
        while len(self.marks) > len(marks):
            self.removeItem(self.marks.pop())
        while len(self.marks) < len(marks):
            line = pg.InfiniteLine(angle=90, movable=False)
            line.setZValue(-5)  # behind the points it marks the time of
            self.addItem(line)
            self.marks.append(line)
        shown = []
        for line, mark in zip(self.marks, marks, strict=True):
            color = {MarkKind.FAULT: COLORS["down"], MarkKind.ANOMALY: COLORS["anomaly"]}.get(mark.kind, COLORS["up"])
            line.setPen(_mark_pen(color))
            line.setPos(mark.t - now)
            line.setToolTip(f"{time.strftime('%H:%M:%S', time.localtime(mark.t))}  {mark.text}")
            line.mark = mark
            shown.append(Shown(mark, mark.t - now, color))
        self.strip.show_marks(shown)


def _mark_pen(color: str) -> QPen:
    """A fault's or heal's line: solid, wide and a little transparent, so that it reads as a
    moment marked, not as a percentile jumping."""
    faded = QColor(color)
    faded.setAlpha(150)
    return pg.mkPen(faded, width=3)

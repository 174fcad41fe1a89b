"""The Cache tab: the front-end's lookup and search caches from most to least recently used,
with their counters; an entry that leaves stays visible, struck out, for a moment."""
from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from gui.common import ModelEvents, label
from nodes.core.events import CacheOp
from nodes.observe.model import ClusterModel
from nodes.observe.views import CacheView as CacheState

GHOST_S = 2.5
MAX_GHOSTS = 6
TITLES = {"lookup": "Lookup cache (by book id)", "search": "Search cache (by topic)"}


class CachePanel(QGroupBox):
    """One cache, most recently used first; an entry that leaves stays a moment, struck out
    (an invalidated one flashing red). ``compact``: one line of counters instead of big numbers."""

    def __init__(self, name: str, compact: bool = False) -> None:
        super().__init__(TITLES[name])
        self.name = name
        self.compact = compact
        self.counters = label("", name="Muted", wrap=True)
        self.counters.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens
        self.numbers = {key: label("0", name="BigNumber") for key in
                        ("capacity", "hits", "misses", "evictions", "invalidations", "ratio")}
        grid = QGridLayout()
        for column, key in enumerate(self.numbers):
            grid.addWidget(self.numbers[key], 0, column)
            grid.addWidget(label("hit ratio" if key == "ratio" else key, name="Muted"), 1, column)
        self.entries = QListWidget()
        self.entries.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.entries.setAccessibleName(TITLES[name])
        layout = QVBoxLayout(self)
        if compact:
            self.entries.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.entries.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # newest on top
            for number in self.numbers.values():
                number.setParent(None)
            layout.setContentsMargins(6, 4, 6, 4)
            layout.addWidget(self.counters)
        else:
            layout.addLayout(grid)
            layout.addWidget(label("Most recently used first:", name="Muted"))
        layout.addWidget(self.entries, 1)

    def show(self, cache: CacheState, now: float | None = None) -> None:  # type: ignore[override]
        size = "–" if cache.capacity is None else str(cache.capacity)
        self.numbers["capacity"].setText(size)
        for key in ("hits", "misses", "evictions", "invalidations"):
            self.numbers[key].setText(str(getattr(cache, key)))
        ratio = cache.hit_ratio
        self.numbers["ratio"].setText("–" if ratio is None else f"{100 * ratio:.0f}%")
        hits = "–" if ratio is None else f"{100 * ratio:.0f}%"
        self.counters.setText(f"{len(cache.keys)} of {size} · hits {hits} · {cache.invalidations} "
                              "invalidated · newest first")
        self.entries.clear()
        for rank, key in enumerate(cache.keys, start=1):
            text = f"{rank}.  book {key}" if self.name == "lookup" else f"{rank}.  “{key}”"
            self.entries.addItem(QListWidgetItem(text))
        if cache.capacity == 0:
            self.entries.addItem(QListWidgetItem("(this cache is turned off)"))
        elif cache.capacity is None:  # starting, or a replay before the front-end's first snapshot
            self.entries.addItem(QListWidgetItem("(not reported yet)"))
        now = time.time() if now is None else now  # the model's time: a replay's, when replayed
        shown: set = set()
        for key, op, when in reversed(cache.removed):
            if now - when > GHOST_S or key in cache.keys or key in shown or len(shown) >= MAX_GHOSTS:
                continue
            shown.add(key)
            what = ("invalidated" if op == CacheOp.INVALIDATE else "evicted" if self.compact
                    else "evicted (least recently used)")
            item = QListWidgetItem(f"✕  {'book ' if self.name == 'lookup' else ''}{key} — {what}")
            font = QFont(self.entries.font())
            font.setStrikeOut(True)
            item.setFont(font)
            item.setForeground(QBrush(QColor("#b91c1c" if op == CacheOp.INVALIDATE else "#475569")))
            if op == CacheOp.INVALIDATE:  # flashes: on and off every half second while it stays
                item.setBackground(QBrush(QColor("#fecaca" if int((now - when) * 2) % 2 == 0 else "#ffffff")))
            self.entries.addItem(item)


class CacheTab(QWidget):
    def __init__(self, model: ClusterModel, events: ModelEvents) -> None:
        super().__init__()
        self.model = model
        self.panels = {name: CachePanel(name) for name in ("lookup", "search")}
        row = QHBoxLayout()
        for panel in self.panels.values():
            row.addWidget(panel)
        layout = QVBoxLayout(self)
        layout.addWidget(label("The front-end answers lookups and searches from these LRU caches. A catalog "
                               "replica that writes a book tells the front-end to drop that book from the lookup "
                               "cache: watch the entry leave, struck out in red. Searches show neither price nor "
                               "stock, so a write leaves them cached.", name="Muted", wrap=True))
        layout.addLayout(row, 1)
        events.changed.connect(self._changed)

    def _changed(self, topics: dict[str, set]) -> None:
        # Struck-out entries fade with time, so a tick redraws too.
        if self.isVisible() and ("cache" in topics or "tick" in topics):
            self.refresh()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        for name, panel in self.panels.items():
            panel.show(self.model.caches[name], self.model.now())

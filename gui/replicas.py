"""The Replicas tab: books × catalog replicas (seq and stock, bold when valid, marked when
stale, and each replica's state its own: down, hung, cut off, lease lapsed), and for one
chosen book the figures' row of servers labelled ``N (seq)``. Every cell comes from the
model (``ClusterModel.cells``); this view only draws."""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPaintEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.common import COLORS, ModelEvents, label, node_icon
from nodes.core.books import Book, seed_books
from nodes.core.vocabulary import HealthState
from nodes.observe.model import ClusterModel
from nodes.observe.views import ReplicaCell

#: Cell background per replica state (the book's own marks go on top).
STATE_BACKGROUND = {HealthState.DOWN: "#e5e7eb", HealthState.EXITED: "#e5e7eb", HealthState.HUNG: "#ffedd5",
                    HealthState.CUT_OFF: "#ede9fe", HealthState.STARTING: "#e0e7ff"}
#: What a cell says of its replica's state (an exited replica is simply down to a reader).
STATE_NOTE = {state: str(state) for state in STATE_BACKGROUND} | {HealthState.EXITED: str(HealthState.DOWN)}
#: States drawn with a faded icon: running, but answering nobody.
FADED = (HealthState.HUNG, HealthState.CUT_OFF)


def cell_note(cell: ReplicaCell) -> str:
    """What a cell says besides seq and stock: the replica's state, a lapsed lease, stale."""
    notes = []
    if cell.health in STATE_NOTE:
        notes.append(STATE_NOTE[cell.health])
    if cell.lease_lapsed and not cell.health.gone:
        notes.append("lease lapsed")
    if cell.stale:
        notes.append("stale")
    elif cell.valid:
        notes.append("valid")
    return ", ".join(notes)


class ServerRow(QWidget):
    """The figures' drawing: a row of servers, each labelled ``N (seq)``, bold when the book
    is valid there, crossed out when the server is down (faded when hung or cut off)."""

    def __init__(self) -> None:
        super().__init__()
        self.servers: list[ReplicaCell] = []
        self.setMinimumHeight(112)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(600, 170)

    def show_cells(self, cells: list[ReplicaCell]) -> None:
        self.servers = list(cells)
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        if not self.servers:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        slot = self.width() / len(self.servers)
        icon_height = max(24, min(96, self.height() - 64))
        for position, cell in enumerate(self.servers):
            x = slot * position + slot / 2
            gone = cell.health.gone
            pixmap = node_icon("catalog", icon_height, crossed=gone, faded=cell.health in FADED)
            painter.drawPixmap(int(x - pixmap.width() / 2), 8, pixmap)
            seq = "?" if cell.seq is None else str(cell.seq)
            font = QFont(self.font())
            font.setPointSize(15)
            font.setBold(cell.valid)
            painter.setFont(font)
            painter.setPen(QColor("#b45309" if cell.stale else "#9ca3af" if gone else COLORS["text"]))
            painter.drawText(QRectF(x - slot / 2, icon_height + 14, slot, 28), Qt.AlignmentFlag.AlignCenter,
                             f"{cell.replica} ({seq})")
            small = QFont(self.font())
            small.setPointSize(9)
            painter.setFont(small)
            painter.setPen(QColor(COLORS["muted"]))
            painter.drawText(QRectF(x - slot / 2, icon_height + 40, slot, 20), Qt.AlignmentFlag.AlignCenter,
                             cell_note(cell))
        painter.end()


class ReplicasView(QWidget):
    def __init__(self, model: ClusterModel, events: ModelEvents, books: list[Book] | None = None) -> None:
        super().__init__()
        self.model = model
        self.books = books if books is not None else seed_books()
        self.catalogs = model.catalog_names()
        self.table = QTableWidget(len(self.books), len(self.catalogs))
        self.table.setVerticalHeaderLabels([f"{b.id}  {b.title[:34]}" for b in self.books])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.choice = QComboBox()
        for book in self.books:
            self.choice.addItem(f"Book {book.id}: {book.title}", book.id)
        self.choice.setCurrentIndex(1)  # book 2, the figures' sample book
        self.row = ServerRow()

        legend = label("Each cell: <b>seq</b> · stock. <b>Bold</b> = in that replica's valid set. "
                       "<span style='background:#fef3c7'>&nbsp;amber&nbsp;</span> = stale (a lower seq than the "
                       "highest). Background by replica: <span style='background:#e5e7eb'>&nbsp;down&nbsp;</span> "
                       "<span style='background:#ffedd5'>&nbsp;hung&nbsp;</span> "
                       "<span style='background:#ede9fe'>&nbsp;cut off&nbsp;</span> (a cut-off replica keeps its "
                       "marks until its lease lapses, W2).", name="Muted", wrap=True)
        figure = QGroupBox("As the figures draw it")
        figure_layout = QVBoxLayout(figure)
        chooser = QHBoxLayout()
        chooser.addWidget(label("Book:"))
        chooser.addWidget(self.choice, 1)
        figure_layout.addLayout(chooser)
        figure_layout.addWidget(self.row)
        layout = QVBoxLayout(self)
        layout.addWidget(legend)
        layout.addWidget(self.table, 3)
        layout.addWidget(figure, 2)
        self.choice.currentIndexChanged.connect(lambda _i: self.refresh())
        events.changed.connect(self._changed)
        self.refresh()

    def _changed(self, topics: dict[str, set]) -> None:
        # A node's state is rare news and heads its column even unseen; the marks change with
        # every write under load and are drawn when they can be seen.
        if "node" in topics or ("replicas" in topics and self.isVisible()):
            self.refresh()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        headers = []
        for name in self.catalogs:
            health = self.model.health(name)
            headers.append(f"catalog {name.removeprefix('catalog')}" +
                           ("" if health.state == HealthState.UP else f"\n{health.label}"))
        self.table.setHorizontalHeaderLabels(headers)
        for row, book in enumerate(self.books):
            for column, cell in enumerate(self.model.cells(book.id)):
                item = self.table.item(row, column)
                if item is None:
                    item = QTableWidgetItem()
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    self.table.setItem(row, column, item)
                note = cell_note(cell)
                item.setText("–" if not cell.known else f"{cell.seq} · {cell.stock}" + (f"   ({note})" if note else ""))
                font = QFont(self.table.font())
                font.setBold(cell.valid)
                item.setFont(font)
                background = COLORS["stale"] if cell.stale and cell.health not in STATE_BACKGROUND else \
                    STATE_BACKGROUND.get(cell.health) or (COLORS["valid"] if cell.valid else "#ffffff")
                item.setBackground(QBrush(QColor(background)))
                item.setForeground(QBrush(QColor("#6b7280" if cell.health.gone else COLORS["text"])))
        self.row.show_cells(self.model.cells(self.choice.currentData()))

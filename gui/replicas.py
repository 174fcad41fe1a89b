"""The Replicas tab: books × catalog replicas (seq and stock, bold when valid, marked when
stale, and each replica's state its own: down, hung, cut off, lease lapsed), and for one
chosen book the figures' row of servers labelled ``N (seq)``. Every cell comes from the
model (``ClusterModel.cells``); this view only draws."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPaintEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from gui.books import FEW_BOOKS, BookChooser
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
#: Up to this many books the rows share the pane's height; more scroll, with a filter above.
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


class ReplicaTable(QAbstractTableModel):
    """Books × catalog replicas as a Qt item model: the view asks only for the cells it shows,
    so a catalog of many thousand books costs what one screenful does. ``show`` filters the
    rows (text in the id or title; only books some replica holds stale or not valid)."""

    def __init__(self, model: ClusterModel, books: list[Book]) -> None:
        super().__init__()
        self.model = model
        self.books = books
        self.catalogs = model.catalog_names()
        self.rows = list(range(len(books)))  # indexes into ``books`` of the rows shown
        self._font, self._bold = QFont(), QFont()
        self._bold.setBold(True)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.catalogs)

    def book_at(self, row: int) -> Book:
        return self.books[self.rows[row]]

    def cell(self, row: int, column: int) -> ReplicaCell:
        return self.model.cells(self.book_at(row).id)[column]

    def text(self, row: int, column: int) -> str:
        cell = self.cell(row, column)
        note = cell_note(cell)
        return "–" if not cell.known else f"{cell.seq} · {cell.stock}" + (f"   ({note})" if note else "")

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(index.row(), index.column())
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        cell = self.cell(index.row(), index.column())
        if role == Qt.ItemDataRole.FontRole:
            return self._bold if cell.valid else self._font
        if role == Qt.ItemDataRole.BackgroundRole:
            return QBrush(QColor(COLORS["stale"] if cell.stale and cell.health not in STATE_BACKGROUND else
                                 STATE_BACKGROUND.get(cell.health) or (COLORS["valid"] if cell.valid else "#ffffff")))
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(QColor("#6b7280" if cell.health.gone else COLORS["text"]))
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt's name
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Vertical:
            book = self.book_at(section)
            return f"{book.id}  {book.title[:34]}"
        name = self.catalogs[section]
        health = self.model.health(name)
        state = "" if health.state == HealthState.UP else f"\n{health.label}"
        return f"catalog {name.removeprefix('catalog')}{state}"

    def show(self, text: str, trouble_only: bool) -> None:
        """Only the books whose id or title holds ``text``; with ``trouble_only``, only those
        some replica holds stale or not valid."""
        needle = text.strip().casefold()
        troubled = self.model.troubled() if trouble_only else None
        self.beginResetModel()
        self.rows = [i for i, book in enumerate(self.books)
                     if (not needle or needle in f"{book.id} {book.title}".casefold())
                     and (troubled is None or book.id in troubled)]
        self.endResetModel()

    def refresh(self) -> None:
        """Every cell and header may have changed: the view redraws what it shows."""
        if self.rows and self.catalogs:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(self.catalogs) - 1))
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, max(0, len(self.catalogs) - 1))


class RowsThatFit(QTableView):
    """A table whose rows are never lower than its text: stretched to fill the pane, the
    seven books' rows cut their words in half at 150 % on 1280×720; now they keep a line's
    height, and the table scrolls instead."""

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self.fit_rows()

    def fit_rows(self) -> None:
        header = self.verticalHeader()
        line = max(QFontMetrics(self.font()).height(), QFontMetrics(header.font()).height())
        header.setMinimumSectionSize(round(line * 1.25) + 10)  # the header style pads its sections


class ReplicasView(QWidget):
    def __init__(self, model: ClusterModel, events: ModelEvents, books: list[Book] | None = None) -> None:
        super().__init__()
        self.model = model
        self.books = books if books is not None else seed_books()
        self.catalogs = model.catalog_names()
        self.grid = ReplicaTable(model, self.books)
        self.table = RowsThatFit()
        self.table.setModel(self.grid)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        many = len(self.books) > FEW_BOOKS
        if not many:  # the documents' seven fill the pane; many books scroll, with a filter above
            self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.fit_rows()
        self.finder = QLineEdit()
        self.finder.setPlaceholderText(f"Find among {len(self.books):,} books: id or title")
        self.finder.setClearButtonEnabled(True)
        self.finder.setAccessibleName("Find a book")
        self.trouble = QCheckBox("only stale or not valid")
        self.trouble.setToolTip("Only the books some replica holds at a lower seq than another, or not as valid")
        self.choice = BookChooser(self.books, lambda book: f"Book {book.id}: {book.title}", width=40)
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
        filters = QHBoxLayout()
        filters.addWidget(self.finder, 1)
        filters.addWidget(self.trouble)
        layout = QVBoxLayout(self)
        layout.addWidget(legend)
        if many:
            layout.addLayout(filters)
        layout.addWidget(self.table, 3)
        layout.addWidget(figure, 2)
        self.choice.currentIndexChanged.connect(lambda _i: self.refresh())
        self.finder.textChanged.connect(lambda _t: self.filter())
        self.trouble.toggled.connect(lambda _on: self.filter())
        events.changed.connect(self._changed)
        self.refresh()

    def filter(self) -> None:
        self.grid.show(self.finder.text(), self.trouble.isChecked())

    def _changed(self, topics: dict[str, set]) -> None:
        # A node's state is rare news and heads its column even unseen; the marks change with
        # every write under load and are drawn when they can be seen.
        if "node" in topics or ("replicas" in topics and self.isVisible()):
            self.refresh()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        if self.trouble.isChecked():
            self.filter()  # which books are in trouble changes with the marks
        self.grid.refresh()
        chosen = self.choice.book_id()
        if chosen is not None:
            self.row.show_cells(self.model.cells(chosen))

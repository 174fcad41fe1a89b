"""The Replicas tab: books × catalog replicas (seq and stock, bold when valid, marked when
stale or down), and for one chosen book the figures' row of servers labelled ``N (seq)``."""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter
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

from nodes.books import seed_books
from nodes.control.model import ReplicaBook
from nodes.control.session import ClusterSession

from .common import COLORS, label, node_icon

DOWN_BACKGROUND = "#e5e7eb"


def replica_row(session: ClusterSession, book: int) -> list[tuple[int, ReplicaBook | None, bool]]:
    """(replica number, what it holds for ``book`` or None, whether it is down) per catalog."""
    row = []
    for node in session.supervisor.of_role("catalog"):
        view = session.model.nodes[node.name]
        down = node.state != "up" or not view.connected or node.cut_off
        row.append((node.index, session.model.replicas.get(node.name, {}).get(book), down))
    return row


class ServerRow(QWidget):
    """The figures' drawing: a row of servers, each labelled ``N (seq)``, bold when the book
    is valid there, crossed out when the server is down."""

    def __init__(self) -> None:
        super().__init__()
        self.servers: list[tuple[int, ReplicaBook | None, bool]] = []
        self.highest: int | None = None
        self.setMinimumHeight(170)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(800, 180)

    def show_row(self, servers: list[tuple[int, ReplicaBook | None, bool]], highest: int | None) -> None:
        self.servers = servers
        self.highest = highest
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt's name
        if not self.servers:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        slot = self.width() / len(self.servers)
        icon_height = max(24, min(96, self.height() - 66))
        for position, (index, book, down) in enumerate(self.servers):
            x = slot * position + slot / 2
            pixmap = node_icon("catalog", icon_height, crossed=down)
            painter.drawPixmap(int(x - pixmap.width() / 2), 8, pixmap)
            seq = "?" if book is None else str(book.seq)
            font = QFont(self.font())
            font.setPointSize(15)
            font.setBold(book is not None and book.valid and not down)
            painter.setFont(font)
            stale = book is not None and self.highest is not None and book.seq < self.highest and not down
            painter.setPen(QColor("#b45309" if stale else "#9ca3af" if down else COLORS["text"]))
            painter.drawText(QRectF(x - slot / 2, icon_height + 14, slot, 28), Qt.AlignmentFlag.AlignCenter,
                             f"{index} ({seq})")
            small = QFont(self.font())
            small.setPointSize(9)
            painter.setFont(small)
            painter.setPen(QColor(COLORS["muted"]))
            note = "down" if down else "valid" if book is not None and book.valid else "stale" if stale else ""
            painter.drawText(QRectF(x - slot / 2, icon_height + 40, slot, 20), Qt.AlignmentFlag.AlignCenter, note)
        painter.end()


class ReplicasView(QWidget):
    def __init__(self, session: ClusterSession) -> None:
        super().__init__()
        self.session = session
        self.books = seed_books()
        catalogs = session.supervisor.of_role("catalog")
        self.table = QTableWidget(len(self.books), len(catalogs))
        self.table.setHorizontalHeaderLabels([f"catalog {n.index}" for n in catalogs])
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
                       "highest). <span style='background:#e5e7eb'>&nbsp;grey&nbsp;</span> = replica down.",
                       name="Muted", wrap=True)
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

    def refresh(self) -> None:
        for row, book in enumerate(self.books):
            cells = replica_row(self.session, book.id)
            live = [b.seq for _, b, down in cells if b is not None and not down]
            highest = max(live) if live else None
            for column, (_index, held, down) in enumerate(cells):
                item = self.table.item(row, column)
                if item is None:
                    item = QTableWidgetItem()
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    self.table.setItem(row, column, item)
                if held is None:
                    item.setText("–")
                else:
                    item.setText(f"{held.seq} · {held.quantity}" + ("   (down)" if down else ""))
                font = QFont(self.table.font())
                font.setBold(held is not None and held.valid and not down)
                item.setFont(font)
                stale = held is not None and highest is not None and held.seq < highest and not down
                background = DOWN_BACKGROUND if down else COLORS["stale"] if stale else \
                    COLORS["valid"] if held is not None and held.valid else "#ffffff"
                item.setBackground(QBrush(QColor(background)))
                item.setForeground(QBrush(QColor("#6b7280" if down else COLORS["text"])))
        chosen = self.choice.currentData()
        cells = replica_row(self.session, chosen)
        live = [b.seq for _, b, down in cells if b is not None and not down]
        self.row.show_row(cells, max(live) if live else None)

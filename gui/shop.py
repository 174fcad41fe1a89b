"""The Shop tab: search, book details, Buy, the answer in plain words, and the order
history — everything through the front-end, like a shopper."""
from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nodes.control.session import ClusterSession

from .common import OUTCOME_STYLE, label, spawn


def _table(columns: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().setVisible(False)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setStretchLastSection(True)
    table.setAlternatingRowColors(False)
    return table


class ShopView(QWidget):
    def __init__(self, session: ClusterSession, report) -> None:
        super().__init__()
        self.session = session
        self.report = report
        self.book_id: int | None = None

        self.query = QLineEdit()
        self.query.setPlaceholderText("Search by topic — e.g. distributed, graduate, or t for everything")
        self.query.setAccessibleName("Search topic")
        self.search_button = QPushButton("Search")
        self.search_button.setObjectName("Primary")
        self.results = _table(["ID", "Title", "Topic"])
        self.results.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.results.setColumnWidth(0, 50)
        self.results.setColumnWidth(2, 170)

        self.title = label("Choose a book", name="CardTitle", wrap=True)
        self.topic = label("", name="Muted")
        self.price = label("—")
        self.stock = label("—")
        self.buy_button = QPushButton("Buy  (Ctrl+B)")
        self.buy_button.setObjectName("Primary")
        self.buy_button.setEnabled(False)
        self.answer = label("", name="Answer", wrap=True)
        self.answer.setVisible(False)

        self.history = _table(["Time", "Replica", "Order", "Book", "Title", "Price"])
        self.history.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.refresh_history_button = QPushButton("Refresh")

        search_row = QHBoxLayout()
        search_row.addWidget(self.query, 1)
        search_row.addWidget(self.search_button)

        details = QGroupBox("Book")
        form = QFormLayout()
        form.addRow("Price", self.price)
        form.addRow("In stock", self.stock)
        details_layout = QVBoxLayout(details)
        details_layout.addWidget(self.title)
        details_layout.addWidget(self.topic)
        details_layout.addLayout(form)
        details_layout.addWidget(self.buy_button)
        details_layout.addWidget(self.answer)
        details_layout.addStretch(1)
        details.setMinimumWidth(340)

        top = QHBoxLayout()
        found = QGroupBox("Results")
        QVBoxLayout(found).addWidget(self.results)
        top.addWidget(found, 3)
        top.addWidget(details, 2)

        orders = QGroupBox("Order history (all order replicas, newest first)")
        orders_layout = QVBoxLayout(orders)
        orders_layout.addWidget(self.history)
        orders_layout.addWidget(self.refresh_history_button, 0, Qt.AlignmentFlag.AlignRight)

        layout = QVBoxLayout(self)
        layout.addLayout(search_row)
        layout.addLayout(top, 3)
        layout.addWidget(orders, 2)

        self.query.returnPressed.connect(self.search)
        self.search_button.clicked.connect(lambda: self.search())
        self.results.itemSelectionChanged.connect(self._selected)
        self.results.activated.connect(lambda _index: self.buy())
        self.buy_button.clicked.connect(self.buy)
        self.refresh_history_button.clicked.connect(self.refresh_history)
        QShortcut(QKeySequence("Ctrl+B"), self, activated=self.buy)
        QShortcut(QKeySequence("Ctrl+F"), self, activated=self.query.setFocus)
        self.setTabOrder(self.query, self.search_button)
        self.setTabOrder(self.search_button, self.results)
        self.setTabOrder(self.results, self.buy_button)

    # ---- actions ------------------------------------------------------------------------
    def search(self, topic: str | None = None) -> None:
        text = self.query.text() if topic is None else topic
        spawn(self._search(text), self.report)

    async def _search(self, topic: str) -> None:
        ok, found = await self.session.shop.search(topic or "t")
        if not ok:
            self.show_answer("invalid", str(found))
            return
        self.results.setRowCount(len(found))
        for row, hit in enumerate(found):
            for column, value in enumerate((hit["id"], hit["title"], hit["topic"])):
                item = QTableWidgetItem(str(value))
                if column == 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.results.setItem(row, column, item)
        if found:
            self.results.selectRow(0)
        else:
            self.show_answer("invalid", f"No book's topic contains “{topic}”.")

    def _selected(self) -> None:
        rows = self.results.selectionModel().selectedRows()
        if not rows:
            return
        self.book_id = int(self.results.item(rows[0].row(), 0).text())
        self.topic.setText(self.results.item(rows[0].row(), 2).text())
        spawn(self._details(self.book_id), self.report)

    async def _details(self, book: int) -> None:
        ok, details = await self.session.shop.lookup(book)
        if book != self.book_id:
            return  # the shopper moved on while we asked
        if not ok:
            self.title.setText(str(details))
            self.buy_button.setEnabled(False)
            return
        self.title.setText(details["title"])
        self.price.setText(f"${details['price']}")
        self.stock.setText(str(details["quantity"]))
        self.buy_button.setEnabled(True)

    def buy(self) -> None:
        if self.book_id is None or not self.buy_button.isEnabled():
            return
        self.buy_button.setEnabled(False)
        self.buy_button.setText("Buying…")
        spawn(self._buy(self.book_id), self.report)

    async def _buy(self, book: int) -> None:
        try:
            outcome = await self.session.shop.buy(book)
            self.show_answer(outcome.kind, outcome.sentence)
            await self._details(book)
            await self._history()
        finally:
            self.buy_button.setText("Buy  (Ctrl+B)")
            self.buy_button.setEnabled(self.book_id is not None)

    def show_answer(self, kind: str, text: str) -> None:
        background, color = OUTCOME_STYLE.get(kind, ("#f1f5f9", "#0f172a"))
        self.answer.setStyleSheet(f"background:{background}; color:{color};")
        self.answer.setText(text)
        self.answer.setVisible(True)

    def refresh_history(self) -> None:
        spawn(self._history(), self.report)

    async def _history(self) -> None:
        records: list[dict[str, Any]] = await self.session.orders()
        self.history.setRowCount(len(records))
        for row, record in enumerate(records):
            values = (time.strftime("%H:%M:%S", time.localtime(record["time"])), record["replica"],
                      record["order_id"], record["book_id"], record["title"], f"${record['price']}")
            for column, value in enumerate(values):
                self.history.setItem(row, column, QTableWidgetItem(str(value)))

    def activate(self) -> None:
        """Called when the cluster is ready: list every book and the history."""
        self.search("t")
        self.refresh_history()

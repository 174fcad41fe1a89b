"""The Shop tab: search by topic, book details, Buy, the answer in plain words (an unknown
outcome with its buy id and a way to look it up), and the order history — everything
through the front-end, like a shopper, by way of the controller."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

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

from gui.common import OUTCOME_STYLE, ModelEvents, label, spawn
from nodes.core.vocabulary import BuyResult
from nodes.observe.model import ClusterModel
from nodes.session.actions import Controller


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
    def __init__(self, model: ClusterModel, controller: Controller, events: ModelEvents,
                 report: Callable[[str], None]) -> None:
        super().__init__()
        self.model = model
        self.controller = controller
        self.report = report
        self.book_id: int | None = None
        self.unknown_buy: str | None = None

        self.query = QLineEdit()
        self.query.setPlaceholderText("a topic, e.g. distributed or graduate (t matches every book)")
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
        self.look_up_button = QPushButton("Look it up")
        self.look_up_button.setToolTip("Ask every order replica whether this buy id is in its history")
        self.look_up_button.setVisible(False)

        self.history = _table(["Time", "Replica", "Order", "Book", "Title", "Price"])
        self.history.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.refresh_history_button = QPushButton("Refresh")

        search_row = QHBoxLayout()
        search_row.addWidget(label("Search by topic:"))
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
        details_layout.addWidget(self.look_up_button, 0, Qt.AlignmentFlag.AlignLeft)
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
        self.look_up_button.clicked.connect(self.look_up)
        self.refresh_history_button.clicked.connect(self.refresh_history)
        # PySide6 connects a signal given as a keyword (activated=); its stubs do not list them.
        QShortcut(QKeySequence("Ctrl+B"), self, activated=self.buy)  # type: ignore[call-overload]
        QShortcut(QKeySequence("Ctrl+F"), self, activated=self.query.setFocus)  # type: ignore[call-overload]
        self.setTabOrder(self.query, self.search_button)
        self.setTabOrder(self.search_button, self.results)
        self.setTabOrder(self.results, self.buy_button)

    # ---- actions ------------------------------------------------------------------------
    def search(self, topic: str | None = None) -> None:
        text = self.query.text() if topic is None else topic
        spawn(self._search(text), self.report)

    async def _search(self, topic: str) -> None:
        ok, found = await self.controller.search(topic or "t")
        if not ok:
            self.show_answer(BuyResult.INVALID, str(found))
            return
        self.results.setRowCount(len(found))
        for row, hit in enumerate(found):
            for column, value in enumerate((hit["id"], hit["title"], hit["topic"])):
                item = QTableWidgetItem(str(value))
                if column == 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.results.setItem(row, column, item)
        if found:
            self.clear_answer()  # an earlier "nothing found" or error no longer holds
            self.results.selectRow(0)
        else:
            self.show_answer(BuyResult.INVALID, f"No book's topic contains “{topic}”. Search is by topic, not title.")

    def _selected(self) -> None:
        rows = self.results.selectionModel().selectedRows()
        if not rows:
            return
        self.book_id = int(cast(QTableWidgetItem, self.results.item(rows[0].row(), 0)).text())
        self.topic.setText(cast(QTableWidgetItem, self.results.item(rows[0].row(), 2)).text())
        spawn(self._details(self.book_id), self.report)

    async def _details(self, book: int) -> None:
        ok, details = await self.controller.lookup(book)
        if book != self.book_id:
            return  # the shopper moved on while we asked
        if not ok:
            # Nothing of another book may stay on show under this one's error.
            self.title.setText(f"Book {book} could not be loaded")
            self.price.setText("—")
            self.stock.setText("—")
            self.buy_button.setEnabled(False)
            self.show_answer(BuyResult.INVALID, str(details))
            return
        self.title.setText(details["title"])
        self.price.setText(f"${details['price']}")
        in_stock = details["quantity"] > 0
        self.stock.setText(str(details["quantity"]) if in_stock else "0 — out of stock")
        self.buy_button.setEnabled(in_stock)
        self.buy_button.setToolTip("" if in_stock else "Out of stock: there is nothing to buy")

    def buy(self) -> None:
        if self.book_id is None or not self.buy_button.isEnabled():
            return
        self.buy_button.setEnabled(False)
        self.buy_button.setText("Buying…")
        spawn(self._buy(self.book_id), self.report)

    async def _buy(self, book: int) -> None:
        try:
            outcome = await self.controller.buy(book)
            self.show_answer(outcome.kind, outcome.sentence)
            self.unknown_buy = outcome.buy_id if outcome.kind == BuyResult.UNKNOWN else None
            self.look_up_button.setVisible(self.unknown_buy is not None)
        except Exception:
            self.buy_button.setEnabled(True)
            raise
        finally:
            self.buy_button.setText("Buy  (Ctrl+B)")
        await self._details(book)
        await self._history()

    def look_up(self) -> None:
        if self.unknown_buy is not None:
            spawn(self._look_up(self.unknown_buy), self.report)

    async def _look_up(self, buy_id: str) -> None:
        found = await self.controller.find_buy(buy_id)
        result = BuyResult.BOUGHT if found.record else BuyResult.UNKNOWN if found.silent else BuyResult.UNREACHABLE
        self.show_answer(result, found.sentence)
        self.look_up_button.setVisible(found.record is None and bool(found.silent))
        if found.record is not None or not found.silent:
            self.unknown_buy = None
        await self._history()

    def show_answer(self, kind: BuyResult, text: str) -> None:
        background, color = OUTCOME_STYLE.get(kind, ("#f1f5f9", "#0f172a"))
        self.answer.setStyleSheet(f"background:{background}; color:{color};")
        self.answer.setText(text)
        self.answer.setVisible(True)
        if kind != BuyResult.UNKNOWN:
            self.look_up_button.setVisible(False)

    def clear_answer(self) -> None:
        if self.unknown_buy is None:  # an unknown outcome stays until it is looked up
            self.answer.setVisible(False)
            self.answer.setText("")

    def refresh_history(self) -> None:
        spawn(self._history(), self.report)

    async def _history(self) -> None:
        records: list[dict[str, Any]] = await self.controller.orders()
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

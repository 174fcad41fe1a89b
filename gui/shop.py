"""The Shop tab: search by topic, book details, Buy, the answer in plain words (an unknown
outcome with its buy id and a way to look it up), and the order history — everything
through the front-end, like a shopper, by way of the controller."""
from __future__ import annotations

import asyncio
import time
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import cast

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase, QFontMetrics, QKeySequence, QRawFont, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.common import OUTCOME_STYLE, FitScroll, ModelEvents, label, spawn
from nodes.core.vocabulary import BuyResult
from nodes.observe.model import ClusterModel
from nodes.session.actions import Controller

#: Answers that stop being true once the cluster heals: replaced when it does.
WHILE_BROKEN = (BuyResult.UNREACHABLE, BuyResult.REFUSED)
#: A table's least height at 100 %: its header and three rows.
TABLE_ROWS_PX = 130


@lru_cache(maxsize=512)
def _drawable(char: str, family: str) -> bool:
    """Whether some installed font can draw ``char`` (Qt falls back to any of them)."""
    if QFontMetrics(QFont(family)).inFontUcs4(ord(char)):
        return True
    return any(QRawFont.fromFont(QFont(other)).supportsCharacter(ord(char)) for other in QFontDatabase.families())


def readable(text: str, font: QFont) -> str:
    """``text`` with every character no installed font can draw named instead (an emoji typed
    into the search shows as "[books]", not as an empty box)."""
    return "".join(c if c.isascii() or _drawable(c, font.family()) else
                   f"[{unicodedata.name(c, 'symbol').lower()}]" for c in text)


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
        self._searching: asyncio.Task | None = None  # the search under way, if any
        self.unknown_buy: str | None = None
        #: What the answer on show says, and of which book: it is replaced when it stops being true.
        self.answer_kind: BuyResult | None = None
        self.answer_book: int | None = None
        self.confirm: QMessageBox | None = None  # the question Enter on a result asks, while open
        self._broken_when_answered = False  # whether the cluster could not buy when the answer came

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
        for words in (self.title, self.answer):
            # Wrapped at word boundaries to the box's width: a long answer takes more lines; it is
            # never cut, nor does it widen the window.
            words.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.look_up_button = QPushButton("Look it up")
        self.look_up_button.setToolTip("Ask every order replica whether this buy id is in its history")
        self.look_up_button.setVisible(False)

        self.history = _table(["Time", "Replica", "Order", "Book", "Title", "Price"])
        for column in (0, 1, 2, 3, 5):  # short values, never cut; the title takes what is left
            self.history.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.history.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.history_note = label("", name="Note", wrap=True)
        self.history_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.history_note.setVisible(False)
        self.refresh_history_button = QPushButton("Refresh")
        lay_out(self)
        self.set_scale(1.0)

        self.query.returnPressed.connect(self.search)
        self.search_button.clicked.connect(lambda: self.search())
        self.results.itemSelectionChanged.connect(self._selected)
        self.results.activated.connect(lambda _index: self.ask_to_buy())  # Enter or a double click
        self.buy_button.clicked.connect(self.buy)
        self.look_up_button.clicked.connect(self.look_up)
        self.refresh_history_button.clicked.connect(self.refresh_history)
        events.changed.connect(self._changed)
        # PySide6 connects a signal given as a keyword (activated=); its stubs do not list them.
        QShortcut(QKeySequence("Ctrl+B"), self, activated=self.buy)  # type: ignore[call-overload]
        QShortcut(QKeySequence("Ctrl+F"), self, activated=self.query.setFocus)  # type: ignore[call-overload]
        self.setTabOrder(self.query, self.search_button)
        self.setTabOrder(self.search_button, self.results)
        self.setTabOrder(self.results, self.buy_button)

    def set_scale(self, scale: float) -> None:
        """Presenter mode: each table keeps room for its header and three rows at this scale
        (the tab scrolls before a row is cut)."""
        for table in (self.results, self.history):
            table.setMinimumHeight(round(TABLE_ROWS_PX * scale))

    # ---- actions ------------------------------------------------------------------------
    def search(self, topic: str | None = None) -> None:
        """Search for ``topic`` (default: what the box holds). A search still under way is
        dropped: answered after this one, its results would stand under this query."""
        text = self.query.text() if topic is None else topic
        if self._searching is not None:
            self._searching.cancel()
        self._searching = spawn(self._search(text), self.report)

    async def _search(self, topic: str) -> None:
        # Nothing of the last search stays on show under this one: its book, its Buy, its answer.
        self.results.clearSelection()
        self.results.setRowCount(0)
        self._no_book()
        if not topic.strip():
            self.show_answer(BuyResult.INVALID, "Type a topic to search for, e.g. distributed (t matches every "
                             "book).")
            return
        ok, found = await self.controller.search(topic)
        if not ok:
            self.show_answer(BuyResult.INVALID, readable(str(found), self.answer.font()))
            return
        assert isinstance(found, list)
        page = self.controller.session.shop.page
        more = page is not None and len(found) > page
        found = found[:page] if more else found
        self.results.setRowCount(len(found))
        for row, hit in enumerate(found):
            for column, value in enumerate((hit["id"], hit["title"], hit["topic"])):
                item = QTableWidgetItem(str(value))
                if column == 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.results.setItem(row, column, item)
        if more:
            self.show_answer(None, f"More than {page} books' topics contain “{readable(topic, self.answer.font())}”: "
                             f"the first {page} by id are listed. A longer topic finds fewer.")
            self.results.selectRow(0)
        elif found:
            self.clear_answer()  # an earlier "nothing found" or error no longer holds
            self.results.selectRow(0)
        else:
            self.show_answer(BuyResult.INVALID, f"No book's topic contains “{readable(topic, self.answer.font())}”. "
                             "Search is by topic, not title.")

    def _no_book(self) -> None:
        """No book chosen: nothing to buy."""
        self.book_id = None
        self.title.setText("Choose a book")
        self.topic.setText("")
        self.price.setText("—")
        self.stock.setText("—")
        self.buy_button.setEnabled(False)
        self.buy_button.setToolTip("Choose a book in the results first")

    def _selected(self) -> None:
        rows = self.results.selectionModel().selectedRows()
        if not rows:
            self._no_book()
            return
        self.book_id = int(cast(QTableWidgetItem, self.results.item(rows[0].row(), 0)).text())
        self.topic.setText(cast(QTableWidgetItem, self.results.item(rows[0].row(), 2)).text())
        if self.answer_book is not None and self.answer_book != self.book_id:
            self.clear_answer()  # an answer about another book
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
            self.show_answer(BuyResult.INVALID, str(details), book)
            return
        assert isinstance(details, dict)
        self.title.setText(details["title"])
        self.price.setText(f"${details['price']}")
        quantity = int(details["quantity"])
        self.stock.setText(str(quantity) if quantity > 0 else "0 — out of stock")
        self.buy_button.setEnabled(quantity > 0)
        self.buy_button.setToolTip("" if quantity > 0 else "Out of stock: there is nothing to buy")
        self._still_true(book, quantity)

    def _still_true(self, book: int, quantity: int) -> None:
        """Keep the answer on show true of the stock just read: a "Bought" that took the last
        copy says so; a "sold out" after a restock goes."""
        if self.answer_book != book:
            return
        if self.answer_kind == BuyResult.BOUGHT and quantity == 0 and "last copy" not in self.answer.text():
            self.answer.setText(self.answer.text() + " That was the last copy: the book is out of stock now.")
        elif self.answer_kind == BuyResult.OUT_OF_STOCK and quantity > 0:
            self.show_answer(None, f"Restocked since: {quantity} in stock now.", book, look=BuyResult.BOUGHT)

    def ask_to_buy(self) -> None:
        """Enter (or a double click) on a result: a question first, never a buy at once."""
        if self.book_id is None or not self.buy_button.isEnabled():
            return
        box = self.confirm = QMessageBox(QMessageBox.Icon.Question, "Buy this book?",
                                         f"Buy “{self.title.text()}” for {self.price.text()}?",
                                         QMessageBox.StandardButton.Cancel, self)
        buy = box.addButton("Buy", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)  # a second Enter does not buy
        book = self.book_id

        def answered(_result: int) -> None:
            self.confirm = None
            if box.clickedButton() is buy and self.book_id == book:
                self.buy()

        box.finished.connect(answered)
        box.open()

    def buy(self) -> None:
        if self.book_id is None or not self.buy_button.isEnabled():
            return
        self.buy_button.setEnabled(False)
        self.buy_button.setText("Buying…")
        spawn(self._buy(self.book_id), self.report)

    async def _buy(self, book: int) -> None:
        try:
            outcome = await self.controller.buy(book)
            self.show_answer(outcome.kind, outcome.sentence, book)
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
        self.show_answer(result, found.sentence, self.answer_book)
        self.look_up_button.setVisible(found.record is None and bool(found.silent))
        if found.record is not None or not found.silent:
            self.unknown_buy = None
        await self._history()

    def show_answer(self, kind: BuyResult | None, text: str, book: int | None = None, *,
                    look: BuyResult | None = None) -> None:
        """An answer that says ``kind`` (None: a plain note) about ``book`` (None: about no
        book), in the colours of ``look`` (by default, of ``kind``; a plain note's are grey)."""
        shown = look or kind
        background, color = ("#f1f5f9", "#0f172a") if shown is None else OUTCOME_STYLE[shown]
        self.answer.setStyleSheet(f"background:{background}; color:{color};")
        self.answer.setText(text)
        self.answer.setVisible(True)
        self.answer_kind = kind
        self.answer_book = book
        self._broken_when_answered = kind in WHILE_BROKEN and not self._can_buy_again()
        if kind != BuyResult.UNKNOWN:
            self.look_up_button.setVisible(False)

    def clear_answer(self) -> None:
        if self.unknown_buy is None:  # an unknown outcome stays until it is looked up
            self.answer.setVisible(False)
            self.answer.setText("")
            self.answer_kind = self.answer_book = None

    def refresh_history(self) -> None:
        if self.controller.held is not None:  # a replay, or rewound: the history is not in the recording
            self.history.setRowCount(0)
            self.history_note.setText("The order history is read from the running order replicas; it is not part "
                                      "of a recording. Back to live (or in a live window) it shows again.")
            self.history_note.setVisible(True)
            return
        spawn(self._history(), self.report)

    async def _history(self) -> None:
        history = await self.controller.order_history()
        self.history.setRowCount(len(history.records))
        for row, record in enumerate(history.records):
            values = (time.strftime("%H:%M:%S", time.localtime(record["time"])), record["replica"],
                      record["order_id"], record["book_id"], record["title"], f"${record['price']}")
            for column, value in enumerate(values):
                self.history.setItem(row, column, QTableWidgetItem(str(value)))
        self.history_note.setText(history.note)
        self.history_note.setVisible(bool(history.note))

    # ---- what the cluster does meanwhile ------------------------------------------------------
    def _changed(self, topics: dict[str, set]) -> None:
        """A node changed: an answer that said the cluster could not buy goes once it can, and
        the history is read again when an order replica comes or goes."""
        changed = topics.get("node", set())
        if not changed or not self.isEnabled():
            return
        if self.answer_kind in WHILE_BROKEN and self._broken_when_answered and self._can_buy_again():
            orders = sum(1 for h in self.model.healths() if h.role == "order")
            self.show_answer(None, f"The cluster can take buys again (order replicas serving: "
                             f"{self._serving('order')} of {orders}). Press Buy to try again.", self.answer_book,
                             look=BuyResult.BOUGHT)
        if any(name.startswith("order") for name in changed):
            self.refresh_history()

    def _serving(self, role: str) -> int:
        return sum(1 for h in self.model.healths() if h.role == role and h.serving)

    def _can_buy_again(self) -> bool:
        catalogs = [h for h in self.model.healths() if h.role == "catalog"]
        return (self.model.health("frontend").serving and self._serving("order") > 0
                and 2 * self._serving("catalog") > len(catalogs))

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        """Buys made elsewhere (on Live, by the load) are in the history as soon as the tab shows."""
        super().showEvent(event)
        if self.model.health("frontend").serving:
            self.refresh_history()


def lay_out(view: ShopView) -> None:
    """Search on top; results beside the book; the answer across the whole tab under them
    (wide, so that a long answer takes few lines even at 150 %); the order history below."""
    search_row = QHBoxLayout()
    search_row.addWidget(label("Search by topic:"))
    search_row.addWidget(view.query, 1)
    search_row.addWidget(view.search_button)

    details = QGroupBox("Book")
    form = QFormLayout()
    form.addRow("Price", view.price)
    form.addRow("In stock", view.stock)
    details_layout = QVBoxLayout(details)
    details_layout.addWidget(view.title)
    details_layout.addWidget(view.topic)
    details_layout.addLayout(form)
    details_layout.addWidget(view.buy_button)
    details_layout.addStretch(1)
    details.setMinimumWidth(340)

    top = QHBoxLayout()
    found = QGroupBox("Results")
    QVBoxLayout(found).addWidget(view.results)
    top.addWidget(found, 3)
    top.addWidget(details, 2)

    answer_row = QHBoxLayout()
    answer_row.addWidget(view.answer, 1)
    answer_row.addWidget(view.look_up_button, 0, Qt.AlignmentFlag.AlignVCenter)

    orders = QGroupBox("Order history (all order replicas, newest first)")
    orders_layout = QVBoxLayout(orders)
    note_row = QHBoxLayout()
    note_row.addWidget(view.history_note, 1)
    note_row.addStretch(0)
    note_row.addWidget(view.refresh_history_button, 0, Qt.AlignmentFlag.AlignTop)
    orders_layout.addLayout(note_row)
    orders_layout.addWidget(view.history)

    page = QWidget()
    layout = QVBoxLayout(page)
    layout.addLayout(search_row)
    layout.addLayout(top, 3)
    layout.addLayout(answer_row)
    layout.addWidget(orders, 2)
    # On a small screen at a large scale the tab scrolls: no answer is ever cut to fit.
    outer = QVBoxLayout(view)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(FitScroll(page))

"""A chooser of one book of the catalog, for seven books or 100,000 (the Live screen's shop
row, the Replicas tab's figure).

A combo box filled item by item costs a Python call per book, and one that fits its width to
its contents measures every item's text: with 100,000 books the window took seconds to open
and froze as long at its first layout. The texts go in as one string list model (filled in
C++), the box is as wide as a set number of characters, and the book is found by its place in
the list rather than by data stored with each item."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QStringListModel, Qt
from PySide6.QtWidgets import QComboBox

from gui.common import searchable
from nodes.core.books import Book

#: More books than this get a chooser to type in (part of an id or a title) and a set width.
FEW_BOOKS = 12


class BookChooser(QComboBox):
    """One of ``books``, each shown as ``text`` makes it; a catalog of more than FEW_BOOKS is
    searchable. Starts on book 2, the figures' sample book."""

    def __init__(self, books: Sequence[Book], text: Callable[[Book], str], *, width: int = 30,
                 tooltips: bool = False) -> None:
        super().__init__()
        self.books = list(books)
        self._rows = {book.id: row for row, book in enumerate(self.books)}
        self.setModel(QStringListModel([text(book) for book in self.books], self))
        if len(self.books) > FEW_BOOKS:
            self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            self.setMinimumContentsLength(width)
            searchable(self)  # thousands of books: type part of an id or title
        elif tooltips:  # a few books: each one's title where the box shows only its number
            for row, book in enumerate(self.books):
                self.setItemData(row, book.title, Qt.ItemDataRole.ToolTipRole)
        self.setCurrentIndex(min(1, len(self.books) - 1))
        self.setAccessibleName("Book")

    def book_id(self) -> int | None:
        """The book chosen (None: none, an empty catalog)."""
        row = self.currentIndex()
        return self.books[row].id if 0 <= row < len(self.books) else None

    def choose(self, book_id: int) -> bool:
        """Show ``book_id``; False if the catalog holds no such book."""
        row = self._rows.get(book_id)
        if row is None:
            return False
        self.setCurrentIndex(row)
        return True

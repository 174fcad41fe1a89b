"""The simulator's stores: what a node's SQLite file holds, as the store methods its core
calls (``Disk`` effects), kept across crashes. The disk fault refuses their commits."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from nodes.core.books import Book
from nodes.core.effects import DiskFailed


class CatalogDisk:
    """What a catalog replica's SQLite file holds, as the store methods the core calls."""

    def __init__(self, books: list[Book], clock: Callable[[], float] = lambda: 0.0) -> None:
        self.books = {book.id: book for book in books}
        self.buys: dict[str, tuple[int, int]] = {}
        self.clock = clock  # the world's time: when each buy was stored (``at``), as SQLite's row says
        self.at: dict[str, float] = {}
        self.generation = 0
        self.tentative: set[int] = set()
        #: Rows changed behind the store's back (the "corrupt" fault): they fail their checksum.
        self.damaged: set[int] = set()
        #: The "disk" fault: every commit is refused, as SQLite refuses one on a full disk.
        self.full = False
        #: Buys forgotten at the end of their retry window, for the checker (not the store's).
        self.expired: dict[str, tuple[int, int]] = {}

    def _commit(self) -> None:
        if self.full:
            raise DiskFailed("database or disk is full")

    def probe(self) -> None:
        self._commit()

    def forget(self, buy_ids: list[str]) -> None:
        self._commit()
        for buy_id in buy_ids:
            self.buys.pop(buy_id, None)
            self.at.pop(buy_id, None)

    def expire(self, buy_ids: list[str]) -> None:
        """Forget buys whose retry window ran out; kept aside for the checker (``expired``)."""
        self._commit()
        self.expired.update((b, self.buys.pop(b)) for b in buy_ids if b in self.buys)
        for buy_id in buy_ids:
            self.at.pop(buy_id, None)

    def load_damaged(self) -> dict[int, str]:
        return {book_id: "it fails its checksum" for book_id in sorted(self.damaged)}

    def load_tentative(self) -> list[int]:
        return sorted(self.tentative)

    def confirm(self, book_id: int) -> None:
        self._commit()
        self.tentative.discard(book_id)

    def corrupt(self, book_id: int, quantity: int, *, checksummed: bool = False) -> None:
        """Change a row's stock, seq unchanged, as a hand or a faulty disk would; ``checksummed``:
        and its checksum with it, as a hand that knows how would (only the peers can tell)."""
        self.books[book_id] = replace(self.books[book_id], quantity=quantity)
        if not checksummed:
            self.damaged.add(book_id)

    def load_generation(self) -> int:
        return self.generation

    def load_books(self) -> dict[int, Book]:
        return dict(self.books)

    def load_buys(self) -> dict[str, tuple[int, int, float]]:
        """Each buy with the seconds since it was stored: its retry window goes on from there."""
        return {b: (book, seq, self.clock() - self.at.get(b, self.clock())) for b, (book, seq) in self.buys.items()}

    def write(self, book: Book, buy_ids: Sequence[str] = (), tentative: bool = False) -> None:
        self._commit()
        self.books[book.id] = book
        self.damaged.discard(book.id)
        (self.tentative.add if tentative else self.tentative.discard)(book.id)
        for buy_id in buy_ids:
            self.buys.setdefault(buy_id, (book.id, book.seq))
            self.at.setdefault(buy_id, self.clock())

    def undo(self, book: Book, buy_ids: list[str]) -> None:
        self._commit()
        self.books[book.id] = book
        self.damaged.discard(book.id)
        self.tentative.discard(book.id)
        for buy_id in buy_ids:
            self.buys.pop(buy_id, None)
            self.at.pop(buy_id, None)

    def add_buys(self, book_id: int, buys: list[tuple[str, int]]) -> None:
        self._commit()
        for buy_id, seq in buys:
            self.buys.setdefault(buy_id, (book_id, seq))
            self.at.setdefault(buy_id, self.clock())

    def reset(self, generation: int = 0) -> dict[int, Book]:
        raise NotImplementedError("the simulator does not reset")  # pragma: no cover


@dataclass(frozen=True)
class Purchase:
    order_id: int
    buy_id: str
    book_id: int


class OrderDisk:
    def __init__(self) -> None:
        self.purchases: dict[str, Purchase] = {}

    def buy_ids(self) -> list[str]:
        return list(self.purchases)

    def find(self, buy_id: str) -> Purchase | None:
        return self.purchases.get(buy_id)

    def record(self, buy_id: str, book_id: int, title: str, price: float) -> Purchase:
        purchase = self.purchases.setdefault(buy_id, Purchase(len(self.purchases) + 1, buy_id, book_id))
        return purchase



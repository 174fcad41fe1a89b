"""One catalog replica's database (SQLAlchemy 2.x over SQLite in WAL mode).

The replica serves reads from memory; this store is the durable copy. A write returns only
after SQLite has committed it with ``synchronous=FULL``: it is on disk when answered.

Every row carries a checksum of what it holds (``Book.checksum``), checked when the replica
starts: a row changed behind the store's back is reported (``load_damaged``), never served,
and repaired from the peers. A write not yet confirmed by any peer is marked ``tentative``, so
that a replica restarted with one still settles it (docs/weak-points.md, W2).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, Integer, String, bindparam, delete, event, insert, inspect, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from nodes.core.books import Book, seed_books
from nodes.runtime.database import FileClaim, sqlite_engine


class Base(DeclarativeBase):
    pass


class BookRow(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String)
    topic: Mapped[str] = mapped_column(String)
    price: Mapped[float] = mapped_column(Float)
    quantity: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    #: ``Book.checksum`` of the row as Bazar wrote it.
    checksum: Mapped[str | None] = mapped_column(String, nullable=True)
    #: 1 while the row is a write of ours that no peer has confirmed yet.
    tentative: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AppliedBuy(Base):
    """Every buy this replica has applied, by the id it travelled with (W7)."""

    __tablename__ = "applied_buys"
    buy_id: Mapped[str] = mapped_column(String, primary_key=True)
    book_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[float] = mapped_column(Float)


class Meta(Base):
    """Facts about the database as a whole: which generation of the data it holds (each
    cluster reset starts a new one; see Replica.reset)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


# Built once: constructing a statement costs more than running it (about 0.4 ms a write
# on the benchmark machine), and every replica writes once per buy.
_SET_BOOK = (update(BookRow).where(BookRow.id == bindparam("book_id"))
             .values(price=bindparam("new_price"), quantity=bindparam("new_quantity"), seq=bindparam("new_seq"),
                     checksum=bindparam("new_checksum"), tentative=bindparam("new_tentative")))
_CONFIRM = update(BookRow).where(BookRow.id == bindparam("book_id")).values(tentative=0)
_ADD_BUYS = sqlite_insert(AppliedBuy).on_conflict_do_nothing()
# One row a parameter set, not ``IN (?, ?, ...)``: each length of an IN list is another SQL text,
# and SQLite keeps the last 128 prepared per connection (600 deletes of 1-3,000 ids held 48 MB
# more in a microbenchmark; not, as measured since, what the long day's memory growth was).
_FORGET_BUY = delete(AppliedBuy).where(AppliedBuy.buy_id == bindparam("gone_id"))
_INSERT_BOOKS = insert(BookRow)
_ROWS = select(BookRow.id, BookRow.title, BookRow.topic, BookRow.price, BookRow.quantity, BookRow.seq,
               BookRow.checksum)


class CatalogStore:
    def __init__(self, path_or_url: str, books_file: str | None = None) -> None:
        #: The catalog file a fresh or reset database starts from (None: the documents' seven).
        self.books_file = books_file
        self.claim = FileClaim(path_or_url)
        self.engine = sqlite_engine(path_or_url)
        #: The "disk full" fault's limit on the database's pages (None: no limit).
        self.max_pages: int | None = None
        #: The checksums stored beside the rows ``load_books`` last read, for ``load_damaged``:
        #: a catalog of 100,000 rows is read, and its checksums worked out, once at start.
        self._stored_sums: dict[int, str | None] = {}
        self._loaded: dict[int, Book] = {}

        @event.listens_for(self.engine, "connect")
        def _limit(dbapi_connection: Any, _record: Any) -> None:
            if self.max_pages is not None:
                cursor = dbapi_connection.cursor()
                cursor.execute(f"PRAGMA max_page_count = {self.max_pages}")
                cursor.close()
        Base.metadata.create_all(self.engine)
        self._upgrade()
        with self.engine.begin() as connection:
            if connection.execute(select(BookRow.id).limit(1)).first() is None:
                # One statement for every row (an ORM flush of 100,000 objects took seconds).
                connection.execute(_INSERT_BOOKS, [_fields(book) for book in seed_books(self.books_file)])

    def _upgrade(self) -> None:
        """A database from before checksums: add the columns, and take its rows as they are."""
        columns = {column["name"] for column in inspect(self.engine).get_columns("books")}
        if {"checksum", "tentative"} <= columns:
            return
        with self.engine.begin() as connection:
            if "checksum" not in columns:
                connection.execute(text("ALTER TABLE books ADD COLUMN checksum VARCHAR"))
            if "tentative" not in columns:
                connection.execute(text("ALTER TABLE books ADD COLUMN tentative INTEGER NOT NULL DEFAULT 0"))
        with Session(self.engine) as session, session.begin():
            for row in session.scalars(select(BookRow).where(BookRow.checksum.is_(None))):
                row.checksum = _book(row).checksum()

    def load_damaged(self) -> dict[int, str]:
        """Rows whose content no longer matches their checksum: {book id: what is wrong}. The
        rows ``load_books`` read (the replica's own copies, whose checksums stay worked out)."""
        books, sums = (self._loaded, self._stored_sums) if self._loaded else (self.load_books(), self._stored_sums)
        self._loaded, self._stored_sums = {}, {}
        return {book_id: f"it fails its checksum: stored {sums.get(book_id)}, content {book.checksum()}"
                for book_id, book in books.items() if sums.get(book_id) != book.checksum()}

    def load_tentative(self) -> list[int]:
        """The books whose row is a write of ours no peer had confirmed when we stopped."""
        with Session(self.engine) as session:
            return list(session.scalars(select(BookRow.id).where(BookRow.tentative != 0)))

    def forget(self, buy_ids: list[str]) -> None:
        """Forget buys of a tentative write whose row was found damaged: never offered again."""
        if buy_ids:
            with self.engine.begin() as connection:
                connection.execute(_FORGET_BUY, [{"gone_id": buy_id} for buy_id in buy_ids])

    def expire(self, buy_ids: list[str]) -> None:
        """Forget buys whose retry window has run out (W7, ``BUY_WINDOW_S``), in batches of at
        most a few thousand: the table holds the last window's buys, not every buy ever made."""
        self.forget(buy_ids)

    def confirm(self, book_id: int) -> None:
        """A peer holds our tentative write of ``book_id``: it is settled."""
        with self.engine.begin() as connection:
            connection.execute(_CONFIRM, {"book_id": book_id})
    def load_books(self) -> dict[int, Book]:
        """Every row, read in one statement; the checksums stored beside them are kept for
        ``load_damaged``, which the replica asks next."""
        with self.engine.connect() as connection:
            rows = connection.execute(_ROWS).all()
        books = {row_id: Book(row_id, title, topic, price, quantity, seq)
                 for row_id, title, topic, price, quantity, seq, _sum in rows}
        self._stored_sums = {row[0]: row[6] for row in rows}
        self._loaded = books
        return books

    def load_generation(self) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(Meta.value).where(Meta.key == "generation")) or 0

    def load_buys(self) -> dict[str, tuple[int, int, float]]:
        """Each buy remembered, with the seconds since it was stored: its retry window goes on
        from there, so a restart does not start it afresh (W7, ``BUY_WINDOW_S``)."""
        now = time.time()
        with self.engine.connect() as connection:
            rows = connection.execute(select(AppliedBuy.buy_id, AppliedBuy.book_id, AppliedBuy.seq, AppliedBuy.at))
            return {buy_id: (book_id, seq, max(0.0, now - (at or now))) for buy_id, book_id, seq, at in rows}

    def write(self, book: Book, buy_ids: Sequence[str] = (), tentative: bool = False) -> None:
        """Store ``book`` (and the buys that produced it) in one transaction; ``tentative``: a
        write of ours no peer has confirmed yet."""
        with self.engine.begin() as connection:
            connection.execute(_SET_BOOK, _book_params(book, tentative))
            if buy_ids:
                now = time.time()
                connection.execute(_ADD_BUYS, [{"buy_id": b, "book_id": book.id, "seq": book.seq, "at": now}
                                               for b in buy_ids])

    def undo(self, book: Book, buy_ids: list[str]) -> None:
        """Put ``book`` back as it was and forget ``buy_ids``: a write no peer took is withdrawn."""
        with self.engine.begin() as connection:
            connection.execute(_SET_BOOK, _book_params(book))
            if buy_ids:
                connection.execute(_FORGET_BUY, [{"gone_id": buy_id} for buy_id in buy_ids])

    def probe(self) -> None:
        """A commit of the kind a buy makes (a new applied-buy row, taken out again in the same
        transaction): once it succeeds, the disk takes writes again."""
        with self.engine.begin() as connection:
            connection.execute(_ADD_BUYS, [{"buy_id": "bazar-probe-" + "x" * 2000, "book_id": 0, "seq": 0,
                                            "at": time.time()}])
            connection.execute(_FORGET_BUY, [{"gone_id": "bazar-probe-" + "x" * 2000}])

    def fill(self, full: bool) -> None:
        """The "disk full" fault: from now on the database may not grow (SQLite then refuses a
        commit that needs a new page with "database or disk is full"), or may again."""
        with self.engine.connect() as connection:
            pages = connection.exec_driver_sql("PRAGMA page_count").scalar() or 1
        self.max_pages = int(pages) if full else None
        self.engine.dispose()  # the limit is set per connection (``_limit``): open them anew

    def add_buys(self, book_id: int, buys: list[tuple[str, int]]) -> None:
        """Remember buys (id, seq) applied elsewhere, without touching the book's row."""
        if buys:
            now = time.time()
            with self.engine.begin() as connection:
                connection.execute(_ADD_BUYS, [{"buy_id": b, "book_id": book_id, "seq": seq, "at": now}
                                               for b, seq in buys])

    def reset(self, generation: int = 0) -> dict[int, Book]:
        books = seed_books(self.books_file)
        with Session(self.engine) as session, session.begin():
            session.execute(delete(AppliedBuy))
            session.execute(delete(BookRow))
            session.execute(_INSERT_BOOKS, [_fields(book) for book in books])
            session.merge(Meta(key="generation", value=generation))
        return {book.id: book for book in books}

    def close(self) -> None:
        self.engine.dispose()
        self.claim.release()


def _book_params(book: Book, tentative: bool = False) -> dict[str, object]:
    return {"book_id": book.id, "new_price": book.price, "new_quantity": book.quantity, "new_seq": book.seq,
            "new_checksum": book.checksum(), "new_tentative": int(tentative)}


def _fields(book: Book) -> dict[str, object]:
    return {"id": book.id, "title": book.title, "topic": book.topic, "price": book.price,
            "quantity": book.quantity, "seq": book.seq, "checksum": book.checksum(), "tentative": 0}


def _book(row: BookRow) -> Book:
    return Book(id=row.id, title=row.title, topic=row.topic, price=row.price, quantity=row.quantity, seq=row.seq)

"""One order replica's purchase history (SQLAlchemy 2.x over SQLite in WAL mode)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, String, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from nodes.runtime.database import FileClaim, sqlite_engine


class Base(DeclarativeBase):
    pass


class PurchaseRow(Base):
    __tablename__ = "purchases"
    order_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    buy_id: Mapped[str] = mapped_column(String, unique=True)
    book_id: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String)
    price: Mapped[float] = mapped_column(Float)
    at: Mapped[float] = mapped_column(Float)


# Built once: constructing the statement would cost more than running it (see catalog/store.py).
_RECORD = insert(PurchaseRow).returning(PurchaseRow.order_id)


@dataclass(frozen=True)
class Purchase:
    order_id: int
    buy_id: str
    book_id: int
    title: str
    price: float
    at: float

    def as_record(self) -> dict[str, Any]:
        price = int(self.price) if float(self.price).is_integer() else self.price
        return {"order_id": self.order_id, "buy_id": self.buy_id, "book_id": self.book_id,
                "title": self.title, "price": price, "time": self.at}


class OrderStore:
    def __init__(self, path_or_url: str) -> None:
        self.claim = FileClaim(path_or_url)
        self.engine = sqlite_engine(path_or_url)
        Base.metadata.create_all(self.engine)

    def record(self, buy_id: str, book_id: int, title: str, price: float) -> Purchase:
        """Store a completed purchase; a buy id already stored returns the first record."""
        at = time.time()
        try:
            with self.engine.begin() as connection:
                order_id = connection.execute(_RECORD, {"buy_id": buy_id, "book_id": book_id, "title": title,
                                                        "price": price, "at": at}).scalar_one()
            return Purchase(order_id, buy_id, book_id, title, price, at)
        except IntegrityError:
            found = self.find(buy_id)
            assert found is not None
            return found

    def find(self, buy_id: str) -> Purchase | None:
        with Session(self.engine) as session:
            row = session.scalar(select(PurchaseRow).where(PurchaseRow.buy_id == buy_id))
            return _purchase(row) if row is not None else None

    def buy_ids(self) -> set[str]:
        with Session(self.engine) as session:
            return set(session.scalars(select(PurchaseRow.buy_id)))

    def history(self, limit: int) -> list[Purchase]:
        with Session(self.engine) as session:
            rows = session.scalars(select(PurchaseRow).order_by(PurchaseRow.order_id.desc()).limit(limit))
            return [_purchase(row) for row in rows][::-1]

    def reset(self) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(delete(PurchaseRow))

    def close(self) -> None:
        self.engine.dispose()
        self.claim.release()


def _purchase(row: PurchaseRow) -> Purchase:
    return Purchase(row.order_id, row.buy_id, row.book_id, row.title, row.price, row.at)

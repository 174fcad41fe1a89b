"""The seven books Bazar starts with, read from ``assets/books.json``."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parents[2] / "assets"
BOOKS_FILE = ASSETS / "books.json"


@dataclass(frozen=True)
class Book:
    id: int
    title: str
    topic: str
    price: float
    quantity: int
    seq: int = 0

    def as_lookup(self) -> dict[str, Any]:
        """The body of ``/lookup`` and ``/query/item`` (docs/api.md), plus the book's ``seq``."""
        return {"title": self.title, "quantity": self.quantity, "price": _number(self.price), "seq": self.seq}

    def as_search_hit(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "topic": self.topic}

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["price"] = _number(self.price)
        return record

    def checksum(self) -> str:
        """A digest of everything the row holds, stored beside it: a row changed behind the
        store's back (by hand, by a faulty disk) no longer matches it (docs/weak-points.md,
        'Storage that checks itself'). Worked out once per copy: a row never changes, and every
        ping answer and heartbeat asks for it."""
        known = self.__dict__.get("_checksum")
        if known is None:
            text = json.dumps([self.id, self.title, self.topic, _number(self.price), self.quantity, self.seq],
                              separators=(",", ":"), ensure_ascii=False)
            known = hashlib.sha256(text.encode()).hexdigest()[:16]
            object.__setattr__(self, "_checksum", known)  # frozen: the copy's fields stay as they are
        return known

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Book:
        return cls(
            id=int(record["id"]),
            title=str(record["title"]),
            topic=str(record["topic"]),
            price=record["price"],
            quantity=int(record["quantity"]),
            seq=int(record.get("seq", 0)),
        )


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def seed_books(path: Path = BOOKS_FILE) -> list[Book]:
    return [Book.from_record(record) for record in json.loads(path.read_text(encoding="utf-8"))]

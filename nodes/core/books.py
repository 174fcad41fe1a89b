"""The books a catalog starts with: the documents' seven (``assets/books.json``) unless a catalog
file names others (``--books FILE``: JSON like that one, or CSV with the header
``id,title,topic,price,stock``), and a generator of large ones for experiments at scale."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
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
        return {"title": self.title, "quantity": self.quantity, "price": plain_number(self.price), "seq": self.seq}

    def as_search_hit(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "topic": self.topic}

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["price"] = plain_number(self.price)
        return record

    def checksum(self) -> str:
        """A digest of everything the row holds, stored beside it: a row changed behind the
        store's back (by hand, by a faulty disk) no longer matches it (docs/weak-points.md,
        'Storage that checks itself'). Worked out once per copy: a row never changes, and every
        ping answer and heartbeat asks for it."""
        known = self.__dict__.get("_checksum")
        if known is None:
            text = json.dumps([self.id, self.title, self.topic, plain_number(self.price), self.quantity, self.seq],
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


def plain_number(value: float) -> float | int:
    """A price as JSON shows it: 12 rather than 12.0, 12.5 as it is."""
    return int(value) if float(value).is_integer() else value


#: The most books a catalog file may hold.
MAX_BOOKS = 1_000_000
CSV_HEADER = ("id", "title", "topic", "price", "stock")


class CatalogFileError(ValueError):
    """A catalog file Bazar cannot start from; the message names the file, the line and what
    to change."""


def seed_books(path: Path | str | None = None) -> list[Book]:
    """The books of the catalog file at ``path`` (the documents' seven when None)."""
    return read_catalog(Path(path) if path is not None else BOOKS_FILE)


def read_catalog(path: Path) -> list[Book]:
    """Every book of a JSON or CSV catalog file, checked: ids whole numbers from 1, each once;
    a title; a price and a stock that are numbers of at least 0."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CatalogFileError(f"catalog file {path} does not exist") from None
    except UnicodeDecodeError:
        raise CatalogFileError(f"catalog file {path} is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise CatalogFileError(f"catalog file {path} cannot be read: {exc.strerror}") from None
    if path.suffix.lower() == ".csv":
        rows = _csv_rows(path, text)
    else:
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogFileError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(records, list):
            raise CatalogFileError(f"{path}: a JSON catalog is a list of books, e.g. [{{\"id\": 1, \"title\": \"…\", "
                                   "\"topic\": \"…\", \"price\": 10, \"stock\": 5}}]")
        rows = [(f"book {n}", r) for n, r in enumerate(records, 1)]
    books, seen = [], set()
    for where, record in rows:
        book = _book_of(path, where, record)
        if book.id in seen:
            raise CatalogFileError(f"{path} {where}: id {book.id} is used twice; each book needs its own id")
        seen.add(book.id)
        books.append(book)
    if not books:
        raise CatalogFileError(f"{path} holds no book; a catalog needs at least one")
    if len(books) > MAX_BOOKS:
        raise CatalogFileError(f"{path} holds {len(books):,} books; at most {MAX_BOOKS:,}")
    return books


def _csv_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(name.strip() for name in reader.fieldnames or ())
    if set(header) != set(CSV_HEADER):
        raise CatalogFileError(f"{path} line 1: the header must be {','.join(CSV_HEADER)} (got {','.join(header)})")
    return [(f"line {reader.line_num}", {k.strip(): v for k, v in row.items()}) for row in reader]


def _book_of(path: Path, where: str, record: Any) -> Book:
    if not isinstance(record, dict):
        raise CatalogFileError(f"{path} {where}: a book is an object with id, title, topic, price and stock")
    stock = record.get("stock", record.get("quantity"))
    values: dict[str, float] = {}
    for name, value, whole, low in (("id", record.get("id"), True, 1), ("price", record.get("price"), False, 0),
                                    ("stock", stock, True, 0)):
        number = _read_number(value, whole)
        if number is None or number < low:
            raise CatalogFileError(f"{path} {where}: {name} must be a {'whole ' if whole else ''}number of at least "
                                   f"{low} (got {value!r})")
        values[name] = number
    title, topic = record.get("title"), record.get("topic", "")
    if not isinstance(title, str) or not title.strip():
        raise CatalogFileError(f"{path} {where}: every book needs a title")
    if not isinstance(topic, str):
        raise CatalogFileError(f"{path} {where}: topic must be text (got {topic!r})")
    return Book(int(values["id"]), title.strip(), topic.strip(), plain_number(values["price"]), int(values["stock"]))


def _read_number(value: Any, whole: bool) -> float | None:
    """A JSON number or CSV text as a number (a whole one if ``whole``), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if whole:
            return int(text) if text.isascii() and text.isdigit() else None
        try:
            value = float(text)
        except ValueError:
            return None
    if whole:
        return value if isinstance(value, int) else None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


#: What the generator draws titles and topics from.
_TOPICS = ("Distributed Systems", "Graduate School", "Operating Systems", "Databases", "Networks",
           "Compilers", "Security", "Machine Learning", "Cooking", "Travel", "History", "Poetry")
_WORDS = ("Practical", "Gentle", "Impatient", "Hidden", "Patient", "Concurrent", "Lazy", "Eventual",
          "Consistent", "Durable", "Replicated", "Partitioned", "Fast", "Quiet", "Brave", "Tiny")
_NOUNS = ("Leases", "Replicas", "Caches", "Clocks", "Quorums", "Logs", "Pings", "Books", "Students",
          "Valleys", "Kitchens", "Proofs", "Locks", "Queues", "Rings", "Traces")


def generate_catalog(count: int, seed: int = 1) -> list[Book]:
    """``count`` books with ids 1..count, seeded: the same count and seed give the same file."""
    if not 1 <= count <= MAX_BOOKS:
        raise CatalogFileError(f"--count must be from 1 to {MAX_BOOKS:,} (got {count})")
    rng = random.Random(seed)
    return [Book(i, f"{rng.choice(_WORDS)} {rng.choice(_NOUNS)}, volume {i}", rng.choice(_TOPICS),
                 rng.randrange(5, 81), rng.randrange(5, 51)) for i in range(1, count + 1)]


def write_catalog(books: list[Book], path: Path) -> None:
    """A catalog file as ``read_catalog`` reads it: CSV for a ``.csv`` path, JSON otherwise."""
    if path.suffix.lower() == ".csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        writer.writerows((b.id, b.title, b.topic, plain_number(b.price), b.quantity) for b in books)
        text = out.getvalue()
    else:
        text = "[\n" + ",\n".join(json.dumps({"id": b.id, "title": b.title, "topic": b.topic,
                                                "price": plain_number(b.price), "stock": b.quantity})
                                    for b in books) + "\n]\n"
    path.write_text(text, encoding="utf-8")

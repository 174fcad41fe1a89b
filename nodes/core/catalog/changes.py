"""What changed, and since when: the bookkeeping that lets the heartbeat cost what changed,
not what the catalog holds (docs/protocol.md, "The heartbeat carries what changed").

A replica numbers every change of what its pings and their answers tell of a book — its row,
its seq while a write fans it out, whether it is unconfirmed or unverified, the buys it
remembers of it — in one ``ChangeLog``. A ping or its answer carries the books changed since
the position the other side last acknowledged, and each side keeps a ``View`` of the other:
the last word on every book, put together from those deltas. The containers below touch the
log themselves whenever one of their book ids changes, so no rule can change a book without
the log hearing of it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

V = TypeVar("V")
Touch = Callable[[int], None]


class ChangeLog:
    """Positions of changes, per book the last one. ``epoch`` names this log: it is new at
    every process start and every reset, and a position means nothing under another epoch."""

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self.position = 0
        self._last: dict[int, int] = {}  # book -> position of its last change, oldest first

    def touch(self, book_id: int) -> None:
        self.position += 1
        self._last.pop(book_id, None)
        self._last[book_id] = self.position

    def page(self, base: int, most: int) -> tuple[list[int], int, bool]:
        """The oldest ``most`` books changed after ``base``, the position they bring a reader
        to, and whether more changes follow: a whole catalog (``base`` 0) travels in pages, so
        that no message holds more than ``most`` books, however large the catalog."""
        found = list(self._after(base))
        if len(found) <= most:
            return [book_id for _at, book_id in found], self.position, False
        chunk = sorted(found)[:most]
        return [book_id for _at, book_id in chunk], chunk[-1][0], True

    def since(self, position: int) -> list[int]:
        """The books changed after ``position``."""
        return [book_id for _at, book_id in self._after(position)]

    def _after(self, position: int) -> Iterator[tuple[int, int]]:
        """(position, book) of each change after ``position``, newest first: walked from the
        newest, so it costs the changes, not the books."""
        for book_id, at in reversed(self._last.items()):
            if at <= position:
                return
            yield at, book_id


class TouchingDict(dict[int, V]):
    """A dict keyed by book id that tells ``touch`` of every key it sets or drops."""

    def __init__(self, touch: Touch, items: Iterable[tuple[int, V]] | dict[int, V] = ()) -> None:
        super().__init__(items)
        self._touch = touch

    def __setitem__(self, key: int, value: V) -> None:
        super().__setitem__(key, value)
        self._touch(key)

    def __delitem__(self, key: int) -> None:
        super().__delitem__(key)
        self._touch(key)

    def pop(self, key: int, *default: Any) -> Any:
        had = key in self
        value = super().pop(key, *default)
        if had:
            self._touch(key)
        return value

    def setdefault(self, key: int, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        keys = list(self)
        super().clear()
        for key in keys:
            self._touch(key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def popitem(self) -> tuple[int, V]:
        key, value = super().popitem()
        self._touch(key)
        return key, value

    def __ior__(self, other: Any) -> TouchingDict[V]:  # type: ignore[override,misc]
        self.update(other)
        return self


class TouchingSet(set[int]):
    """A set of book ids that tells ``touch`` of every id it adds or drops."""

    def __init__(self, touch: Touch, items: Iterable[int] = ()) -> None:
        super().__init__(items)
        self._touch = touch

    def add(self, item: int) -> None:
        if item not in self:
            super().add(item)
            self._touch(item)

    def discard(self, item: object) -> None:
        if isinstance(item, int) and item in self:
            super().discard(item)
            self._touch(item)

    def remove(self, item: int) -> None:
        super().remove(item)
        self._touch(item)

    def clear(self) -> None:
        items = list(self)
        super().clear()
        for item in items:
            self._touch(item)

    def update(self, *others: Iterable[int]) -> None:
        for other in others:
            for item in other:
                self.add(item)

    def __ior__(self, other: Any) -> TouchingSet:  # type: ignore[override,misc]
        self.update(other)
        return self

    def pop(self) -> int:
        item = super().pop()
        self._touch(item)
        return item

    def difference_update(self, *others: Iterable[Any]) -> None:
        for other in others:
            for item in list(other):
                self.discard(item)

    def intersection_update(self, *others: Iterable[Any]) -> None:
        kept = set(self).intersection(*others)
        for item in [item for item in self if item not in kept]:
            self.discard(item)

    def symmetric_difference_update(self, other: Iterable[int]) -> None:
        for item in set(other):
            if item in self:
                self.discard(item)
            else:
                self.add(item)

    def __isub__(self, other: Any) -> TouchingSet:  # type: ignore[misc]
        self.difference_update(other)
        return self

    def __iand__(self, other: Any) -> TouchingSet:  # type: ignore[misc]
        self.intersection_update(other)
        return self

    def __ixor__(self, other: Any) -> TouchingSet:  # type: ignore[override,misc]
        self.symmetric_difference_update(other)
        return self


@dataclass
class View:
    """Another replica's word on every book, put together from the deltas it sent: its log's
    epoch and the position its last delta reached, and per book what that delta said."""

    epoch: str = ""
    position: int = 0
    #: Every book of this epoch has been told (a chain of deltas from position 0 got to the
    #: end of the log once); ``current``: and the last delta reached the end of it, so every
    #: entry is the owner's word as of that delta. Rows are compared, and a lease taken, only
    #: on a current view: a book not yet told, or changed after a page, might be ahead.
    whole: bool = False
    current: bool = False
    seqs: dict[int, int] = field(default_factory=dict)
    #: Per book, the checksum of its row, or None where it compares none (unconfirmed, in flight).
    sums: dict[int, str | None] = field(default_factory=dict)
    unverified: set[int] = field(default_factory=set)
    witnessed: dict[int, tuple[int, str]] = field(default_factory=dict)
    buy_counts: dict[int, int] = field(default_factory=dict)
    buy_digests: dict[int, str] = field(default_factory=dict)

    def heard(self) -> tuple[str, int]:
        """What a message to its owner says we hold of its log."""
        return self.epoch, self.position

    def takes(self, epoch: str, base: int) -> bool:
        """Whether a delta of ``epoch`` from ``base`` applies on top of what we hold."""
        return base == 0 or (epoch == self.epoch and base <= self.position)

    def reached(self, epoch: str, base: int, position: int, more: bool) -> None:
        """A delta of ``epoch`` from ``base`` to ``position`` has been put in (``more``: it was
        cut short). Entries of another epoch are kept until overwritten: a book not yet told
        again is taken as ahead where it was, and compares nothing until the view is whole."""
        if base == 0:
            self.whole = False  # a chain from the start: whole once it reaches the end
        self.epoch, self.position = epoch, position
        self.whole = self.whole or not more
        self.current = self.whole and not more

    def forget(self) -> None:
        """Hold nothing: the next message to its owner asks for everything."""
        self.epoch, self.position = "", 0
        self.whole = self.current = False


@dataclass
class Marks:
    """Per peer, what still needs a look and up to where our own log was looked at: the books
    we may be ahead of it on (``owed``: newer rows to hand it), those it may be ahead of us on
    (``ahead``: not vouched for when taking its lease) and those whose buys may differ."""

    owed: set[int] = field(default_factory=set)
    owed_at: tuple[str, int] = ("", 0)
    ahead: set[int] = field(default_factory=set)
    ahead_at: tuple[str, int] = ("", 0)
    buys: set[int] = field(default_factory=set)
    buys_at: tuple[str, int] = ("", 0)
    #: Per book, the rounds in a row its buys were not fetched, the peer holding fewer
    #: (``catch_up._fetch_buys``, FETCH_DEFER_ROUNDS).
    deferred: dict[int, int] = field(default_factory=dict)


def look(log: ChangeLog, every: Iterable[int], at: tuple[str, int]) -> Iterator[int]:
    """The books changed in ``log`` since ``at`` (every book when ``at`` is of another epoch)."""
    epoch, position = at
    if epoch != log.epoch or position <= 0:
        yield from every
    else:
        yield from log.since(position)

"""The front-end's LRU caches (lookups by id, searches by topic) with invalidation.

An invalidation also voids every fetch that started before it: such a fetch may carry the
old copy, so ``put`` with an older ticket is dropped rather than cached stale. A fetch of one
key (a lookup of a book) takes a ticket of that key, voided only by an invalidation of that key
or a clear: only a write of its own book can make it stale. Under full load (~100 writes a
second) an invalidation of some book came during most lookups' fetches, so most fetched copies
were dropped, and a book's next lookups went to a catalog again (issue 28). A search's answer
holds many books: its ticket is voided by any invalidation.

An invalidation may also name the ``seq`` of the write behind it. Catalogs send it while the
write is still reaching the other replicas (it costs the buy no extra round), so a fetch
that starts after it may still meet a replica with the old copy: from then on no copy of
that key older than ``seq`` is cached (its *floor*).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

MAX_FLOORS = 10_000  # far more than there are books; bounds what a flood of invalidations can cost
#: What ``ticket`` hands out: the epoch, or for one key (clears, that key's last invalidation).
Ticket: TypeAlias = int | tuple[int, int]


@dataclass
class Entry:
    value: Any
    topics: frozenset[str] = field(default_factory=frozenset)


class Emitter(Protocol):
    """Where a cache says what it did (a core's ``emit``, or a node's telemetry)."""

    def emit(self, kind: str, **fields: Any) -> None: ...


class LruCache:
    def __init__(self, name: str, capacity: int, telemetry: Emitter) -> None:
        self.name = name
        self.capacity = capacity
        self.telemetry = telemetry
        self.entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self.epoch = 0
        self.generation = 0  # moves on when the floors are forgotten (a reset): seqs start again
        self.floors: OrderedDict[Hashable, int] = OrderedDict()  # key -> lowest seq still cacheable
        self.cleared = 0  # moves on with every invalidation of more than one key
        #: key -> the epoch of its last invalidation (a stamp never handed out again); one
        #: forgotten reads 0, so forgetting one voids every per-key ticket (``cleared``)
        self.stamps: OrderedDict[Hashable, int] = OrderedDict()
        self.hits = self.misses = self.evictions = self.invalidations = 0

    def _event(self, op: str, key: Hashable) -> None:
        self.telemetry.emit("cache", cache=self.name, op=op, key=key)

    def get(self, key: Hashable) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            self._event("miss", key)
            return None
        self.entries.move_to_end(key)
        self.hits += 1
        self._event("hit", key)
        return entry

    def floor(self, key: Hashable) -> int:
        """The seq of the newest write announced for ``key`` (-1: none)."""
        return self.floors.get(key, -1)

    def ticket(self, key: Hashable | None = None) -> Ticket:
        """Taken before a fetch; ``put`` with it is ignored if an invalidation came between: of
        any key, or with ``key`` (the one the fetch is of), of that key or of many at once."""
        return self.epoch if key is None else (self.cleared, self.stamps.get(key, 0))

    def put(self, key: Hashable, value: Any, ticket: Ticket, topics: frozenset[str] = frozenset(),
            seq: int | None = None) -> None:
        current = (self.cleared, self.stamps.get(key, 0)) if isinstance(ticket, tuple) else self.epoch
        if self.capacity <= 0 or ticket != current:
            return
        if seq is not None and seq < self.floors.get(key, -1):
            return  # older than a write already announced: the next fetch will find the new one
        self.entries[key] = Entry(value, topics)
        self.entries.move_to_end(key)
        self._event("insert", key)
        while len(self.entries) > self.capacity:
            evicted, _ = self.entries.popitem(last=False)
            self.evictions += 1
            self._event("evict", evicted)

    def invalidate(self, key: Hashable, seq: int | None = None) -> None:
        self.epoch += 1
        self.stamps[key] = self.epoch
        self.stamps.move_to_end(key)
        if len(self.stamps) > MAX_FLOORS:
            self.stamps.popitem(last=False)
            self.cleared += 1  # a key forgotten reads 0 again: a ticket taken before its stamp would match
        if seq is not None and seq > self.floors.get(key, -1):
            self.floors[key] = seq
            self.floors.move_to_end(key)
            if len(self.floors) > MAX_FLOORS:
                self.floors.popitem(last=False)
        if self.entries.pop(key, None) is not None:
            self.invalidations += 1
            self._event("invalidate", key)

    def invalidate_topic(self, topic: str) -> None:
        self.epoch += 1
        self.cleared += 1
        wanted = topic.casefold()
        for key in [k for k, entry in self.entries.items() if wanted in entry.topics]:
            del self.entries[key]
            self.invalidations += 1
            self._event("invalidate", key)

    def clear(self, *, floors: bool = True) -> None:
        """Drop every entry, and the floors too unless told not to (a reset puts every seq
        back to 0; a lapsed lease does not, and the floors still keep older copies out)."""
        self.epoch += 1
        self.cleared += 1
        if floors:
            self.floors.clear()
            self.generation += 1
        for key in list(self.entries):
            del self.entries[key]
            self.invalidations += 1
            self._event("invalidate", key)

    def describe(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "keys": list(reversed(self.entries)),  # most recently used first
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "invalidations": self.invalidations,
        }

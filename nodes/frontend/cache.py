"""The front-end's LRU caches (lookups by id, searches by topic) with invalidation.

An invalidation also voids every fetch that started before it: such a fetch may carry the
old copy, so ``put`` with an older ticket is dropped rather than cached stale.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from ..shared.telemetry import Telemetry


@dataclass
class Entry:
    value: Any
    topics: frozenset[str] = field(default_factory=frozenset)


class LruCache:
    def __init__(self, name: str, capacity: int, telemetry: Telemetry) -> None:
        self.name = name
        self.capacity = capacity
        self.telemetry = telemetry
        self.entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self.epoch = 0
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

    def ticket(self) -> int:
        """Taken before a fetch; ``put`` with it is ignored if an invalidation came between."""
        return self.epoch

    def put(self, key: Hashable, value: Any, ticket: int, topics: frozenset[str] = frozenset()) -> None:
        if self.capacity <= 0 or ticket != self.epoch:
            return
        self.entries[key] = Entry(value, topics)
        self.entries.move_to_end(key)
        self._event("insert", key)
        while len(self.entries) > self.capacity:
            evicted, _ = self.entries.popitem(last=False)
            self.evictions += 1
            self._event("evict", evicted)

    def invalidate(self, key: Hashable) -> None:
        self.epoch += 1
        if self.entries.pop(key, None) is not None:
            self.invalidations += 1
            self._event("invalidate", key)

    def invalidate_topic(self, topic: str) -> None:
        self.epoch += 1
        wanted = topic.casefold()
        for key in [k for k, entry in self.entries.items() if wanted in entry.topics]:
            del self.entries[key]
            self.invalidations += 1
            self._event("invalidate", key)

    def clear(self) -> None:
        self.epoch += 1
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

"""A catalog replica inside a real process: the pure core of ``protocol.py`` driven by
aiohttp, SQLite and asyncio (``nodes/runtime/driver.py``), with its heartbeat running for the
process's life and resets to a newer generation carried out when the core meets one."""
from __future__ import annotations

import asyncio
import gc
import time
import uuid
from typing import Any

from nodes.core.catalog import BUY_WINDOW_S, CatalogReplica, rules_for
from nodes.runtime.catalog.store import CatalogStore
from nodes.runtime.driver import Driver
from nodes.runtime.node import Node
from nodes.runtime.tasks import cancel_and_wait


class ReplicaNode:
    def __init__(self, node: Node, store: CatalogStore, addresses: list[str], *, frontend: str | None,
                 mode: str = "bazar", consistency: str | None = None, seed: int | None = None,
                 peer_order: list[int] | None = None, buy_window_s: float = BUY_WINDOW_S) -> None:
        self.core = CatalogReplica(
            node.index, len(addresses), has_frontend=bool(frontend), rules=rules_for(mode, consistency=consistency),
            seed=seed, peer_order=peer_order, nonce=uuid.uuid4().hex[:8], timeout_s=node.timeouts.total,
            buy_window_s=buy_window_s,
        )
        names = {f"catalog{i}": address for i, address in enumerate(addresses)}
        if frontend:
            names["frontend"] = frontend
        self.driver = Driver(self.core, node, names, store)
        self.store = store
        self._heartbeat: asyncio.Task | None = None
        self._reset: asyncio.Task | None = None

    async def start(self) -> None:
        await self.driver.run(self.core.start())
        freeze_what_is_loaded()
        if self.core.peers:
            self._heartbeat = asyncio.create_task(self.run(self.core.heartbeat()), name="heartbeat")

    async def stop(self) -> None:
        await cancel_and_wait(self._heartbeat)
        await cancel_and_wait(self._reset)
        self.driver.close()
        self.store.close()

    async def run(self, operation: Any) -> Any:
        """Run one core operation; then, if it met a newer generation of the data (a reset
        this replica missed), reset to it in the background."""
        try:
            return await self.driver.run(operation)
        finally:
            pending = self.core.pending_reset
            if pending is not None and (self._reset is None or self._reset.done()):
                self._reset = asyncio.create_task(self.reset(pending), name="reset-to-newer-generation")

    async def reset(self, generation: int | None = None) -> None:
        await self.driver.run(self.core.reset(time.time_ns() if generation is None else generation))
        freeze_what_is_loaded()
        self.driver.node.emit_snapshot()

    def describe(self, books: str = "rows") -> dict[str, Any]:
        self.driver.feed_time()
        return self.core.describe(books)

    def contact(self) -> None:
        self.driver.feed_time()
        self.core.contact()


def freeze_what_is_loaded() -> None:
    """Every book's row loaded at start (or reset) out of the garbage collector's sight: a full
    collection went over 100,000 of them each time, 40-90 ms during which the replica answered
    nothing (the lookup p99 of a large catalog), and they are freed by their counts all the
    same once a write replaces them (a row refers to nothing that could make a cycle). What an
    earlier freeze kept is looked at again first: a reset's rows replace the start's, and
    whatever else was alive then (a request's objects) may since have become garbage."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()

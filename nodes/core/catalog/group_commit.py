"""Group commit: buys of one book that arrive while a write of it is under way wait, and ride
together on the next write round — one check round and one update carry them all, each
answered with the round's outcome (docs/weak-points.md, W1: "Group commit")."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from nodes.core.catalog.buys import Buys
from nodes.core.catalog.state import Rider, WriteAnswer
from nodes.core.messages import (
    Conflict,
    Write,
    Written,
)

#: The most buys one round carries.
MAX_RIDERS = 32


def can_ride(request: Write) -> bool:
    """A buy (an id, copies to take, nothing else changed) may share a round with others."""
    return (request.buy_id is not None and request.take is not None and request.quantity is not None
            and request.price is None)


def seat(rider: Rider) -> tuple[str, int]:
    """A boarded rider's buy id and copies (``can_ride`` made sure it has both)."""
    return rider.request.buy_id or "", rider.request.take or 0


class GroupCommit(Buys):
    """Riders: boarding a round, leaving it, and sharing its answer."""

    def _copies_left(self, book_id: int, changes: dict[str, Any], take: int | None) -> int | None:
        """The stock a buy's write leaves: buys take their copies from the current copy, which
        the check round just showed no peer is ahead of. One computed from an older copy
        (another buy landed first) is carried out, where refusing it would cost a re-read, a
        retry and a round. None for a write that sets its own values (or on a tentative copy)."""
        if take is not None and set(changes) == {"quantity"} and book_id not in self.tentative:
            return self.books[book_id].quantity - take
        return None

    async def _ride(self, book_id: int, request: Write) -> WriteAnswer | None:
        """Wait for a round under way to carry ``request``: its answer, or None when the book
        came free and no round took it (then it leads the next one itself)."""
        rider = Rider(request)
        self.riders.setdefault(book_id, []).append(rider)
        try:
            # Until a round carries it (its answer is handed over at once, whoever takes
            # the lock next), or the book is free and no round took it: then it leads.
            while rider.answer is None and book_id in self._locked:
                await self.waiters.wait(("lock", book_id), float("inf"))
        finally:
            self._unboard(book_id, [rider])  # carried, leading, or its caller gave up
        return rider.answer

    def _board(self, book_id: int, leader: Write) -> list[Rider]:
        """The buys waiting for this book that can ride on the leader's round: not already
        done or unconfirmed here, each once, as many as the stock allows."""
        waiting = self.riders.get(book_id)
        if not waiting:
            return []
        room = self.books[book_id].quantity - (leader.take or 0)
        seen, unconfirmed, boarded = {leader.buy_id}, self._tentative_buys(), list[Rider]()
        for rider in waiting:
            buy = rider.request.buy_id
            take = rider.request.take or 0
            if (len(boarded) < MAX_RIDERS and take <= room and buy not in seen and buy not in self.buys
                    and buy not in unconfirmed):
                boarded.append(rider)
                seen.add(buy)
                room -= take
        self._unboard(book_id, boarded)
        return boarded

    def _unboard(self, book_id: int, riders: list[Rider]) -> None:
        left = [r for r in self.riders.get(book_id, []) if all(r is not gone for gone in riders)]
        if left:
            self.riders[book_id] = left
        else:
            self.riders.pop(book_id, None)

    def _share(self, book_id: int, answer: WriteAnswer, buy_id: str | None, riders: list[Rider]) -> WriteAnswer:
        """The round's answer for the leader; each rider's in ``rider.answer``, and the riders
        woken to take it. A buy a peer knew as done is answered done alone; the others of
        that round try again."""
        mine = answer
        if isinstance(answer, Written) and answer.duplicate:
            known = answer.of or buy_id
            done, again = replace(answer, of=None), Conflict(self.books[book_id], "busy")
            mine = done if buy_id == known else again
            for rider in riders:
                rider.answer = done if rider.request.buy_id == known else again
        else:
            for rider in riders:
                rider.answer = answer
        if riders:
            self.waiters.notify(("lock", book_id))
        return mine

"""docs/protocol.md's write to the letter (docs/protocol.md, S4 and S5): check unless valid, take
a newer copy and answer 409, else fan out the update to whoever answers; a peer answers a
check with its copy when newer and applies an update when newer. Nothing is reserved and no
buy id travels, so two writers can both pass (W1). A replica runs it when its rules lack
``Rule.RESERVED_WRITES`` (the simulator's documented mode)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from nodes.core.books import Book
from nodes.core.catalog.leases import Leases
from nodes.core.effects import Disk, Gather
from nodes.core.messages import (
    Applied,
    Check,
    Conflict,
    Granted,
    Newer,
    Update,
    Written,
)


class Documented(Leases):
    """The documented write, and the documented answers to its check and update."""

    async def _documented_write(self, book_id: int, changes: dict[str, Any]) -> Written | Conflict:
        """docs/protocol.md's write as written: check unless valid, take a newer copy and answer
        409, else fan out to whoever answers. Two writers can both pass (W1)."""
        generation = self.generation
        if book_id not in self.valid_ids:
            own = self.books[book_id]
            check = Check(book_id, own.seq, self.index, "documented")
            replies = await Gather([self._send(p, check) for p in self.peers])
            newer = [r.book for r in replies if isinstance(r, Newer)]
            if newer:
                await self._adopt(max(newer, key=lambda b: b.seq), generation=generation)
                self._mark_valid(book_id)
                return Conflict(self.books[book_id], "outdated")
        current = self.books[book_id]
        new = replace(current, seq=current.seq + 1, **changes)
        update = Update(new, self.index, "documented")
        await Gather([self._send(p, update) for p in self.peers])
        await Disk("write", new, [])
        self.books[book_id] = new
        self._mark_valid(book_id)
        self._emit_seq(new)
        await self._invalidate_frontend(new)
        return Written(new)

    def _documented_check(self, book_id: int, message: Check) -> Newer | Granted:
        """A check's answer: our copy if it is newer than the writer's, else go ahead."""
        own = self.books[book_id]
        return Newer(own) if own.seq > message.seq_n else Granted(own.seq)

    async def _documented_update(self, copy: Book, own: Book) -> Applied:
        """An update is taken when newer, and the book is valid here from then on."""
        if copy.seq > own.seq:
            await self._adopt(copy)
        self._mark_valid(copy.id)
        return Applied(self.books[copy.id].seq)

"""Reads (S1–S3 of docs/protocol.md): a valid copy is answered at once; otherwise the read
hops through ``Get`` carrying ``req`` (replicas already in the chain) and ``seq_n`` (the
highest seq seen) until a replica vouches for a current copy, and known-down peers are asked
last or not at all (``Rule.SKIP_DOWN_PEERS``, W4)."""
from __future__ import annotations

import heapq
import itertools

from nodes.core.books import Book
from nodes.core.catalog.leases import Leases
from nodes.core.catalog.rules import Rule
from nodes.core.catalog.state import HOP_HEDGE_S, HOP_TIMEOUT_S, ROUND_WAIT_S, Peer
from nodes.core.effects import Hedged, NoAnswer, Send
from nodes.core.messages import (
    UNCONFIRMED_BUY,
    Conflict,
    Degraded,
    Found,
    Get,
    KnownBuy,
    ReusedBuyId,
)


class Reads(Leases):
    """Lookups and searches, and the hops of a read that cannot answer alone."""

    def search(self, topic: str, limit: int | None = None, offset: int = 0) -> list[Book]:
        """Every book whose topic holds ``topic``, from our own copies, in the order of their
        ids; with ``limit``, that many from the ``offset``-th on. Titles and topics never
        change, so the books are indexed by topic once per set of rows (start, reset): a search
        reads the distinct topics and the books of its page, not every book of a large catalog."""
        needle = topic.casefold()
        if self._topic_index is None or self._topic_index[0] is not self.books:
            by_topic: dict[str, list[int]] = {}
            for book_id in sorted(self.books):
                by_topic.setdefault(self.books[book_id].topic.casefold(), []).append(book_id)
            self._topic_index = (self.books, by_topic)
        # Each topic's ids are in order already: merging them reads a page's worth, no more.
        found = heapq.merge(*(ids for name, ids in self._topic_index[1].items() if needle in name))
        page = itertools.islice(found, offset, None if limit is None else offset + limit)
        return [self.books[i] for i in page]

    async def read(self, book_id: int,
                   buy_id: str | None = None) -> Found | KnownBuy | Conflict | ReusedBuyId | Degraded:
        """A lookup, or a buy's read (``buy_id``): a buy done already is answered as such (W7),
        and an id already used for another book is refused."""
        self.book(book_id)  # unknown before any hop: every replica holds the same books (W5)
        await self._await_round(book_id)
        if (reused := self._reused(buy_id, book_id)) is not None:
            return reused
        if buy_id is not None and buy_id in self._tentative_buys():
            return Conflict(None, UNCONFIRMED_BUY)
        if buy_id is not None and buy_id in self.buys:
            return await self._known_buy(buy_id, book_id)  # W7: that buy is done already
        if self._trusted_valid(book_id):
            return Found(self.books[book_id])
        found, copy = await self._hop(book_id, asked=(), upstream_seq=-1)
        if not found and self.out_of_touch():
            # W4: our lease has lapsed and no peer answered: "try again" would send the caller
            # back to us. Said as 503, it asks another replica; an order replica of ours read
            # again and again for its whole retry budget (3 s, traced under load with catalog1
            # partitioned, 2026-12-05). The hops are made all the same: a peer back a moment
            # ago (healed, not yet heard by our heartbeat) answers them.
            return Degraded(f"catalog{self.index} is out of touch with every other catalog replica")
        if not found:
            return Conflict(copy, "No replica could vouch for a current copy; try again")
        if (reused := self._reused(buy_id, book_id)) is not None:
            return reused  # the hops brought the buy in with another book's copy
        if buy_id is not None and buy_id in self.buys:
            return await self._known_buy(buy_id, book_id)
        return Found(copy)

    async def _await_round(self, book_id: int) -> None:
        """A book held reserved here is in a write's round (ours, or a peer's we granted), and
        our copy vouched for by no one until its update lands: a read of it waits for the
        round to end here, ``ROUND_WAIT_S`` at most, and then reads as it would have. Waiting
        changes no answer (the read is as one that came that much later); it saves the hops a
        read makes while every copy is unvouched for. Under full load with catalog1 hung, the
        front-end's cache off (its lease lapsed), a read hopped for one lookup in three, and
        one in eight came back "try again" to be sent to the next replica: ~4x the hops and
        a quarter less throughput than before the writer stopped vouching during its own
        fan-out (W2; measured 2026-12-07, issue 28)."""
        held = self.reservations.get(book_id)
        if (Rule.RESERVED_WRITES in self.rules and self._holds(held) and not self._trusted_valid(book_id)):
            assert held is not None
            waiter = self.waiters.wait(("released", book_id), min(self.now + ROUND_WAIT_S, held.expires))
            if not await waiter:
                self.waiters.drop(waiter)

    async def on_get(self, message: Get) -> Found | Conflict:
        """A hop of another replica's read (S2, S3): answer if valid, else hop on."""
        self.book(message.book)
        if self._trusted_valid(message.book):
            return Found(self.books[message.book])
        found, copy = await self._hop(message.book, asked=message.req + (message.sender,),
                                      upstream_seq=message.seq_n)
        if found:
            return Found(copy)
        # ``copy`` is ours; a write of ours out names a newer seq this path has seen, as in ``_hop``.
        return Conflict(copy, "Conflict: no current copy on this path", seq=self._newest_seq(message.book))

    async def _hop(self, book_id: int, *, asked: tuple[int, ...], upstream_seq: int) -> tuple[bool, Book]:
        """Ask the peers not yet in the chain, one after another, until one vouches for a copy:
        (found, the copy). ``upstream_seq``: the highest seq the chain has seen so far.

        Hedged ("The Tail at Scale"): a peer that has not answered within the hedge
        (``_hop_hedge``) is not waited for alone — the next one is asked too, its ``Get``
        naming the first as asked, exactly as it would be once the first had timed out; a peer
        that fails at once (refused) has the next asked at once, as before. A vouched copy
        decides at once, whichever send it answers; a conflict ends the sending but not the
        waiting, since a slower peer may still vouch (a quick conflict taken at once answered
        "try again" where the chain answered the copy: review, 2026-12-07). So every outcome is
        one the chain could give with the peers before it timed out or answering. A peer that
        went silent a moment before the heartbeat noticed cost each read that asked it its
        whole time-out (0.6 s under load, catalog1 hung: lookups of 0.85 s, traced
        2026-12-07); now it costs the hedge."""
        # A write of ours still out names a seq the chain has seen: no replica further down may
        # decide with a copy older than it (W2, a writer's own old copy).
        highest = max(upstream_seq, self._newest_seq(book_id))
        left = [p for p in self.peers if p.index not in asked]
        if Rule.SKIP_DOWN_PEERS in self.rules and self.lease_ok():
            # W4: known-down peers are not waited for. Not so when our own lease has lapsed:
            # then we may be the one that was away (W2), and only the peers can tell us.
            left = [p for p in left if p.up]
        generation = self.generation
        asked_first = asked
        order: list[Peer] = []
        while left:
            order.append(self._choose(left))
            left.remove(order[-1])
        sends = []
        for next_peer in order:
            # The peer may hop on to every replica not in the chain yet, whatever we know of
            # them: the time-out leaves room for each of those hops' own (HOP_TIMEOUT_S). An
            # unreachable peer travels on in ``req`` so that no one further down the chain
            # waits for it again (W4); so does one the hedge went past.
            unasked = sum(1 for p in self.peers if p.index not in asked)
            sends.append(self._send(next_peer, Get(book_id, asked, self.index, highest),
                                    timeout=min(self.timeout_s, HOP_TIMEOUT_S * unasked)))
            asked = asked + (next_peer.index,)
        hedged = Hedged(sends, self._hop_hedge(sends, asked_first), accept=lambda answer: isinstance(answer, Found),
                        final=lambda answer: isinstance(answer, Conflict))
        answers = await hedged if sends else []
        found: list[tuple[Peer, Found]] = []
        conflicts: list[Conflict] = []
        for asked_peer, answer, sent in zip(order, answers, hedged.sent_at, strict=False):
            if isinstance(answer, Found | Conflict):
                self._note_reachable(asked_peer)
                if isinstance(answer, Found):
                    found.append((asked_peer, answer))
                else:
                    conflicts.append(answer)
            elif isinstance(answer, NoAnswer):
                self._note_unreachable(asked_peer, answer, sent=sent)
            elif answer is not None:
                self._note_unreachable(asked_peer)  # answered, but not with the protocol
        if not self.same_generation(generation):
            return False, self.books[book_id]  # the data was reset meanwhile: no answer of the old
        peer, reply = found[0] if found else (None, max(conflicts, key=_conflict_seq, default=None))
        if isinstance(reply, Found):
            assert peer is not None
            await self._adopt(reply.book, generation=generation)
            if not self.same_generation(generation):
                return False, self.books[book_id]  # reset while the copy was being stored (review)
            if self.books[book_id].seq < reply.book.seq:
                # Not stored here (our disk refuses commits): the peer's copy is the answer,
                # and ours, older, stays unvouched for.
                return True, reply.book
            if book_id in self.tentative and self.books[book_id].seq >= reply.book.seq:
                # Ours is an unconfirmed write, not handed on (W2, docs/weak-points.md): the
                # peer vouches for its copy, which may be another write of the same seq.
                return True, reply.book
            if reply.book.seq == self.books[book_id].seq and reply.book != self.books[book_id]:
                # The peer vouches for another row of our seq: ours was changed behind our
                # back (a vouched-for copy came through the protocol). Replaced by theirs.
                self._take_as_damaged(book_id, f"differs from catalog{peer.index}'s vouched copy at "
                                               f"seq {reply.book.seq}")
                await self._adopt(reply.book, generation=generation)
                if not self.same_generation(generation):
                    return False, self.books[book_id]
                return True, reply.book
            if reply.book.seq == self.books[book_id].seq:
                self.unverified.discard(book_id)  # a vouched-for copy of our seq matches ours
            elif book_id in self.unverified or book_id in self.disputed:
                # Ours is newer than the copy the peer vouches for, but nobody has confirmed
                # it: a row changed on disk, checksum and all, is handed to no one. The
                # peer's copy is the answer (simulator seed 2033306536: a replica back with
                # such a row answered it to a hop, the peer it asked vouching for the seq
                # before a write it was still sending out).
                return True, reply.book
            if reply.book.seq >= self.books[book_id].seq:
                self._mark_valid(book_id)
            return True, self.books[book_id]
        if isinstance(reply, Conflict):
            # S3: a conflict from further down. Our own copy is current when it is newer
            # than anything upstream, or the replica that answered, has seen; otherwise pass
            # the conflict on. (A replica whose disk refused the last writes, still holding
            # a lease, took a conflict from a peer at seq 9 as leave to vouch for its seq 5:
            # simulator seed 27 with the disk fault.)
            seen = upstream_seq if Rule.LEASES not in self.rules else max(upstream_seq, _conflict_seq(reply))
            if self.books[book_id].seq > seen and self._own_copy_may_decide(book_id):
                self._mark_valid(book_id)
                return True, self.books[book_id]
            return False, self.books[book_id]
        # No peer left: the last replica decides (cold start S1, total failure S3) — unless its
        # copy is an unconfirmed write of its own, which it hands to no one.
        if self.books[book_id].seq >= upstream_seq and self._own_copy_may_decide(book_id):
            self._mark_valid(book_id)
            return True, self.books[book_id]
        return False, self.books[book_id]

    def _hop_hedge(self, sends: list[Send], asked: tuple[int, ...]) -> float:
        """How long a hop's send waits alone before the next peer is asked too: ``HOP_HEDGE_S``
        for each replica beyond it that the peer may have to hop past itself (so a peer hedging
        past a silent replica of its own is not hedged past in turn), at least one. Without
        W4's rule, longer than any of its time-outs: the documents' chain, the next peer asked
        only once the last one failed."""
        if Rule.SKIP_DOWN_PEERS not in self.rules:
            return max((send.timeout for send in sends), default=0.0) + 1.0
        beyond = sum(1 for p in self.peers if p.index not in asked) - 1
        return HOP_HEDGE_S * max(1, beyond)

    def _own_copy_may_decide(self, book_id: int) -> bool:
        """Whether our copy may end a read: not an unconfirmed write of ours (handed to no one,
        W2), not a row that failed its checksum or differs from a peer's of its seq (served to no
        one, until repaired), and not one no peer has confirmed since start; and only while our
        lease holds. A replica whose lease has lapsed may be the one writes left out (W2); when
        no peer it asked could vouch, its copy is no answer. Without this a replica cut off by
        one partition, healed for 120 ms, then cut off with the front-end by the next, found
        every peer silent and answered its old copy as "the last replica" (simulator seed
        2028704065); the marks said "not valid" all along."""
        return (self.lease_ok() and book_id not in self.tentative and book_id not in self.damaged
                and book_id not in self.disputed and book_id not in self.unverified
                and not self._known_older(book_id))

    def _choose(self, candidates: list[Peer]) -> Peer:
        """The next peer to ask: at random (seeded), or in ``peer_order`` when a scenario set one."""
        up = [p for p in candidates if p.up] or candidates  # W4: known-down peers go last
        if self.peer_order is not None:
            rank = {index: position for position, index in enumerate(self.peer_order)}
            return min(up, key=lambda p: rank.get(p.index, len(rank) + p.index))
        return self.rng.choice(up)


def _conflict_seq(conflict: Conflict) -> int:
    """The highest seq a conflict from further down the chain has seen."""
    return max(conflict.seq if conflict.seq is not None else -1, conflict.book.seq if conflict.book is not None else -1)

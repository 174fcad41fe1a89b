"""The buys a replica remembers (W7): which buy ids it applied, per book their count and a
digest for comparing with a peer's, and when each may be answered as done (``buy_settles``).
One buy id names one buy: a retry of it is answered its first outcome, and the same id for
another book is refused."""
from __future__ import annotations

import heapq
from collections.abc import Iterable

from nodes.core.books import Book
from nodes.core.catalog.rules import Rule
from nodes.core.catalog.state import BUY_BUCKETS, LEASE_S, ReplicaState, buy_hash
from nodes.core.clocks import NEVER, outwait
from nodes.core.messages import ReusedBuyId


class Buys(ReplicaState):
    """The state plus the buys it remembers, and the times before which they are not vouched for."""

    async def _adopt(self, copy: Book, buy_ids: tuple[str, ...] | list[str] = (),
                     generation: int | None = None, expiring: dict[str, float] | None = None, *,
                     tentative: bool = False) -> bool:
        """Store ``copy`` when it is newer than ours. True when it was. ``generation``: ours
        when the message that brought the copy was sent; a reset since makes it foreign.
        ``expiring``: the seconds left of the buys' retry windows, as the peer told them; a buy
        out of its window is not taken (``_lives``). ``tentative``: stored as an unconfirmed
        write (a peer's update no majority is known to hold yet, W8)."""
        if copy.seq <= self.books[copy.id].seq or not self.same_generation(generation):
            return False
        if copy.id in self.damaged and copy.seq < self._repair_floor(copy.id):
            return False  # older than the row it repairs: a write we held would be undone
        told = expiring or {}
        buy_ids = [b for b in buy_ids if self._lives(told, b)]
        if copy.id in self.unforgotten and not await self._stored("undo", copy, self.unforgotten[copy.id]):
            return False
        self.unforgotten.pop(copy.id, None)
        if not await self._stored("write", copy, list(buy_ids), tentative):
            return False  # not stored: not ours (a peer keeps offering it, catch-up brings it)
        if copy.seq <= self.books[copy.id].seq or not self.same_generation(generation):
            return False  # a newer one landed while we were writing, or a reset
        self.books[copy.id] = copy
        self.unverified.discard(copy.id)
        self.repair_floor.pop(copy.id, None)
        self.floor_unknown.discard(copy.id)
        if self.damaged.pop(copy.id, None) is not None:
            self.emit("repaired", book=copy.id, seq=copy.seq)
        for buy_id in buy_ids:
            self._remember_buy(buy_id, copy.id, copy.seq, told.get(buy_id))
        self._settle_after_grants(buy_ids)
        self._emit_seq(copy)
        return True

    def _peers_to_hold(self) -> int:
        """How many peers must hold a write beside this replica for a majority of the catalog
        replicas to hold it (W8): one in a cluster of three, and one without majority writes.
        A write fewer hold is unconfirmed, and may give way: the other side of a partition,
        once the writer falls silent to it, may make another write of that seq."""
        if Rule.MAJORITY not in self.rules:
            return 1
        return max(1, (len(self.peers) + 1) // 2)

    async def _confirm(self, book_id: int) -> None:
        """Enough peers hold our tentative write (``_peers_to_hold``), or its writer says they
        do (``Update.confirmed``): it is settled, and stays. Its buys are not vouched
        for as done for a lease's length: a peer that has not taken it yet may hold a lease, from
        any replica, on the copy before it, and every such lease runs out within LEASE_S of the
        holder's clock, so within ``outwait(LEASE_S)`` of ours (W2)."""
        entry = self.tentative.get(book_id)
        self.unverified.discard(book_id)  # a peer holds our very row
        if entry is not None and book_id in self.unstored:
            # Only in memory (our disk refused it): stored now, or it stays unconfirmed here.
            copy, buy_ids = entry[0].copy, list(entry[0].buy_ids)
            if self.books[book_id].seq <= copy.seq:
                stored = await self._stored("write", copy, buy_ids, False)
            else:  # a newer copy, built on it, came meanwhile: only its buys are ours to add
                stored = await self._stored("add_buys", book_id, [(b, copy.seq) for b in buy_ids])
            if not stored or self.tentative.get(book_id) is not entry:
                return
            self.unstored.discard(book_id)
            for buy_id in buy_ids:
                self._remember_buy(buy_id, book_id, copy.seq)
        elif entry is not None:
            await self._stored("confirm", book_id)  # not stored: settled again after a restart
        self.tentative.pop(book_id, None)
        if entry is not None and Rule.LEASES in self.rules:
            until = self.now + outwait(LEASE_S)
            for buy_id in entry[0].buy_ids:
                self.buy_settles[buy_id] = max(self.buy_settles.get(buy_id, NEVER), until)

    def _settling(self, buy_ids: Iterable[str]) -> dict[str, float]:
        """Of ``buy_ids``, those not to be vouched for as done yet, with the seconds left: sent
        along wherever buys are handed to a peer, which outwaits them (``_settle_as_told``)."""
        return {b: self.buy_settles[b] - self.now for b in buy_ids if self.buy_settles.get(b, NEVER) > self.now}

    def _settle_as_told(self, settling: dict[str, float], buy_ids: Iterable[str]) -> None:
        """A peer handed us ``buy_ids`` and told us how long each is not to be vouched for
        yet, as its clock counts: on ours, no sooner than ``outwait`` of that."""
        for buy_id in buy_ids:
            left = settling.get(buy_id, 0.0)
            if left > 0:
                self.buy_settles[buy_id] = max(self.buy_settles.get(buy_id, NEVER), self.now + outwait(left))

    def _settle_after_grants(self, buy_ids: tuple[str, ...] | list[str]) -> None:
        """Buys learnt with a copy adopted here (catch-up, a read's hop, a fetch, and a peer's
        update too: ``_adopt`` calls it for every copy it stores) are not vouched for as done
        before every read lease this replica granted has run out: a peer holding one may still
        vouch for the copy before them, and we cannot tell whether it has caught up (W2, W7).
        A lease we grant later does not cover the book for a peer behind us on it (it takes leases
        with our seqs, ``_take_lease``), so these are all there are. The price: a
        retry answered here waits up to a lease's length (LEASE_S) after the update."""
        horizon = max((peer.granted_until for peer in self.peers if not peer.refused), default=NEVER)
        if horizon > self.now:
            for buy_id in buy_ids:
                self.buy_settles[buy_id] = max(self.buy_settles.get(buy_id, NEVER), horizon)

    # ---- buys (W7) ------------------------------------------------------------------------------
    def _remember_buy(self, buy_id: str, book_id: int, seq: int, left: float | None = None) -> None:
        """The one place a buy enters memory, so the per-book counts pings compare stay exact.
        ``left``: the seconds left of its retry window, as the peer that handed it on told it;
        None: all of it (a buy carried out or taken with its write just now, or loaded at start)."""
        if buy_id not in self.buys:
            expires = self.now + (self.buy_window_s if left is None else min(left, self.buy_window_s))
            self.buy_expires[buy_id] = expires
            heapq.heappush(self.expiry_heap, (expires, buy_id))
            self.buys[buy_id] = (book_id, seq)
            self.buys_of.setdefault(book_id, {})[buy_id] = seq
            self.buy_count[book_id] += 1
            hashed = buy_hash(buy_id)
            self.buy_digest[book_id] ^= hashed
            bucket = (book_id, hashed % BUY_BUCKETS)
            self.bucket_digest[bucket] ^= hashed
            self.bucket_buys.setdefault(bucket, {})[buy_id] = seq
            self._touch(book_id)

    def _reused(self, buy_id: str | None, book_id: int) -> ReusedBuyId | None:
        """The refusal for a buy id remembered for another book: one id names one buy (W7), so
        the same id for another book is a mistake, not a retry, and must change nothing."""
        known = self.buys.get(buy_id) if buy_id is not None else None
        if buy_id is None or known is None or known[0] == book_id:
            return None
        return ReusedBuyId(buy_id, known[0])

    def _forget_buy(self, buy_id: str) -> None:
        """Undo _remember_buy, for a write withdrawn before anyone else took it."""
        found = self.buys.pop(buy_id, None)
        self.buy_expires.pop(buy_id, None)
        if found is not None:
            self.buys_of[found[0]].pop(buy_id, None)
            self.buy_count[found[0]] -= 1
            hashed = buy_hash(buy_id)
            self.buy_digest[found[0]] ^= hashed
            bucket = (found[0], hashed % BUY_BUCKETS)
            self.bucket_digest[bucket] ^= hashed
            held = self.bucket_buys[bucket]
            del held[buy_id]
            if not held:  # only the buckets that hold buys are kept
                del self.bucket_buys[bucket], self.bucket_digest[bucket]
            self._touch(found[0])

    def _buy_digest_of(self, book_id: int) -> str:
        """The digest of the buys remembered of a book but those of a write of it not confirmed
        yet (as pings answer it, and as we compare ours with a peer's)."""
        digest = self.buy_digest[book_id]
        entry = self.tentative.get(book_id)
        for buy_id in entry[0].buy_ids if entry is not None else ():
            if buy_id in self.buys:
                digest ^= buy_hash(buy_id)
        return f"{digest:016x}"

    def _bucket_digests_of(self, book_id: int, unsure: set[str] | None = None) -> tuple[int, ...]:
        """Per bucket, the digest of the buys remembered of a book but ``unsure`` ones (by
        default, those of a write of it not confirmed yet): what a fetch names, and what its
        answer compares with."""
        digests = [self.bucket_digest.get((book_id, bucket), 0) for bucket in range(BUY_BUCKETS)]
        if unsure is None:
            entry = self.tentative.get(book_id)
            unsure = set(entry[0].buy_ids) if entry is not None else set()
        for buy_id in unsure:
            if self.buys.get(buy_id, (None,))[0] == book_id:
                hashed = buy_hash(buy_id)
                digests[hashed % BUY_BUCKETS] ^= hashed
        return tuple(digests)

    def _buy_count_of(self, book_id: int) -> int:
        """How many buys of a book we remember but those of a write of it not confirmed yet (a
        tentative write's buys may not be remembered at all: the count may go below zero, as
        it always did, and compares all the same)."""
        entry = self.tentative.get(book_id)
        return self.buy_count[book_id] - (len(entry[0].buy_ids) if entry is not None else 0)

    def _tentative_buys(self) -> set[str]:
        """Buys of writes not confirmed yet: not handed on, since they may yet give way."""
        return {buy_id for update, _peers in self.tentative.values() for buy_id in update.buy_ids}

    # ---- the retry window (BUY_WINDOW_S) ---------------------------------------------------------
    def _expiring(self, buy_ids: Iterable[str]) -> dict[str, float]:
        """Of ``buy_ids``, the seconds left of each one's retry window: sent along wherever buys
        are handed to a peer, which forgets them no later (``Pong.expiring``)."""
        return {b: round(self.buy_expires[b] - self.now, 3) for b in buy_ids if b in self.buy_expires}

    def _lives(self, expiring: dict[str, float], buy_id: str) -> bool:
        """A buy a peer hands us is still inside its retry window: one it has run out of is not
        taken back (a peer that forgot it first would take it again, and again)."""
        return expiring.get(buy_id, self.buy_window_s) > 0

    async def _forget_expired(self, most: int = 5_000) -> int:
        """Forget, here and on disk, the buys whose retry window has run out (W7): not one a
        write of ours has not had confirmed, nor one not yet vouched for as done (they wait a
        round). A retry after it meets no memory of the buy: at a catalog replica it is a new
        buy; the order replica that recorded it answers it from its history all the same."""
        due: list[str] = []
        generation = self.generation
        held = self._tentative_buys() if self.tentative else set()
        while self.expiry_heap and self.expiry_heap[0][0] <= self.now and len(due) < most:
            expires, buy_id = heapq.heappop(self.expiry_heap)
            if self.buy_expires.get(buy_id) != expires:
                continue  # forgotten or remembered again since: a stale entry
            if buy_id in held or self.buy_settles.get(buy_id, NEVER) > self.now:
                self.buy_expires[buy_id] = self.now + 1.0
                heapq.heappush(self.expiry_heap, (self.now + 1.0, buy_id))
                continue
            due.append(buy_id)
        if not due:
            return 0
        if not await self._stored("expire", due):
            for buy_id in due:  # our disk takes nothing now: forgotten once it does
                if buy_id in self.buy_expires:
                    heapq.heappush(self.expiry_heap, (self.buy_expires[buy_id], buy_id))
            return 0
        forgotten = 0
        kept: dict[int, list[tuple[str, int]]] = {}
        for buy_id in due:
            until = self.buy_expires.get(buy_id)
            if until is None:
                continue  # forgotten meanwhile
            if until <= self.now:
                self._forget_buy(buy_id)
                forgotten += 1
                continue
            # Learnt again, its window anew, or our clock stepped back while the disk forgot it:
            # kept, on disk again, and due at its time. Without the heap entry it was never due
            # again and stayed for good (simulator seed 2034750382: a clock step of a few ms).
            heapq.heappush(self.expiry_heap, (until, buy_id))
            book_id, seq = self.buys[buy_id]
            kept.setdefault(book_id, []).append((buy_id, seq))
        for book_id, buys in sorted(kept.items()):
            if not self.same_generation(generation):
                break  # a reset since: these buys are no longer of the data on disk
            buys = [(b, seq) for b, seq in buys if self.buys.get(b) == (book_id, seq)]
            await self._stored("add_buys", book_id, buys)  # else a restart would lose it early
        return forgotten

"""Catch-up (W3, docs/weak-points.md) and the heartbeat: every HEARTBEAT_S a replica pings its
peers; a ping carries its seqs and is answered with every newer row (and the buys that made
it) and, when the pinger is as current, a lease (W2). A restarted replica catches up in the
background, and a write whose update got no answer (tentative) is offered again until a peer
confirms it or shows another (``Rule.CATCH_UP``)."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

from nodes.core.catalog.leases import Leases
from nodes.core.catalog.rules import Rule
from nodes.core.catalog.state import HEARTBEAT_S, LEASE_S, PING_TIMEOUT_S, Peer
from nodes.core.clocks import NEVER, outwait
from nodes.core.effects import Gather, Sleep
from nodes.core.messages import (
    Applied,
    BuysOf,
    Done,
    FetchBuys,
    Newer,
    OtherGeneration,
    Ping,
    Pong,
    Release,
)


class CatchUp(Leases):
    """The heartbeat, the answers to pings and fetches of buys, and settling tentative writes."""

    async def heartbeat(self) -> None:
        """Runs for the replica's life (the driver starts it after ``start``)."""
        while True:
            started, generation = self.now, self.generation
            seqs = {book.id: book.seq for book in self.books.values()}
            ping = Ping(self.index, seqs)
            self.pending_releases = [entry for entry in self.pending_releases if entry[3] > self.now]
            releases = list(self.pending_releases)
            by_index = {peer.index: peer for peer in self.peers}
            sends = [self._send(p, ping, timeout=PING_TIMEOUT_S, trace=False) for p in self.peers]
            sends += [self._send(by_index[index], Release(book_id, token), timeout=PING_TIMEOUT_S, trace=False)
                      for index, book_id, token, _until in releases]
            answers = await Gather(sends)
            replies = answers[:len(self.peers)]
            for entry, answer in zip(releases, answers[len(self.peers):], strict=True):
                if isinstance(answer, Done) and entry in self.pending_releases:
                    self.pending_releases.remove(entry)
            for peer, reply in zip(self.peers, replies, strict=True):
                if isinstance(reply, Pong):
                    peer.seqs = reply.seqs
                    self._note_reachable(peer)
                    if Rule.CATCH_UP in self.rules:
                        await self._catch_up(peer, reply, generation)
                    if reply.lease_s is not None:
                        # Counted from the ping's sending, before the lease was granted.
                        self._take_lease(peer, reply.seqs, started + reply.lease_s)
                else:
                    if isinstance(reply, OtherGeneration):
                        self.same_generation(reply.generation)
                    self._note_unreachable(peer, reply, sent=started)
            self._notice_lease()  # drops the valid set on a lapse; says so, and when it is back
            if self.tentative and Rule.CATCH_UP in self.rules:
                await self._settle_tentative()
            if self.disk_trouble is not None:
                await self._stored("probe")  # a commit of the kind a buy makes: back when it takes
            for buy_id in [b for b, until in self.buy_settles.items() if until < self.now]:
                del self.buy_settles[buy_id]
            await Sleep(max(self.now, started + HEARTBEAT_S))

    async def _settle_tentative(self) -> None:
        """Offer each unconfirmed write again. A peer that took it confirms it (its answer, or
        its buys, show it). Once the others have moved on without it and none of them holds
        its buys, it was never seen — no replica is handed an unconfirmed copy (checks meet
        'busy', reads look elsewhere) — and it was answered 'unknown': it gives way, its buys
        forgotten, the others' copy taken."""
        for book_id, (update, indexes) in list(self.tentative.items()):
            peers = [p for p in self.peers if p.index in indexes]
            replies = await Gather([self._send(p, replace(update, late=True), timeout=PING_TIMEOUT_S,
                                               trace=False) for p in peers])
            if self.tentative.get(book_id, (None,))[0] is not update:
                continue
            if any(isinstance(r, Applied) for r in replies):
                await self._confirm(book_id)
                continue
            newer = [r.book for r in replies if isinstance(r, Newer)]
            if not newer and self.books[book_id].seq <= update.copy.seq:
                continue  # nobody has moved on yet: keep offering
            held = await Gather([self._send(p, FetchBuys(book_id), timeout=PING_TIMEOUT_S, trace=False)
                                 for p in self.peers])
            if self.tentative.get(book_id, (None,))[0] is not update:
                continue
            # A peer took this write if it holds exactly its buys at its seq. Its buys alone
            # are not enough: a buy retried elsewhere (W7) may sit in another write of that seq.
            ours = set(update.buy_ids)
            if any(isinstance(r, BuysOf) and {b for b, seq in r.buys if seq == update.copy.seq} == ours
                   for r in held):
                await self._confirm(book_id)
                continue
            if not all(isinstance(r, BuysOf) for r in held):
                continue  # someone did not answer: it may hold the write
            current = self.books[book_id]
            if current == update.copy and newer:
                current = max(newer, key=lambda b: b.seq)
            # Its buys carried out by another write that the copy we take includes stay known;
            # the others are forgotten (and come back with catch-up if a later write has them).
            elsewhere = {b: seq for r in held for b, seq in r.buys if b in ours and seq <= current.seq}
            if not await self._stored("undo", current, list(update.buy_ids)):
                continue  # our disk takes nothing now: given way on the next round
            self.books[book_id] = current
            for buy_id in update.buy_ids:
                self._forget_buy(buy_id)
            if elsewhere:
                await self._stored("add_buys", book_id, sorted(elsewhere.items()))
                for buy_id, seq in sorted(elsewhere.items()):
                    self._remember_buy(buy_id, book_id, seq)
                self._settle_after_grants(sorted(elsewhere))
            self._unmark_valid(book_id)
            self._emit_seq(current)
            del self.tentative[book_id]

    async def _confirm(self, book_id: int) -> None:
        """A peer holds our tentative write: it is settled, and stays. Its buys are not vouched
        for as done for a lease's length: a peer that has not taken it yet may hold a lease, from
        any replica, on the copy before it, and every such lease runs out within LEASE_S of the
        holder's clock, so within ``outwait(LEASE_S)`` of ours (W2)."""
        entry = self.tentative.pop(book_id, None)
        if entry is not None:
            await self._stored("confirm", book_id)  # not stored: settled again after a restart
        if entry is not None and Rule.LEASES in self.rules:
            until = self.now + outwait(LEASE_S)
            for buy_id in entry[0].buy_ids:
                self.buy_settles[buy_id] = max(self.buy_settles.get(buy_id, NEVER), until)

    def on_ping(self, message: Ping) -> Pong:
        """A ping's answer: our seqs, every row (with its buys) newer than the sender's, and a
        lease (which the sender takes only for the books it is as current on as we are)."""
        lease = None
        for peer in self.peers:
            # Its ping reaching us does not say that ours reach it (a one-way cut): only an
            # answer to our own message marks it up. A lease goes only to a peer we can reach;
            # granted to one we cannot, it would make each of our writes wait for it (W2) while
            # it never gets the lease anyway.
            if peer.index == message.sender and peer.up:
                lease = self._grant(peer)
        newer = []
        unsure = self._tentative_buys()
        for book in self.books.values():
            theirs = message.seqs.get(book.id, -1)
            if book.seq > theirs and book.id not in self.tentative:
                buys = tuple(b for b, (bid, seq) in self.buys.items()
                             if bid == book.id and seq > theirs and b not in unsure)
                newer.append((book, buys))
        counts = Counter(self.buy_count)  # a tentative write's book may have no buys remembered
        for update, _peers in self.tentative.values():
            counts[update.copy.id] -= len(update.buy_ids)
        return Pong({b.id: b.seq for b in self.books.values()}, tuple(newer), dict(counts), lease,
                    self._buy_digests())

    def on_fetch_buys(self, message: FetchBuys) -> BuysOf:
        """The buys we hold of a book, but those of writes not confirmed yet."""
        self.book(message.book)
        unsure = self._tentative_buys()
        return BuysOf(tuple((buy_id, seq) for buy_id, (bid, seq) in self.buys.items()
                            if bid == message.book and buy_id not in unsure))

    async def _catch_up(self, peer: Peer, answer: Pong, generation: int) -> None:
        """Adopt the newer rows a ping's answer brought, then fetch the buys we lack (W3, W7)."""
        for copy, buy_ids in answer.newer:
            if copy.id not in self.books or copy.seq <= self.books[copy.id].seq:
                continue
            # W2: someone is ahead of us, so our valid mark (if any) is stale. No book lock
            # here: a write may hold it for long, and adopting is monotonic in seq anyway.
            self._unmark_valid(copy.id)
            if await self._adopt(copy, buy_ids, generation):
                self.catch_ups += 1
                self.emit("catch_up", book=copy.id, seq=copy.seq)
        # A copy adopted on a read or a refused check arrives without the buys that made it;
        # a peer that remembers more buys of a book, or others (each lacking one the other has:
        # a replica whose disk refused a write it then got over by catch-up, seed 2027609448),
        # hands over the ones we lack (W7).
        ours = self._buy_digests()
        for book_id, theirs in answer.buy_counts.items():
            differ = answer.buy_digests.get(book_id, ours.get(book_id)) != ours.get(book_id, f"{0:016x}")
            if book_id in self.books and (theirs > self.buy_count[book_id] or differ):
                reply = await self._send(peer, FetchBuys(book_id), timeout=PING_TIMEOUT_S, trace=False)
                if isinstance(reply, BuysOf) and self.same_generation(generation):
                    missing = [(b, s) for b, s in reply.buys if b not in self.buys]
                    if not await self._stored("add_buys", book_id, missing):
                        break  # fetched again once our disk takes writes
                    for buy_id, seq in missing:
                        self._remember_buy(buy_id, book_id, seq)
                    self._settle_after_grants([buy_id for buy_id, _seq in missing])

"""Catch-up (W3, docs/weak-points.md) and the heartbeat: every HEARTBEAT_S a replica pings its
peers; a ping carries what changed in its seqs and is answered with what changed in the
peer's, every newer row (and the buys that made it) and a lease (W2; anti_entropy.py says
how the changes travel). A restarted replica catches up in the background, and a write whose
update got no answer (tentative) is offered again until a peer confirms it or shows another
(``Rule.CATCH_UP``)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from nodes.core.catalog.changes import look
from nodes.core.catalog.compare import CompareRows
from nodes.core.catalog.rules import Rule
from nodes.core.catalog.state import FETCH_DEFER_ROUNDS, FETCH_TIMEOUT_S, HEARTBEAT_S, PING_TIMEOUT_S, Peer
from nodes.core.effects import Gather, NoAnswer, Sleep
from nodes.core.messages import (
    Applied,
    Busy,
    BuysOf,
    Done,
    FetchBuys,
    Newer,
    OtherGeneration,
    Ping,
    Pong,
    Release,
    Update,
)


class CatchUp(CompareRows):
    """The heartbeat, the answers to pings and fetches of buys, and settling tentative writes."""

    async def heartbeat(self) -> None:
        """Runs for the replica's life (the driver starts it after ``start``)."""
        while True:
            started, generation = self.now, self.generation
            pings = [self._ping(peer) for peer in self.peers]
            self.pending_releases = [entry for entry in self.pending_releases if entry[3] > self.now]
            releases = list(self.pending_releases)
            by_index = {peer.index: peer for peer in self.peers}
            sends = [self._send(p, ping, timeout=self._ping_timeout(p), trace=False)
                     for p, ping in zip(self.peers, pings, strict=True)]
            sends += [self._send(by_index[index], Release(book_id, token), timeout=self._ping_timeout(by_index[index]),
                                 trace=False) for index, book_id, token, _until in releases]
            answers = await Gather(sends)
            replies = answers[:len(self.peers)]
            for entry, answer in zip(releases, answers[len(self.peers):], strict=True):
                if isinstance(answer, Done) and entry in self.pending_releases:
                    self.pending_releases.remove(entry)
            answered, changed = [], set[int]()
            fetches: list[tuple[Peer, set[int]]] = []
            for peer, ping, reply in zip(self.peers, pings, replies, strict=True):
                if isinstance(reply, Pong):
                    peer.acked = (ping.epoch, reply.heard)
                    seen = self._take_view(peer, reply)
                    self._note_reachable(peer)
                    if Rule.CATCH_UP in self.rules:
                        await self._adopt_newer(peer, reply, generation)
                    if seen is None:
                        continue  # its answer did not fit what we hold of it: taken whole next round
                    fetches.append((peer, seen))
                    self._look_ahead(peer, seen)
                    changed |= seen
                    if not peer.view.current:
                        continue  # a page of a whole catalog: no lease, no comparing, until the last
                    peer.heard_since(started)
                    if reply.lease_s is not None:
                        # Counted from the ping's sending, before the lease was granted.
                        self._take_lease(peer, started + reply.lease_s)
                    answered.append(peer)
                else:
                    if isinstance(reply, OtherGeneration):
                        self.same_generation(reply.generation)
                    self._note_unreachable(peer, reply, sent=started)
            if Rule.CATCH_UP in self.rules:
                # Buys are fetched once every lease of the round is taken: a peer that answered
                # the ping and then hung held each fetch to its time-out, and the round with it,
                # so the leases of the peers that had answered lapsed behind it (catalog0's
                # round took 0.82 s when catalog1 was hung under load, and its reads and
                # writes stalled with it). A lease covers rows, not buys: a retry of a buy we
                # do not know yet meets the check at a majority, where it is known (W7).
                for peer, seen in fetches:
                    await self._fetch_buys(peer, generation, seen)
            if Rule.CATCH_UP in self.rules and self.same_generation(generation):
                self._compare_rows(answered, changed)
            self._notice_lease()  # drops the valid set on a lapse; says so, and when it is back
            if self.tentative and Rule.CATCH_UP in self.rules:
                await self._settle_tentative()
            if self.disk_trouble is not None:
                await self._stored("probe")  # a commit of the kind a buy makes: back when it takes
            elif self.same_generation(generation):
                await self._forget_expired()
            for buy_id in [b for b, until in self.buy_settles.items() if until < self.now]:
                del self.buy_settles[buy_id]
            await Sleep(max(self.now, started + HEARTBEAT_S))

    def _ping_timeout(self, peer: Peer) -> float:
        """How long a heartbeat round waits for ``peer``: a peer that answers, a ping's time-out;
        one known down (hung, cut off), a round's length. The leases of the peers that answer are
        taken once the round's answers are all in: a round that waited 0.4 s for a hung peer, and
        spent 0.15 s catching up under load, renewed them every 0.55 s, and now and then too late
        (a lapse, and reads and writes sent to the silent peer meanwhile). Back, it answers
        well within a round on loopback, and every answer of its marks it up anyway."""
        return PING_TIMEOUT_S if peer.up else HEARTBEAT_S

    async def _settle_tentative(self) -> None:
        """Offer each unconfirmed write again. A peer that took it confirms it (its answer, or
        its buys, show it). Once the others have moved on without it and none of them holds
        its buys, it was never seen — no replica is handed an unconfirmed copy (checks meet
        'busy', reads look elsewhere) — and it was answered 'unknown': it gives way, its buys
        forgotten, the others' copy taken."""
        needed = self._peers_to_hold()  # peers holding it beside us for a majority (W8)
        for book_id, (update, indexes) in list(self.tentative.items()):
            # Offered to the peers that granted it, and to any other whose word shows a write
            # of its very seq: that one takes it only if it is the very same write (one buy
            # retried through two writers), and otherwise answers with its own. Two writers
            # each left with the same write, each granted by the third alone, which refused
            # both late offers while the other showed that seq, waited for good (simulator
            # seed 2056019075). With four or more replicas, to every peer: those that granted
            # it may be too few to make a majority with the ones that took it.
            peers = [p for p in self.peers
                     if needed > 1 or p.index in indexes or p.view.seqs.get(book_id, -1) == update.copy.seq]
            if book_id in self.unverified:
                # Read back from disk at start: changed there, checksum and all, its row would
                # pass for the write with a peer that lacks it (simulator seed 2033517330). It
                # is offered only to peers holding its seq or a later one, where rows compare.
                peers = [p for p in peers if p.view.seqs.get(book_id, -1) >= update.copy.seq]
                if len(peers) < needed:
                    # Too few show its seq for a majority to hold it (with three replicas: none):
                    # it gives way unless a peer holds it confirmed. Two replicas of five back
                    # with one such write each offered it only to the other, for good (review).
                    await self._give_way_unseen(book_id, update)
                    continue
            replies = await Gather([self._send(p, replace(update, late=True), timeout=PING_TIMEOUT_S,
                                               trace=False) for p in peers])
            if self.tentative.get(book_id, (None,))[0] is not update:
                continue
            # Held by a majority with us (in a cluster of three, by one peer; W8): it stays.
            # Fewer, with four or more replicas, and each holds it as unconfirmed as we do.
            if sum(1 for r in replies if isinstance(r, Applied)) >= needed:
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
            # (A fetch leaves unconfirmed buys out: a peer that tells them holds the write as
            # confirmed, which only a majority makes it.)
            # A write with no buys (a restock) has nothing to tell it by: with four or more
            # replicas any peer showing no buys at its seq would count as holding it, and one
            # such peer is no majority (review); it stays for the offers' count to decide. With
            # three, a peer that answered this offer with another copy, or "busy", does not
            # count: the third replica that took a rival write of the seq answers with it, and
            # the rival's writer tells no buys of a write it holds unconfirmed — both showed
            # "no buys at the seq" and confirmed a restock beside the rival (review of the
            # rival-offers rule, 2026-12-07).
            ours = set(update.buy_ids)
            answered = dict(zip((p.index for p in peers), replies, strict=True))
            witnesses = [r for p, r in zip(self.peers, held, strict=True)
                         if ours or not isinstance(answered.get(p.index), Newer | Busy)]
            if (ours or needed == 1) and any(
                    isinstance(r, BuysOf) and {b for b, seq in r.buys if seq == update.copy.seq} == ours
                    for r in witnesses):
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
                for reply in held:
                    if isinstance(reply, BuysOf):
                        self._settle_as_told(reply.settling, sorted(elsewhere))
            self._unmark_valid(book_id)
            self._emit_seq(current)
            del self.tentative[book_id]
            self.unstored.discard(book_id)
            self.unverified.discard(book_id)

    async def _give_way_unseen(self, book_id: int, update: Update) -> None:
        """An unconfirmed write read back at start that every peer's current word shows behind
        it: if none of them holds its buys at its seq, nobody took it, and its buys were
        answered "unknown". It gives way: its buys forgotten, its row taken as damaged (seq -1,
        served to no one), and catch-up brings the peers' copy."""
        if not self.peers or not all(p.view.current for p in self.peers):
            return
        held = await Gather([self._send(p, FetchBuys(book_id), timeout=PING_TIMEOUT_S, trace=False)
                             for p in self.peers])
        if self.tentative.get(book_id, (None,))[0] is not update or not all(isinstance(r, BuysOf) for r in held):
            return
        ours = set(update.buy_ids)
        if ours and any(isinstance(r, BuysOf) and {b for b, seq in r.buys if seq == update.copy.seq} == ours
                        for r in held):
            await self._confirm(book_id)  # a peer took it after all: its row is compared as any
            return
        if not await self._stored("forget", list(update.buy_ids)):
            return
        for buy_id in update.buy_ids:
            self._forget_buy(buy_id)
        del self.tentative[book_id]
        self.unstored.discard(book_id)
        self._take_as_damaged(book_id, "an unconfirmed write read back at start that no peer took: given way",
                              seq_known=False)  # its seq is the one no peer took

    def on_ping(self, message: Ping) -> Pong:
        """A ping's answer: what changed in our log since the ping's ``heard``, every row (with
        its buys) newer than the sender's, and a lease (which the sender takes only for the
        books it is as current on as we are)."""
        lease, peer = None, None
        for known in self.peers:
            # Its ping reaching us does not say that ours reach it (a one-way cut): only an
            # answer to our own message marks it up. A lease goes only to a peer we can reach;
            # granted to one we cannot, it would make each of our writes wait for it (W2) while
            # it never gets the lease anyway. Nor to one that asks for none (its disk refuses
            # writes): it would make each write wait for a replica that cannot take it.
            if known.index == message.sender:
                peer = known
                lease = self._grant(known) if known.up and message.lease else None
        if peer is None:
            peer = Peer(message.sender)  # not one of ours (a test, a stray): answered all the same
        changed, heard = self._take_told(peer, message)
        newer = self._owed(peer, changed)
        epoch, position = message.heard
        delta = self._delta(position if epoch == self.changes.epoch and position <= self.changes.position else 0)
        handed = [b for _book, buys in newer for b in buys]
        return replace(delta, newer=tuple(newer), lease_s=lease, heard=heard, settling=self._settling(handed),
                       expiring=self._expiring(handed))

    def on_fetch_buys(self, message: FetchBuys) -> BuysOf:
        """The buys we hold of a book, but those of writes not confirmed yet; with the asker's
        digests, only those of the buckets where ours differ (the asker lacks none elsewhere)."""
        self.book(message.book)
        unsure = self._tentative_buys()
        held: Iterable[tuple[str, int]]
        if message.digests is None:
            held = self.buys_of.get(message.book, {}).items()
        else:
            ours = self._bucket_digests_of(message.book, unsure)
            held = [pair for bucket, (mine, theirs) in enumerate(zip(ours, message.digests, strict=True))
                    if mine != theirs for pair in self.bucket_buys.get((message.book, bucket), {}).items()]
        buys = tuple((buy_id, seq) for buy_id, seq in held if buy_id not in unsure)
        return BuysOf(buys, self._settling(b for b, _seq in buys), self._expiring(b for b, _seq in buys))

    async def _adopt_newer(self, peer: Peer, answer: Pong, generation: int) -> None:
        """Adopt the newer rows a ping's answer brought (W3)."""
        for copy, buy_ids in answer.newer:
            if copy.id not in self.books or copy.seq <= self.books[copy.id].seq:
                continue
            if copy.seq > self.witnessed.get(copy.id, (-1, ""))[0]:
                self.witnessed[copy.id] = (copy.seq, copy.checksum())  # a confirmed row: ``newer`` holds no other
            # W2: someone is ahead of us, so our valid mark (if any) is stale. No book lock
            # here: a write may hold it for long, and adopting is monotonic in seq anyway.
            self._unmark_valid(copy.id)
            if await self._adopt(copy, buy_ids, generation, answer.expiring):
                self._settle_as_told(answer.settling, buy_ids)
                self.catch_ups += 1
                self.emit("catch_up", book=copy.id, seq=copy.seq)

    async def _fetch_buys(self, peer: Peer, generation: int, changed: set[int]) -> None:
        """Fetch the buys ``peer`` remembers and we lack (W7). A copy adopted on a read or a
        refused check arrives without the buys that made it; a peer that remembers more buys
        of a book, or others (each lacking one the other has: a replica whose disk refused a
        write it then got over by catch-up, seed 2027609448), hands over the ones we lack.
        Looked at: the books its answer or our log changed, and those that differed last time
        (``Marks.buys``). A peer that does not answer one fetch is asked for the rest next
        round: one that fell silent cost a time-out per book. The time-out is a round's
        length (``FETCH_TIMEOUT_S``): a fetch from a peer that hung after answering the ping
        held the next round back 0.4 s, that round waited 0.4 s more for the hung peer's
        ping, and the leases of the round before ran out meanwhile — both healthy replicas
        of a cluster of three lapsed for 0.2 s under load (issue 28). A peer holding fewer
        buys of a book than we do is asked only on every FETCH_DEFER_ROUNDS + 1-th round that
        finds it so: it is most likely just behind, and such fetches were a tenth of the
        cluster's requests under load, bringing nothing 96 % of the time (issue 28)."""
        marks, view = peer.marks, peer.view
        todo = marks.buys | changed
        todo.update(look(self.changes, self.books, marks.buys_at))
        marks.buys_at = (self.changes.epoch, self.changes.position)
        marks.buys = set()
        pending = sorted(todo)
        for at, book_id in enumerate(pending):
            if book_id not in self.books or book_id not in view.buy_counts:
                continue
            ours = self._buy_digest_of(book_id)
            if view.buy_counts[book_id] <= self.buy_count[book_id] and view.buy_digests.get(book_id, ours) == ours:
                marks.deferred.pop(book_id, None)
                continue
            marks.buys.add(book_id)  # looked at again next round: it may hold fewer, not others
            # Fewer than our confirmed ones (the peer counts none of an unconfirmed write either).
            if view.buy_counts[book_id] < self._buy_count_of(book_id) and \
                    marks.deferred.get(book_id, 0) < FETCH_DEFER_ROUNDS:
                marks.deferred[book_id] = marks.deferred.get(book_id, 0) + 1  # most likely behind
                continue
            reply = await self._send(peer, FetchBuys(book_id, self._bucket_digests_of(book_id)),
                                     timeout=FETCH_TIMEOUT_S, trace=False)
            if isinstance(reply, NoAnswer):
                marks.buys.update(pending[at:])
                break
            if isinstance(reply, BuysOf) and self.same_generation(generation):
                missing = [(b, s) for b, s in reply.buys if b not in self.buys and self._lives(reply.expiring, b)]
                if not await self._stored("add_buys", book_id, missing):
                    marks.buys.update(pending[at:])
                    break  # fetched again once our disk takes writes
                marks.deferred.pop(book_id, None)  # taken: a fetch that failed is asked again next round
                for buy_id, seq in missing:
                    self._remember_buy(buy_id, book_id, seq, reply.expiring.get(buy_id))
                self._settle_after_grants([buy_id for buy_id, _seq in missing])
                self._settle_as_told(reply.settling, [buy_id for buy_id, _seq in missing])

"""Reservations (W1, docs/weak-points.md): a write's ``Check`` is also a reservation. A peer
that grants it holds the book for that writer until the writer's update or release arrives
(or RESERVATION_TTL_S passes) and answers other writers Busy; between writers, wait-die
decides who waits. A check that meets a buy already carried out answers its first outcome
(W7). This module holds both sides: the peer's (``on_check``, then ``on_update`` or
``on_release``) and the writer's (``_check_peers``, and ``HeldPeers``: the one place the
peers it reserved are released)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

from nodes.core.books import Book
from nodes.core.catalog.documented import Documented
from nodes.core.catalog.rules import Rule
from nodes.core.catalog.state import (
    CHECK_TIMEOUT_S,
    RESERVATION_TTL_S,
    RESERVATION_WAIT_S,
    WRITE_PATIENCE_S,
    Peer,
    Priority,
    Reservation,
)
from nodes.core.clocks import NEVER
from nodes.core.effects import Gather, NoAnswer
from nodes.core.messages import (
    Applied,
    Busy,
    Check,
    Degraded,
    Done,
    Granted,
    KnownBuy,
    Newer,
    Release,
    ReusedBuyId,
    Update,
)


@dataclass
class CheckOutcome:
    """What a write's check round found at the peers."""

    granted: list[Peer] = field(default_factory=list)  # reserved for this write: released or updated
    unreachable: list[Peer] = field(default_factory=list)  # not asked (W4), or no answer
    newer: list[Book] = field(default_factory=list)  # copies ahead of ours (S5)
    busy: list[int] = field(default_factory=list)  # peers held by another writer
    known_buy: KnownBuy | None = None  # the buy (or a rider) is carried out already (W7)
    reused: ReusedBuyId | None = None  # the buy's id was used for another book at a peer
    #: Asked, but no answer came in time: each may have granted the reservation after we gave up.
    silent: list[Peer] = field(default_factory=list)


class Reservations(Documented):
    """The documented check and update, with W1's reservations on top."""

    # ---- the peer side ------------------------------------------------------------------------
    def _reserve(self, book_id: int, owner: int, token: str, priority: Priority = (0.0, 0)) -> bool:
        """Hold the book for ``token`` unless another live reservation holds it."""
        held = self.reservations.get(book_id)
        if held is not None and self._holds(held) and held.token != token:
            return False
        self.reservations[book_id] = Reservation(owner, token, self.now + RESERVATION_TTL_S, priority)
        return True

    def _reprioritize(self, book_id: int, token: str, priority: Priority) -> None:
        """``token``'s reservation of ``book_id``, if it still holds one, takes ``priority``."""
        held = self.reservations.get(book_id)
        if held is not None and held.token == token:
            self.reservations[book_id] = replace(held, priority=priority)

    def _release(self, book_id: int, token: str) -> None:
        """End ``token``'s reservation, if it still holds one, and wake whoever waits for it."""
        held = self.reservations.get(book_id)
        if held is not None and held.token == token:
            del self.reservations[book_id]
            self.waiters.notify(("released", book_id))

    async def _reserve_or_wait(self, book_id: int, owner: int, token: str, priority: Priority,
                               queue_s: float | None = None) -> bool:
        """Reserve the book for ``owner``; if another writer holds it, wait a little for it, only
        when this write is older than the holder's ("wait-die"): the younger fails at once, so
        waits form no cycle and the oldest write gets through (writers of one book kept failing
        each other under load). With ``queue_s`` it holds nothing yet and may wait anyone."""
        deadline = self.now + (RESERVATION_WAIT_S if queue_s is None else queue_s)
        while not self._reserve(book_id, owner, token, priority):
            holder = self.reservations[book_id]
            if (queue_s is None and priority > holder.priority) or self.now >= deadline:
                return False
            # Woken when it is handed back, or at the deadline or the holder's expiry.
            await self.waiters.wait(("released", book_id), min(deadline, holder.expires))
        return True

    async def on_check(self, message: Check) -> Granted | KnownBuy | Newer | Busy | ReusedBuyId | Degraded:
        """A writer's check (S4, S5): granted means the book is reserved for it (W1)."""
        book_id = self.book(message.book).id
        if self.disk_trouble is not None and Rule.RESERVED_WRITES in self.rules:
            # Our disk refuses writes: the update would be refused too. Said now, the writer
            # counts us out as it does a replica cut off, and outwaits only the leases granted
            # us -- none, soon: our pings ask for none (a full disk made every buy wait ~1 s).
            return Degraded(f"catalog{self.index} cannot store writes: {self.disk_trouble}")
        if book_id in self.tentative:
            return Busy(self.index)  # an unconfirmed write of ours: nothing to build on yet
        if book_id in self.unverified or book_id in self.disputed:
            return Busy(self.index)  # a row no peer has confirmed yet: not to be handed on
        if Rule.RESERVED_WRITES not in self.rules:
            return self._documented_check(book_id, message)
        if book_id in self.damaged:
            # Our row was lost: a writer whose copy is older than it would be granted a seq a
            # majority holds already, with us in it (simulator seed 2066009210).
            return Busy(self.index)
        decided = self._check_answer(message)
        if decided is not None:  # no need to queue for a reservation to say this
            return decided
        priority: Priority = (message.since if message.since is not None else self.now, message.sender)
        reserved = await self._reserve_or_wait(book_id, message.sender, message.token, priority)
        if book_id in self.tentative:
            # The write we waited for ended unconfirmed: its copy goes to no one, not even as
            # the answer to this check (simulator seed 2027804812: handed over, the peer built
            # on it, and the buy behind it was carried out with its id nowhere).
            if reserved:
                self._release(book_id, message.token)
            return Busy(self.index)
        decided = self._check_answer(message)  # the holder's write may have landed meanwhile
        if decided is not None:
            if reserved:
                self._release(book_id, message.token)
            return decided
        if not reserved:
            held = self.reservations.get(book_id)
            return Busy(held.owner if held else None)
        # A write is coming that we may not see land: stop vouching for our copy until it does.
        self._unmark_valid(book_id)
        return Granted(self.books[book_id].seq)

    def _check_answer(self, message: Check) -> KnownBuy | Newer | ReusedBuyId | None:
        """A check's answer when it does not depend on reserving: a known buy, a buy id used
        for another book, or a newer copy."""
        own = self.books[message.book]
        unsure = self._tentative_buys()
        if (reused := self._reused(message.buy_id, message.book)) is not None:
            return reused  # one id names one buy: not a retry of it (W7)
        for buy in (message.buy_id, *message.riders):
            if message.book in self.damaged:
                break  # our row is not to be trusted: its copy goes nowhere, not even with a known buy
            if buy is not None and buy in self.buys and buy not in unsure:
                if self.buys[buy][0] != message.book:
                    continue  # a rider's id used for another book is not this book's buy done
                return KnownBuy(own, max(0.0, self._settles(buy) - self.now), buy)
        if own.seq > message.seq_n:
            return Newer(own)
        return None

    async def on_update(self, message: Update) -> Applied | Newer | Busy | Degraded:
        """A reserved write's update (S4): taken only from the writer we reserved the book for,
        and only on top of our copy. Taken or refused, it ends that writer's reservation: the
        writer sends nothing more under it (a refused update is no release, and its writer
        hands nothing back); kept, it turned every other writer away as "busy" for
        RESERVATION_TTL_S: under full load such a book took in every connection as its buys
        retried, and the cluster stood still for 3 s now and then (issue 28)."""
        copy = message.copy
        if self.in_flight.get(copy.id) == copy.seq and self._ours(message.token):
            # Our own write offered back (W8) while our round stores it: left to the round, and
            # its reservation kept (seed 2067500032; docs/weak-points.md, W8).
            return Busy(self.index)
        answer = await self._take_update(message)
        if isinstance(answer, Degraded | Busy) and Rule.RESERVED_WRITES in self.rules:
            self._offer_not_taken(message.sender, copy)
        if not isinstance(answer, Applied):
            self._release(message.copy.id, message.token)
        return answer

    async def _take_update(self, message: Update) -> Applied | Newer | Busy | Degraded:
        copy = message.copy
        own = self.book(copy.id)
        if Rule.RESERVED_WRITES not in self.rules:
            return await self._documented_update(copy, own)
        held = self.reservations.get(copy.id)
        if held is not None and held.token != message.token and self._holds(held):
            return Busy(held.owner)
        mine = self.tentative.get(copy.id)
        same = mine is not None and copy == own and set(message.buy_ids) == set(mine[0].buy_ids)
        if mine is not None and copy.seq <= own.seq and not same:
            # An unconfirmed write of ours: busy until it settles. The very same write (one
            # buy retried through two writers, each left with it unconfirmed) is taken: two
            # replicas hold it, and each refusing the other's offer, while the third refused
            # both as a rival of the other's, they waited for good (simulator seed 2032911593).
            return Busy(self.index)
        if copy.seq < own.seq:
            return Newer(own)
        # Ours too: taken, even where our disk refused it and its buys are only in the write
        # we keep offering. Answered 'newer', each of two such writers took the other's copy —
        # its own write — as a rival and gave way, forgetting the buy, and the copy stayed
        # taken with no buy to show for it (simulator seed 2042003494).
        taken = copy.seq == own.seq and copy == own and (same or all(b in self.buys for b in message.buy_ids))
        if copy.seq == own.seq and not taken:
            return Newer(own)  # another write made this seq here: the sender's is the odd one out
        if message.late and not taken and any(self._holds_other(p, copy) for p in self.peers
                                              if p.index != message.sender):
            # A late offer of an unconfirmed write, while another peer holds that seq or a later
            # one we have not stored (our disk refused it, say): it may be another write of the
            # seq. Not now: catch-up brings theirs, and then we can tell (simulator seed
            # 2027617714: a replica behind on a full disk took a cut-off writer's write of a seq
            # its peers held another of, and three buys' copies were lost). A write we took
            # already is answered as taken: refused as busy, its writer (whose disk had refused
            # it) and a cut-off writer holding another write of its seq each waited for the
            # other for good (seed 2029015981).
            return Busy(None)
        # W8 with four or more replicas: the writer and we are no majority. Until the writer
        # says a majority holds it (or we find one, or it gives way: catch_up._settle_tentative)
        # it is an unconfirmed write here too: the other side of a partition, its reservations
        # voided once the writer fell silent to it, may make another write of this seq, and a
        # copy or buy of ours handed on would outlive it (simulator seed 2055000646: a buy
        # remembered everywhere, its copy never taken).
        held_back = not message.confirmed and self._peers_to_hold() > 1
        adopted = await self._adopt(copy, message.buy_ids, tentative=held_back)
        if adopted and held_back:
            self.tentative[copy.id] = (Update(copy, self.index, message.token, message.buy_ids),
                                       tuple(p.index for p in self.peers))
        elif message.confirmed and same:
            await self._confirm(copy.id)  # its writer found a majority holding it
        if not adopted and self.books[copy.id].seq < copy.seq:
            self._release(copy.id, message.token)  # not taken, and said why
            return self._not_taken(copy.id)
        for buy_id in message.buy_ids:
            self._remember_buy(buy_id, copy.id, copy.seq)
        self._settle_as_told({b: message.settles_in for b in message.buy_ids}, message.buy_ids)
        self._release(copy.id, message.token)
        if not (held_back and copy.id in self.tentative):
            self._mark_valid(copy.id)  # not a write held unconfirmed here: nobody is handed it
        # Those left out are behind us now: a lease from us no longer covers this book for them
        # (they take it only with our seqs, _take_lease); the ones they hold run this long yet,
        # as our clock counts, and the writer outwaits them on its own (W2). A late offer of a
        # write left unconfirmed may reach us before any other peer: all but its writer may
        # still lack it.
        # Reported for every replica but the writer: one the write sent the update to may yet
        # be left out, its answer never having come (the writer's ``_settle_after``).
        behind = {p.index for p in self.peers if p.index != message.sender} if message.late else set(message.excluded)
        granted = [p for p in self.peers if p.index != message.sender and not p.refused and p.granted_until > self.now]
        holds = tuple((p.index, p.granted_until - self.now) for p in granted)
        holding = [p for p in granted if p.index in behind]
        if holding:
            for buy_id in message.buy_ids:
                self.buy_settles[buy_id] = max(self.buy_settles.get(buy_id, NEVER), *(p.granted_until for p in holding))
        return Applied(self.books[copy.id].seq, holds)

    def _holds_other(self, peer: Peer, copy: Book) -> bool:
        """Whether ``peer`` may hold another write of ``copy``'s seq than the one offered, or a
        later one: its word shows that seq or a later one. Not an unconfirmed write of that very
        seq (its row unsaid), which is no more settled than the one offered: a write's holders
        keep it so until a majority holds it, and a replica behind that refused every late offer
        while they showed its seq left them all waiting for good (W8, four or more replicas;
        with three, simulator seed 2064001167: two writers each held their own write of one
        seq, granted by the third alone and their updates to it lost, and the third refused
        both offers for good). The first offer taken makes a majority; the other writer is
        answered with that copy and gives way."""
        seq = peer.seqs.get(copy.id, -1)
        if seq != copy.seq:
            return seq >= copy.seq
        view = peer.view
        return not (view.seqs.get(copy.id) == copy.seq and view.sums.get(copy.id) is None)

    def on_release(self, message: Release) -> Done:
        """A writer that will not fan out hands its reservation back."""
        self.book(message.book)
        self._release(message.book, message.token)
        return Done()

    # ---- the writer side ----------------------------------------------------------------------
    async def _check_peers(self, book_id: int, token: str, buy_id: str | None, priority: Priority,
                           riders: tuple[str, ...] = ()) -> CheckOutcome:
        """The writer's check round: every peer asked at once (but those W4 lets it skip)."""
        own = self.books[book_id]
        check = Check(book_id, own.seq, self.index, token, buy_id, priority[0], riders)
        outcome = CheckOutcome()
        # W4: a peer the heartbeat knows is out is skipped at once, not waited for — once it has
        # been silent long enough that its valid set has surely lapsed (W2); until then it is
        # asked, since it may be back already and holding the book as valid.
        trust_beliefs = Rule.SKIP_DOWN_PEERS in self.rules and self.lease_ok()
        asked = [p for p in self.peers if p.up or not trust_beliefs or p.granted_until > self.now]
        outcome.unreachable = [p for p in self.peers if p not in asked]
        sent = self.now
        replies = await Gather([self._send(p, check, timeout=self._check_timeout(p, trust_beliefs))
                                for p in asked], enough=self._majority_of(Granted), patience=WRITE_PATIENCE_S)
        for peer, reply in zip(asked, replies, strict=True):
            if reply is None:
                # Still out once a majority had granted: left out of this round as a time-out
                # leaves it (it may grant yet: released later), but not believed down for it.
                outcome.unreachable.append(peer)
                outcome.silent.append(peer)
                continue
            if isinstance(reply, NoAnswer):
                # Told when it was sent: a peer that refused a check sent while it was down,
                # and has pinged us since and holds our lease, is not believed gone (``sent``).
                self._note_unreachable(peer, reply, sent=sent)
                outcome.unreachable.append(peer)
                if reply.maybe_processed:
                    outcome.silent.append(peer)
                continue
            self._note_reachable(peer)
            if isinstance(reply, KnownBuy):
                outcome.known_buy = reply
            elif isinstance(reply, Granted):
                outcome.granted.append(peer)
            elif isinstance(reply, Busy):
                outcome.busy.append(peer.index)
            elif isinstance(reply, Newer):
                outcome.newer.append(reply.book)
            elif isinstance(reply, ReusedBuyId):
                outcome.reused = reply
            else:
                outcome.unreachable.append(peer)
        self._release_later(book_id, token, outcome.silent)
        return outcome

    def _majority_of(self, kind: type, *, also: Callable[[list[Any]], bool] = lambda _r: True,
                     ) -> Callable[[list[Any]], bool] | None:
        """With majority writes, when a round's answers so far suffice: ``kind`` answered by
        enough peers to make a majority with this writer (and ``also`` holds). Otherwise None:
        every peer's answer, or its time-out, is waited for."""
        if Rule.MAJORITY not in self.rules:
            return None
        needed = (len(self.peers) + 1) // 2

        def enough(replies: list[Any]) -> bool:
            return also(replies) and sum(1 for reply in replies if isinstance(reply, kind)) >= needed
        return enough

    def _check_timeout(self, peer: Peer, trust_beliefs: bool) -> float:
        """How long a check waits for ``peer``: CHECK_TIMEOUT_S, or for a peer the heartbeat
        found silent (asked only because the lease we granted it may still hold, W2), no
        longer than that lease runs: one that has not answered by then is left out, and its
        lease has run out already. A buy in flight when a replica hung waited 0.5 s for its
        check to the silent replica, then for its lease again."""
        if peer.up or not trust_beliefs:
            return CHECK_TIMEOUT_S
        return min(CHECK_TIMEOUT_S, max(0.05, peer.granted_until - self.now))

    def _release_later(self, book_id: int, token: str, peers: list[Peer]) -> None:
        """A peer whose answer to our check never came may have granted it all the same, after we
        stopped waiting (a slow peer under full load): this round will never update or release
        it, so its reservation would hold the book against every other writer until it expires
        (RESERVATION_TTL_S; under load, 2 s stalls of one book's buys). The heartbeat hands such
        reservations back (``Release`` drops only ours, by token) until they would have expired
        anyway. Not sent here: the peer may be silent for good, and the write must not wait."""
        until = self.now + RESERVATION_TTL_S
        self.pending_releases.extend((peer.index, book_id, token, until) for peer in peers)

    def _holding(self, book_id: int, token: str, peers: list[Peer]) -> HeldPeers:
        """The peers a write round reserved, as an ``async with``: the one place they are released."""
        return HeldPeers(self, book_id, token, peers)


class HeldPeers:
    """The peers whose reservations a write round holds (W1), released together on leaving
    the ``async with`` — unless the round handed them over to its update, which releases
    each reservation at its peer. Not on an exception, as before the split: a write that
    fails or is cancelled part-way leaves them to expire (RESERVATION_TTL_S), and a coroutine
    being closed could not send anything anyway."""

    def __init__(self, writer: Reservations, book_id: int, token: str, peers: list[Peer]) -> None:
        self.writer = writer
        self.book_id = book_id
        self.token = token
        self.peers = list(peers)  # still to be released on leaving

    def hand_over(self) -> None:
        """The update goes out: it releases them, so leaving releases nothing."""
        self.peers = []

    async def __aenter__(self) -> HeldPeers:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        if kind is None and self.peers:
            release = Release(self.book_id, self.token)
            await Gather([self.writer._send(p, release) for p in self.peers])

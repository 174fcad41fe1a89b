"""The catalog replication protocol of ``protocol.md`` as a pure core, with Bazar's repairs
of W1–W3. It does no I/O: every operation is a coroutine that yields effects
(``nodes/core/effects.py``) and speaks the messages of ``nodes/core/messages.py``; the node
(``replication.py``) and the simulator (``nodes/sim``) drive the very same object.

Documented shape, kept as written:
- every book carries ``seq``, bumped by every write;
- ``valid_ids``: the books this replica knows to be current, in memory, empty at start;
- reads hop through ``Get`` carrying ``req`` (replicas already in the chain) and ``seq_n``
  (highest seq seen) until a valid replica answers (S1–S3);
- writes send ``Check`` to every peer, take the highest copy and answer Conflict when a peer
  is ahead (S5), then fan out ``Update`` (S4) and tell the front-end to drop the book.

Bazar's additions (explained with their own scenario in README.md, "Writes that cannot be
lost"):
- W1: a ``Check`` is also a *reservation*. A peer that grants it holds the book for that
  writer until the writer's update or release arrives (or a TTL passes) and answers other
  writers Busy. A write proceeds only with every reachable peer reserved, so two writers can
  never both fan out the same ``seq``; the loser re-reads and retries, as the documented 409
  already asks. For the same reason a replica checks even when the book is valid. Callers
  may send the ``seq`` their new value was computed from; a write whose base is stale is
  refused rather than applied over a newer copy.
- W7: a buy's id travels with its write; every replica stores it with the book, and a check
  or write that meets a known id answers the first outcome instead of writing again.
- W2/W3 (``Rule.LEASES``, ``Rule.CATCH_UP``): replicas ping each other; a ping carries this replica's
  seqs and is answered with every newer row, so a restarted replica catches up in the
  background. Read leases are granted by the peers: a peer answers a ping with a lease
  (valid until its time + LEASE_S) only when the pinging replica is as current as itself,
  and a replica trusts its valid set only while it holds an unexpired lease from every
  peer. A writer that leaves a peer out of a write waits until the lease it granted that
  peer has run out before answering — it knows exactly when, having granted it — and grants
  it none until it has caught up. The front-end's lookup cache is read the same way: the
  front-end serves cached copies only while every catalog's lease to it holds, and a
  writer that could not confirm its invalidation waits out that lease (W2, W8).
  Peers the heartbeat knows are out are skipped without being asked (W4).
Which repairs a replica runs is one frozen set of named rules (``rules.py``): ``BAZAR`` runs
them all; ``--mode documented`` leaves out those that would repair the figures' starting
states (replicas left behind on purpose); ``DOCUMENTED`` is protocol.md's write to the letter
(check only when not valid, no reservation, no buy ids), which the simulator's documented
mode runs to show what it loses.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from nodes.core.books import Book
from nodes.core.catalog.rules import Mode, Rule, mode_of, rules_for, with_mode
from nodes.core.effects import Core, Disk, Gather, NoAnswer, Send, Sleep, Waiters
from nodes.core.messages import (
    Applied,
    Busy,
    BuysOf,
    Check,
    Conflict,
    Done,
    FetchBuys,
    Found,
    Get,
    Granted,
    Health,
    Healthy,
    Hits,
    Invalidate,
    KnownBuy,
    Newer,
    NotWritten,
    OtherGeneration,
    Ping,
    Pong,
    Read,
    Release,
    Search,
    Unconfirmed,
    Update,
    Write,
    Written,
)

RESERVATION_TTL_S = 3.0
#: How long a check waits for a reservation held by a writer it outranks (wait-die).
RESERVATION_WAIT_S = 0.3
#: How long a writer queues for its own replica's reservation before answering busy.
LOCAL_QUEUE_S = 1.0
HEARTBEAT_S = 0.2
#: How long a lease granted to a peer (in a ping's answer) lets it trust its valid set.
LEASE_S = 1.0
#: How long a lease granted to the front-end (in a probe's answer) lets it serve its cache.
FRONTEND_LEASE_S = 1.5
PING_TIMEOUT_S = 0.4
INVALIDATE_TIMEOUT_S = 0.5

Priority = tuple[float, int]  # (when the operation first tried, writer's replica number): lower wins


class BookUnknown(Exception):
    """The book id is not one of the catalog's (404 at the driver)."""


@dataclass
class Reservation:
    owner: int
    token: str
    expires: float
    priority: Priority = (0.0, 0)


@dataclass
class Peer:
    index: int
    up: bool = True
    last_heard: float = 0.0  # the core's time of the last answer from this peer
    lease_until: float = 0.0  # the lease this peer granted us: we may trust our valid set until then
    granted_until: float = 0.0  # the lease we granted this peer
    #: It last failed by refusing the connection: no process is listening, so no memory survives.
    refused: bool = False
    #: When a ping that found no process was sent: it starts again after this, and waits out
    #: LEASE_S from its start before leaving anyone out of a write (see start).
    refused_at: float = 0.0

    @property
    def name(self) -> str:
        return f"catalog{self.index}"


@dataclass
class WriteResult:
    answer: Written | Conflict | NotWritten

    @property
    def book(self) -> Book | None:
        return getattr(self.answer, "book", None)


@dataclass
class _Rider:
    """A buy that arrived while a write of its book was under way: it waits to ride on the
    next round with the others (a group commit) and is handed that round's answer."""

    request: Write
    answer: Any = None


def _can_ride(request: Write) -> bool:
    return (request.buy_id is not None and request.take is not None and request.quantity is not None
            and request.price is None)


#: The most buys one round carries.
MAX_RIDERS = 32


@dataclass
class _CheckOutcome:
    granted: list[Peer] = field(default_factory=list)
    unreachable: list[Peer] = field(default_factory=list)
    newer: list[Book] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)
    known_buy: KnownBuy | None = None


class CatalogReplica(Core):
    """One catalog replica's state and rules. ``rules``: the repairs it runs (``rules.py``);
    ``mode``, ``guard_writes`` and ``consistency`` are the older spelling of the same choice
    (``rules_for``). ``nonce`` makes its reservation tokens unique across restarts; ``seed``
    or ``peer_order`` fix the read's peer choice (scenarios)."""

    def __init__(
        self,
        index: int,
        replicas: int,
        *,
        has_frontend: bool,
        rules: frozenset[Rule] | None = None,
        mode: str | None = None,
        seed: int | None = None,
        peer_order: list[int] | None = None,
        nonce: str = "",
        timeout_s: float = 1.0,
        guard_writes: bool | None = None,
        consistency: str | None = None,
    ) -> None:
        self.index = index
        if rules is None:
            rules = rules_for(mode or Mode.BAZAR, True if guard_writes is None else guard_writes, consistency)
        elif mode is not None or guard_writes is not None or consistency is not None:
            raise TypeError("give either rules or mode/guard_writes/consistency, not both")
        self.rules = rules
        self.has_frontend = has_frontend
        self.peers = [Peer(i) for i in range(replicas) if i != index]
        self.rng = random.Random(seed)
        self.peer_order = peer_order
        self.nonce = nonce
        self.timeout_s = timeout_s
        self.books: dict[int, Book] = {}
        self.buys: dict[str, tuple[int, int]] = {}
        self.buy_count: Counter[int] = Counter()  # buys remembered per book, kept by _remember_buy
        self.valid_ids: set[int] = set()
        self.reservations: dict[int, Reservation] = {}
        self.waiters = Waiters()
        self._locked: set[int] = set()  # books a local write is in progress for
        self.riders: dict[int, list[_Rider]] = {}  # buys waiting to ride on a book's next write
        #: Buys not to be vouched for as done before these times (see _settles).
        self.buy_settles: dict[str, float] = {}
        self.started_at = 0.0
        #: Writes whose updates got no answer (a peer may hold them): book -> (update, peers
        #: to offer it to), until a peer confirms it or shows another write of that seq.
        self.tentative: dict[int, tuple[Update, tuple[int, ...]]] = {}
        self._tokens = 0
        self._lease_lapsed = False  # for telling the lapse and the renewal apart, once each
        #: The lease granted to the front-end for its cache, and whether an invalidation it
        #: may have missed withholds the next one until that lease has run out.
        self.frontend_granted_until = 0.0
        self.frontend_withheld = False
        self.catch_ups = 0
        self.generation = 0  # which reset of the data this replica holds (see reset)
        self.resetting = False
        self.pending_reset: int | None = None  # a newer generation met; the driver resets to it

    @property
    def mode(self) -> Mode:
        """The mode the rules read as (``describe`` shows it)."""
        return mode_of(self.rules)

    @mode.setter
    def mode(self, mode: str) -> None:
        """Switch the mode's rules on a running replica (the admin call), keeping the others."""
        self.rules = with_mode(self.rules, mode)

    # ---- life cycle -------------------------------------------------------------------
    async def start(self) -> None:
        self.generation = await Disk("load_generation")
        self.books = await Disk("load_books")
        for buy_id, (book_id, seq) in (await Disk("load_buys")).items():
            self._remember_buy(buy_id, book_id, seq)
        self.started_at = self.now
        # What we granted before a crash is forgotten: assume the longest leases are still out.
        for peer in self.peers:
            peer.granted_until = self.now + LEASE_S
        self.frontend_granted_until = self.now + FRONTEND_LEASE_S

    async def reset(self, generation: int) -> None:
        """Back to the seven books at seq 0, nothing valid, no buys remembered, in a new
        generation of the data (``generation``: the same number on every replica of one
        cluster reset). Replicas are reset one after the other; until all are, messages
        between generations are refused (``same_generation``), so no row or buy from
        before the reset travels back into a replica already reset."""
        generation = max(self.generation, generation)
        self.resetting = True  # from now until done, no peer message is taken or answered
        held: list[int] = []
        try:
            for book_id in list(self.books):
                await self._lock(book_id, float("inf"))
                held.append(book_id)
            self.books = await Disk("reset", generation)
            self.generation = generation
            self.buys.clear()
            self.buy_count.clear()
            self.valid_ids.clear()
            self.reservations.clear()
            self.catch_ups = 0
        finally:
            self.resetting = False
            self.pending_reset = None
            for book_id in held:
                self._unlock(book_id)

    def same_generation(self, theirs: int | None) -> bool:
        """True when a peer's message belongs to our generation of the data. A newer one
        means a reset we missed (we were down, or not reset yet): ``pending_reset`` asks the
        driver to reset us to it, then we catch up as usual. An older one: the peer will do
        the same when it hears us."""
        if self.resetting:
            return False
        if theirs is None or theirs == self.generation:
            return True
        if theirs > self.generation and self.pending_reset is None:
            self.pending_reset = theirs
            self.emit("generation", generation=theirs)
        return False

    def _send(self, peer: Peer, message: Any, *, timeout: float | None = None, trace: bool = True) -> Send:
        """Every message to a peer says which generation of the data it belongs to."""
        return Send(peer.name, message, timeout or self.timeout_s, generation=self.generation, trace=trace)

    def _new_token(self) -> str:
        self._tokens += 1
        return f"{self.index}.{self.nonce}.{self._tokens}"

    def _settles(self, buy_id: str) -> float:
        """When a buy we hold may be answered as done: a write that left replicas out is not
        acknowledged before their leases ran out, and neither may its buy be through a retry
        (a known buy). After a restart we do not know those times: a lease's length."""
        if Rule.LEASES not in self.rules:
            return 0.0
        return max(self.buy_settles.get(buy_id, 0.0), self.started_at + LEASE_S)

    async def _known_buy(self, buy_id: str, book_id: int) -> KnownBuy:
        settles = self._settles(buy_id)
        if settles > self.now:
            await Sleep(settles)
        return KnownBuy(self.books[book_id], settles, buy_id)

    # ---- state --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "books": [
                {
                    "id": book.id,
                    "seq": book.seq,
                    "quantity": book.quantity,
                    "price": book.as_record()["price"],
                    "valid": book.id in self.valid_ids,
                    "reserved_by": self._holder(book.id),
                }
                for book in sorted(self.books.values(), key=lambda b: b.id)
            ],
            "peers": [{"id": p.index, "up": p.up} for p in self.peers],
            "lease_ok": self._lease_ok(),
            "rejoining": self.rejoining,
            "leases": {p.name: round(max(0.0, p.lease_until - self.now), 3) for p in self.peers},
            "catch_ups": self.catch_ups,
            "generation": self.generation,
            "buys_remembered": len(self.buys),
        }

    def _holder(self, book_id: int) -> int | None:
        reservation = self.reservations.get(book_id)
        return reservation.owner if reservation and reservation.expires > self.now else None

    def book(self, book_id: int) -> Book:
        try:
            return self.books[book_id]
        except KeyError:
            raise BookUnknown(book_id) from None

    def search(self, topic: str) -> list[Book]:
        needle = topic.casefold()
        return [book for book in sorted(self.books.values(), key=lambda b: b.id) if needle in book.topic.casefold()]

    def _mark_valid(self, book_id: int) -> None:
        if not self._lease_ok():
            return  # without every peer's lease we cannot vouch for anything (W2)
        if book_id not in self.valid_ids:
            self.valid_ids.add(book_id)
            self.emit("valid", book=book_id, valid=True, seq=self.books[book_id].seq)

    def _unmark_valid(self, book_id: int) -> None:
        if book_id in self.valid_ids:
            self.valid_ids.discard(book_id)
            self.emit("valid", book=book_id, valid=False, seq=self.books[book_id].seq)

    async def _adopt(self, copy: Book, buy_ids: tuple[str, ...] | list[str] = (),
                     generation: int | None = None) -> bool:
        """Store ``copy`` when it is newer than ours. True when it was. ``generation``: ours
        when the message that brought the copy was sent; a reset since makes it foreign."""
        if copy.seq <= self.books[copy.id].seq or not self.same_generation(generation):
            return False
        await Disk("write", copy, list(buy_ids))
        if copy.seq <= self.books[copy.id].seq or not self.same_generation(generation):
            return False  # a newer one landed while we were writing, or a reset
        self.books[copy.id] = copy
        for buy_id in buy_ids:
            self._remember_buy(buy_id, copy.id, copy.seq)
        self._emit_seq(copy)
        return True

    # ---- book locks (one local write per book at a time) -----------------------------------
    async def _lock(self, book_id: int, deadline: float) -> bool:
        while book_id in self._locked:
            if not await self.waiters.wait(("lock", book_id), deadline) and book_id in self._locked:
                return False
        self._locked.add(book_id)
        return True

    def _unlock(self, book_id: int) -> None:
        self._locked.discard(book_id)
        self.waiters.notify(("lock", book_id))

    # ---- leases (W2) ----------------------------------------------------------------------
    def _lease_ok(self) -> bool:
        """True while enough peers' leases to us hold that no write can have left us out since:
        a write that does waits until the leases its writer and every peer taking it granted
        us have run out. With majority writes, a write that leaves us out is taken by a
        majority of the others, so leases from all but that many minus one suffice (one of
        three: a hung peer does not stop the other two from reading locally); otherwise
        every peer's. A peer that refused our last ping has no process, so it cannot take a
        write: it counts as holding its lease until it is back (and, back, it waits out
        whatever it may have granted before)."""
        if Rule.LEASES not in self.rules:
            return True
        replicas = len(self.peers) + 1
        needed = replicas - (replicas // 2 + 1) if Rule.MAJORITY in self.rules else len(self.peers)
        holding = sum(1 for peer in self.peers if peer.lease_until > self.now or peer.refused)
        return holding >= needed

    @property
    def rejoining(self) -> bool:
        """Out of lease: vouching for nothing until every peer has granted a new one."""
        return not self._lease_ok()

    def _lease_holds(self) -> bool:
        """True while our valid set may be trusted. Without a lease from every peer, writes
        may have happened without us (W2): the valid set is dropped."""
        if self._lease_ok():
            if self._lease_lapsed:
                self._lease_lapsed = False
                self.emit("lease", held=True)
            return True
        if not self._lease_lapsed:
            self._lease_lapsed = True
            self.emit("lease", held=False)
        for stale in list(self.valid_ids):
            self._unmark_valid(stale)
        return False

    def contact(self) -> None:
        """Something reached us. After a pause, the requests queued while we were stopped
        arrive before anything else: a lapse is noticed first, and the valid set dropped."""
        self._lease_holds()

    def _grant(self, peer: Peer, seqs: dict[int, int]) -> float | None:
        """A lease for ``peer``, if it is as current as we are (W2): it may trust its valid set
        until the time returned, and we will not leave it out of a write before then without
        waiting for that time."""
        if Rule.LEASES not in self.rules or any(seqs.get(b.id, -1) < b.seq for b in self.books.values()):
            return None
        until = self.now + LEASE_S
        peer.granted_until = max(peer.granted_until, until)
        return until

    def on_health(self, sender: str) -> Healthy:
        """The front-end's probe; answered with a lease for its cache, unless an invalidation
        it may have missed withholds it (until its last lease has run out)."""
        if sender != "frontend" or not self.has_frontend or Rule.FRONTEND_LEASES not in self.rules:
            return Healthy()
        if self.frontend_withheld and self.now <= self.frontend_granted_until:
            return Healthy(0.0)  # a lease that has run out: serve nothing from the cache
        self.frontend_withheld = False
        until = self.now + FRONTEND_LEASE_S
        self.frontend_granted_until = max(self.frontend_granted_until, until)
        return Healthy(until)

    def _trusted_valid(self, book_id: int) -> bool:
        return book_id in self.valid_ids and book_id not in self.tentative and self._lease_holds()

    async def _deliver_or_outwait(self, missed: list[Peer], update: Update,
                                  holds: dict[int, float], *, offer: bool = True) -> tuple[list[Peer], bool]:
        """Before answering a write that ``missed`` could not see, make sure none of them can
        still vouch for the old copy (W2): keep offering each the update until it takes it,
        or until its valid set has surely lapsed. A peer back before its lease lapsed (a short
        cut-off) takes the update; one still away has dropped its valid set by the deadline.
        A peer that refused the connection has no process, hence no valid set: nothing to do.
        Returns the peers that never took the update, and whether one of them may have taken it
        all the same (an offer whose answer was lost). The deadline is the end of the lease we
        granted each: we know it exactly, having granted it (and grant none meanwhile: our
        copy is newer than theirs). ``holds``: the leases the peers that took the write granted
        the missed ones; those run out before we answer, too."""
        def until(peer: Peer) -> float:
            return max(peer.granted_until, holds.get(peer.index, 0.0))

        missed = [peer for peer in missed if not peer.refused and until(peer) > self.now]
        maybe = False
        if Rule.LEASES not in self.rules or not missed:
            return [], maybe
        deadline = max(until(peer) for peer in missed)
        if self.now < deadline:
            self.emit("lease_wait", peers=[p.index for p in missed], ms=round((deadline - self.now) * 1000))
        late = replace(update, late=True)
        if not offer:
            await Sleep(deadline)
            return missed, maybe
        while missed and self.now < deadline:
            replies = await Gather([self._send(p, late, timeout=PING_TIMEOUT_S) for p in missed])
            maybe |= any(isinstance(reply, NoAnswer) and reply.maybe_processed for reply in replies)
            missed = [p for p, reply in zip(missed, replies, strict=True) if not isinstance(reply, Applied)]
            if missed:
                await Sleep(min(deadline, self.now + HEARTBEAT_S / 2))  # pacing between offers
        return missed, maybe

    # ---- read (S1–S3) -----------------------------------------------------------------------
    async def read(self, book_id: int, buy_id: str | None = None) -> Found | KnownBuy | Conflict:
        self.book(book_id)  # unknown before any hop: every replica holds the same books (W5)
        if buy_id is not None and buy_id in self._tentative_buys():
            return Conflict(None, "That buy is not confirmed yet; try again")
        if buy_id is not None and buy_id in self.buys:
            return await self._known_buy(buy_id, book_id)  # W7: that buy is done already
        if self._trusted_valid(book_id):
            return Found(self.books[book_id])
        found, copy = await self._hop(book_id, asked=(), upstream_seq=-1)
        if not found:
            return Conflict(copy, "No replica could vouch for a current copy; try again")
        if buy_id is not None and buy_id in self.buys:
            return await self._known_buy(buy_id, book_id)
        return Found(copy)

    async def on_get(self, message: Get) -> Found | Conflict:
        self.book(message.book)
        if self._trusted_valid(message.book):
            return Found(self.books[message.book])
        found, copy = await self._hop(message.book, asked=message.req + (message.sender,),
                                      upstream_seq=message.seq_n)
        return Found(copy) if found else Conflict(copy, "Conflict: no current copy on this path", seq=copy.seq)

    async def _hop(self, book_id: int, *, asked: tuple[int, ...], upstream_seq: int) -> tuple[bool, Book]:
        own = self.books[book_id]
        highest = max(upstream_seq, own.seq)
        left = [p for p in self.peers if p.index not in asked]
        if Rule.SKIP_DOWN_PEERS in self.rules and self._lease_ok():
            # W4: known-down peers are not waited for. Not so when our own lease has lapsed:
            # then we may be the one that was away (W2), and only the peers can tell us.
            left = [p for p in left if p.up]
        generation = self.generation
        while left:
            peer = self._choose(left)
            left.remove(peer)
            reply = await self._send(peer, Get(book_id, asked, self.index, highest))
            if isinstance(reply, NoAnswer):
                # An unreachable peer is skipped, and travels on in ``req`` so that no one
                # further down the chain waits for it again (W4).
                self._note_unreachable(peer, reply)
                asked = asked + (peer.index,)
                continue
            if isinstance(reply, Found):
                self._note_reachable(peer)
                await self._adopt(reply.book, generation=generation)
                if book_id in self.tentative and self.books[book_id].seq > reply.book.seq:
                    return True, reply.book  # ours is an unconfirmed write: not handed on
                if reply.book.seq >= self.books[book_id].seq:
                    self._mark_valid(book_id)
                return True, self.books[book_id]
            if isinstance(reply, Conflict):
                self._note_reachable(peer)
                # S3: a conflict from further down. Our own copy is current when it is newer
                # than anything upstream has seen; otherwise pass the conflict on.
                if self.books[book_id].seq > upstream_seq and book_id not in self.tentative:
                    self._mark_valid(book_id)
                    return True, self.books[book_id]
                return False, self.books[book_id]
            self._note_unreachable(peer)  # answered, but not with the protocol: skip it
        # No peer left: the last replica decides (cold start S1, total failure S3) — unless its
        # copy is an unconfirmed write of its own, which it hands to no one.
        if self.books[book_id].seq >= upstream_seq and book_id not in self.tentative:
            self._mark_valid(book_id)
            return True, self.books[book_id]
        return False, self.books[book_id]

    def _choose(self, candidates: list[Peer]) -> Peer:
        up = [p for p in candidates if p.up] or candidates  # W4: known-down peers go last
        if self.peer_order is not None:
            rank = {index: position for position, index in enumerate(self.peer_order)}
            return min(up, key=lambda p: rank.get(p.index, len(rank) + p.index))
        return self.rng.choice(up)

    def _note_unreachable(self, peer: Peer, reply: Any = None, sent: float | None = None) -> None:
        if sent is not None and peer.last_heard > sent:
            return  # it has answered since we asked (a round we slept through, say): stale news
        peer.refused = isinstance(reply, NoAnswer) and reply.refused
        if peer.refused and sent is not None:
            peer.refused_at = sent
        if peer.up:
            peer.up = False
            self.emit("peer", peer=peer.index, up=False)

    def _note_reachable(self, peer: Peer) -> None:
        self._lease_holds()  # a lapse is noticed before the contact renews the lease
        peer.last_heard = self.now
        if peer.refused:
            # Back from no process at all: it started after refused_at, and will not leave us
            # out of a write before its start + LEASE_S, so until then our trust stands.
            peer.lease_until = max(peer.lease_until, peer.refused_at + LEASE_S)
            peer.refused = False
        if not peer.up:
            peer.up = True
            self.emit("peer", peer=peer.index, up=True)

    # ---- write (S4, S5, W1, W7) ---------------------------------------------------------------
    async def write(self, request: Write) -> Written | Conflict | NotWritten | Unconfirmed:
        """``request.since``: when the operation behind this write first tried (a buy's first
        attempt); the older one wins a conflict, so a buy that keeps retrying cannot starve."""
        book_id = request.book
        self.book(book_id)
        changes = {k: v for k, v in (("quantity", request.quantity), ("price", request.price)) if v is not None}
        if Rule.RESERVED_WRITES not in self.rules:
            return await self._documented_write(book_id, changes)
        if _can_ride(request) and book_id in self._locked:
            rider = _Rider(request)
            self.riders.setdefault(book_id, []).append(rider)
            try:
                # Until a round carries it (its answer is handed over at once, whoever takes
                # the lock next), or the book is free and no round took it: then it leads.
                while rider.answer is None and book_id in self._locked:
                    await self.waiters.wait(("lock", book_id), float("inf"))
            finally:
                self._unboard(book_id, [rider])  # carried, leading, or its caller gave up
            if rider.answer is not None:
                return rider.answer
        await self._lock(book_id, float("inf"))
        try:
            priority: Priority = (request.since if request.since is not None else self.now, self.index)
            buy_id = request.buy_id
            if buy_id is not None and buy_id in self._tentative_buys():
                return Conflict(self.books[book_id], "busy")  # not confirmed yet: neither done nor not
            if buy_id is not None and buy_id in self.buys:
                # The first attempt may have stalled before telling the front-end: tell it now.
                await self._invalidate_frontend(self.books[book_id])
                if self._settles(buy_id) > self.now:
                    await Sleep(self._settles(buy_id))
                return Written(self.books[book_id], duplicate=True)
            token = self._new_token()
            # Holding nothing yet, this writer can wait its turn at home whoever holds the book:
            # a wait that holds nothing cannot close a cycle. Checks at peers use wait-die.
            if not await self._reserve_or_wait(book_id, self.index, token, priority, queue_s=LOCAL_QUEUE_S):
                return Conflict(self.books[book_id], "busy")
            # No rider boards a write on top of an unconfirmed one: its copies would have to be
            # taken from a copy that may yet give way (see the take rule in _reserved_write).
            riders = self._board(book_id, request) if _can_ride(request) and book_id not in self.tentative else []
            since = min([priority[0], *(r.request.since for r in riders if r.request.since is not None)])
            try:
                answer = await self._reserved_write(
                    book_id, changes, request.base_seq, buy_id, token, (since, self.index),
                    take=request.take if buy_id is not None else None,
                    riders=tuple((r.request.buy_id, r.request.take) for r in riders))
            finally:
                self._release(book_id, token)
            return self._share(book_id, answer, buy_id, riders)
        finally:
            self._unlock(book_id)

    def _board(self, book_id: int, leader: Write) -> list[_Rider]:
        """The buys waiting for this book that can ride on the leader's round: not already
        done or unconfirmed here, each once, as many as the stock allows."""
        waiting = self.riders.get(book_id)
        if not waiting:
            return []
        room = self.books[book_id].quantity - (leader.take or 0)
        seen, unconfirmed, boarded = {leader.buy_id}, self._tentative_buys(), []
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

    def _unboard(self, book_id: int, riders: list[_Rider]) -> None:
        left = [r for r in self.riders.get(book_id, []) if all(r is not gone for gone in riders)]
        if left:
            self.riders[book_id] = left
        else:
            self.riders.pop(book_id, None)

    def _share(self, book_id: int, answer: Any, buy_id: str | None, riders: list[_Rider]) -> Any:
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

    async def _documented_write(self, book_id: int, changes: dict[str, Any]) -> Written | Conflict:
        """protocol.md's write as written: check unless valid, take a newer copy and answer
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

    async def _reserved_write(
        self, book_id: int, changes: dict[str, Any], base_seq: int | None, buy_id: str | None, token: str,
        priority: Priority, *, take: int | None = None, riders: tuple[tuple[str, int], ...] = (),
    ) -> Written | Conflict | NotWritten | Unconfirmed:
        """One write round: check and reserve at the peers, then the update fan-out. A buy's
        write (``take`` copies) may carry ``riders``, other buys of the book (id, copies),
        in the same round; the copies all come off the current copy."""
        started, generation = self.now, self.generation
        if take is not None:
            take += sum(copies for _buy, copies in riders)
        outcome = await self._check_peers(book_id, token, buy_id, priority, tuple(buy for buy, _copies in riders))
        if outcome.newer or outcome.known_buy is not None or outcome.busy:
            await self._release_peers(book_id, token, outcome.granted)
            if outcome.newer:
                # S5: a peer is ahead. Take the highest copy as current and let the caller retry.
                newest = max(outcome.newer, key=lambda b: b.seq)
                await self._adopt(newest, generation=generation)
                self._mark_valid(book_id)
                return Conflict(self.books[book_id], "outdated")
            if outcome.known_buy is not None:
                await self._invalidate_frontend(outcome.known_buy.book)
                if outcome.known_buy.settles > self.now:
                    await Sleep(outcome.known_buy.settles)
                return Written(outcome.known_buy.book, duplicate=True, of=outcome.known_buy.buy_id)
            return Conflict(self.books[book_id], "busy")
        current = self.books[book_id]
        reserved, replicas = len(outcome.granted) + 1, len(self.peers) + 1
        if Rule.MAJORITY in self.rules and reserved <= replicas // 2:
            # W8: without a majority, another side of a partition may be writing this book
            # too. Refuse, and change nothing: availability is what a partition costs.
            await self._release_peers(book_id, token, outcome.granted)
            return NotWritten(f"only {reserved} of {replicas} catalog replicas reachable; "
                              f"{replicas // 2 + 1} needed")
        # A buy may have become known here while this write waited its turn or checked (an
        # update or a catch-up carrying it): a retry of a buy done through another replica.
        # Before buys took copies from the current row, its stale base refused it; now say so.
        unsure = self._tentative_buys()
        for buy in (buy_id, *(b for b, _copies in riders)):
            if buy is not None and buy in self.buys:
                await self._release_peers(book_id, token, outcome.granted)
                if buy in unsure:
                    return Conflict(current, "busy")
                if self._settles(buy) > self.now:
                    await Sleep(self._settles(buy))
                return Written(self.books[book_id], duplicate=True, of=buy)
        if riders and book_id in self.tentative:  # cannot happen: boarding checks it; never carry them wrong
            await self._release_peers(book_id, token, outcome.granted)
            return Conflict(current, "busy")
        if take is not None and set(changes) == {"quantity"} and book_id not in self.tentative:
            # Buys take their copies from the current copy, which the check round just showed
            # no peer is ahead of: one computed from an older copy (another buy landed first)
            # is carried out, where refusing it would cost a re-read, a retry and a round.
            if current.quantity < take:
                await self._release_peers(book_id, token, outcome.granted)
                return Conflict(current, "stale base")
            changes = {"quantity": current.quantity - take}
        elif base_seq is not None and base_seq != current.seq:
            await self._release_peers(book_id, token, outcome.granted)
            return Conflict(current, "stale base")
        if self.now - started > RESERVATION_TTL_S / 2:
            # Our reservations may be about to lapse at the peers: do not fan out on them.
            await self._release_peers(book_id, token, outcome.granted)
            return Conflict(current, "slow check")
        new = replace(current, seq=current.seq + 1, **changes)
        buy_ids = (buy_id, *(buy for buy, _copies in riders)) if buy_id else ()
        excluded = tuple(p.index for p in outcome.unreachable) if Rule.MAJORITY in self.rules else ()
        update = Update(new, self.index, token, buy_ids, excluded=excluded)
        # The front-end hears of the write alongside the peers, not after them: the invalidation
        # names the new seq, so the front-end caches no older copy from then on (cache.py).
        sends = [self._send(p, update) for p in outcome.granted]
        if self.has_frontend:
            sends.append(Send("frontend", Invalidate(book_id, new.seq), INVALIDATE_TIMEOUT_S))
        replies = await Gather(sends)
        # While the fan-out was out, catch-up may have brought a newer copy, built on this
        # write by a writer a peer showed it to: never step back to ours.
        if self.books[book_id].seq < new.seq:
            await Disk("write", new, list(buy_ids))
        elif buy_ids:
            await Disk("add_buys", book_id, [(b, new.seq) for b in buy_ids])
        for peer, reply in zip(outcome.granted, replies, strict=False):
            if isinstance(reply, NoAnswer):
                self._note_unreachable(peer, reply)  # it dropped its valid mark when it reserved
            else:
                self._note_reachable(peer)
        fan_out = replies[:len(outcome.granted)]
        took = any(isinstance(reply, Applied) for reply in fan_out)
        maybe = any(isinstance(reply, NoAnswer) and reply.maybe_processed for reply in fan_out)
        if outcome.granted and not took and not maybe:
            # Every peer that granted the write refused it (it moved on meanwhile). Kept here
            # alone it would be acknowledged while they answer the old copy: withdraw it.
            await Disk("undo", self._newest(current), list(buy_ids))
            return NotWritten("no peer took the write")
        unconfirmed = bool(outcome.granted) and not took
        if unconfirmed:
            # An update's answer was lost, not refused: a peer may hold the write. Withdrawn,
            # its seq could be reused for another write while that peer keeps this one. Kept,
            # and offered again until a peer says it holds it or holds another (tentative).
            self.tentative[book_id] = (update, tuple(p.index for p in outcome.granted))
        # In memory before the wait below: a peer that took it may already answer the buy's
        # retry as done, so from now on we must not serve the old copy either.
        if self.books[book_id].seq < new.seq:
            self.books[book_id] = new
            self._mark_valid(book_id)
            self._emit_seq(new)
        for buy in buy_ids:
            self._remember_buy(buy, book_id, new.seq)
        if self.has_frontend and not isinstance(replies[-1], Done):
            await self._invalidate_frontend(new)  # a lost invalidation leaves a stale entry: again
        holds: dict[int, float] = {}
        for reply in fan_out:
            for index, until in reply.holds if isinstance(reply, Applied) else ():
                holds[index] = max(holds.get(index, 0.0), until)
        settle = max([until for until in holds.values()]
                     + [p.granted_until for p in outcome.unreachable if not p.refused], default=0.0)
        for buy in buy_ids:
            if settle > self.now:
                self.buy_settles[buy] = max(self.buy_settles.get(buy, 0.0), settle)
        # Offered late only once a peer has confirmed it: a replica left out cannot tell an
        # offer of a write that may yet give way from a settled one.
        missed, maybe_late = await self._deliver_or_outwait(outcome.unreachable, update, holds,
                                                            offer=took or not outcome.granted)
        if missed and not took and not unconfirmed and not self._lease_ok():
            # No peer took it, and nothing reached us while we waited for them: we are likely
            # the one cut off, and they, still in touch with each other, vouch for the old
            # copy. Acknowledged, the write would be read as never made: withdraw it.
            current = self._newest(current) if self.books[book_id] is not new else current
            await Disk("undo", current, list(buy_ids))
            self.tentative.pop(book_id, None)
            self.books[book_id] = current
            for buy in buy_ids:
                self._forget_buy(buy)
            self._unmark_valid(book_id)
            self._emit_seq(current)
            if maybe_late:
                return Unconfirmed("out of touch with the peers it missed")
            return NotWritten("out of touch with the peers it missed")
        if unconfirmed:
            return Unconfirmed("no peer confirmed the write")
        return Written(new)

    async def _check_peers(self, book_id: int, token: str, buy_id: str | None, priority: Priority,
                           riders: tuple[str, ...] = ()) -> _CheckOutcome:
        own = self.books[book_id]
        check = Check(book_id, own.seq, self.index, token, buy_id, priority[0], riders)
        outcome = _CheckOutcome()
        # W4: a peer the heartbeat knows is out is skipped at once, not waited for — once it has
        # been silent long enough that its valid set has surely lapsed (W2); until then it is
        # asked, since it may be back already and holding the book as valid.
        trust_beliefs = Rule.SKIP_DOWN_PEERS in self.rules and self._lease_ok()
        asked = [p for p in self.peers if p.up or not trust_beliefs or p.granted_until > self.now]
        outcome.unreachable = [p for p in self.peers if p not in asked]
        replies = await Gather([self._send(p, check) for p in asked])
        for peer, reply in zip(asked, replies, strict=True):
            if isinstance(reply, NoAnswer):
                self._note_unreachable(peer, reply)
                outcome.unreachable.append(peer)
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
            else:
                outcome.unreachable.append(peer)
        return outcome

    async def _release_peers(self, book_id: int, token: str, peers: list[Peer]) -> None:
        if peers:
            await Gather([self._send(p, Release(book_id, token)) for p in peers])

    async def _invalidate_frontend(self, book: Book) -> None:
        """Tell the front-end to drop ``book`` from its lookup cache, naming the write's seq.
        The documents also drop the book's topic from the search cache; Bazar does not: a
        write changes price or quantity, which search results (id, title, topic) do not
        show, so the cached searches are still right (and it saves every buy a message)."""
        if not self.has_frontend:
            return
        for _attempt in (1, 2):  # a lost invalidation leaves a stale entry behind: try twice
            reply = await Send("frontend", Invalidate(book.id, book.seq), INVALIDATE_TIMEOUT_S)
            if isinstance(reply, Done):
                return
        if Rule.FRONTEND_LEASES in self.rules:
            # It may still serve the old copy from its cache: no new cache lease until the last
            # one we granted has run out, and the write is not answered before then (W2).
            self.frontend_withheld = True
            if self.now < self.frontend_granted_until:
                await Sleep(self.frontend_granted_until)

    # ---- the peer side of a write -------------------------------------------------------------
    def _reserve(self, book_id: int, owner: int, token: str, priority: Priority = (0.0, 0)) -> bool:
        held = self.reservations.get(book_id)
        if held is not None and held.expires > self.now and held.token != token:
            return False
        self.reservations[book_id] = Reservation(owner, token, self.now + RESERVATION_TTL_S, priority)
        return True

    def _release(self, book_id: int, token: str) -> None:
        held = self.reservations.get(book_id)
        if held is not None and held.token == token:
            del self.reservations[book_id]
            self.waiters.notify(("released", book_id))

    async def _reserve_or_wait(self, book_id: int, owner: int, token: str, priority: Priority,
                               queue_s: float | None = None) -> bool:
        """Reserve the book for ``owner``; if another writer holds it, wait a little for it —
        but only when this write is older than the holder's ("wait-die"): the younger one
        fails at once, so waits never form a cycle and the oldest write always gets through.
        Without this, writers to one book kept failing each other under load. With
        ``queue_s`` the writer holds nothing yet and may wait whoever holds the book."""
        deadline = self.now + (RESERVATION_WAIT_S if queue_s is None else queue_s)
        while not self._reserve(book_id, owner, token, priority):
            holder = self.reservations[book_id]
            if (queue_s is None and priority > holder.priority) or self.now >= deadline:
                return False
            # Woken when it is handed back, or at the deadline or the holder's expiry.
            await self.waiters.wait(("released", book_id), min(deadline, holder.expires))
        return True

    async def on_check(self, message: Check) -> Granted | KnownBuy | Newer | Busy:
        book_id = self.book(message.book).id
        if book_id in self.tentative:
            return Busy(self.index)  # an unconfirmed write of ours: nothing to build on yet
        if Rule.RESERVED_WRITES not in self.rules:
            own = self.books[book_id]
            return Newer(own) if own.seq > message.seq_n else Granted(own.seq)
        decided = self._check_answer(message)
        if decided is not None:  # no need to queue for a reservation to say this
            return decided
        priority: Priority = (message.since if message.since is not None else self.now, message.sender)
        reserved = await self._reserve_or_wait(book_id, message.sender, message.token, priority)
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

    def _check_answer(self, message: Check) -> KnownBuy | Newer | None:
        """A check's answer when it does not depend on reserving: a known buy, or a newer copy."""
        own = self.books[message.book]
        unsure = self._tentative_buys()
        for buy in (message.buy_id, *message.riders):
            if buy is not None and buy in self.buys and buy not in unsure:
                return KnownBuy(own, self._settles(buy), buy)
        if own.seq > message.seq_n:
            return Newer(own)
        return None

    def on_release(self, message: Release) -> Done:
        self.book(message.book)
        self._release(message.book, message.token)
        return Done()

    async def on_update(self, message: Update) -> Applied | Newer | Busy:
        copy = message.copy
        own = self.book(copy.id)
        if Rule.RESERVED_WRITES not in self.rules:
            if copy.seq > own.seq:
                await self._adopt(copy)
            self._mark_valid(copy.id)
            return Applied(self.books[copy.id].seq)
        held = self.reservations.get(copy.id)
        if held is not None and held.token != message.token and held.expires > self.now:
            return Busy(held.owner)
        if copy.id in self.tentative and copy.seq <= own.seq:
            return Busy(self.index)
        if copy.seq < own.seq:
            return Newer(own)
        if copy.seq == own.seq and not (copy == own and all(b in self.buys for b in message.buy_ids)):
            return Newer(own)  # another write made this seq here: the sender's is the odd one out
        await self._adopt(copy, message.buy_ids)
        for buy_id in message.buy_ids:
            self._remember_buy(buy_id, copy.id, copy.seq)
        self._release(copy.id, message.token)
        self._mark_valid(copy.id)
        # Those left out are behind us now, so they get no new lease from us; the ones they
        # hold run until these times, and the writer waits for them (W2).
        holds = tuple((p.index, p.granted_until) for p in self.peers
                      if p.index in message.excluded and not p.refused and p.granted_until > self.now)
        if holds:
            for buy_id in message.buy_ids:
                self.buy_settles[buy_id] = max(self.buy_settles.get(buy_id, 0.0), *(u for _, u in holds))
        return Applied(self.books[copy.id].seq, holds)

    # ---- heartbeat and catch-up (W3, W4) --------------------------------------------------------
    async def heartbeat(self) -> None:
        """Runs for the replica's life (the driver starts it after ``start``)."""
        while True:
            started, generation = self.now, self.generation
            seqs = {book.id: book.seq for book in self.books.values()}
            ping = Ping(self.index, seqs)
            replies = await Gather([self._send(p, ping, timeout=PING_TIMEOUT_S, trace=False) for p in self.peers])
            for peer, reply in zip(self.peers, replies, strict=True):
                if isinstance(reply, Pong):
                    self._note_reachable(peer)
                    if Rule.CATCH_UP in self.rules:
                        await self._catch_up(peer, reply, generation)
                    if reply.lease_until is not None:
                        peer.lease_until = max(peer.lease_until, reply.lease_until)
                else:
                    if isinstance(reply, OtherGeneration):
                        self.same_generation(reply.generation)
                    self._note_unreachable(peer, reply, sent=started)
            self._lease_holds()  # drops the valid set on a lapse; says so, and when it is back
            if self.tentative and Rule.CATCH_UP in self.rules:
                await self._settle_tentative()
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
                self._confirm(book_id)
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
                self._confirm(book_id)
                continue
            if not all(isinstance(r, BuysOf) for r in held):
                continue  # someone did not answer: it may hold the write
            current = self.books[book_id]
            if current == update.copy and newer:
                current = max(newer, key=lambda b: b.seq)
            # Its buys carried out by another write that the copy we take includes stay known;
            # the others are forgotten (and come back with catch-up if a later write has them).
            elsewhere = {b: seq for r in held for b, seq in r.buys if b in ours and seq <= current.seq}
            await Disk("undo", current, list(update.buy_ids))
            self.books[book_id] = current
            for buy_id in update.buy_ids:
                self._forget_buy(buy_id)
            if elsewhere:
                await Disk("add_buys", book_id, sorted(elsewhere.items()))
                for buy_id, seq in sorted(elsewhere.items()):
                    self._remember_buy(buy_id, book_id, seq)
            self._unmark_valid(book_id)
            self._emit_seq(current)
            del self.tentative[book_id]

    def _newest(self, copy: Book) -> Book:
        """``copy`` or, if newer, the copy we hold of that book now."""
        held = self.books[copy.id]
        return held if held.seq > copy.seq else copy

    def _confirm(self, book_id: int) -> None:
        self.tentative.pop(book_id, None)

    def on_ping(self, message: Ping) -> Pong:
        """A ping's answer: our seqs, every row (with its buys) newer than the sender's, and a
        lease when the sender is as current as we are."""
        lease = None
        for peer in self.peers:
            if peer.index == message.sender:
                self._note_reachable(peer)
                lease = self._grant(peer, message.seqs)
        newer = []
        unsure = self._tentative_buys()
        for book in self.books.values():
            theirs = message.seqs.get(book.id, -1)
            if book.seq > theirs and book.id not in self.tentative:
                buys = tuple(b for b, (bid, seq) in self.buys.items()
                             if bid == book.id and seq > theirs and b not in unsure)
                newer.append((book, buys))
        counts = dict(self.buy_count)
        for update, _peers in self.tentative.values():
            counts[update.copy.id] -= len(update.buy_ids)
        return Pong({b.id: b.seq for b in self.books.values()}, tuple(newer), counts, lease)

    def _remember_buy(self, buy_id: str, book_id: int, seq: int) -> None:
        """The one place a buy enters memory, so the per-book counts pings compare stay exact."""
        if buy_id not in self.buys:
            self.buys[buy_id] = (book_id, seq)
            self.buy_count[book_id] += 1

    def _forget_buy(self, buy_id: str) -> None:
        """Undo _remember_buy, for a write withdrawn before anyone else took it."""
        found = self.buys.pop(buy_id, None)
        if found is not None:
            self.buy_count[found[0]] -= 1

    def _emit_seq(self, book: Book) -> None:
        self.emit("seq", book=book.id, seq=book.seq, quantity=book.quantity, price=book.as_record()["price"])

    def on_fetch_buys(self, message: FetchBuys) -> BuysOf:
        self.book(message.book)
        unsure = self._tentative_buys()
        return BuysOf(tuple((buy_id, seq) for buy_id, (bid, seq) in self.buys.items()
                            if bid == message.book and buy_id not in unsure))

    def _tentative_buys(self) -> set[str]:
        """Buys of writes not confirmed yet: not handed on, since they may yet give way."""
        return {buy_id for update, _peers in self.tentative.values() for buy_id in update.buy_ids}

    async def _catch_up(self, peer: Peer, answer: Pong, generation: int) -> None:
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
        # a peer that remembers more buys of a book hands over the ones we lack (W7).
        for book_id, theirs in answer.buy_counts.items():
            if book_id in self.books and theirs > self.buy_count[book_id]:
                reply = await self._send(peer, FetchBuys(book_id), timeout=PING_TIMEOUT_S, trace=False)
                if isinstance(reply, BuysOf) and self.same_generation(generation):
                    missing = [(b, s) for b, s in reply.buys if b not in self.buys]
                    await Disk("add_buys", book_id, missing)
                    for buy_id, seq in missing:
                        self._remember_buy(buy_id, book_id, seq)

    # ---- one entry for every message ------------------------------------------------------------
    async def handle(self, message: Any) -> Any:
        """Answer any message a catalog takes (the driver has checked its generation)."""
        if isinstance(message, Read):
            return await self.read(message.book, message.buy_id)
        if isinstance(message, Search):
            return Hits(tuple(self.search(message.topic)))
        if isinstance(message, Write):
            return await self.write(message)
        if isinstance(message, Get):
            return await self.on_get(message)
        if isinstance(message, Check):
            return await self.on_check(message)
        if isinstance(message, Update):
            return await self.on_update(message)
        if isinstance(message, Release):
            return self.on_release(message)
        if isinstance(message, Ping):
            return self.on_ping(message)
        if isinstance(message, FetchBuys):
            return self.on_fetch_buys(message)
        if isinstance(message, Health):
            return self.on_health(message.sender)
        raise TypeError(f"a catalog takes no {type(message).__name__}")


"""A catalog replica's state, the records it keeps, and the primitives every rule needs.

``ReplicaState`` is everything one replica holds in memory; each field says what it holds and
what stays true of it, as TigerBeetle documents each field of its replica. The rules live in
the modules beside this one, each a class that adds one rule on top of this state, and
``replica.py`` composes them into ``CatalogReplica`` (docs/architecture.md).
"""
from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

from nodes.core.books import Book
from nodes.core.catalog.changes import ChangeLog, Marks, TouchingDict, TouchingSet, View
from nodes.core.catalog.rules import Rule
from nodes.core.clocks import NEVER, outwait
from nodes.core.effects import ATTEMPTS_KEPT, ATTEMPTS_KEPT_S, Core, Disk, DiskFailed, Send, SingleFlight, Waiters
from nodes.core.messages import (
    Busy,
    Conflict,
    Degraded,
    NotWritten,
    ReusedBuyId,
    Unconfirmed,
    Update,
    Write,
    Written,
)


def buy_hash(buy_id: str) -> int:
    """A buy id's 64-bit hash, the same in every process (Python's hash() is not)."""
    return int.from_bytes(hashlib.blake2b(buy_id.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big")


# ---- timing: every duration the rules use, in seconds of the core's clock -------------------
#: How long a peer keeps a book reserved for a writer whose update or release never comes (W1).
RESERVATION_TTL_S = 3.0
#: How long a check waits for a reservation held by a writer it outranks (wait-die).
RESERVATION_WAIT_S = 0.3
#: How long a writer queues for its own replica's reservation before answering busy.
LOCAL_QUEUE_S = 1.0
#: How often the heartbeat pings every peer (W3, W4); half of it paces a late update's offers.
HEARTBEAT_S = 0.15
#: How long a lease granted to a peer (in a ping's answer) lets it trust its valid set.
LEASE_S = 0.6
#: How long a lease granted to the front-end (in a probe's answer) lets it serve its cache.
FRONTEND_LEASE_S = 1.5
#: How long a ping or a late offer of an update waits for its answer.
PING_TIMEOUT_S = 0.4
#: How long the heartbeat's fetch of a peer's buys waits: a round's length, so that a peer
#: that hangs between its ping's answer and the fetch does not hold the next round back.
FETCH_TIMEOUT_S = HEARTBEAT_S
#: Heartbeat rounds in a row a peer holding fewer of a book's buys than we do is not asked for
#: them: it is most likely only behind (a write of ours, or its own, still on the way), and a
#: fetch then brought nothing 96 % of the time under load (issue 28). It may yet hold one we
#: lack (simulator seed 2027609448), so it is asked all the same on the round after.
FETCH_DEFER_ROUNDS = 3
#: How long a read's hop waits, per replica the hop may still visit, for its answer (at most the
#: catalog's whole-exchange time-out): the last hop of a chain 0.3 s, the one before it 0.6 s.
#: A hop to a peer that has just gone silent waited the whole 1 s, and a read waiting on it
#: (a book the silent writer held reserved) took longer than a second under load.
HOP_TIMEOUT_S = 0.3
#: How long a read's hop waits for a peer's answer alone before the next peer is asked too
#: (a hedge): several times a hop's time on loopback under full load, well under a time-out.
HOP_HEDGE_S = 0.1
#: How long a read of a book in a write's round here (held reserved: our round, or a peer's we
#: granted) waits for the round to end before it hops: a round's length on loopback under full
#: load, well under a hop's hedge (``Reads._await_round``).
ROUND_WAIT_S = 0.05
#: How long a writer waits for a peer's answer to its check: a peer answers at once, or after at
#: most RESERVATION_WAIT_S of wait-die; one silent longer is left out and its lease waited out.
CHECK_TIMEOUT_S = 0.5
#: With majority writes, how long a write's check or update waits for the peers still silent
#: once enough have answered for a majority: a peer that hung after its last ping held every
#: write of the book for the whole CHECK_TIMEOUT_S or the update's 1 s, and every buy queued
#: behind it (issue 28). One left out is treated as a time-out treats it, but not noted down.
WRITE_PATIENCE_S = 0.2
#: How long a write waits for the front-end to confirm an invalidation.
INVALIDATE_TIMEOUT_S = 0.5

#: How long a replica remembers a buy id (W7's retry window): a retry within it is answered
#: its first outcome; then the id is forgotten, here and on disk (buys.py), so that memory
#: holds the last window's buys, not a day's. Set per cluster (``buy_window_s``).
BUY_WINDOW_S = 600.0
#: The most books one ping or its answer tells of (changes.py): a whole catalog of 100,000
#: travels in pages over a few rounds, so that no exchange outlasts a ping's time-out.
DELTA_MOST = 5_000
#: A book's buys fall into this many buckets by their hash: a fetch of the buys a peer holds
#: names the digest of each of its own buckets and is answered the buckets that differ.
BUY_BUCKETS = 64

Priority = tuple[float, int]  # (when the operation first tried, writer's replica number): lower wins
#: What a write (``Write``) is answered.
WriteAnswer: TypeAlias = Written | Conflict | NotWritten | Unconfirmed | ReusedBuyId


class BookUnknown(Exception):
    """The book id is not one of the catalog's (404 at the driver)."""


@dataclass
class Reservation:
    """A book held for one writer by a granted check (W1); void once ``expires`` has passed."""

    owner: int  # the writer's replica number
    token: str  # the writer's round: only its update or release ends the reservation early
    expires: float  # the core's time after which the reservation is void (RESERVATION_TTL_S)
    priority: Priority = (0.0, 0)  # the writer's age, for wait-die: lower is older and may wait


@dataclass
class Peer:
    """Another catalog replica, as this one knows it."""

    index: int  # its replica number, never our own
    up: bool = True  # it answered the last message we sent it (W4)
    last_heard: float = NEVER  # the core's time of the last answer from this peer
    lease_until: float = NEVER  # the lease this peer granted us: we may trust our valid set until then
    granted_until: float = NEVER  # the lease we granted this peer
    #: It last failed by refusing the connection: no process is listening, so no memory survives.
    refused: bool = False
    #: When a ping that found no process was sent: it starts again after this, and waits out
    #: LEASE_S from its start before leaving anyone out of a write (see start).
    refused_at: float = NEVER
    #: Its lease to us still held when it was found gone: only then does it count as holding
    #: one while it is gone (``lease_ok``).
    held_when_refused: bool = False
    #: Its seqs as its ping answers gave them, raised where a write's fan-out found it took a
    #: newer copy: a book it holds newer than we do is one we may not vouch for, whatever our
    #: lease says, until we hold that copy too (``_mark_valid``).
    seqs: dict[int, int] = field(default_factory=dict)
    #: Its word on every book as its ping answers gave it, delta by delta (changes.py).
    view: View = field(default_factory=View)
    #: Its seqs as its own pings gave them: what it lacks of ours (``on_ping``).
    told: View = field(default_factory=View)
    #: The position of our log it said it holds (its last ping answer): our next ping carries
    #: the changes since.
    acked: tuple[str, int] = ("", 0)
    #: What still needs a look for this peer, and up to where our log was looked at.
    marks: Marks = field(default_factory=Marks)

    @property
    def name(self) -> str:
        return f"catalog{self.index}"

    #: Its updates newer than our copy that we did not take (our disk refused, say): book ->
    #: (the seq offered, until when that word stands, when it came). Only a lease it granted
    #: before can let us vouch for the older copy, and every one of those has run out by then;
    #: a ping answer to a ping sent since brings its word on the book with its lease, and ends
    #: ours (``heard_since``). Found gone (no process) while its lease held, it counts as
    #: holding one it never granted (``lease_ok``), and the word stands as long. Kept in
    #: ``seqs`` it stood for good after a duplicate of a withdrawn write's update, refused
    #: once its writer's word had set it right (reviews, 2026-12-07).
    offered: dict[int, tuple[int, float, float]] = field(default_factory=dict)

    def ahead(self, book_id: int, seq: int, now: float) -> bool:
        """Whether it is known to hold ``book_id`` newer than ``seq`` (``_known_older``)."""
        offered, until, _at = self.offered.get(book_id, (-1, NEVER, NEVER))
        if self.held_when_refused:
            until = max(until, self.refused_at + outwait(LEASE_S))
        return self.seqs.get(book_id, -1) > seq or (offered > seq and until > now)

    def heard_since(self, sent: float) -> None:
        """Its whole word, answering a ping sent at ``sent``: offers refused before are told."""
        self.offered = {book: word for book, word in self.offered.items() if word[2] >= sent}


@dataclass
class Rider:
    """A buy that arrived while a write of its book was under way: it waits to ride on the
    next round with the others (a group commit) and is handed that round's answer."""

    request: Write
    answer: WriteAnswer | None = None  # set by the round that carried it (group_commit.py)


class ReplicaState(Core):
    """Everything one catalog replica holds in memory, and the primitives every rule uses:
    messages to peers, tokens, book lookup and locks, remembering buys, telemetry of seqs and
    valid marks, and the generation of the data. No rule is decided here."""

    def __init__(self, index: int, replicas: int, *, has_frontend: bool, rules: frozenset[Rule],
                 seed: int | None, peer_order: list[int] | None, nonce: str, timeout_s: float,
                 buy_window_s: float = BUY_WINDOW_S, delta_most: int = DELTA_MOST) -> None:
        # ---- who it is and what it runs ------------------------------------------------------
        self.index = index  # its replica number: it is catalog{index}, and not among its peers
        self.rules = rules  # the repairs it runs (rules.py); only the admin call's mode switch changes it
        self.has_frontend = has_frontend  # a front-end caches its books: writes invalidate them there
        self.peers = [Peer(i) for i in range(replicas) if i != index]  # every other replica, by number
        self.rng = random.Random(seed)  # the read's choice of peer; seeded, so a run replays exactly
        self.peer_order = peer_order  # if set, reads ask peers in this order instead (scenarios)
        self.nonce = nonce  # differs at every process start, so tokens never repeat across restarts
        self.timeout_s = timeout_s  # how long a message to a peer waits for its answer, by default
        # ---- the data, as on disk ------------------------------------------------------------
        #: Every change of what a ping's answer tells of a book, numbered (changes.py); new
        #: with every new set of rows (start, reset), so that peers then take everything.
        self._logs = 0
        self.changes = ChangeLog(f"{nonce}.0")
        self._books: TouchingDict[Book] = TouchingDict(self._touch)  # id -> our copy, the same ids everywhere (W5)
        self.buys: dict[str, tuple[int, int]] = {}  # buy id -> (book, seq that carried it out) (W7)
        self.buys_of: dict[int, dict[str, int]] = {}  # book -> its buys remembered (buy id -> seq)
        self.buy_window_s = buy_window_s  # how long a buy id is remembered (BUY_WINDOW_S)
        self.delta_most = delta_most  # the most books a ping or its answer tells of (DELTA_MOST)
        #: Per buy remembered, when it is forgotten; and the same times as a heap (oldest
        #: first), whose entries no longer in ``buy_expires`` at that time are stale.
        self.buy_expires: dict[str, float] = {}
        self.expiry_heap: list[tuple[float, str]] = []
        self.buy_count: Counter[int] = Counter()  # buys remembered per book, kept by _remember_buy
        #: Per book, the XOR of ``buy_hash`` over the buys remembered: equal sets, equal digests.
        self.buy_digest: Counter[int] = Counter()
        #: The same per bucket of a book's buys, and the buys of each bucket: (book, bucket) ->
        #: digest, and -> {buy id: seq}; only the buckets that hold buys (FetchBuys.digests).
        self.bucket_digest: Counter[tuple[int, int]] = Counter()
        self.bucket_buys: dict[tuple[int, int], dict[str, int]] = {}
        self.generation = 0  # which reset of the data this replica holds (see reset)
        # ---- what it vouches for -------------------------------------------------------------
        #: docs/protocol.md's valid set: books we vouch for as current. Empty at start; marked only
        #: while lease_ok() (W2), and dropped whole on a lapse (leases.py).
        self.valid_ids: set[int] = set()
        self._lease_lapsed = False  # the lease was last seen lapsed: a lapse and a renewal are told once each
        #: The lease granted to the front-end for its cache, and whether an invalidation it
        #: may have missed withholds the next one until that lease has run out.
        self.frontend_granted_until = NEVER
        self.frontend_withheld = False
        # ---- writes under way ----------------------------------------------------------------
        self.reservations: dict[int, Reservation] = {}  # book -> the writer a check granted it to (W1)
        self.waiters = Waiters()  # keys coroutines wait on: ("lock", book), ("released", book)
        self._locked: set[int] = set()  # books a local write (or a reset) is in progress for; one at a time
        self.riders: dict[int, list[Rider]] = {}  # buys waiting to ride on a book's next write
        #: Buys not to be vouched for as done before these times (see _settles); the heartbeat
        #: forgets the times that have passed.
        self.buy_settles: dict[str, float] = {}
        #: Books whose write this replica is fanning out -> the write's seq. Pings are answered
        #: with it, so that no lease granted meanwhile covers the old copy for a peer the write
        #: may leave out (W2; simulator seed 2027818278: a writer whose store waited kept
        #: granting the peer it had left out leases on the old copy).
        self.in_flight: TouchingDict[int] = TouchingDict(self._touch)
        #: Writes whose updates got no answer (a peer may hold them): book -> (update, peers
        #: to offer it to), until a peer confirms it or shows another write of that seq.
        self.tentative: TouchingDict[tuple[Update, tuple[int, ...]]] = TouchingDict(self._touch)
        #: Tentative writes our disk refused: held in memory only, stored whole (row and buys)
        #: when confirmed, and not confirmed before they are stored.
        self.unstored: set[int] = set()
        #: Books whose row failed its checksum at start or differs from the peers' of its seq
        #: (book -> what was wrong): held at
        #: seq -1, never vouched for, served or handed on, until a peer's copy replaces it.
        self.damaged: dict[int, str] = {}
        #: The least seq a repair of a damaged row may bring (``_take_as_damaged``): the seq the
        #: row held, when the peers' word names it, and every seq its remembered buys carry.
        self.repair_floor: dict[int, int] = {}
        #: Damaged rows whose own seq cannot be known (they fail their checksum): repaired only
        #: from the newest copy enough peers hold (``_repair_floor``).
        self.floor_unknown: set[int] = set()
        #: Buys of a damaged tentative row that a full disk kept us from forgetting at start:
        #: forgotten on disk together with the row's repair (``_adopt``).
        self.unforgotten: dict[int, list[str]] = {}
        #: Books whose row differs from a peer's of the same seq with no majority either way:
        #: vouched for by no one until a heartbeat round settles it (``_compare_rows``).
        self.disputed: set[int] = set()
        #: Rows as loaded at start that no peer has confirmed yet (``_compare_rows``): one changed
        #: on disk, checksum and all, could be among them. Never handed on, written on, granted
        #: a check or vouched for, until a vouched-for or majority's row of their seq matches,
        #: or every peer is found behind, or a peer's copy replaces them.
        self._unverified = TouchingSet(self._touch)
        #: Books ``_compare_rows`` looks at again next round, and up to where it read our log.
        self.compare_todo: set[int] = set()
        self.compared_at: tuple[str, int] = ("", 0)
        self.compared_with: frozenset[int] = frozenset()  # the peers it compared with last round
        self.compare_cursor = -1  # the last book a round capped at COMPARE_MOST got to (-1: none)
        #: The rows a search index was built from, and each topic's book ids (reads.search).
        self._topic_index: tuple[dict[int, Book], dict[str, list[int]]] | None = None
        #: Per book, the seq and checksum of the newest confirmed row a peer's ping answer
        #: handed us, kept even when our disk refused to store it: our vote when two replicas
        #: whose rows are unconfirmed (both restarted) hold different rows of that seq, one
        #: changed checksum and all. Without it no majority could tell them apart and the book
        #: was served by no one for good (simulator seeds 2028314085, 2028712420).
        self.witnessed: TouchingDict[tuple[int, str]] = TouchingDict(self._touch)
        #: Why the last commit failed (disk full, I/O error), until one succeeds again.
        self.disk_trouble: str | None = None
        self._tokens = 0  # reservation tokens issued since start (with the nonce: unique)
        #: Reservations peers may hold for us though their check's answer never came: (peer, book,
        #: token, until when it could hold). The heartbeat releases them (reservations.py).
        self.pending_releases: list[tuple[int, int, str, float]] = []
        #: The attempts of buys' writes taken (``Write.attempt``) and their answers, those of the
        #: last ATTEMPTS_KEPT_S (ATTEMPTS_KEPT at most): a copy of one (a message delivered twice)
        #: gets its twin's answer and is not carried out again.
        self.attempts = SingleFlight(keep=ATTEMPTS_KEPT, keep_s=ATTEMPTS_KEPT_S, clock=lambda: self.now)
        # ---- life ----------------------------------------------------------------------------
        self.started_at = NEVER  # when start() ran: leases granted before a crash count as out until + LEASE_S
        self.catch_ups = 0  # copies taken from pings since the last reset (W3), for the window
        self.resetting = False  # a reset is under way: no peer message is taken or answered
        self.pending_reset: int | None = None  # a newer generation met; the driver resets to it

    # ---- what changed (changes.py) --------------------------------------------------------------
    @property
    def books(self) -> TouchingDict[Book]:
        return self._books

    @books.setter
    def books(self, rows: dict[int, Book]) -> None:
        """A new set of rows (start, reset): a new log, which peers take whole."""
        self._logs += 1
        self.changes = ChangeLog(f"{self.nonce}.{self.now!r}.{self._logs}")
        self._books = TouchingDict(self._touch, rows)
        for book_id in self._books:
            self._touch(book_id)

    @property
    def unverified(self) -> TouchingSet:
        return self._unverified

    @unverified.setter
    def unverified(self, books: set[int]) -> None:
        self._unverified.clear()
        self._unverified.update(books)

    def _touch(self, book_id: int) -> None:
        self.changes.touch(book_id)

    # ---- generations and messages ---------------------------------------------------------------
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

    def _holds(self, held: Reservation | None) -> bool:
        """Whether a reservation still holds its book: not expired, and not a peer's that our
        heartbeat has found silent or gone (W1, W4). Such a writer may never send its update;
        held for the whole RESERVATION_TTL_S, every other write of the book met "busy" for up
        to 3 s after a replica hung under load. Voided early it is no less safe than expired:
        an update is taken only under its reservation or on top of our copy, so a writer whose
        reservation went is refused if another write of the book came first."""
        if held is None or held.expires <= self.now:
            return False
        return held.owner == self.index or all(peer.up for peer in self.peers if peer.index == held.owner)

    def _new_token(self) -> str:
        self._tokens += 1
        return f"{self.index}.{self.nonce}.{self._tokens}"

    def _ours(self, token: str) -> bool:
        """Whether ``token`` names a write this process began (``_new_token``)."""
        return token.startswith(f"{self.index}.{self.nonce}.")

    # ---- books ------------------------------------------------------------------------------------
    def book(self, book_id: int) -> Book:
        try:
            return self.books[book_id]
        except KeyError:
            raise BookUnknown(book_id) from None

    def _newest(self, copy: Book) -> Book:
        """``copy`` or, if newer, the copy we hold of that book now."""
        held = self.books[copy.id]
        return held if held.seq > copy.seq else copy

    def _newest_seq(self, book_id: int) -> int:
        """The newest seq of ``book_id`` we hold, or are sending out: a write of ours in flight."""
        return max(self.books[book_id].seq, self.in_flight.get(book_id, -1))

    def _offer_not_taken(self, writer: int, copy: Book) -> None:
        """``writer``'s update of ``copy`` came and we did not take it: if newer than ours, it
        holds a newer copy, and ours is vouched for no more (W2; ``Peer.offered``), valid mark
        and all (a read's hop may have marked it since we granted the check)."""
        if copy.seq <= self.books[copy.id].seq:
            return
        for peer in (p for p in self.peers if p.index == writer):
            seq = max(copy.seq, peer.offered.get(copy.id, (-1, NEVER, NEVER))[0])
            peer.offered[copy.id] = (seq, self.now + outwait(LEASE_S), self.now)
        self._unmark_valid(copy.id)

    def _unmark_valid(self, book_id: int) -> None:
        if book_id in self.valid_ids:
            self.valid_ids.discard(book_id)
            self.emit("valid", book=book_id, valid=False, seq=self.books[book_id].seq)

    def _emit_seq(self, book: Book) -> None:
        self.emit("seq", book=book.id, seq=book.seq, quantity=book.quantity, price=book.as_record()["price"])

    async def _stored(self, method: str, *args: Any) -> bool:
        """``Disk(method, *args)``, saying whether it was stored. A store that cannot commit
        (disk full, I/O error) makes the replica say it is in trouble (health answers degraded,
        so that requests go elsewhere) until a commit succeeds again: it recovers by itself.
        No buys to add or forget is no commit (a full disk "took" them: recovered, it said)."""
        if method in ("add_buys", "forget", "expire") and not args[-1]:
            return True
        try:
            await Disk(method, *args)
        except DiskFailed as failed:
            if self.disk_trouble is None:
                self.emit("disk", ok=False, message=str(failed))
            self.disk_trouble = str(failed)
            return False
        if self.disk_trouble is not None:
            self.disk_trouble = None
            self.emit("disk", ok=True, message="")
        return True

    def _not_taken(self, book_id: int) -> Busy | Degraded:
        """Why a copy offered to us was not stored: our disk did not take it (full, failing; the
        writer counts us out, and catch-up brings it once the disk takes writes again), or it
        cannot repair our damaged row yet — "busy": no disk fault (``_repair_floor``)."""
        if self.disk_trouble is None and book_id in self.damaged:
            return Busy(None)
        return Degraded(f"catalog{self.index} could not store the write: {self.disk_trouble}")

    def _take_as_damaged(self, book_id: int, why: str, *, seq_known: bool = True) -> None:
        """Our row of ``book_id`` is not to be trusted (it fails its checksum, or differs from
        the copy a majority holds at its seq): held at seq -1, never vouched for, served or
        handed on, until catch-up or a read's hop brings a peer's copy (``_adopt``) of at least
        the seq we held (``seq_known``: the peers hold rows of it; a row failing its checksum
        may name any seq) and of every buy we remember of the book. An older copy would undo a
        write a majority took with us: with its other holder down, a replica whose row was
        changed took the third's older copy and wrote that seq anew, and a buy stayed
        remembered with no copy taken (simulator seed 2066009210)."""
        floor = max((seq for bucket in range(BUY_BUCKETS)
                     for seq in self.bucket_buys.get((book_id, bucket), {}).values()), default=-1)
        self.repair_floor[book_id] = max(floor, self.books[book_id].seq if seq_known else -1)
        (self.floor_unknown.discard if seq_known else self.floor_unknown.add)(book_id)
        self.damaged[book_id] = why
        self.unverified.discard(book_id)  # damaged says more: nothing of it is trusted
        self._unmark_valid(book_id)
        self.books[book_id] = replace(self.books[book_id], seq=-1)
        self.emit("damaged", book=book_id, reason=why)

    def _repair_floor(self, book_id: int) -> float:
        """The least seq a copy repairing our damaged row of ``book_id`` may carry. A row that
        fails its checksum may have held any seq, perhaps of a write a majority took with us and
        no buy names (a restock): its other holders are among any n - m + 1 of our peers (n
        replicas, a majority m), so the newest seq that many peers say they hold — since we
        started: the views are fresh then — is as new as it was. Until that many have said, no
        copy repairs it: with its other holder down, an older copy from the third would have
        let that seq be written anew (a review's finding). A damaged peer says -1, which names
        no seq: when some have, every peer's word is waited for instead, and a write whose every
        holder's row is damaged is lost with them — the book comes back at the newest copy left.
        Waiting for n - m + 1 intact words, two damaged replicas of three waited on each other
        for good; taking a -1 as one of them, with four replicas, let two damaged ones repair
        from the third's older copy while the fourth, down, held the write intact (reviews)."""
        floor = self.repair_floor.get(book_id, -1)
        if book_id not in self.floor_unknown:
            return floor
        heard = [peer.view.seqs[book_id] for peer in self.peers if book_id in peer.view.seqs]
        intact = [seq for seq in heard if seq >= 0]
        replicas = len(self.peers) + 1
        if len(intact) < replicas - (replicas // 2 + 1) + 1 and len(heard) < len(self.peers):
            return float("inf")
        return max([floor, *intact])

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

"""The catalog replication protocol of ``protocol.md``, with Bazar's repairs of W1–W3.

Documented shape, kept as written:
- every book carries ``seq``, bumped by every write;
- ``valid_ids``: the books this replica knows to be current, in memory, empty at start;
- reads hop through ``/rep/get`` carrying ``req`` (replicas already in the chain) and
  ``seq_n`` (highest seq seen) until a valid replica answers (S1–S3);
- writes send ``/rep/check`` to every peer, take the highest copy and answer 409 when a peer
  is ahead (S5), then fan out ``/rep/update`` (S4) and tell the front-end to drop the book.

Bazar's additions (explained with their own scenario in README.md, "Writes that cannot be
lost"):
- W1: ``/rep/check`` is also a *reservation*. A peer that answers 200 holds the book for
  that writer until the writer's update or release arrives (or a TTL passes) and answers
  other writers "409 busy". A write proceeds only with every reachable peer reserved, so two
  writers can never both fan out the same ``seq``; the loser re-reads and retries, as the
  documented 409 already asks. For the same reason a replica checks even when the book is
  valid. Callers may send the ``seq`` their new value was computed from; a write whose base
  is stale is refused with 409 rather than applied over a newer copy.
- W7: a buy's id travels with its write; every replica stores it with the book, and a check
  or write that meets a known id answers the first outcome instead of writing again.
- W2/W3 (``mode == "bazar"``): replicas ping each other; a ping carries this replica's
  seqs and is answered with every newer row, so a restarted replica catches up in the
  background. A replica that has heard from no peer for longer than its lease may be the
  one cut off, so it stops trusting its valid set (it may have missed writes); a writer that
  could not reach a live peer waits until that peer's lease has surely run out before
  answering. Peers the heartbeat knows are out are skipped without being asked (W4).
``mode == "documented"`` switches the W2/W3 repairs off so that the figures' starting
states (replicas left behind on purpose) stay as built.
"""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from ..books import Book
from ..shared.client import Reply, Timeouts
from ..shared.errors import ApiError
from ..shared.node import Node
from ..shared.tasks import cancel_and_wait
from .store import CatalogStore

GENERATION_HEADER = "X-Bazar-Generation"
RESERVATION_TTL_S = 3.0
#: How long a check waits for a reservation held by a writer it outranks (wait-die).
RESERVATION_WAIT_S = 0.3
#: How long a writer queues for its own replica's reservation before answering busy.
LOCAL_QUEUE_S = 1.0
HEARTBEAT_S = 0.2
#: A writer that could not reach a live peer waits this long past that peer's last sign of
#: life before answering; a replica stops trusting its valid set well before (TRUST_S).
LEASE_S = 1.0
TRUST_S = 0.8
PING_TIMEOUTS = Timeouts(connect=0.1, total=0.4)
INVALIDATE_TIMEOUTS = Timeouts(connect=0.1, total=0.5)
MODES = ("bazar", "documented")


Priority = tuple[float, int]  # (when the operation first tried, writer's replica number): lower wins


@dataclass
class Reservation:
    owner: int
    token: str
    expires: float
    priority: Priority = (0.0, 0)


@dataclass
class Peer:
    index: int
    address: str
    up: bool = True
    last_heard: float = 0.0  # monotonic time of the last answer from this peer
    #: How it last failed: "refused" means no process is listening, so no memory survives.
    last_failure: str | None = None

    @property
    def name(self) -> str:
        return f"catalog{self.index}"


@dataclass
class WriteResult:
    status: int  # 200, 409, or 503 when nothing could be written
    book: Book
    duplicate: bool = False
    reason: str = ""


@dataclass
class _CheckOutcome:
    granted: list[Peer] = field(default_factory=list)
    unreachable: list[Peer] = field(default_factory=list)
    newer: list[Book] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)
    known_buy: Book | None = None
    cut_off: bool = False  # a check failed at once on our side: it is we who are cut off


class Replica:
    def __init__(
        self,
        node: Node,
        store: CatalogStore,
        addresses: list[str],
        *,
        frontend: str | None,
        mode: str = "bazar",
        seed: int | None = None,
        peer_order: list[int] | None = None,
    ) -> None:
        self.node = node
        self.index = node.index
        self.store = store
        self.frontend = frontend.rstrip("/") if frontend else None
        self.mode = mode
        self.peers = [Peer(i, a.rstrip("/")) for i, a in enumerate(addresses) if i != self.index]
        self.rng = random.Random(seed)
        self.peer_order = peer_order
        self.books: dict[int, Book] = {}
        self.buys: dict[str, tuple[int, int]] = {}
        self.buy_count: Counter[int] = Counter()  # buys remembered per book, kept by _remember_buy
        self.valid_ids: set[int] = set()
        self.reservations: dict[int, Reservation] = {}
        self._released: dict[int, asyncio.Event] = {}  # set whenever a book's reservation is handed back
        self.locks: dict[int, asyncio.Lock] = {}
        self.last_contact = 0.0  # monotonic time anything last reached us or a peer answered us
        #: Set when our lease lapsed; cleared once every peer has answered a ping sent after
        #: that (see _heartbeat_loop). Meanwhile we vouch for nothing and ask every peer,
        #: whatever we believed about them (W2).
        self.rejoining = False
        self._lapsed_at = 0.0
        self._heard_since_lapse: set[int] = set()
        self.catch_ups = 0
        self.generation = 0  # which reset of the data this replica holds (see reset)
        self.resetting = False
        self._reset_task: asyncio.Task | None = None  # a reset to a newer generation we met
        self._disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-db")
        self._heartbeat: asyncio.Task | None = None

    # ---- life cycle -------------------------------------------------------------------
    async def start(self) -> None:
        self.generation = await self._on_disk(self.store.load_generation)
        self.books = await self._on_disk(self.store.load_books)
        for buy_id, (book_id, seq) in (await self._on_disk(self.store.load_buys)).items():
            self._remember_buy(buy_id, book_id, seq)
        self.locks = {book_id: asyncio.Lock() for book_id in self.books}
        if self.peers:
            self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")
        else:
            self.last_contact = float("inf")

    async def stop(self) -> None:
        await cancel_and_wait(self._heartbeat)
        self._disk.shutdown(wait=True)
        self.store.close()

    async def reset(self, generation: int | None = None) -> None:
        """Back to the seven books at seq 0, nothing valid, no buys remembered, in a new
        generation of the data (``generation``: the same number on every replica of one
        cluster reset). Replicas are reset one after the other; until all are, messages
        between generations are refused (``check_generation``), so no row or buy from
        before the reset travels back into a replica already reset."""
        generation = max(self.generation, time.time_ns() if generation is None else generation)
        self.resetting = True  # from now until done, no peer message is taken or answered
        for lock in self.locks.values():
            await lock.acquire()
        try:
            self.books = await self._on_disk(self.store.reset, generation)
            self.generation = generation
            self.buys.clear()
            self.buy_count.clear()
            self.valid_ids.clear()
            self.reservations.clear()
            self.catch_ups = 0
        finally:
            self.resetting = False
            for lock in self.locks.values():
                lock.release()
        self.node.emit_snapshot()

    def _same_generation(self, generation: int | None) -> bool:
        return not self.resetting and (generation is None or generation == self.generation)

    def _peer_call(self, method: str, url: str, **kw: Any) -> Awaitable[Reply]:
        """Every message to a peer says which generation of the data it belongs to."""
        return self.node.client.call(method, url, headers={GENERATION_HEADER: str(self.generation)}, **kw)

    def _on_disk(self, fn: Callable, *args: Any) -> Awaitable:
        return asyncio.get_running_loop().run_in_executor(self._disk, fn, *args)

    # ---- state --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "mode": self.mode,
            "books": [
                {
                    "id": book.id,
                    "seq": book.seq,
                    "quantity": book.quantity,
                    "price": book.as_record()["price"],
                    "valid": book.id in self.valid_ids,
                    "reserved_by": self._holder(book.id, now),
                }
                for book in sorted(self.books.values(), key=lambda b: b.id)
            ],
            "peers": [{"id": p.index, "address": p.address, "up": p.up} for p in self.peers],
            "lease_ok": self._lease_ok(),
            "rejoining": self.rejoining,
            "catch_ups": self.catch_ups,
            "generation": self.generation,
            "buys_remembered": len(self.buys),
        }

    def _holder(self, book_id: int, now: float) -> int | None:
        reservation = self.reservations.get(book_id)
        return reservation.owner if reservation and reservation.expires > now else None

    def book(self, book_id: int) -> Book:
        try:
            return self.books[book_id]
        except KeyError:
            raise ApiError(404, "Book with the specified ID does not exist") from None

    def search(self, topic: str) -> list[Book]:
        needle = topic.casefold()
        return [book for book in sorted(self.books.values(), key=lambda b: b.id) if needle in book.topic.casefold()]

    def _mark_valid(self, book_id: int) -> None:
        if not self._lease_ok() or self.rejoining:
            return  # out of touch: we cannot vouch for anything (W2)
        if book_id not in self.valid_ids:
            self.valid_ids.add(book_id)
            self.node.telemetry.emit("valid", book=book_id, valid=True, seq=self.books[book_id].seq)

    def _unmark_valid(self, book_id: int) -> None:
        if book_id in self.valid_ids:
            self.valid_ids.discard(book_id)
            self.node.telemetry.emit("valid", book=book_id, valid=False, seq=self.books[book_id].seq)

    async def _adopt(self, copy: Book, buy_ids: list[str] = (), generation: int | None = None) -> bool:
        """Store ``copy`` when it is newer than ours. True when it was. ``generation``: ours
        when the message that brought the copy was sent; a reset since makes it foreign."""
        if copy.seq <= self.books[copy.id].seq or not self._same_generation(generation):
            return False
        await self._on_disk(self.store.write, copy, list(buy_ids))
        if copy.seq <= self.books[copy.id].seq or not self._same_generation(generation):
            return False  # a newer one landed while we were writing, or a reset
        self.books[copy.id] = copy
        for buy_id in buy_ids:
            self._remember_buy(buy_id, copy.id, copy.seq)
        self._emit_seq(copy)
        return True

    # ---- leases (W2) ----------------------------------------------------------------------
    def _lease_ok(self) -> bool:
        if self.mode == "documented" or not self.peers:
            return True
        return time.monotonic() - self.last_contact < TRUST_S

    def _lease_holds(self) -> bool:
        """True while our valid set may be trusted. Having heard from no peer for longer than
        the lease, we may be the one cut off and writes may have happened without us (W2):
        the valid set is dropped."""
        if self._lease_ok():
            return True
        if not self.rejoining:
            self.rejoining = True
            self._lapsed_at = time.monotonic()
            self._heard_since_lapse.clear()
            self.node.telemetry.emit("lease", held=False)
        for stale in list(self.valid_ids):
            self._unmark_valid(stale)
        return False

    def contact(self) -> None:
        """Something reached us (a client, the front-end's probe, a peer): we are not cut off.
        Only the peers' answers end rejoining, though: clients cannot tell us what we missed.
        A lapse is noticed first: after SIGCONT the requests queued while we were stopped
        arrive before anything else could tell us our valid set had gone stale."""
        self._lease_holds()
        self.last_contact = time.monotonic()

    def _trusted_valid(self, book_id: int) -> bool:
        return book_id in self.valid_ids and self._lease_holds()

    async def _deliver_or_outwait(self, missed: list[Peer], book_id: int, record: dict[str, Any]) -> list[Peer]:
        """Before answering a write that ``missed`` could not see, make sure none of them can
        still vouch for the old copy (W2): keep offering each the update until it takes it,
        or until its valid set has surely lapsed. A peer back before its lease lapsed (a short
        cut-off) takes the update; one still away has dropped its valid set by the deadline.
        A peer that refused the connection has no process, hence no valid set: nothing to do.
        Returns the peers that never took the update."""
        missed = [peer for peer in missed if peer.last_failure != "refused"]
        if self.mode == "documented" or not missed:
            return []
        deadline = max(peer.last_heard for peer in missed) + LEASE_S + HEARTBEAT_S
        if time.monotonic() < deadline:
            self.node.telemetry.emit("lease_wait", peers=[p.index for p in missed],
                                     ms=round((deadline - time.monotonic()) * 1000))
        label = f"/rep/update/{book_id} seq_n: {record['seq']} (late)"
        while missed and time.monotonic() < deadline:
            replies = await asyncio.gather(*(
                self._peer_call("POST", f"{p.address}/rep/update/{book_id}", to=p.name, label=label,
                                      body=record, timeouts=PING_TIMEOUTS)
                for p in missed
            ))
            missed = [p for p, reply in zip(missed, replies, strict=True) if not reply.ok]
            if missed:
                await asyncio.sleep(HEARTBEAT_S / 2)  # pacing between offers; the deadline bounds it
        return missed

    # ---- read (S1–S3) -----------------------------------------------------------------------
    async def read(self, book_id: int) -> Book:
        self.book(book_id)  # 404 before any hop: every replica holds the same books (W5)
        if self._trusted_valid(book_id):
            return self.books[book_id]
        status, copy = await self._hop(book_id, asked=[], upstream_seq=-1)
        if status != 200:
            raise ApiError(409, "No replica could vouch for a current copy; try again")
        return copy

    async def rep_get(self, book_id: int, asked: list[int], sender: int, seq_n: int) -> tuple[int, Book]:
        self.book(book_id)
        if self._trusted_valid(book_id):
            return 200, self.books[book_id]
        return await self._hop(book_id, asked=asked + [sender], upstream_seq=seq_n)

    async def _hop(self, book_id: int, *, asked: list[int], upstream_seq: int) -> tuple[int, Book]:
        own = self.books[book_id]
        highest = max(upstream_seq, own.seq)
        left = [p for p in self.peers if p.index not in asked]
        if self.mode == "bazar" and self._lease_ok() and not self.rejoining:
            # W4: known-down peers are not waited for. Not so when our own lease has lapsed:
            # then we may be the one that was away (W2), and only the peers can tell us.
            left = [p for p in left if p.up]
        generation = self.generation
        while left:
            peer = self._choose(left)
            left.remove(peer)
            reply = await self._peer_call(
                "POST",
                f"{peer.address}/rep/get/{book_id}",
                to=peer.name,
                label=f"/rep/get/{book_id} req: {asked} seq_n: {highest}",
                body={"req": asked, "from": self.index, "seq_n": highest},
            )
            if not reply.answered:
                # An unreachable peer is skipped, and travels on in ``req`` so that no one
                # further down the chain waits for it again (W4).
                self._note_unreachable(peer, reply.failure)
                asked = asked + [peer.index]
                continue
            if reply.status == 200:
                copy = Book.from_record(reply.data["book"])
                await self._adopt(copy, generation=generation)
                if copy.seq >= self.books[book_id].seq:
                    self._mark_valid(book_id)
                return 200, self.books[book_id]
            if reply.status == 409:
                # S3: 409 from further down. Our own copy is current when it is newer than
                # anything upstream has seen; otherwise pass the 409 on.
                if self.books[book_id].seq > upstream_seq:
                    self._mark_valid(book_id)
                    return 200, self.books[book_id]
                return 409, self.books[book_id]
            self._note_unreachable(peer)  # answered, but not with the protocol: skip it
        # No peer left: the last replica decides (cold start S1, total failure S3).
        if self.books[book_id].seq >= upstream_seq:
            self._mark_valid(book_id)
            return 200, self.books[book_id]
        return 409, self.books[book_id]

    def _choose(self, candidates: list[Peer]) -> Peer:
        up = [p for p in candidates if p.up] or candidates  # W4: known-down peers go last
        if self.peer_order is not None:
            rank = {index: position for position, index in enumerate(self.peer_order)}
            return min(up, key=lambda p: rank.get(p.index, len(rank) + p.index))
        return self.rng.choice(up)

    def _note_unreachable(self, peer: Peer, failure: str | None = None, sent: float | None = None) -> None:
        if sent is not None and peer.last_heard > sent:
            return  # it has answered since we asked (a round we slept through, say): stale news
        peer.last_failure = failure or peer.last_failure
        if peer.up:
            peer.up = False
            self.node.telemetry.emit("peer", peer=peer.index, up=False)

    def _note_reachable(self, peer: Peer) -> None:
        self._lease_holds()  # a lapse is noticed before the contact renews the lease
        peer.last_heard = self.last_contact = time.monotonic()
        peer.last_failure = None
        if not peer.up:
            peer.up = True
            self.node.telemetry.emit("peer", peer=peer.index, up=True)

    # ---- write (S4, S5, W1, W7) ---------------------------------------------------------------
    async def write(
        self, book_id: int, changes: dict[str, Any], *, base_seq: int | None, buy_id: str | None,
        since: float | None = None,
    ) -> WriteResult:
        """``since``: when the operation behind this write first tried (a buy's first attempt);
        the older one wins a conflict, so a buy that keeps retrying cannot starve."""
        self.book(book_id)
        priority: Priority = (since if since is not None else time.time(), self.index)
        async with self.locks[book_id]:
            if buy_id is not None and buy_id in self.buys:
                # The first attempt may have stalled before telling the front-end: tell it now.
                await self._invalidate_frontend(self.books[book_id])
                return WriteResult(200, self.books[book_id], duplicate=True)
            token = uuid.uuid4().hex
            # Holding nothing yet, this writer can wait its turn at home whoever holds the book:
            # a wait that holds nothing cannot close a cycle. Checks at peers use wait-die.
            if not await self._reserve_or_wait(book_id, self.index, token, priority, queue_s=LOCAL_QUEUE_S):
                return WriteResult(409, self.books[book_id], reason="busy")
            try:
                return await self._reserved_write(book_id, changes, base_seq, buy_id, token, priority)
            finally:
                self._release(book_id, token)

    async def _reserved_write(
        self, book_id: int, changes: dict[str, Any], base_seq: int | None, buy_id: str | None, token: str,
        priority: Priority,
    ) -> WriteResult:
        started, generation = time.monotonic(), self.generation
        outcome = await self._check_peers(book_id, token, buy_id, priority)
        if outcome.newer or outcome.known_buy is not None or outcome.busy:
            await self._release_peers(book_id, token, outcome.granted)
            if outcome.newer:
                # S5: a peer is ahead. Take the highest copy as current and let the caller retry.
                newest = max(outcome.newer, key=lambda b: b.seq)
                await self._adopt(newest, generation=generation)
                self._mark_valid(book_id)
                return WriteResult(409, self.books[book_id], reason="outdated")
            if outcome.known_buy is not None:
                await self._invalidate_frontend(outcome.known_buy)
                return WriteResult(200, outcome.known_buy, duplicate=True)
            return WriteResult(409, self.books[book_id], reason="busy")
        current = self.books[book_id]
        if outcome.cut_off and not outcome.granted and self.mode == "bazar":
            # Our own side dropped the checks: we cannot tell whether the peers are writing
            # this book without us, as they may (they still reach each other). Written here
            # alone, two copies of one seq could result: write nothing.
            return WriteResult(503, current, reason="cut off from every peer")
        if base_seq is not None and base_seq != current.seq:
            await self._release_peers(book_id, token, outcome.granted)
            return WriteResult(409, current, reason="stale base")
        if time.monotonic() - started > RESERVATION_TTL_S / 2:
            # Our reservations may be about to lapse at the peers: do not fan out on them.
            await self._release_peers(book_id, token, outcome.granted)
            return WriteResult(409, current, reason="slow check")
        new = replace(current, seq=current.seq + 1, **changes)
        buy_ids = [buy_id] if buy_id else []
        record = {**new.as_record(), "token": token, "buy_ids": buy_ids, "from": self.index}
        label = f"/rep/update/{book_id} seq_n: {new.seq} quantity: {new.quantity} price: {new.as_record()['price']}"
        fan_out = [
            self._peer_call("POST", f"{p.address}/rep/update/{book_id}", to=p.name, label=label, body=record)
            for p in outcome.granted
        ]
        # The front-end hears of the write alongside the peers, not after them: the invalidation
        # names the new seq, so the front-end caches no older copy from then on (cache.py).
        replies, _, _ = await asyncio.gather(asyncio.gather(*fan_out), self._on_disk(self.store.write, new, buy_ids),
                                             self._invalidate_frontend(new))
        for peer, reply in zip(outcome.granted, replies, strict=True):
            if reply.answered:
                self._note_reachable(peer)
            else:
                self._note_unreachable(peer, reply.failure)  # it dropped its valid mark when it reserved
        took = any(reply.ok for reply in replies)
        if outcome.granted and not took:
            # Every peer that granted the write lost touch before taking it (we were cut off
            # mid-write, say). Kept here alone it would be acknowledged while they answer the
            # old copy: withdraw it, and tell the caller nothing was written.
            await self._on_disk(self.store.undo, current, buy_ids)
            return WriteResult(503, current, reason="no peer took the write")
        # In memory before the wait below: a peer that took it may already answer the buy's
        # retry as done, so from now on we must not serve the old copy either.
        self.books[book_id] = new
        for buy in buy_ids:
            self._remember_buy(buy, book_id, new.seq)
        self._mark_valid(book_id)
        self._emit_seq(new)
        missed = await self._deliver_or_outwait(outcome.unreachable, book_id, record)
        if missed and not took and not self._lease_ok():
            # No peer took it, and nothing reached us while we waited for them: we are likely
            # the one cut off, and they, still in touch with each other, vouch for the old
            # copy. Acknowledged, the write would be read as never made: withdraw it.
            await self._on_disk(self.store.undo, current, buy_ids)
            self.books[book_id] = current
            for buy in buy_ids:
                self._forget_buy(buy)
            self._unmark_valid(book_id)
            self._emit_seq(current)
            return WriteResult(503, current, reason="out of touch with the peers it missed")
        return WriteResult(200, new)

    async def _check_peers(self, book_id: int, token: str, buy_id: str | None, priority: Priority) -> _CheckOutcome:
        own = self.books[book_id]
        body = {"seq_n": own.seq, "from": self.index, "token": token, "buy_id": buy_id, "since": priority[0]}
        label = f"/rep/check/{book_id} seq_n: {own.seq}"
        outcome = _CheckOutcome()
        # W4: a peer the heartbeat knows is out is skipped at once, not waited for — once it has
        # been silent long enough that its valid set has surely lapsed (W2); until then it is
        # asked, since it may be back already and holding the book as valid.
        now = time.monotonic()
        trust_beliefs = self.mode == "bazar" and self._lease_ok() and not self.rejoining
        asked = [p for p in self.peers
                 if p.up or not trust_beliefs or now - p.last_heard < LEASE_S + HEARTBEAT_S]
        outcome.unreachable = [p for p in self.peers if p not in asked]
        replies = await asyncio.gather(
            *(
                self._peer_call("POST", f"{p.address}/rep/check/{book_id}", to=p.name, label=label, body=body)
                for p in asked
            )
        )
        for peer, reply in zip(asked, replies, strict=True):
            if not reply.answered:
                self._note_unreachable(peer, reply.failure)
                outcome.unreachable.append(peer)
                outcome.cut_off |= reply.failure == "cut off"
                continue
            self._note_reachable(peer)
            data = reply.data or {}
            if reply.status == 200 and data.get("known_buy"):
                outcome.known_buy = Book.from_record(data["book"])
            elif reply.status == 200:
                outcome.granted.append(peer)
            elif reply.status == 409 and data.get("busy"):
                outcome.busy.append(peer.index)
            elif reply.status == 409 and "book" in data:
                outcome.newer.append(Book.from_record(data["book"]))
            else:
                outcome.unreachable.append(peer)
        return outcome

    async def _release_peers(self, book_id: int, token: str, peers: list[Peer]) -> None:
        if not peers:
            return
        await asyncio.gather(
            *(
                self._peer_call(
                    "POST",
                    f"{p.address}/rep/release/{book_id}",
                    to=p.name,
                    label=f"/rep/release/{book_id}",
                    body={"token": token},
                )
                for p in peers
            )
        )

    async def _invalidate_frontend(self, book: Book) -> None:
        """Tell the front-end to drop ``book`` from its lookup cache, naming the write's seq.
        The documents also drop the book's topic from the search cache; Bazar does not: a
        write changes price or quantity, which search results (id, title, topic) do not
        show, so the cached searches are still right (and it saves every buy a message)."""
        if not self.frontend:
            return
        for _attempt in (1, 2):  # a lost invalidation leaves a stale entry behind: try twice
            reply = await self.node.client.call(
                "DELETE", f"{self.frontend}/invalidate/item/{book.id}?seq={book.seq}", to="frontend",
                label=f"/invalidate/item/{book.id}", timeouts=INVALIDATE_TIMEOUTS)
            if reply.ok or self.node.faults.cut_off:
                return

    # ---- the peer side of a write -------------------------------------------------------------
    def _reserve(self, book_id: int, owner: int, token: str, priority: Priority = (0.0, 0)) -> bool:
        now = time.monotonic()
        held = self.reservations.get(book_id)
        if held is not None and held.expires > now and held.token != token:
            return False
        self.reservations[book_id] = Reservation(owner, token, now + RESERVATION_TTL_S, priority)
        return True

    def _release(self, book_id: int, token: str) -> None:
        held = self.reservations.get(book_id)
        if held is not None and held.token == token:
            del self.reservations[book_id]
            released = self._released.pop(book_id, None)
            if released is not None:
                released.set()

    async def _reserve_or_wait(self, book_id: int, owner: int, token: str, priority: Priority,
                               queue_s: float | None = None) -> bool:
        """Reserve the book for ``owner``; if another writer holds it, wait a little for it —
        but only when this write is older than the holder's ("wait-die"): the younger one
        fails at once, so waits never form a cycle and the oldest write always gets through.
        Without this, writers to one book kept failing each other under load. With
        ``queue_s`` the writer holds nothing yet and may wait whoever holds the book."""
        deadline = time.monotonic() + (RESERVATION_WAIT_S if queue_s is None else queue_s)
        while not self._reserve(book_id, owner, token, priority):
            holder = self.reservations[book_id].priority
            left = deadline - time.monotonic()
            if (queue_s is None and priority > holder) or left <= 0:
                return False
            released = self._released.setdefault(book_id, asyncio.Event())
            try:
                await asyncio.wait_for(released.wait(), left)
            except TimeoutError:
                return False
        return True

    async def rep_check(self, book_id: int, seq_n: int, sender: int, token: str,
                        buy_id: str | None, since: float | None = None) -> tuple[int, dict]:
        self.book(book_id)
        decided = self._check_answer(book_id, seq_n, buy_id)
        if decided is not None:  # no need to queue for a reservation to say this
            return decided
        priority: Priority = (since if since is not None else time.time(), sender)
        reserved = await self._reserve_or_wait(book_id, sender, token, priority)
        decided = self._check_answer(book_id, seq_n, buy_id)  # the holder's write may have landed meanwhile
        if decided is not None:
            if reserved:
                self._release(book_id, token)
            return decided
        if not reserved:
            held = self.reservations.get(book_id)
            return 409, {"busy": True, "holder": held.owner if held else None}
        # A write is coming that we may not see land: stop vouching for our copy until it does.
        self._unmark_valid(book_id)
        return 200, {"seq": self.books[book_id].seq}

    def _check_answer(self, book_id: int, seq_n: int, buy_id: str | None) -> tuple[int, dict] | None:
        """A check's answer when it does not depend on reserving: a known buy, or a newer copy."""
        own = self.books[book_id]
        if buy_id is not None and buy_id in self.buys:
            return 200, {"known_buy": True, "book": own.as_record()}
        if own.seq > seq_n:
            return 409, {"book": own.as_record()}
        return None

    def rep_release(self, book_id: int, token: str) -> None:
        self.book(book_id)
        self._release(book_id, token)

    async def rep_update(self, copy: Book, token: str, buy_ids: list[str]) -> tuple[int, dict]:
        own = self.book(copy.id)
        held = self.reservations.get(copy.id)
        if held is not None and held.token != token and held.expires > time.monotonic():
            return 409, {"busy": True, "holder": held.owner}
        if copy.seq < own.seq:
            return 409, {"book": own.as_record()}
        await self._adopt(copy, buy_ids)
        for buy_id in buy_ids:
            self._remember_buy(buy_id, copy.id, copy.seq)
        self._release(copy.id, token)
        self._mark_valid(copy.id)
        return 200, {"seq": self.books[copy.id].seq}

    # ---- heartbeat and catch-up (W3, W4) --------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        while True:
            started, generation = time.monotonic(), self.generation
            seqs = {str(book.id): book.seq for book in self.books.values()}
            replies: list[Reply] = await asyncio.gather(
                *(
                    self._peer_call(
                        "POST",
                        f"{p.address}/rep/ping",
                        to=p.name,
                        label="/rep/ping",
                        body={"from": self.index, "seqs": seqs},
                        timeouts=PING_TIMEOUTS,
                        record=False,
                    )
                    for p in self.peers
                )
            )
            for peer, reply in zip(self.peers, replies, strict=True):
                if reply.status == 200 and isinstance(reply.data, dict):
                    self._note_reachable(peer)
                    if self.mode == "bazar":
                        await self._catch_up(peer, reply.data, generation)
                    if started > self._lapsed_at:
                        self._heard_since_lapse.add(peer.index)
                else:
                    if reply.status == 503 and isinstance(reply.data, dict):
                        self.check_generation(reply.data.get("generation"))
                    self._note_unreachable(peer, reply.failure, sent=started)
                    if reply.failure == "refused" and started > self._lapsed_at:
                        self._heard_since_lapse.add(peer.index)  # no process: no valid set, no write
            if self._lease_holds() and self.rejoining:
                self._end_rejoining()
            await asyncio.sleep(max(0.0, HEARTBEAT_S - (time.monotonic() - started)))

    def check_generation(self, theirs: Any) -> bool:
        """True when a peer's message belongs to our generation of the data. A newer one
        means a reset we missed (we were down, or not reset yet): we reset ourselves to it,
        then catch up as usual. An older one: the peer will do the same when it hears us."""
        if self.resetting:
            return False
        if not isinstance(theirs, int) or isinstance(theirs, bool) or theirs == self.generation:
            return True
        if theirs > self.generation and (self._reset_task is None or self._reset_task.done()):
            self.node.telemetry.emit("generation", generation=theirs)
            self._reset_task = asyncio.create_task(self.reset(theirs), name="reset-to-newer-generation")
        return False

    def _end_rejoining(self) -> None:
        """Back after a lapse, we vouch again only once every peer has answered a ping sent
        after it (and we took the newer rows it returned). One answer is not enough: a peer
        that has not heard from us yet may be finishing a write it left us out of, believing
        our valid set gone, while another peer's copy would let us vouch for the old value."""
        if all(peer.index in self._heard_since_lapse for peer in self.peers):
            self.rejoining = False
            self.node.telemetry.emit("lease", held=True)

    def rep_ping(self, sender: int, seqs: dict[str, int]) -> dict[str, Any]:
        """A ping's answer: our seqs, and every row (with its buys) newer than the sender's."""
        for peer in self.peers:
            if peer.index == sender:
                self._note_reachable(peer)
        newer = []
        for book in self.books.values():
            theirs = seqs.get(str(book.id), -1)
            if isinstance(theirs, int) and book.seq > theirs:
                buys = [b for b, (bid, seq) in self.buys.items() if bid == book.id and seq > theirs]
                newer.append({"book": book.as_record(), "buy_ids": buys})
        return {"seqs": {str(b.id): b.seq for b in self.books.values()}, "newer": newer,
                "buy_counts": {str(book_id): n for book_id, n in self.buy_count.items()}}

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
        self.node.telemetry.emit("seq", book=book.id, seq=book.seq, quantity=book.quantity,
                                 price=book.as_record()["price"])

    def rep_buys(self, book_id: int) -> list[tuple[str, int]]:
        self.book(book_id)
        return [(buy_id, seq) for buy_id, (bid, seq) in self.buys.items() if bid == book_id]

    async def _catch_up(self, peer: Peer, answer: dict[str, Any], generation: int) -> None:
        for item in answer.get("newer", []):
            copy = Book.from_record(item["book"])
            if copy.id not in self.books or copy.seq <= self.books[copy.id].seq:
                continue
            # W2: someone is ahead of us, so our valid mark (if any) is stale. No book lock
            # here: a write may hold it for long, and adopting is monotonic in seq anyway.
            self._unmark_valid(copy.id)
            if await self._adopt(copy, item.get("buy_ids", []), generation):
                self.catch_ups += 1
                self.node.telemetry.emit("catch_up", book=copy.id, seq=copy.seq)
        # A copy adopted on a read or a refused check arrives without the buys that made it;
        # a peer that remembers more buys of a book hands over the ones we lack (W7).
        for key, theirs in answer.get("buy_counts", {}).items():
            book_id = int(key)
            if book_id in self.books and isinstance(theirs, int) and theirs > self.buy_count[book_id]:
                reply = await self._peer_call("GET", f"{peer.address}/rep/buys/{book_id}", to=peer.name,
                                              label=f"/rep/buys/{book_id}", timeouts=PING_TIMEOUTS, record=False)
                if reply.status == 200 and isinstance(reply.data, list) and self._same_generation(generation):
                    missing = [(b, s) for b, s in reply.data if b not in self.buys]
                    await self._on_disk(self.store.add_buys, book_id, missing)
                    for buy_id, seq in missing:
                        self._remember_buy(buy_id, book_id, seq)

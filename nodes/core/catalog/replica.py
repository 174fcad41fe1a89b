"""The catalog replication protocol of docs/protocol.md as a pure core, with Bazar's repairs
of its weak points (docs/weak-points.md). It does no I/O: every operation is a coroutine that
yields effects (``nodes/core/effects.py``) and speaks the messages of ``nodes/core/messages.py``;
the node (``nodes/runtime/catalog/replication.py``) and the simulator (``nodes/sim``) drive
the very same object.

Documented shape, kept as written:
- every book carries ``seq``, bumped by every write;
- ``valid_ids``: the books this replica knows to be current, in memory, empty at start;
- reads hop through ``Get`` carrying ``req`` (replicas already in the chain) and ``seq_n``
  (highest seq seen) until a valid replica answers (S1–S3);
- writes send ``Check`` to every peer, take the highest copy and answer Conflict when a peer
  is ahead (S5), then fan out ``Update`` (S4) and tell the front-end to drop the book.

Which repairs a replica runs is one frozen set of named rules (``rules.py``; each rule's
docstring says what it changes). ``CatalogReplica`` is the state with one class per rule on
top of it, each in its own module:

- ``state.py``: ``ReplicaState``, every field with its invariant, and the primitives;
- ``leases.py``: trusting the valid set, granting leases, outwaiting them (W2), peers heard (W4);
- ``reads.py``: reads and their hops (S1–S3, W4);
- ``documented.py``: docs/protocol.md's write to the letter;
- ``reservations.py``: checks as reservations, wait-die, releases (W1, W7);
- ``group_commit.py``: buys of one book riding one round;
- ``writes.py``: the write round and the update's arrival (W1, W2, W7, W8);
- ``buys.py``: the buys remembered (W7), when each is vouched for, and their retry window;
- ``changes.py`` and ``anti_entropy.py``: each replica's change log, and pings and their
  answers as deltas of it;
- ``compare.py``: rows compared with the peers' of the same seq (storage that checks itself);
- ``catch_up.py``: heartbeat, pings, catch-up and tentative writes settling (W3).
"""
from __future__ import annotations

from typing import Any

from nodes.core.books import plain_number
from nodes.core.catalog.catch_up import CatchUp
from nodes.core.catalog.reads import Reads
from nodes.core.catalog.rules import Mode, Rule, mode_of, rules_for, with_mode
from nodes.core.catalog.state import BUY_WINDOW_S, DELTA_MOST, FRONTEND_LEASE_S, LEASE_S
from nodes.core.catalog.writes import Writes
from nodes.core.clocks import outwait
from nodes.core.effects import Disk
from nodes.core.messages import (
    Check,
    FetchBuys,
    Get,
    Health,
    Hits,
    Ping,
    Read,
    Release,
    Search,
    Update,
    Write,
)


class CatalogReplica(Writes, Reads, CatchUp):
    """One catalog replica: its state and every rule. ``rules``: the repairs it runs
    (``rules.py``); ``mode``, ``guard_writes`` and ``consistency`` are the older spelling of
    the same choice (``rules_for``). ``nonce`` makes its reservation tokens unique across
    restarts; ``seed`` or ``peer_order`` fix the read's peer choice (scenarios)."""

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
        buy_window_s: float = BUY_WINDOW_S,
        delta_most: int = DELTA_MOST,
        guard_writes: bool | None = None,
        consistency: str | None = None,
    ) -> None:
        if rules is None:
            rules = rules_for(mode or Mode.BAZAR, True if guard_writes is None else guard_writes, consistency)
        elif mode is not None or guard_writes is not None or consistency is not None:
            raise TypeError("give either rules or mode/guard_writes/consistency, not both")
        super().__init__(index, replicas, has_frontend=has_frontend, rules=rules, seed=seed,
                         peer_order=peer_order, nonce=nonce, timeout_s=timeout_s, buy_window_s=buy_window_s,
                         delta_most=delta_most)

    @property
    def mode(self) -> Mode:
        """The mode the rules read as (``describe`` shows it)."""
        return mode_of(self.rules)

    @mode.setter
    def mode(self, mode: str) -> None:
        """Switch the mode's rules on a running replica (the admin call), keeping the others.
        Catch-up and the comparison of rows may have been off: they look at every book again."""
        self.rules = with_mode(self.rules, mode)
        self.compared_at = ("", 0)
        for peer in self.peers:
            peer.marks.buys_at = ("", 0)

    # ---- life cycle -------------------------------------------------------------------
    async def start(self) -> None:
        self.generation = await Disk("load_generation")
        self.books = await Disk("load_books")
        for buy_id, (book_id, seq, *age) in (await Disk("load_buys")).items():
            # Its window goes on from when it was stored (one that ran out meanwhile is
            # forgotten at the first round): a restart does not start it afresh.
            self._remember_buy(buy_id, book_id, seq, self.buy_window_s - age[0] if age else None)
        damaged = await Disk("load_damaged")
        for book_id in await Disk("load_tentative"):
            # A write of ours no peer had confirmed when we stopped: settled as any other
            # (catch_up._settle_tentative), offered to every peer (simulator seed 2026931348).
            copy = self.books[book_id]
            buys = tuple(sorted(b for b, (bid, seq) in self.buys.items() if bid == book_id and seq == copy.seq))
            if book_id in damaged:
                # Its row cannot be offered to anyone: its buys are forgotten instead. A peer
                # that took the write hands them back with its copy (catch-up fetches the buys
                # it remembers and we lack); otherwise they were never carried out (seed
                # 2027417932: kept, they counted a buy the peers never made).
                if not await self._stored("forget", list(buys)):
                    self.unforgotten[book_id] = list(buys)  # forgotten on disk with the repair
                for buy_id in buys:
                    self._forget_buy(buy_id)
                continue
            update = Update(copy, self.index, self._new_token(), buys)
            self.tentative[book_id] = (update, tuple(p.index for p in self.peers))
        for book_id, why in damaged.items():
            # Changed behind the store's back: whatever seq it says, catch-up replaces it with
            # a peer's copy that carries the buys we remember of it; until then nobody is
            # handed it.
            self._take_as_damaged(book_id, why, seq_known=False)
        if Rule.CATCH_UP in self.rules:
            self.unverified = {b for b, book in self.books.items() if book.seq >= 0}
        self.started_at = self.now
        # What we granted before a crash is forgotten: assume the longest leases are still out.
        for peer in self.peers:
            peer.granted_until = self.now + outwait(LEASE_S)
        self.frontend_granted_until = self.now + outwait(FRONTEND_LEASE_S)

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
            self.buys_of.clear()
            self.buy_expires.clear()
            self.expiry_heap.clear()
            self.buy_settles.clear()
            self.buy_count.clear()
            self.buy_digest.clear()
            self.bucket_digest.clear()
            self.bucket_buys.clear()
            self.valid_ids.clear()
            self.reservations.clear()
            self.tentative.clear()  # the rows they were writes of are gone
            self.unstored.clear()
            self.damaged.clear()  # every row was written afresh
            self.repair_floor.clear()
            self.floor_unknown.clear()
            self.unverified.clear()
            self.witnessed.clear()
            self.disputed.clear()
            self.unforgotten.clear()
            self.catch_ups = 0
        finally:
            self.resetting = False
            self.pending_reset = None
            for book_id in held:
                self._unlock(book_id)

    # ---- state --------------------------------------------------------------------------
    def describe(self, books: str = "rows") -> dict[str, Any]:
        """The replica's state for ``GET /admin/state``. ``books``: ``"rows"``, every book as an
        object (the API's form); ``"columns"``, the same as one list per field (``book_columns``:
        a third of the bytes, what the telemetry stream's snapshot carries); ``"no"``, counts
        only (a catalog of 100,000 books makes megabytes, which a poll for peers and leases skips)."""
        ordered = sorted(self.books.values(), key=lambda b: b.id) if books != "no" else []
        columns = {
            "id": [book.id for book in ordered],
            "seq": [book.seq for book in ordered],
            "quantity": [book.quantity for book in ordered],
            "price": [plain_number(book.price) for book in ordered],
            "valid": [book.id in self.valid_ids for book in ordered],
            "reserved_by": [self._holder(book.id) for book in ordered] if self.reservations else [None] * len(ordered),
        }
        listed = books != "no"
        return {
            "mode": self.mode.value,
            **({"book_columns": columns} if books == "columns" else
               {"books": [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]}),
            "book_count": len(self.books),
            "peers": [{"id": p.index, "up": p.up} for p in self.peers],
            "lease_ok": self.lease_ok(),
            "rejoining": not self.lease_ok(),  # out of lease: vouching for nothing
            "leases": {p.name: round(max(0.0, p.lease_until - self.now), 3) for p in self.peers},
            "catch_ups": self.catch_ups,
            "disk": self.disk_trouble or "ok",
            "damaged": {str(book_id): why for book_id, why in sorted(self.damaged.items())} if listed
            else len(self.damaged),
            # Brief (books="no"): how many, not which, so that a poll stays small at start.
            "unverified": sorted(self.unverified) if listed else len(self.unverified),
            "disputed": sorted(self.disputed) if listed else len(self.disputed),
            "tentative": sorted(self.tentative) if listed else len(self.tentative),
            "generation": self.generation,
            "buys_remembered": len(self.buys),
            "buy_window_s": self.buy_window_s,
        }

    def _holder(self, book_id: int) -> int | None:
        reservation = self.reservations.get(book_id)
        return reservation.owner if reservation and self._holds(reservation) else None

    # ---- one entry for every message ------------------------------------------------------------
    async def handle(self, message: Any) -> Any:
        """Answer any message a catalog takes (the driver has checked its generation)."""
        if isinstance(message, Read):
            return await self.read(message.book, message.buy_id)
        if isinstance(message, Search):
            return Hits(tuple(self.search(message.topic, message.limit, message.offset)))
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

"""The order replica's buy flow (docs/protocol.md, S6–S8) as a pure core: read the book at its one
catalog replica; out of stock when none is left; else write stock − 1, and on a conflict
read again and retry. No I/O: the node (``app.py``) and the simulator drive it.

Bazar's additions: the buy's id travels with the write and is recorded, so a buy retried
here or elsewhere is carried out once (W7); the write names the seq it was computed from,
so it never lands on a newer copy (W1). ``guard_writes=False`` is docs/protocol.md to the letter
(the simulator's documented mode): no buy id, no base seq.

``write_first``: a buy of a book this replica last saw in stock skips the read and writes at
once. With majority writes the write's check round vouches for the copy as the read would (a
majority reserved, none ahead), the catalog takes a buy's copy from its own current copy
(``take``) and refuses one that would leave less than none: the read only ever decided "out of
stock", and that answer still comes from a read, since a refused write (409) reads again. Under
full load the read was an exchange and a hop of every buy. With ``write_first=False`` every buy
reads first: the documents' figures (the launcher's documented catalog mode), and available
consistency, where a write goes ahead with whoever answers and only the read keeps a replica cut
off from selling a copy no peer vouches for (docs/protocol.md, "Written first").
"""
from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Awaitable

from nodes.core.books import Book
from nodes.core.effects import ATTEMPTS_KEPT, ATTEMPTS_KEPT_S, Core, Disk, NoAnswer, Send, SingleFlight, Sleep
from nodes.core.messages import (
    UNCONFIRMED_BUY,
    Bought,
    Buy,
    Conflict,
    Degraded,
    Found,
    Health,
    Healthy,
    KnownBuy,
    NotFound,
    NotWritten,
    OutOfStock,
    Read,
    ReusedBuyId,
    Unconfirmed,
    Unreachable,
    Write,
    Written,
)

#: How long one buy keeps re-reading and retrying after conflicts before it gives up.
RETRY_BUDGET_S = 3.0
HEALTH_TIMEOUT_S = 0.25
#: How many books' last-seen copies a replica keeps for ``write_first`` (the oldest go first).
KNOWN_BOOKS = 10_000


class OrderReplica(Core):
    def __init__(self, index: int, catalog_index: int, *, timeout_s: float = 1.5, connect_s: float = 0.15,
                 guard_writes: bool = True, write_first: bool = False, seed: int | None = None) -> None:
        self.index = index
        self.catalog = f"catalog{catalog_index}"
        self.timeout_s = timeout_s
        self.connect_s = connect_s
        self.guard_writes = guard_writes
        #: Only with guarded writes: a documented write sets the stock it names, whatever is left.
        self.write_first = write_first and guard_writes
        #: The last copy of each book this replica read or wrote (``write_first``).
        self.known: OrderedDict[int, Book] = OrderedDict()
        self.rng = random.Random(seed)
        #: Names each attempt of a buy's write, unique across restarts: ``{index}.{nonce}.{n}``.
        self.nonce = f"{self.rng.randrange(1 << 32):08x}"
        self.attempts = 0
        self.counts = {"bought": 0, "out_of_stock": 0, "unreachable": 0}
        self.in_flight = SingleFlight()
        #: The front-end's attempts answered lately (``Buy.attempt``): a copy of one that comes
        #: after its answer (the network delivered it twice, late) gets that answer. Run anew,
        #: a copy of a buy answered "not done" (our catalog's disk full) was carried out once the
        #: disk took writes again, its client holding "not done" (simulator seed 2081010325).
        self.copies = SingleFlight(keep=ATTEMPTS_KEPT, keep_s=ATTEMPTS_KEPT_S, clock=lambda: self.now)

    def _send(self, message: object) -> Send:
        return Send(self.catalog, message, self.timeout_s, connect_timeout=self.connect_s)

    def _unreachable(self, outcome: str) -> Unreachable:
        self.counts["unreachable"] += 1
        self.emit("order", outcome="unreachable")
        return Unreachable(f"Catalog server {self.catalog} could not be reached", outcome)

    def _bought(self, buy_id: str, order_id: int | None) -> Bought:
        self.counts["bought"] += 1
        self.emit("order", outcome="bought", buy_id=buy_id)
        return Bought(buy_id, order_id)

    async def buy(self, request: Buy) -> Bought | OutOfStock | NotFound | Unreachable | ReusedBuyId:
        if not self.guard_writes:
            return await self._buy(request)
        # Keyed by book too: the same id for another book is not a copy of this buy, and must not
        # be handed its answer (it is refused on its own path, by our history or the catalog).
        def once() -> Awaitable[Bought | OutOfStock | NotFound | Unreachable | ReusedBuyId]:
            return self.in_flight.run((request.buy_id, request.book), lambda: self._buy(request))

        if request.attempt is None:
            return await once()
        answer: Bought | OutOfStock | NotFound | Unreachable | ReusedBuyId = await self.copies.run(
            (request.attempt, request.buy_id, request.book), once, again=False)
        return answer

    async def _buy(self, request: Buy) -> Bought | OutOfStock | NotFound | Unreachable | ReusedBuyId:
        buy_id = request.buy_id
        # W7: the same buy again gets its first outcome. Looked up in this replica's history on
        # disk (one indexed read), not in memory: memory holds no buy id for good, and the
        # history answers a retry here even after the catalogs' retry window has run out.
        purchase = await Disk("find", buy_id) if self.guard_writes else None
        if purchase is not None:
            if purchase.book_id != request.book:
                return ReusedBuyId(buy_id, purchase.book_id)  # not a retry: another book
            return self._bought(buy_id, purchase.order_id)
        deadline = self.now + RETRY_BUDGET_S
        since = self.now  # travels with every attempt: the older buy wins a conflict
        attempt = 0
        # Once our catalog says the buy is in a write no majority is known to hold yet, it may
        # be done: nothing after that is answered "not done" (simulator seed 2067500032, five
        # replicas: a read that could not reach the catalog then said so of a buy carried out).
        pending = False
        while True:
            attempt += 1
            read = self._last_seen(request.book) if attempt == 1 else None
            if read is None:
                read = await self._send(Read(request.book, buy_id if self.guard_writes else None))
                if isinstance(read, Found):
                    self._saw(read.book)
                pending = pending or (isinstance(read, Conflict) and read.reason == UNCONFIRMED_BUY)
            if isinstance(read, NoAnswer):
                return self._unreachable("unknown" if pending else "not done")
            if isinstance(read, NotFound | ReusedBuyId):
                return read
            if isinstance(read, KnownBuy):
                # An earlier attempt of this buy (a retry elsewhere, a message delivered twice)
                # was carried out: that is this buy's outcome.
                return await self._known(buy_id, read.book)
            if isinstance(read, Found):
                book = read.book
                if book.quantity <= 0:
                    self.counts["out_of_stock"] += 1
                    self.emit("order", outcome="out_of_stock", buy_id=buy_id)
                    return OutOfStock(buy_id)
                write = Write(book.id, quantity=book.quantity - 1)
                if self.guard_writes:
                    self.attempts += 1
                    write = Write(book.id, book.quantity - 1, base_seq=book.seq, buy_id=buy_id, since=since, take=1,
                                  attempt=f"{self.index}.{self.nonce}.{self.attempts}")
                written = await self._send(write)
                if isinstance(written, NoAnswer):
                    # The catalog may have carried it out; a retry with the same id is safe.
                    return self._unreachable("unknown" if written.maybe_processed or pending else "not done")
                if isinstance(written, Written):
                    self._saw(written.book)
                    if written.duplicate:
                        return await self._known(buy_id, book)
                    # The copy the write made: the title and price it was bought at, also when
                    # the read was skipped (or the price changed after it).
                    bought = written.book
                    purchase = await Disk("record", buy_id, bought.id, bought.title, bought.price)
                    return self._bought(buy_id, purchase.order_id)
                if isinstance(written, NotFound | ReusedBuyId):
                    return written
                if isinstance(written, NotWritten):
                    # The catalog changed nothing (no majority, or it withdrew the write): say
                    # why; another path may succeed.
                    if pending:
                        return self._unreachable("unknown")  # this attempt did nothing; the first may have
                    self.counts["unreachable"] += 1
                    self.emit("order", outcome="refused", buy_id=buy_id)
                    return Unreachable(f"Nothing was bought: {written.reason}", "not done", busy=True)
                if isinstance(written, Unconfirmed):
                    return self._unreachable("unknown")
                if not isinstance(written, Conflict):
                    return self._unreachable("unknown")
                pending = pending or written.reason == UNCONFIRMED_BUY  # a write of it is under way
            elif not isinstance(read, Conflict):
                return self._unreachable("unknown" if pending else "not done")
            # A conflict: our catalog's copy was outdated or another buy holds the book; read again.
            if self.now > deadline:
                if pending:
                    return self._unreachable("unknown")
                return Unreachable("The book is in too much demand right now; try again", "not done", busy=True)
            await Sleep(self.now + self.rng.uniform(0, min(0.05, 0.005 * attempt)))  # back-off, not a wait

    def _last_seen(self, book_id: int) -> Found | None:
        """``write_first``: the book's last-seen copy, standing in for the first read, when it had
        copies left; None (read it) otherwise, and always for an answer of "out of stock"."""
        known = self.known.get(book_id) if self.write_first else None
        return Found(known) if known is not None and known.quantity > 0 else None

    def _saw(self, book: Book) -> None:
        if not self.write_first:
            return
        self.known[book.id] = book
        self.known.move_to_end(book.id)
        if len(self.known) > KNOWN_BOOKS:
            self.known.popitem(last=False)

    async def _known(self, buy_id: str, book: Book) -> Bought:
        """A buy found done at the catalog (by us before, or by another order replica, whose
        history holds it): bought, recorded once."""
        purchase = await Disk("find", buy_id)
        return self._bought(buy_id, purchase.order_id if purchase is not None else None)

    async def health(self) -> Healthy | Degraded:
        """An order replica is only useful while its catalog answers (S8, S11): say so, so the
        front-end's probe can route around it before a shopper pays the timeout (W4)."""
        probe = await Send(self.catalog, Health(), HEALTH_TIMEOUT_S, connect_timeout=0.1, trace=False)
        if isinstance(probe, Healthy):
            return probe
        return Degraded(f"Catalog server {self.catalog} could not be reached")

    async def reset(self) -> None:
        await Disk("reset")
        self.known.clear()
        for key in self.counts:
            self.counts[key] = 0

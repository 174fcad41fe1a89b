"""The front-end's routing and cache decisions as a pure core: lookups and searches served
from the LRU caches (``cache.py``) or fetched from a catalog replica, buys sent to an order
replica, each through the one "try the replicas in turn" ring. No I/O: the node
(``app.py``) and the simulator drive it.

Rings: ``documented`` follows docs/protocol.md to the letter (S9–S12): the replica whose turn it
is is tried first, every try moves the turn on, a failed one sends the request to the next.
``adaptive`` (the default) fixes W4: the turn moves once per request, and replicas that a
failed call or the background health probe found out are tried only after the others,
until a probe finds them back. In it, a buy starts at the order replica its book belongs to
(book id modulo the ring) rather than at the turn, so that buys of one book meet at one
order replica and its one catalog replica, where they queue instead of refusing each other
across replicas; the others follow in ring order when it is out. Lookups of a book that miss
while a read of it is under way share that read's answer when it is as new as every write
announced to the front-end before they began (``_share_fetch``).
"""
from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from nodes.core.clocks import NEVER
from nodes.core.effects import Core, Gather, Hedged, NoAnswer, Send, SingleFlight, Sleep, Waiters
from nodes.core.frontend.cache import LruCache
from nodes.core.messages import (
    Bought,
    Buy,
    Conflict,
    Degraded,
    Done,
    Found,
    Health,
    Healthy,
    Hits,
    Invalidate,
    NoOrderServer,
    NotFound,
    OutcomeUnknown,
    OutOfStock,
    Read,
    ReusedBuyId,
    Search,
    Unreachable,
)
from nodes.core.wire import Failure

PROBE_INTERVAL_S = 0.5
PROBE_TIMEOUT_S = 0.3
#: A lookup or search not answered this long is asked of the next catalog replica too, and the
#: first good answer is taken ("The Tail at Scale"'s hedged request): a replica that hangs or is
#: cut off between two probes costs a read this much, not the whole time-out. Under full load
#: on a laptop 99 % of reads are answered within about 100 ms, so few reads are sent twice.
HEDGE_S = 0.2
#: A buy not answered this long is asked of the next order replica that is up too, with the
#: same buy id, so that it is carried out once whichever goes through (W7). An order replica
#: whose catalog replica hangs waits its 1.5 s time-out before it says so, and the probe takes
#: up to 0.75 s to learn it; a buy sent there meanwhile costs this much, not the time-out. Twice
#: the load experiment's p99 under full load on two cores (about 0.15 s), so that few buys are
#: sent twice. At 0.5 s a buy sent first there, then to an order replica whose catalog's read
#: hopped to the silent replica (0.6 s), took 1.06 s in a recorded hang run (issue 28).
BUY_HEDGE_S = 0.3
#: A read every replica has been asked, that those which answered could not vouch for (409, "try
#: again": a write of the book was under way at a replica that fell silent), waits this long for
#: the rest, and then asks again those that answered, after ``READ_AGAIN_S``, until its time is
#: up. Waiting on a replica that had just hung, such a read kept every lookup of its book (they
#: share one read) for the whole 2 s time-out, while the others could vouch again within a
#: second: under full load a hang timed out 6-8 requests now and then (issue 28).
READ_PATIENCE_S = 0.2
READ_AGAIN_S = 0.05
RING_MODES = ("adaptive", "documented")


@dataclass
class Member:
    index: int
    name: str
    up: bool = True


@dataclass
class Fetch:
    """A lookup's read at a catalog replica, under way; lookups of the same book that miss
    meanwhile wait for its answer instead of sending reads of their own."""

    generation: int
    answer: Any = None
    done: bool = False


@dataclass(frozen=True)
class NoCatalogServer:
    tried: tuple[tuple[str, str], ...]


def describe_answer(answer: Any) -> str:
    """How an attempt ended, in the words the front-end's 504 lists them."""
    if isinstance(answer, NoAnswer):
        return "no answer (refused)" if answer.refused else "no answer (timeout)"
    if isinstance(answer, Unreachable):
        return "503" if answer.busy else "504"
    if isinstance(answer, (Failure, Degraded)):
        return str(getattr(answer, "status", 503))
    return "200"


def _again(message: Any) -> Any:
    """A buy sent again to a replica that went silent is another attempt of it: the copy of the
    first, delivered late, is answered the first's outcome, and this one is run (a review)."""
    if isinstance(message, Buy) and message.attempt is not None:
        return replace(message, attempt=f"{message.attempt}.again")
    return message


def _unsettled(answer: Any) -> bool:
    """A buy's answer that a retry of its id should not just be handed: its outcome unknown."""
    return isinstance(answer, OutcomeUnknown)


def _refused(answer: Any) -> bool:
    """A replica's "nothing was done" in words (no majority, too much demand): it is up and
    answering, and the next replica may be luckier, but it is not out. Taken for out, it was
    put behind a replica the probe knew was out, whose time-out every buy then waited."""
    return isinstance(answer, Unreachable) and answer.busy


def _down(answer: Any) -> bool:
    """An answer that says the replica cannot serve now (no answer, or its 503/504)."""
    return (isinstance(answer, (NoAnswer, Unreachable, Degraded))
            or (isinstance(answer, Failure) and answer.status in (503, 504)))


class Ring:
    def __init__(self, core: Core, kind: str, size: int) -> None:
        self.core = core
        self.kind = kind
        self.members = [Member(i, f"{kind}{i}") for i in range(size)]
        self.turn = 0
        self.mode = "adaptive"

    def _order(self, home: int | None = None) -> list[Member]:
        n = len(self.members)
        if self.mode == "documented" or home is None:
            ring = [self.members[(self.turn + k) % n] for k in range(n)]
            if self.mode == "documented":
                return ring
            self.turn = (self.turn + 1) % n
        else:
            ring = [self.members[(home + k) % n] for k in range(n)]
        return [m for m in ring if m.up] + [m for m in ring if not m.up]

    async def call(self, message: Any, *, timeout: float, connect: float, try_next: Callable[[Any], bool],
                   home: int | None = None, hedge: float | None = None,
                   done: Callable[[Any], bool] | None = None) -> tuple[Any | None, list[tuple[Member, Any]]]:
        """Try the replicas in turn (from ``home`` on, when given, in adaptive mode). Returns
        the answer that ended it (None when every one failed) and every attempt made. A read
        (``hedge``: seconds) is also asked of the next replica once that long passed with no
        answer, in adaptive mode. A buy is hedged too, among the replicas that are up, when
        ``done`` names the answers that end it at once: any other answer that does not send
        it on (``try_next``) waits for the attempts still out, whose outcome it depends on."""
        attempts: list[tuple[Member, Any]] = []
        order = self._order(home)
        if hedge is not None and self.mode == "adaptive" and len(order) > 1:
            if done is None:
                return await self._read(message, order, timeout, connect, try_next, hedge)
            up = [m for m in order if m.up]
            if len(up) > 1:
                answer, attempts = await self._hedged(message, up, timeout, connect, try_next, hedge, done)
                if answer is not None or any(not isinstance(a, NoAnswer) for _m, a in attempts):
                    return answer, attempts
                order = [m for m in order if not m.up]  # every one up went silent: on, as below
                message = _again(message)
        for member in order:
            if self.mode == "documented":
                self.turn = (member.index + 1) % len(self.members)
            elif not member.up and any(not isinstance(a, NoAnswer) for _m, a in attempts):
                # Known out, and a replica that is up has answered in words (busy, no majority):
                # that answer is the outcome, not the time-out of one the probe says cannot serve.
                break
            answer = await Send(member.name, message, timeout, connect_timeout=connect)
            attempts.append((member, answer))
            if not isinstance(answer, NoAnswer) and not try_next(answer):
                self.mark(member, True)
                return answer, attempts
            if _down(answer) and not _refused(answer):
                self.mark(member, False)
        return None, attempts

    async def _read(self, message: Any, order: list[Member], timeout: float, connect: float,
                    try_next: Callable[[Any], bool], hedge: float) -> tuple[Any | None, list[tuple[Member, Any]]]:
        """A hedged read; asked again of the replicas that answered "try again" (409) while the
        others stay silent, until ``timeout`` from now (``READ_PATIENCE_S``)."""
        deadline = self.core.now + timeout
        tried: list[tuple[Member, Any]] = []
        while True:
            answer, attempts = await self._hedged(message, order, deadline - self.core.now, connect, try_next,
                                                  hedge, patience=READ_PATIENCE_S)
            tried += attempts
            order = [member for member, reply in attempts if isinstance(reply, Conflict)]
            if answer is not None or not order or deadline - self.core.now <= READ_AGAIN_S + READ_PATIENCE_S:
                return answer, tried
            await Sleep(self.core.now + READ_AGAIN_S)

    async def _hedged(self, message: Any, order: list[Member], timeout: float, connect: float,
                      try_next: Callable[[Any], bool], hedge: float, done: Callable[[Any], bool] | None = None,
                      patience: float | None = None) -> tuple[Any | None, list[tuple[Member, Any]]]:
        def good(answer: Any) -> bool:
            return not isinstance(answer, NoAnswer) and not try_next(answer)

        sends = [Send(m.name, message, timeout, connect_timeout=connect) for m in order]
        answers = await (Hedged(sends, hedge, good, patience=patience) if done is None
                         else Hedged(sends, hedge, done, final=good))
        attempts = [(member, answer) for member, answer in zip(order, answers, strict=True) if answer is not None]
        chosen = None
        for member, answer in attempts:
            if good(answer):
                self.mark(member, True)
                if chosen is None or done is None or done(answer):
                    chosen = answer
            elif _down(answer) and not _refused(answer):
                self.mark(member, False)
        return chosen, attempts

    def mark(self, member: Member, up: bool) -> None:
        if member.up != up:
            member.up = up
            self.core.emit("replica", ring=self.kind, replica=member.index, up=up)

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "turn": self.turn,
                "replicas": [{"id": m.index, "up": m.up} for m in self.members]}


class Frontend(Core):
    def __init__(self, catalogs: int, orders: int, *, lookup_cache: int = 3, search_cache: int = 10,
                 timeout_s: float = 2.0, connect_s: float = 0.2, nonce: str | None = None) -> None:
        #: Names this run of the front-end in its buys' attempt ids (``_buy``): new at each start.
        self.nonce = nonce if nonce is not None else secrets.token_hex(4)
        self.attempts = 0
        self.lookups = LruCache("lookup", lookup_cache, self)
        self.searches = LruCache("search", search_cache, self)
        self.catalogs = Ring(self, "catalog", catalogs)
        self.orders = Ring(self, "order", orders)
        self.timeout_s = timeout_s
        self.connect_s = connect_s
        self.counts = {"bought": 0, "out_of_stock": 0, "unknown": 0, "failed": 0}
        self.in_flight = SingleFlight()
        #: The book each recent buy id was used for (as many as ``in_flight`` keeps answers).
        self.buy_books: OrderedDict[str, int] = OrderedDict()
        self.fetches: dict[int, Fetch] = {}  # book -> the read under way for it
        self.shared_reads = 0  # lookups answered by another lookup's read
        self.waiters = Waiters()
        #: Each catalog's cache lease (None: it grants none, as in documented mode), and
        #: whether its last probe was refused (no process: it cannot write meanwhile).
        self.cache_leases: list[float | None] = [NEVER] * catalogs
        self.refused = [False] * catalogs
        #: Catalogs refused since their lease ran out, the cache emptied once for each (``probe``).
        self.lapsed_refused: set[int] = set()

    def describe(self) -> dict[str, Any]:
        return {
            "caches": {"lookup": self.lookups.describe(), "search": self.searches.describe()},
            "catalogs": self.catalogs.describe(),
            "orders": self.orders.describe(),
            "buys": dict(self.counts),
            "shared_reads": self.shared_reads,
            #: Seconds left of each catalog's cache lease (None: it grants none).
            "cache_leases": [None if lease is None else round(max(0.0, lease - self.now), 3)
                             for lease in self.cache_leases],
        }

    async def search(self, request: Search) -> Hits | NoCatalogServer:
        key = request.key
        entry = self.searches.get(key)
        if entry is not None:
            return cast(Hits, entry.value)
        ticket = self.searches.ticket()
        answer, attempts = await self.catalogs.call(request, timeout=self.timeout_s, connect=self.connect_s,
                                                    try_next=lambda a: not isinstance(a, Hits), hedge=HEDGE_S)
        if answer is None:
            return NoCatalogServer(_tried(attempts))
        self.searches.put(key, answer, ticket, frozenset(book.topic.casefold() for book in answer.books))
        return cast(Hits, answer)

    def cache_ok(self) -> bool:
        """Cached copies are reads too (W2): served only while every catalog that may write
        holds its lease to us open. A writer that could not tell us to drop a copy waits
        until that lease has run out, and grants no new one before."""
        return all(lease is None or lease > self.now or refused
                   for lease, refused in zip(self.cache_leases, self.refused, strict=True))

    async def lookup(self, request: Read) -> Found | NotFound | NoCatalogServer:
        book = request.book
        cached = self.cache_ok()
        if not cached and self.lookups.entries:
            self.lookups.clear(floors=False)
        entry = self.lookups.get(book) if cached else None
        if entry is not None:
            return cast(Found | NotFound, entry.value)
        # Reads under way are shared in adaptive mode only: the documented ring sends each
        # lookup itself (S9-S12 count the turns).
        share = cached and self.catalogs.mode == "adaptive"
        if share:
            shared = await self._share_fetch(book)
            if shared is not None:
                return shared
        ticket = self.lookups.ticket(book) if cached else -1
        fetch = None
        if share and book not in self.fetches:
            fetch = self.fetches[book] = Fetch(self.lookups.generation)
        answer: Any = None
        attempts: list[Any] = []
        try:
            answer, attempts = await self.catalogs.call(request, timeout=self.timeout_s, connect=self.connect_s,
                                                        try_next=lambda a: not isinstance(a, (Found, NotFound)),
                                                        hedge=HEDGE_S)
        finally:
            if fetch is not None:
                del self.fetches[book]
                fetch.answer, fetch.done = answer, True
                self.waiters.notify(("fetch", book))
        if answer is None:
            return NoCatalogServer(_tried(attempts))
        # W5: an unknown id is cached too, so asking again costs no trip to a catalog.
        self.lookups.put(book, answer, ticket, seq=answer.book.seq if isinstance(answer, Found) else None)
        return cast(Found | NotFound, answer)

    async def _share_fetch(self, book: int) -> Found | NotFound | None:
        """The answer of the read of ``book`` already under way, when it is as new as every
        write announced before this lookup began (every acknowledged one is, while the cache
        leases hold: a writer announces before it acknowledges); None: read for yourself."""
        fetch = self.fetches.get(book)
        if fetch is None or fetch.generation != self.lookups.generation:
            return None
        floor = self.lookups.floor(book)
        while not fetch.done:
            await self.waiters.wait(("fetch", book), float("inf"))
        answer = fetch.answer
        if fetch.generation != self.lookups.generation:
            return None  # a reset came meanwhile: the answer is of the books before it
        if isinstance(answer, NotFound) or (isinstance(answer, Found) and answer.book.seq >= floor):
            self.shared_reads += 1
            return answer
        return None

    async def buy(self, request: Buy) -> Any:
        """A buy, once per buy id: a copy of one under way waits for it and gets its answer (W7).
        The same id for another book is refused at once, changing nothing (an idempotency key
        names one request), and so is it below, where a catalog or order replica remembers it."""
        first = self.buy_books.get(request.buy_id)
        if first is not None and first != request.book:
            return ReusedBuyId(request.buy_id, first)
        self.buy_books[request.buy_id] = request.book
        if len(self.buy_books) > self.in_flight.keep:
            self.buy_books.popitem(last=False)
        # A copy that comes after the answer gets it too (docs/api.md: the same id again returns
        # the first outcome), but for "unknown", which a retry is there to settle. Run anew, a
        # copy of a buy answered "not done" (a message delivered twice, late) went to the other
        # order replica and was carried out while its client held "not done" (simulator seed
        # 2041009306).
        answer = await self.in_flight.run(request.buy_id, lambda: self._buy(request), again=_unsettled)
        if isinstance(answer, ReusedBuyId):
            self.buy_books[request.buy_id] = answer.book
        return answer

    async def _buy(self, request: Buy) -> Any:
        # Named, so that a copy of it the network delivers late is answered, not run anew
        # (``OrderReplica.copies``); a retry of the buy here is another attempt.
        self.attempts += 1
        request = replace(request, attempt=f"{self.nonce}.{self.attempts}")
        answer, attempts = await self.orders.call(
            request, timeout=self.timeout_s * 2, connect=self.connect_s * 2,  # docs/api.md: doubled for buy
            try_next=_down, home=request.book % len(self.orders.members), hedge=BUY_HEDGE_S,
            done=lambda a: isinstance(a, Bought))
        # Another attempt that may have carried the buy out makes any answer but Bought unknown.
        maybe_done = any(_maybe_done(a) for _member, a in attempts if a is not answer)
        if isinstance(answer, Bought):
            self.counts["bought"] += 1
            return answer
        if answer is not None and not maybe_done:
            if isinstance(answer, OutOfStock):
                self.counts["out_of_stock"] += 1
            return answer
        # W7: when any order replica may have carried the buy out, its outcome is unknown —
        # also when a later one found the book sold out: the first may have taken the last copy.
        if maybe_done:
            self.counts["unknown"] += 1
            self.emit("order", outcome="unknown", buy_id=request.buy_id)
            return OutcomeUnknown(request.buy_id, _tried(attempts))
        self.counts["failed"] += 1
        refusals = [a.message for _member, a in attempts if isinstance(a, Unreachable) and a.busy]
        return NoOrderServer(request.buy_id, _tried(attempts), refusals[-1] if refusals else None)

    def invalidate(self, request: Invalidate) -> Done:
        self.lookups.invalidate(request.book, request.seq)
        return Done()

    async def probe(self) -> None:
        """The background health probe (W4), for the front-end's life."""
        members = self.catalogs.members + self.orders.members
        while True:
            started = self.now
            answers = await Gather([Send(m.name, Health("frontend"), PROBE_TIMEOUT_S, connect_timeout=0.1,
                                         trace=False) for m in members])
            for ring in (self.catalogs, self.orders):
                for member in ring.members:
                    ring.mark(member, isinstance(answers[members.index(member)], Healthy))
            for i, answer in enumerate(answers[:len(self.catalogs.members)]):
                self.refused[i] = isinstance(answer, NoAnswer) and answer.refused
                held = self.cache_leases[i]
                if not self.refused[i]:
                    self.lapsed_refused.discard(i)
                elif held is not None and held <= self.now and i not in self.lapsed_refused:
                    # Gone, it writes nothing, but a write it sent out before it crashed may be
                    # held by its peers with its invalidation lost: once its lease has run out,
                    # what we cached may be older than what they serve (a review, 2026-12-07).
                    self.lapsed_refused.add(i)
                    self.lookups.clear(floors=False)
                # A degraded catalog (out of touch, its disk full) grants its lease too; a 503
                # that names none (a catalog of another generation, say) renews nothing.
                if isinstance(answer, Healthy) or (isinstance(answer, Degraded) and answer.lease_s is not None):
                    if answer.lease_s is not None and held is not None and held <= self.now:
                        self.lookups.clear(floors=False)  # back after a lapse: what was cached may be stale
                    # Counted from the probe's sending, before the lease was granted.
                    self.cache_leases[i] = (None if answer.lease_s is None
                                            else max(NEVER if held is None else held, started + answer.lease_s))
            await Sleep(max(self.now, started + PROBE_INTERVAL_S))

    def reset(self) -> None:
        self.lookups.clear()
        self.searches.clear()
        for key in self.counts:
            self.counts[key] = 0
        self.shared_reads = 0

    async def handle(self, message: Any) -> Any:
        if isinstance(message, Read):
            return await self.lookup(message)
        if isinstance(message, Search):
            return await self.search(message)
        if isinstance(message, Buy):
            return await self.buy(message)
        if isinstance(message, Invalidate):
            return self.invalidate(message)
        raise TypeError(f"the front-end takes no {type(message).__name__}")


def _maybe_done(answer: Any) -> bool:
    if isinstance(answer, NoAnswer):
        return answer.maybe_processed
    return isinstance(answer, Unreachable) and answer.outcome == "unknown"


def _tried(attempts: list[tuple[Member, Any]]) -> tuple[tuple[str, str], ...]:
    return tuple((member.name, describe_answer(answer)) for member, answer in attempts)

"""The front-end's read, asked again of the replicas that said "try again" while another is
silent (issue 28): one lookup of a book is shared by every lookup of it that comes meanwhile,
so it must not wait out the silent replica's whole time-out."""
from __future__ import annotations

from dataclasses import replace

import pytest

from nodes.core.books import Book
from nodes.core.catalog.state import FRONTEND_LEASE_S
from nodes.core.effects import Hedged, NoAnswer, Sleep
from nodes.core.frontend.cache import MAX_FLOORS, LruCache
from nodes.core.frontend.protocol import READ_AGAIN_S, READ_PATIENCE_S, Frontend, NoCatalogServer
from nodes.core.messages import Conflict, Degraded, Found, Healthy, Invalidate, Read
from tests.support import Scripted

pytestmark = pytest.mark.timeout(10)

BOOK = Book(2, "RPCs for Noobs", "distributed systems", 50, 20, seq=4)


def test_a_read_the_others_could_not_vouch_for_is_asked_of_them_again_not_of_the_silent_one() -> None:
    core = Frontend(3, 2)
    lookup = Scripted(core, core.lookup(Read(2)), now=10.0)
    first = lookup.asks
    assert isinstance(first, Hedged) and first.patience == READ_PATIENCE_S
    names = [send.to for send in first.sends]
    # The first replica asked is silent; the other two could not vouch (a write of the book
    # was under way at the silent one): out of patience, the read is resumed without it.
    lookup.answer([None, Conflict(BOOK, "try again"), Conflict(BOOK, "try again")], at=10.5)
    assert isinstance(lookup.asks, Sleep) and lookup.asks.until == pytest.approx(10.5 + READ_AGAIN_S)
    lookup.answer(None, at=10.5 + READ_AGAIN_S)
    again = lookup.asks
    assert isinstance(again, Hedged) and [send.to for send in again.sends] == names[1:]
    assert all(send.timeout == pytest.approx(2.0 - 0.5 - READ_AGAIN_S) for send in again.sends)
    lookup.answer([Found(BOOK), None], at=10.6)
    assert lookup.done and lookup.result == Found(BOOK)


def test_a_read_no_replica_answered_in_words_is_not_asked_again() -> None:
    core = Frontend(3, 2)
    lookup = Scripted(core, core.lookup(Read(2)))
    lookup.answer([NoAnswer(), NoAnswer(refused=True), NoAnswer()], at=2.0)
    assert lookup.done and isinstance(lookup.result, NoCatalogServer)


@pytest.mark.parametrize("lease_s, cached", [(1.5, True), (None, False)])
def test_a_degraded_catalog_that_grants_its_cache_lease_keeps_the_cache_on(lease_s: float | None,
                                                                            cached: bool) -> None:
    """Issue 28: a catalog out of touch with its peers (a one-way cut, a partition) answers the
    probe "degraded" and is routed around, but it keeps its cache lease's promise as any
    writer does, and grants it: the cache stays on. A 503 that names no lease (another
    generation, a proxy) renews nothing, and the cache goes off once the old lease runs out."""
    core = Frontend(3, 2)
    probe = Scripted(core, core.probe(), now=10.0)
    healthy = Healthy(FRONTEND_LEASE_S)
    probe.answer([healthy, Degraded("out of touch with every other catalog replica", lease_s), healthy,
                  Healthy(), Healthy()], at=10.01)
    assert isinstance(probe.asks, Sleep)
    assert [m.up for m in core.catalogs.members] == [True, False, True], "routed around all the same"
    core.now = 11.0
    assert core.cache_ok() is cached


def test_a_crashed_catalogs_lapsed_lease_empties_the_cache_once() -> None:
    """A review, 2026-12-07: a writer that crashed after its peers took its write, the
    invalidation lost, left the old copy cached for as long as it was down (a refused catalog
    cannot write, so the cache stays on). Once its lease has run out, the cache is emptied,
    once: what the live catalogs serve refills it."""
    core = Frontend(3, 2)
    probe = Scripted(core, core.probe(), now=10.0)
    healthy = Healthy(FRONTEND_LEASE_S)
    probe.answer([healthy, healthy, healthy, Healthy(), Healthy()], at=10.01)
    core.lookups.put(BOOK.id, Found(BOOK), core.lookups.ticket(), seq=BOOK.seq)
    gone = NoAnswer(refused=True)
    probe.answer(None, at=probe.asks.until)
    probe.answer([healthy, gone, healthy, Healthy(), Healthy()], at=10.6)
    assert core.cache_ok() and core.lookups.get(BOOK.id) is not None, "its lease still holds"
    for _ in range(3):
        probe.answer(None, at=probe.asks.until)
        probe.answer([healthy, gone, healthy, Healthy(), Healthy()], at=core.now + 0.01)
    assert core.now > 10.0 + FRONTEND_LEASE_S
    assert core.cache_ok() and core.lookups.get(BOOK.id) is None, "emptied once the lease ran out"
    core.lookups.put(BOOK.id, Found(BOOK), core.lookups.ticket(), seq=BOOK.seq)
    probe.answer(None, at=probe.asks.until)
    probe.answer([healthy, gone, healthy, Healthy(), Healthy()], at=core.now + 0.01)
    assert core.lookups.get(BOOK.id) is not None, "and only once"


def test_a_lookup_fetched_while_another_book_was_invalidated_is_still_cached() -> None:
    """Issue 28: every invalidation voided every fetch under way, whichever book it named. Under
    full load one came during most lookups' fetches, so their copies were dropped and the next
    lookups of the book went to a catalog too: 0.183 catalog reads a request, 0.132 since.
    A lookup's fetch is voided only by an invalidation of its own book (or a clear)."""
    core = Frontend(3, 2)
    probe = Scripted(core, core.probe(), now=10.0)  # every catalog grants its cache lease
    probe.answer([Healthy(FRONTEND_LEASE_S)] * 3 + [Healthy(), Healthy()], at=10.01)
    assert core.cache_ok()
    other = Scripted(core, core.lookup(Read(2)), now=10.02)
    core.invalidate(Invalidate(5, 9))  # a write of another book, announced meanwhile
    other.answer([Found(BOOK), None, None])
    assert other.result == Found(BOOK) and core.lookups.get(BOOK.id) is not None, "cached all the same"

    for announced in (BOOK.seq + 1, None):  # a write of this very book: the copy may be the old one
        core.lookups.clear()
        same = Scripted(core, core.lookup(Read(2)), now=10.03)
        core.invalidate(Invalidate(2, announced))
        same.answer([Found(BOOK), None, None])
        assert same.result == Found(BOOK) and core.lookups.get(BOOK.id) is None, announced

    cleared = Scripted(core, core.lookup(Read(2)), now=10.04)
    core.lookups.clear(floors=False)  # a lapsed lease, say: everything fetched before is void
    cleared.answer([Found(replace(BOOK, seq=BOOK.seq + 1)), None, None])
    assert core.lookups.get(BOOK.id) is None


def test_a_lookup_ticket_taken_before_its_books_first_stamp_survives_no_flood_of_invalidations() -> None:
    """A review (2026-12-08): the stamps are bounded; a book stamped during its fetch and then
    forgotten under a flood of other ids' invalidations read 0 again, as when its ticket was
    taken, and the old copy was cached. Forgetting a stamp now voids every per-key ticket."""
    cache = LruCache("lookup", 3, Frontend(3, 2))
    ticket = cache.ticket(2)
    cache.invalidate(2)  # naming no seq: no floor keeps the old copy out, only the stamp
    for other in range(1000, 1000 + MAX_FLOORS + 1):
        cache.invalidate(other)
    cache.put(2, Found(BOOK), ticket, seq=4)
    assert cache.get(2) is None

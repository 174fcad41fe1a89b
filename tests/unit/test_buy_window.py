"""Bounded memory for a long day (issue 26 item 3): a catalog replica remembers a buy id for
its retry window (``BUY_WINDOW_S``) and then forgets it, in memory and on disk; a peer's buy
comes with the time left of its window and is never taken back once that has run out. The
order replica keeps no buy id in memory: its history on disk answers a retry."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from nodes.core.books import Book
from nodes.core.catalog import CatalogReplica
from nodes.core.effects import Disk, DiskFailed
from nodes.core.messages import Bought, Buy, BuysOf, FetchBuys, Found, KnownBuy, Pong
from nodes.core.order.protocol import OrderReplica
from nodes.core.wire import answer_of, response_of
from tests.support import Scripted, compared, run

pytestmark = pytest.mark.timeout(60)

BOOK = Book(2, "RPCs for Noobs", "distributed systems", 50, 20, seq=4)
WINDOW = 60.0


def replica(buys: dict[str, tuple[int, int]] | None = None) -> CatalogReplica:
    core = CatalogReplica(0, 3, has_frontend=False, mode="bazar", buy_window_s=WINDOW)
    start = Scripted(core, core.start())
    for asked, answer in (("load_generation", 0), ("load_books", {BOOK.id: BOOK}), ("load_buys", buys or {}),
                          ("load_damaged", {}), ("load_tentative", [])):
        assert isinstance(start.asks, Disk) and start.asks.method == asked
        start.answer(answer)
    whole = Pong({BOOK.id: BOOK.seq}, (), {}, sums={BOOK.id: BOOK.checksum()})
    compared(core, [whole, whole])
    return core


def forget(core: CatalogReplica, at: float) -> list[list[str]]:
    """Run the heartbeat's forgetting at ``at``; the batches of buy ids it asked the disk to expire."""
    asked = []
    step = Scripted(core, core._forget_expired(), now=at)
    while not step.done:
        assert isinstance(step.asks, Disk) and step.asks.method == "expire"
        asked.append(list(step.asks.args[0]))
        step.answer(None)
    return asked


def test_a_buy_is_answered_its_first_outcome_within_the_window_and_forgotten_after_it() -> None:
    core = replica({"buy-1": (BOOK.id, 4)})
    assert isinstance(run(core, core.read(BOOK.id, "buy-1"), now=WINDOW - 1), KnownBuy)
    assert forget(core, WINDOW - 1) == [], "inside the window: kept"
    assert forget(core, WINDOW + 0.1) == [["buy-1"]], "out of it: forgotten, on disk too"
    assert "buy-1" not in core.buys and core.buy_count[BOOK.id] == 0 and not core.buys_of[BOOK.id]
    core.now = WINDOW + 0.2
    for peer in core.peers:
        peer.lease_until = WINDOW + 10  # its peers' leases hold: it vouches for its copy
    core._mark_valid(BOOK.id)
    assert isinstance(run(core, core.read(BOOK.id, "buy-1"), now=WINDOW + 0.2), Found), \
        "a retry after the window meets no memory of it: a new buy"


def test_a_buy_not_yet_vouched_for_waits_past_its_window() -> None:
    core = replica({"buy-1": (BOOK.id, 4)})
    core.buy_settles["buy-1"] = WINDOW + 5
    assert forget(core, WINDOW + 1) == []
    assert forget(core, WINDOW + 6.5) == [["buy-1"]]


def test_a_disk_that_refuses_the_forgetting_keeps_the_buys_until_it_takes_it() -> None:
    core = replica({"buy-1": (BOOK.id, 4)})
    step = Scripted(core, core._forget_expired(), now=WINDOW + 1)
    step.fail(DiskFailed("database or disk is full"))
    assert step.done and "buy-1" in core.buys
    assert forget(core, WINDOW + 2) == [["buy-1"]] and "buy-1" not in core.buys


def test_a_buy_learnt_again_while_the_disk_forgot_it_is_stored_again() -> None:
    """Read back (issue 26): while the disk deleted an expired buy, the buy was withdrawn and
    learnt again with a window anew (catch-up's hand-over). Memory kept it and the disk did
    not: a restart within its new window would have lost it early."""
    core = replica({"buy-1": (BOOK.id, 4)})
    step = Scripted(core, core._forget_expired(), now=WINDOW + 1)
    assert isinstance(step.asks, Disk) and step.asks.method == "expire" and step.asks.args[0] == ["buy-1"]
    core._forget_buy("buy-1")
    core._remember_buy("buy-1", BOOK.id, 4)  # learnt again meanwhile: its window starts now
    step.answer(None)
    assert isinstance(step.asks, Disk) and step.asks.method == "add_buys"
    assert step.asks.args == (BOOK.id, [("buy-1", 4)])
    step.answer(None)
    assert step.done and step.result == 0 and "buy-1" in core.buys


def test_a_clock_stepped_back_while_the_disk_forgot_a_buy_leaves_it_due_again() -> None:
    """Simulator seed 2034750382 (30 s runs): our clock stepped back a few milliseconds while
    the disk forgot an expired buy, so the buy was not yet due by the new time and was kept;
    but its place in the expiry queue had been taken, and it was never due again. Its count
    stayed above the peers' for good: no convergence."""
    core = replica({"buy-1": (BOOK.id, 4)})
    expires = core.buy_expires["buy-1"]
    step = Scripted(core, core._forget_expired(), now=expires + 0.005)
    assert isinstance(step.asks, Disk) and step.asks.method == "expire"
    step.answer(None, at=expires - 0.02)  # the clock stepped back meanwhile
    while not step.done:
        assert isinstance(step.asks, Disk) and step.asks.method == "add_buys"
        step.answer(None)
    assert "buy-1" in core.buys, "not due by the clock now: kept"
    assert forget(core, expires + 0.5) == [["buy-1"]] and "buy-1" not in core.buys, "and due again at its time"


def test_a_peers_buy_keeps_the_time_left_of_its_window_and_one_out_of_it_is_not_taken_back() -> None:
    core = replica()
    newer = replace(BOOK, quantity=18, seq=6)
    catch_up = Scripted(core, core._adopt_newer(core.peers[0], Pong({2: 6}, ((newer, ("buy-a", "buy-b")),), {},
                                                                      expiring={"buy-a": 5.0, "buy-b": 0.0}),
                                                core.generation), now=100.0)
    assert isinstance(catch_up.asks, Disk) and catch_up.asks.args[1] == ["buy-a"], "buy-b ran out at the peer"
    catch_up.answer(None)
    assert catch_up.done and set(core.buys) == {"buy-a"}
    assert core.buy_expires["buy-a"] == pytest.approx(105.0)
    assert forget(core, 104.0) == [] and forget(core, 105.5) == [["buy-a"]]


def test_a_fetch_of_buys_says_how_long_each_has_left_and_the_wire_keeps_it() -> None:
    core = replica({"buy-1": (BOOK.id, 4)})
    core.now = 20.0
    answer = core.on_fetch_buys(FetchBuys(BOOK.id))
    assert answer.expiring == {"buy-1": pytest.approx(WINDOW - 20.0)}
    status, body = response_of(FetchBuys(BOOK.id), answer)
    assert answer_of(FetchBuys(BOOK.id), status, body) == BuysOf((("buy-1", 4),), {}, {"buy-1": WINDOW - 20.0})


def test_an_order_replica_keeps_no_buy_id_in_memory_and_answers_a_retry_from_its_history() -> None:
    """Its history answers a retry even after the catalogs' window has run out."""
    order = OrderReplica(0, 0)
    buy = Scripted(order, order.buy(Buy(BOOK.id, "buy-9")))
    assert isinstance(buy.asks, Disk) and buy.asks.method == "find", "the history is asked first"
    buy.answer(SimpleNamespace(order_id=7, book_id=BOOK.id))
    assert buy.done and isinstance(buy.result, Bought) and buy.result.order_id == 7, "the catalog is not asked"
    assert not any(isinstance(value, set | dict) and "buy-9" in value for value in vars(order).values())


def test_a_restart_goes_on_with_each_buys_window_instead_of_starting_it_afresh() -> None:
    """Review of the window: restarted, a replica gave every buy it kept a whole new window,
    and peers that had forgotten them took them back from it, each time it restarted."""
    core = replica({"old": (BOOK.id, 3, WINDOW - 5.0), "gone": (BOOK.id, 4, WINDOW + 1.0)})
    assert forget(core, 0.5) == [["gone"]], "a buy whose window ran out while it was down"
    assert core.buy_expires["old"] == pytest.approx(5.0)
    assert forget(core, 5.5) == [["old"]]


def test_a_fetch_of_buys_names_its_buckets_and_is_answered_only_the_buckets_that_differ() -> None:
    """Issue 26, found profiling a long day: under load a peer's buys differ from ours by the
    few writes in flight, and each heartbeat fetched every buy of the book's retry window
    (at the default 600 s and 230 buys/s, 20,000 buys, 1.1 MB and 80 ms an answer, 38 times a
    second). A fetch now names the digest of each of the asker's buckets (a buy's hash modulo
    BUY_BUCKETS) and is answered the buys of the buckets that differ: whatever the asker
    lacks, and little else."""
    from nodes.core.catalog.state import BUY_BUCKETS
    from nodes.core.wire import request_of

    held = {f"buy-{i}": (BOOK.id, 4) for i in range(1000)}
    answerer = replica(held)
    asker = replica({b: v for b, v in held.items() if b not in ("buy-17", "buy-500")})
    fetch = FetchBuys(BOOK.id, asker._bucket_digests_of(BOOK.id))
    assert len(fetch.digests or ()) == BUY_BUCKETS
    answer = answerer.on_fetch_buys(fetch)
    given = {buy_id for buy_id, _seq in answer.buys}
    assert {"buy-17", "buy-500"} <= given and len(given) <= 2 * 1000 * 2 // BUY_BUCKETS + 20, len(given)
    assert set(answer.expiring) == given, "each buy handed on with the time left of its window"
    assert len(answerer.on_fetch_buys(FetchBuys(BOOK.id)).buys) == 1000, "without digests: every buy"
    same = answerer.on_fetch_buys(FetchBuys(BOOK.id, answerer._bucket_digests_of(BOOK.id)))
    assert same.buys == (), "nothing differs: nothing to hand on"
    method, path, body, _label, _headers = request_of(fetch)
    assert (method, path, len(body["digests"])) == ("POST", f"/rep/buys/{BOOK.id}", BUY_BUCKETS)

    # Forgetting keeps the buckets exact: only buckets holding buys are kept.
    for buy_id in list(answerer.buys):
        answerer._forget_buy(buy_id)
    assert not answerer.bucket_buys and not answerer.bucket_digest
    assert answerer._bucket_digests_of(BOOK.id) == (0,) * BUY_BUCKETS

"""The order replica's write-first buys (nodes/core/order/protocol.py, ``write_first``): a book
last seen in stock is written at once, and only a read ever answers "out of stock".

Found under full load (issue 28): the read before every write was one exchange in eight of a
buy's and one hop of its path; skipping it when the catalog takes the copy from its own current
copy anyway lowered the healthy cluster's p99 in the load experiment."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from nodes.core.books import Book
from nodes.core.effects import Disk, NoAnswer, Sleep
from nodes.core.messages import (
    Bought,
    Buy,
    Conflict,
    Found,
    NotWritten,
    OutOfStock,
    Read,
    Unreachable,
    Write,
    Written,
)
from nodes.core.order.protocol import KNOWN_BOOKS, OrderReplica
from tests.support import Scripted

BOOK = Book(2, "RPCs for Noobs", "distributed systems", 50.0, 5, 3)


def _buy(order: OrderReplica, buy_id: str) -> Scripted:
    """A buy stepped past its history lookup (a new id: nothing found)."""
    buy = Scripted(order, order.buy(Buy(BOOK.id, buy_id)))
    assert isinstance(buy.asks, Disk) and buy.asks.method == "find"
    buy.answer(None)
    return buy


def _asks(buy: Scripted) -> object:
    [(to, message)] = buy.sends()
    assert to == "catalog0"
    return message


def _write_done(buy: Scripted, copy: Book) -> Bought:
    """Answer the write with ``copy``, then the history's record; the buy's answer."""
    buy.answer(Written(copy))
    assert isinstance(buy.asks, Disk) and buy.asks.method == "record"
    recorded = buy.asks.args
    buy.answer(SimpleNamespace(order_id=1))
    assert buy.done and isinstance(buy.result, Bought)
    assert recorded[1:] == (copy.id, copy.title, copy.price), "recorded as the write's copy has it"
    return buy.result


def test_a_book_seen_in_stock_is_written_at_once_and_takes_its_copy_from_the_catalogs() -> None:
    order = OrderReplica(0, 0, write_first=True)
    first = _buy(order, "b1")
    assert isinstance(_asks(first), Read), "a book never seen is read first"
    first.answer(Found(BOOK))
    assert isinstance(_asks(first), Write)
    _write_done(first, Book(BOOK.id, BOOK.title, BOOK.topic, BOOK.price, 4, 4))

    second = _buy(order, "b2")
    write = _asks(second)
    assert isinstance(write, Write), "seen in stock: no read"
    assert (write.take, write.buy_id, write.base_seq) == (1, "b2", 4)
    # The price changed meanwhile: the purchase is recorded at the price the write saw.
    _write_done(second, Book(BOOK.id, BOOK.title, BOOK.topic, 60.0, 3, 5))


def test_out_of_stock_is_only_ever_answered_from_a_read() -> None:
    """A refused write (its take would leave less than none) reads; the read says sold out.
    A book last seen with nothing left is read before anything is written."""
    order = OrderReplica(0, 0, write_first=True)
    order._saw(BOOK)
    buy = _buy(order, "b1")
    assert isinstance(_asks(buy), Write)
    gone = Book(BOOK.id, BOOK.title, BOOK.topic, BOOK.price, 0, 9)
    buy.answer(Conflict(gone, "stale base"))
    assert isinstance(buy.asks, Sleep), "the back-off between attempts"
    buy.answer(None)
    assert isinstance(_asks(buy), Read), "a refused write reads again"
    buy.answer(Found(gone))
    assert buy.done and isinstance(buy.result, OutOfStock)

    again = _buy(order, "b2")
    assert isinstance(_asks(again), Read), "last seen sold out: read, never answered from memory"


def test_read_first_reads_before_every_buy_as_the_figures_draw_it() -> None:
    order = OrderReplica(0, 0)  # the default of the core: the documents' flow
    for buy_id in ("b1", "b2"):
        buy = _buy(order, buy_id)
        assert isinstance(_asks(buy), Read)
        buy.answer(Found(BOOK))
        assert isinstance(_asks(buy), Write)
        _write_done(buy, BOOK)
    assert not order.known, "nothing kept"


def test_documented_writes_are_never_written_first() -> None:
    """Without guarded writes the write sets the stock it names: it must come from a read."""
    order = OrderReplica(0, 0, guard_writes=False, write_first=True)
    order._saw(BOOK)
    buy = Scripted(order, order.buy(Buy(BOOK.id, "b1")))
    assert isinstance(_asks(buy), Read)


def test_the_books_kept_are_bounded() -> None:
    order = OrderReplica(0, 0, write_first=True)
    for book_id in range(KNOWN_BOOKS + 5):
        order._saw(Book(book_id, "t", "x", 1.0, 1, 0))
    assert len(order.known) == KNOWN_BOOKS and 0 not in order.known and KNOWN_BOOKS + 4 in order.known


def test_a_write_sent_to_a_catalog_already_silent_leaves_the_buy_unknown() -> None:
    """The price of skipping the read (docs/protocol.md, "Written first"): a hung catalog may
    carry the write out when it wakes, so the buy is not "not done"."""
    order = OrderReplica(0, 0, write_first=True)
    order._saw(BOOK)
    buy = _buy(order, "b1")
    assert isinstance(_asks(buy), Write)
    buy.answer(NoAnswer())
    assert buy.done and isinstance(buy.result, Unreachable) and buy.result.outcome == "unknown"
    crashed = _buy(order, "b2")
    crashed.answer(NoAnswer(refused=True))  # nobody listening: nothing was done
    assert crashed.done and crashed.result.outcome == "not done"


def test_a_reset_forgets_the_books_seen() -> None:
    order = OrderReplica(0, 0, write_first=True)
    order._saw(BOOK)
    reset = Scripted(order, order.reset())
    reset.until_done()
    assert not order.known


def test_the_node_reads_first_when_told(tmp_path) -> None:
    from nodes.runtime.config import parse

    def config(*extra: str):
        return parse(["order", "--catalog", "http://127.0.0.1:1", "--db", str(tmp_path / "o.db"), *extra], {})

    assert config().read_first is False
    assert config("--read-first").read_first is True


@pytest.mark.parametrize(("mode", "consistency", "reads_first"), [
    ("bazar", None, False), ("bazar", "majority", False), ("bazar", "available", True),
    ("documented", None, True), ("documented", "majority", True)])
def test_the_launcher_writes_first_only_with_majority_writes_in_bazar_mode(
        tmp_path, mode: str, consistency: str | None, reads_first: bool) -> None:
    from nodes.control.clusterfile import Cluster
    from nodes.control.supervisor import Supervisor

    supervisor = Supervisor(Cluster(catalog_mode=mode, consistency=consistency, data_dir=str(tmp_path)))
    try:
        assert ("--read-first" in supervisor.node("order0").command) is reads_first
    finally:
        supervisor.close()


def test_a_buy_its_catalog_called_unconfirmed_is_never_answered_not_done_after() -> None:
    """Simulator seed 2067500032 (five replicas): the catalog answered the buy's write "busy"
    and its read "not confirmed yet" (the buy was in a write no majority was known to hold);
    the next read could not reach it, and the order replica answered "not done" of a buy that
    was carried out. From "not confirmed yet" on, the buy may be done: unknown."""
    from nodes.core.messages import UNCONFIRMED_BUY

    for last in (NoAnswer(), "deadline"):
        order = OrderReplica(0, 0, write_first=True)
        buy = _buy(order, "b1")
        buy.answer(Found(BOOK))
        assert isinstance(_asks(buy), Write)
        buy.answer(Conflict(BOOK, "busy"))  # another writer holds the book
        if isinstance(buy.asks, Sleep):
            buy.answer(None)
        assert isinstance(_asks(buy), Read)
        buy.answer(Conflict(None, UNCONFIRMED_BUY), at=order.now + (5.0 if last == "deadline" else 0.0))
        if last != "deadline":
            if isinstance(buy.asks, Sleep):
                buy.answer(None)
            assert isinstance(_asks(buy), Read)
            buy.answer(last)
        assert buy.done and isinstance(buy.result, Unreachable), buy.result
        assert buy.result.outcome == "unknown", (last, buy.result)


def test_a_write_answered_unconfirmed_makes_the_buy_unknown_if_the_catalog_then_falls_silent() -> None:
    """A review of the rule above: written first, a retry of a buy its catalog holds in an
    unconfirmed write meets that on the write, not on a read. The write's answer says so, and
    a read that then cannot reach the catalog makes it unknown, not "not done"."""
    from nodes.core.messages import UNCONFIRMED_BUY

    order = OrderReplica(0, 0, write_first=True)
    order._saw(BOOK)
    buy = _buy(order, "b1")
    assert isinstance(_asks(buy), Write), "seen in stock: written first"
    buy.answer(Conflict(BOOK, UNCONFIRMED_BUY))
    if isinstance(buy.asks, Sleep):
        buy.answer(None)
    assert isinstance(_asks(buy), Read)
    buy.answer(NoAnswer())
    assert buy.done and isinstance(buy.result, Unreachable) and buy.result.outcome == "unknown", buy.result


def _not_done(order: OrderReplica, request: Buy) -> Scripted:
    """``request`` run until its write is refused for good (our catalog's disk is full)."""
    buy = Scripted(order, order.buy(request))
    buy.answer(None)  # the history knows nothing of it
    assert isinstance(_asks(buy), Read)
    buy.answer(Found(BOOK))
    buy.answer(NotWritten("catalog0 cannot store writes: database or disk is full"))
    assert isinstance(buy.result, Unreachable) and buy.result.outcome == "not done", buy.result
    return buy


def test_a_copy_of_an_attempt_answered_not_done_gets_that_answer_and_writes_nothing() -> None:
    """Simulator seed 2081010325: the network delivered the front-end's buy twice, the copy
    after its answer ("not done": the catalog's disk was full). Run anew, it was carried out
    once the disk took writes again, its client holding "not done". A copy of an attempt is
    answered the attempt's outcome; another attempt of the buy (a retry) runs anew."""
    order = OrderReplica(0, 0)
    first = _not_done(order, Buy(BOOK.id, "b1", attempt="fe.1"))
    copy = Scripted(order, order.buy(Buy(BOOK.id, "b1", attempt="fe.1")))
    assert copy.done and copy.result == first.result, copy.asks
    retry = Scripted(order, order.buy(Buy(BOOK.id, "b1", attempt="fe.2")))
    assert isinstance(retry.asks, Disk) and retry.asks.method == "find", "a new attempt is run"

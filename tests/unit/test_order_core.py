"""The order replica's buy flow on the pure core alone (tests/support.py's scripted driver): how
long a buy waits for a catalog that stops answering, and what it does when the catalog is only
slow (docs/weak-points.md, W4 and W7)."""
from __future__ import annotations

from nodes.core.books import Book
from nodes.core.effects import Disk, NoAnswer, Send
from nodes.core.messages import Bought, Buy, Found, Health, Healthy, Read, Unreachable, Write, Written
from nodes.core.order.protocol import HEALTH_TIMEOUT_S, PATIENCE_S, OrderReplica
from nodes.sim.world import Purchase
from tests.support import Scripted

BOOK = Book(2, "RPCs for Noobs", "distributed systems", 50, 20, seq=4)


def order_replica() -> OrderReplica:
    core = OrderReplica(0, 0, timeout_s=1.5, seed=1)
    start = Scripted(core, core.start())
    assert isinstance(start.asks, Disk) and start.asks.method == "buy_ids"
    start.answer([])
    assert start.done
    return core


def sent(step: Scripted) -> Send:
    assert isinstance(step.asks, Send), f"expected a send, it asks {step.asks!r}"
    return step.asks


def test_a_buy_at_a_silent_catalog_is_answered_once_its_health_goes_unanswered_not_at_the_time_out() -> None:
    core = order_replica()
    buy = Scripted(core, core.buy(Buy(2, "buy-1")))
    read = sent(buy)
    assert isinstance(read.message, Read) and read.timeout == PATIENCE_S
    buy.answer(NoAnswer(), at=PATIENCE_S)  # the catalog hung
    probe = sent(buy)
    assert isinstance(probe.message, Health) and probe.timeout == HEALTH_TIMEOUT_S and not probe.trace
    buy.answer(NoAnswer(), at=PATIENCE_S + HEALTH_TIMEOUT_S)
    assert buy.done and isinstance(buy.result, Unreachable) and buy.result.outcome == "not done"
    assert core.now == PATIENCE_S + HEALTH_TIMEOUT_S < core.timeout_s


def test_a_write_at_a_slow_catalog_is_sent_again_as_the_same_attempt_and_its_answer_taken() -> None:
    """A catalog outwaiting a lease (W2) answers a write in about a second: still there, it is
    asked again for the time left, and the copy (the same attempt) gets the first one's answer."""
    core = order_replica()
    buy = Scripted(core, core.buy(Buy(2, "buy-1")))
    buy.answer(Found(BOOK), at=0.01)
    first = sent(buy)
    assert isinstance(first.message, Write) and first.timeout == PATIENCE_S
    buy.answer(NoAnswer(), at=0.01 + PATIENCE_S)
    assert isinstance(sent(buy).message, Health)
    buy.answer(Healthy(), at=0.52)
    again = sent(buy)
    assert again.message == first.message  # the same attempt: it joins its twin at the catalog
    assert abs(again.timeout - (core.timeout_s - 0.51)) < 1e-9  # what is left of the time-out
    buy.answer(Written(Book(2, BOOK.title, BOOK.topic, 50, 19, seq=5)), at=1.1)
    assert isinstance(buy.asks, Disk) and buy.asks.method == "record"
    buy.answer(Purchase(7, "buy-1", 2))  # what the store hands back
    assert buy.result == Bought("buy-1", 7)


def test_a_write_whose_catalog_falls_silent_is_answered_unknown_without_waiting_the_time_out() -> None:
    core = order_replica()
    buy = Scripted(core, core.buy(Buy(2, "buy-1")))
    buy.answer(Found(BOOK), at=0.01)
    buy.answer(NoAnswer(), at=0.51)
    buy.answer(NoAnswer(), at=0.76)
    assert isinstance(buy.result, Unreachable) and buy.result.outcome == "unknown"  # it may have been carried out


def test_documented_mode_sends_a_write_once_and_waits_its_whole_time_out() -> None:
    core = OrderReplica(0, 0, timeout_s=1.5, guard_writes=False, seed=1)
    buy = Scripted(core, core.buy(Buy(2, "buy-1")))
    buy.answer(Found(BOOK), at=0.01)
    write = sent(buy)
    assert isinstance(write.message, Write) and write.timeout == 1.5
    buy.answer(NoAnswer(), at=1.51)
    assert isinstance(buy.result, Unreachable)

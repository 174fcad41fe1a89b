"""The front-end's buy, one id at a time (W7): the same id again gets the first outcome, but
for "unknown", which a retry is there to settle (docs/api.md, ``X-Bazar-Buy-Id``)."""
from __future__ import annotations

import pytest

from nodes.core.effects import Hedged, NoAnswer, Send
from nodes.core.frontend.protocol import Frontend
from nodes.core.messages import Buy, NoOrderServer, OutcomeUnknown, Unreachable
from tests.support import Scripted

pytestmark = pytest.mark.timeout(10)


def frontend() -> Frontend:
    """Two order replicas, the second known out: a buy goes to order0 alone, unhedged."""
    core = Frontend(3, 2)
    core.orders.members[1].up = False
    return core


def test_a_copy_of_a_buy_answered_not_done_gets_not_done_and_sends_nothing() -> None:
    """Simulator seed 2041009306: a client's buy delivered twice, the copy late. The first was
    refused (its catalog's disk was full) and answered "not done"; run anew, the copy went to
    the other order replica and was carried out, while the client held "not done"."""
    core = frontend()
    first = Scripted(core, core.buy(Buy(2, "buy-a")))
    assert isinstance(first.asks, Send) and first.asks.to == "order0"
    first.answer(Unreachable("catalog0 could not store the write", busy=True))
    assert first.done and isinstance(first.result, NoOrderServer)
    core.orders.members[1].up = True  # the other replica is back: the copy would go there
    copy = Scripted(core, core.buy(Buy(2, "buy-a")))
    assert copy.done, f"the copy asked {copy.asks!r}"
    assert copy.result == first.result


def test_a_buy_whose_outcome_is_unknown_is_run_again_by_its_retry() -> None:
    core = frontend()
    first = Scripted(core, core.buy(Buy(2, "buy-b")))
    assert isinstance(first.asks, Send)
    tried = first.asks.message
    first.answer(NoAnswer())  # order0 may have carried it out
    assert isinstance(first.asks, Send) and first.asks.to == "order1"
    first.answer(NoAnswer(refused=True))
    assert first.done and isinstance(first.result, OutcomeUnknown)
    retry = Scripted(core, core.buy(Buy(2, "buy-b")))
    assert isinstance(retry.asks, Send) and retry.asks.message.buy_id == "buy-b"
    assert retry.asks.message.attempt not in (None, tried.attempt), "a retry is another attempt"


def test_a_buy_sent_again_to_a_replica_that_went_silent_is_another_attempt() -> None:
    """A review of the attempts' names: after a hedged round in which every order replica went
    silent, the buy was sent again to them under the same attempt, and an order replica that
    had answered it meanwhile handed back that answer instead of settling the buy."""
    core = Frontend(3, 2, nonce="n")
    buy = Scripted(core, core.buy(Buy(2, "b1")))
    assert isinstance(buy.asks, Hedged)
    buy.hedge()
    first = {message.attempt for _to, message in buy.sends()}
    buy.answer(NoAnswer(), to="order0", at=4.0)
    buy.answer(NoAnswer(), to="order1", at=4.3)
    assert isinstance(buy.asks, Send) and buy.asks.message.attempt not in first, buy.asks

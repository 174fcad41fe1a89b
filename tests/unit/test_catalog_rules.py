"""The catalog replica's three old switches map onto named rule sets exactly as they combined
before (nodes/core/catalog/rules.py), and a running replica's mode can still be switched."""
from __future__ import annotations

import pytest

from nodes.core.books import Book
from nodes.core.catalog import (
    AVAILABLE,
    BAZAR,
    DOCUMENTED,
    DOCUMENTED_GUARDED,
    CatalogReplica,
    Mode,
    Rule,
    rules_for,
)
from nodes.core.catalog.reservations import HeldPeers
from nodes.core.clocks import outwait
from nodes.core.effects import Sleep
from nodes.core.messages import Done, Granted, Invalidate, KnownBuy, Release, Write, Written
from tests.support import Scripted, confirmed_by_peers


def test_the_switches_name_the_rule_sets_bazar_runs() -> None:
    assert rules_for("bazar") == BAZAR == frozenset(Rule)
    assert rules_for("bazar", consistency="available") == AVAILABLE == BAZAR - {Rule.MAJORITY}
    assert rules_for("documented") == DOCUMENTED_GUARDED == {Rule.RESERVED_WRITES}  # available by default
    assert rules_for("documented", guard_writes=False) == DOCUMENTED == frozenset()
    assert rules_for(Mode.DOCUMENTED, consistency="majority") == {Rule.RESERVED_WRITES, Rule.MAJORITY}
    assert rules_for("bazar", guard_writes=False) == BAZAR - {Rule.RESERVED_WRITES}


def test_an_unknown_mode_or_consistency_is_refused() -> None:
    with pytest.raises(ValueError):
        rules_for("bazaar")
    with pytest.raises(ValueError):
        rules_for("bazar", consistency="eventual")


def test_the_old_spelling_builds_the_same_replica_and_the_mode_switches_only_its_rules() -> None:
    assert CatalogReplica(0, 3, has_frontend=False).rules == BAZAR
    assert CatalogReplica(0, 3, has_frontend=False, mode="documented", guard_writes=False).rules == DOCUMENTED
    core = CatalogReplica(0, 3, has_frontend=False, rules=BAZAR)
    core.mode = "documented"  # the admin call: guards and consistency stay as they were
    assert core.rules == {Rule.RESERVED_WRITES, Rule.MAJORITY} and core.mode is Mode.DOCUMENTED
    core.mode = Mode.BAZAR
    assert core.rules == BAZAR and core.describe()["mode"] == "bazar"
    with pytest.raises(TypeError):
        CatalogReplica(0, 3, has_frontend=False, rules=BAZAR, mode="bazar")


def _started(core: CatalogReplica, book: Book) -> CatalogReplica:
    start = Scripted(core, core.start())
    for answer in (0, {book.id: book}, {}, {}, []):  # generation, books, buys, damaged rows, tentative
        start.answer(answer)
    assert start.done
    return confirmed_by_peers(core)


def test_a_refused_round_releases_its_peers_before_it_sleeps_until_the_buy_settles() -> None:
    """One release path (reservations.HeldPeers): a peer that knows the buy as done stops the
    round; the peer that granted it is released first, and only then is the front-end told
    and the settle time slept out, so no reservation is held through that sleep (W1, W7)."""
    book = Book(2, "RPCs for Noobs", "distributed systems", 50, 20, seq=4)
    core = _started(CatalogReplica(0, 3, has_frontend=True, rules=BAZAR, peer_order=[1, 2]), book)
    write = Scripted(core, core.handle(Write(2, quantity=19, buy_id="b1", take=1)), now=2.0)
    (_, check1), _ = write.sends()
    write.answer([KnownBuy(book, 7.0, "b1"), Granted(4)])  # settles 7 s from now, as catalog1 counts
    assert write.sends() == [("catalog2", Release(2, check1.token))]
    write.answer([Done()])
    assert write.sends() == [("frontend", Invalidate(2, 4))]
    write.answer(Done())
    settled = 2.0 + outwait(7.0)  # outwaited on our own clock: no time crosses the wire
    assert isinstance(write.asks, Sleep) and write.asks.until == settled > 9.0
    write.answer(None, at=settled)
    assert write.result == Written(book, duplicate=True)
    assert not core.reservations


def test_held_peers_are_released_on_leaving_unless_handed_over_and_never_on_an_exception() -> None:
    """The one release path of a write round, alone: leaving releases every reserved peer;
    handed over to the update, nothing; an exception, nothing (as before the split)."""
    core = CatalogReplica(0, 3, has_frontend=False, rules=BAZAR)

    async def round_(*, hand_over: bool = False, fail: bool = False) -> None:
        async with HeldPeers(core, 2, "t", core.peers) as held:
            if hand_over:
                held.hand_over()
            if fail:
                raise ValueError("a bug in a decision")

    assert Scripted(core, round_()).sends() == [("catalog1", Release(2, "t")), ("catalog2", Release(2, "t"))]
    assert Scripted(core, round_(hand_over=True)).done
    with pytest.raises(ValueError):
        Scripted(core, round_(fail=True))

"""Storage that checks itself, on the simulator (issue 25, item 2): under the "corrupt" fault a
crashed catalog replica may start again with a row changed on its disk (an impossible stock,
the seq kept; half the time its checksum changed to match). It must never serve or spread it;
with the checks taken away, the same seeds find the changed stock sold, read and spread."""
from __future__ import annotations

import pytest

from nodes.core.catalog.catch_up import CatchUp
from nodes.core.catalog.state import ReplicaState
from nodes.sim import run
from nodes.sim.run import Options, explore, simulate
from nodes.sim.world import CatalogDisk

FAULTS = ("crash", "restart", "corrupt")


@pytest.mark.timeout(120)
def test_a_row_changed_on_a_crashed_replicas_disk_is_never_served_or_spread() -> None:
    found = explore(Options(faults=FAULTS), range(1, 41), stop_at_first=False)
    assert found.faults > 0
    assert not found.failures, "; ".join(str(a) for r in found.failures[:3] for a in r.anomalies[:2])


@pytest.mark.timeout(120)
def test_without_the_checksum_the_changed_row_spreads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CatalogDisk, "load_damaged", lambda self: {})  # a store that checks nothing,
    monkeypatch.setattr(CatchUp, "_compare_rows", lambda self, *_round: self.unverified.clear())  # nor its peers
    monkeypatch.setattr(ReplicaState, "_take_as_damaged", lambda self, book_id, why: None)
    found = explore(Options(faults=FAULTS), range(1, 151))
    assert found.failures, "150 seeds of changed rows found nothing without checks: the fault has no teeth"


@pytest.mark.timeout(120)
def test_a_full_disk_acknowledges_nothing_it_did_not_store() -> None:
    """Under the "disk" fault a catalog replica's disk refuses every commit for a while, with
    every other fault going on: no history shows a buy acknowledged and lost, a stale read or
    replicas that do not converge once it is freed."""
    found = explore(Options(faults=("crash", "hang", "cut", "partition", "one-way", "disk")), range(1, 61),
                    stop_at_first=False)
    assert not found.failures, "; ".join(str(a) for r in found.failures[:3] for a in r.anomalies[:2])


@pytest.mark.timeout(120)
def test_a_row_changed_checksum_and_all_is_found_by_comparing_it_with_the_peers(monkeypatch) -> None:
    """Every change comes with a checksum that matches it: only the rows the peers hold at the
    same seq can tell (``catch_up._compare_rows``, and a read's hop to a peer that vouches)."""
    monkeypatch.setattr(run, "CHECKSUMMED_P", 1.0)
    found = explore(Options(faults=FAULTS), range(1, 41), stop_at_first=False)
    assert found.faults > 0
    assert not found.failures, "; ".join(str(a) for r in found.failures[:3] for a in r.anomalies[:2])


@pytest.mark.timeout(120)
def test_without_comparing_rows_a_change_checksum_and_all_spreads(monkeypatch) -> None:
    monkeypatch.setattr(run, "CHECKSUMMED_P", 1.0)
    monkeypatch.setattr(CatchUp, "_compare_rows", lambda self, *_round: self.unverified.clear())
    monkeypatch.setattr(ReplicaState, "_take_as_damaged", lambda self, book_id, why: None)
    found = explore(Options(faults=FAULTS), range(1, 41))
    assert found.failures, "40 seeds of rows changed checksum and all found nothing without comparing: no teeth"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", (16, 35, 113))
def test_the_heartbeat_comparison_alone_finds_what_the_read_hops_miss(monkeypatch, seed: int) -> None:
    """The changed row is never met by a read's hop before it would spread; without the
    heartbeat's comparison it does (found by taking the comparison away and searching seeds
    1-1500, again whenever the schedules change: last with the heartbeat's deltas and the buys'
    retry window, 2026-12-05; 87 replaced 251 when buys were hedged, 2026-12-06; 163, 331 and
    631 replaced 87, 433 and 564 when a silent peer's waits were cut, later that day; 861
    replaced 631 when the three-replica edges were mended, 2026-12-07; 35, 111 and 132 replaced
    them when order replicas began to write a book last seen in stock at once, that day; 775,
    805 and 841 replaced them when a read's hops were hedged, 2026-12-07; 47, 221 and 252 replaced
    them when a read began to wait for a write's round to end, a later session that day; 13, 35
    and 96 replaced them when a peer holding fewer buys was asked for them later, 2026-12-08; 16,
    35 and 113 when a lookup's fetch was voided only by a write of its own book, that day)."""
    monkeypatch.setattr(run, "CHECKSUMMED_P", 1.0)
    assert simulate(Options(seed=seed, faults=FAULTS)).passed
    monkeypatch.setattr(CatchUp, "_compare_rows", lambda self, *_round: self.unverified.clear())
    assert not simulate(Options(seed=seed, faults=FAULTS)).passed

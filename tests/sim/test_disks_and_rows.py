"""Storage that checks itself, on the simulator (issue 25, item 2): under the "corrupt" fault a
crashed catalog replica may start again with a row changed on its disk (an impossible stock,
the seq kept). It must never serve or spread it; with the checksum check taken away, the same
seeds find the changed stock sold, read and spread."""
from __future__ import annotations

import pytest

from nodes.sim.run import Options, explore
from nodes.sim.world import CatalogDisk

FAULTS = ("crash", "restart", "corrupt")


@pytest.mark.timeout(120)
def test_a_row_changed_on_a_crashed_replicas_disk_is_never_served_or_spread() -> None:
    found = explore(Options(faults=FAULTS), range(1, 41), stop_at_first=False)
    assert found.faults > 0
    assert not found.failures, "; ".join(str(a) for r in found.failures[:3] for a in r.anomalies[:2])


@pytest.mark.timeout(120)
def test_without_the_checksum_the_changed_row_spreads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CatalogDisk, "load_damaged", lambda self: {})  # a store that checks nothing
    found = explore(Options(faults=FAULTS), range(1, 151))
    assert found.failures, "150 seeds of changed rows found nothing without checksums: the fault has no teeth"


@pytest.mark.timeout(120)
def test_a_full_disk_acknowledges_nothing_it_did_not_store() -> None:
    """Under the "disk" fault a catalog replica's disk refuses every commit for a while, with
    every other fault going on: no history shows a buy acknowledged and lost, a stale read or
    replicas that do not converge once it is freed."""
    found = explore(Options(faults=("crash", "hang", "cut", "partition", "one-way", "disk")), range(1, 61),
                    stop_at_first=False)
    assert not found.failures, "; ".join(str(a) for r in found.failures[:3] for a in r.anomalies[:2])

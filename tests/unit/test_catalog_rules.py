"""The catalog replica's three old switches map onto named rule sets exactly as they combined
before (nodes/core/catalog/rules.py), and a running replica's mode can still be switched."""
from __future__ import annotations

import pytest

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

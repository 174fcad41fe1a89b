"""The catalog replica as a pure core: its state, its rules and the named rule sets. Other
layers import from here, not from the modules inside (docs/architecture.md)."""
from nodes.core.catalog.replica import CatalogReplica
from nodes.core.catalog.rules import (
    AVAILABLE,
    BAZAR,
    CONSISTENCY,
    DOCUMENTED,
    DOCUMENTED_GUARDED,
    MODES,
    Consistency,
    Mode,
    Rule,
    rules_for,
)
from nodes.core.catalog.state import BUY_WINDOW_S, BookUnknown

__all__ = [
    "AVAILABLE",
    "BAZAR",
    "BUY_WINDOW_S",
    "CONSISTENCY",
    "DOCUMENTED",
    "DOCUMENTED_GUARDED",
    "MODES",
    "BookUnknown",
    "CatalogReplica",
    "Consistency",
    "Mode",
    "Rule",
    "rules_for",
]

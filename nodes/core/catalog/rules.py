"""Which rules a catalog replica runs: one frozen set of named rules instead of three switches.

docs/protocol.md's replica (docs/protocol.md) has weak points (docs/weak-points.md); Bazar closes
them with repairs a replica may run or leave out. Each repair is one ``Rule``; a replica holds
a ``frozenset`` of them (``CatalogReplica.rules``) and every place a repair changes what the
replica does asks ``Rule.X in self.rules``. The named sets are the ones Bazar runs:

- ``BAZAR``: every repair (``--mode bazar``, the default);
- ``AVAILABLE``: ``BAZAR`` without majority writes (``--consistency available``);
- ``DOCUMENTED_GUARDED``: ``--mode documented`` on a real node: the documents' reads and
  writes, still with reservations and buy ids, so the figures' starting states stay as built;
- ``DOCUMENTED``: docs/protocol.md to the letter, which the simulator's documented mode runs to
  show what it loses.

People type modes (``bazar``, ``documented``) and a consistency (``majority``, ``available``);
``rules_for`` turns those into the set, exactly as the three switches combined before.
"""
from __future__ import annotations

from enum import Enum, StrEnum


class Mode(StrEnum):
    """The catalog mode a person types (config, CLI, cluster file, the admin call). A ``StrEnum``:
    ``Mode.BAZAR == "bazar"``, so configs and command lines keep their strings."""

    BAZAR = "bazar"  # every repair of the mode (MODE_RULES)
    DOCUMENTED = "documented"  # none of them: the figures' starting states stay as built


class Consistency(StrEnum):
    """What a write needs when replicas cannot be reached (W8)."""

    MAJORITY = "majority"  # a majority of the replicas reserved, or nothing is written
    AVAILABLE = "available"  # docs/protocol.md: skip whoever cannot be reached


#: The mode names, as argument choices and error messages list them.
MODES = tuple(mode.value for mode in Mode)
CONSISTENCY = tuple(level.value for level in Consistency)


class Rule(Enum):
    """One of Bazar's repairs of the documented replica. Each member's docstring says what the
    replica does differently when the rule is in its set."""

    RESERVED_WRITES = "reserved writes"
    """W1 and W7 (the write guards). A write's ``Check`` is a reservation: a peer that grants it
    holds the book for that writer (wait-die between writers) until the update or release, so
    two writers never fan out the same seq; the writer checks even when its copy is valid, and
    a stale base is refused. A buy's id travels with its write and is stored with the book, so
    a retry meets its first outcome; buys of one book ride one round (group commit); a write
    whose update got no answer stays tentative until a peer confirms it or shows another.
    Without it: docs/protocol.md's write to the letter (check only when not valid, no reservation,
    no buy ids; an update is applied when newer), ``documented.py``."""

    LEASES = "leases"
    """W2. The replica trusts its valid set only while enough peers' read leases hold (a lapse
    drops the set); it grants a peer a lease in a ping's answer, with its seqs, and the peer
    stops vouching for every book it is behind on before it takes the lease; a write that left
    a peer out is answered only once the lease granted to that peer has run out (offering it
    the update meanwhile), and a buy is not vouched for as done before then. Without it the
    valid set is always trusted and no lease is granted."""

    CATCH_UP = "catch-up"
    """W3. A ping's answer carries every newer row and the buys missing here, which the replica
    adopts in the background; the heartbeat also offers tentative writes again until they
    settle. Without it a replica left behind stays behind until a read or write brings the copy."""

    SKIP_DOWN_PEERS = "skip known-down peers"
    """W4. Peers the heartbeat knows are out are not waited for: a read's hops and a write's
    checks skip them (a write only once the lease granted them has run out) — unless this
    replica's own lease has lapsed, when it may be the one that was away. Nor is a peer that
    falls silent before the heartbeat notices: a read's hop to it is hedged, the next peer
    asked too after ``HOP_HEDGE_S`` (for each replica the peer may have to hop past beyond
    itself), as if the first had timed out. Without it every peer is
    asked and waited for, one at a time."""

    MAJORITY = "majority writes"
    """W8. A write needs a majority of the replicas reserved, else nothing is written
    (``NotWritten``); peers left out are named in the update so that those taking it stop
    granting them leases; a replica trusts its valid set with leases from all but a minority of
    its peers (one of three may hang without stopping local reads). Without it: docs/protocol.md's
    availability, a write goes ahead with whoever answers, and every peer's lease is needed."""

    FRONTEND_LEASES = "front-end cache leases"
    """W2 at the front-end. The front-end's probe is answered with a lease for its lookup cache;
    a writer whose invalidation got no answer withholds the next lease and answers the write
    only once the last one granted has run out. Without it the front-end gets no lease."""


#: The rules the mode switches: all of them in ``Mode.BAZAR``, none in ``Mode.DOCUMENTED``.
MODE_RULES = frozenset({Rule.LEASES, Rule.CATCH_UP, Rule.SKIP_DOWN_PEERS, Rule.FRONTEND_LEASES})
BAZAR = frozenset(Rule)
AVAILABLE = BAZAR - {Rule.MAJORITY}
DOCUMENTED_GUARDED = frozenset({Rule.RESERVED_WRITES})
DOCUMENTED: frozenset[Rule] = frozenset()


def rules_for(mode: str = Mode.BAZAR, guard_writes: bool = True, consistency: str | None = None) -> frozenset[Rule]:
    """The rule set of the three switches as a replica used to take them: ``mode`` switches
    ``MODE_RULES``, ``guard_writes`` switches ``RESERVED_WRITES``, and ``consistency`` (by
    default "majority" in bazar mode, "available" in documented mode) switches ``MAJORITY``.
    An unknown mode or consistency is refused rather than read as some mixture."""
    chosen = Mode(mode)
    level = Consistency(consistency or (Consistency.MAJORITY if chosen is Mode.BAZAR else Consistency.AVAILABLE))
    rules = set(MODE_RULES) if chosen is Mode.BAZAR else set()
    if guard_writes:
        rules.add(Rule.RESERVED_WRITES)
    if level is Consistency.MAJORITY:
        rules.add(Rule.MAJORITY)
    return frozenset(rules)


def mode_of(rules: frozenset[Rule]) -> Mode:
    """The mode a rule set reads as: bazar when it runs every rule the mode switches."""
    return Mode.BAZAR if MODE_RULES <= rules else Mode.DOCUMENTED


def with_mode(rules: frozenset[Rule], mode: str) -> frozenset[Rule]:
    """``rules`` switched to ``mode`` (the admin call does this on a running replica): the
    mode's rules in or out, the write guards and the consistency as they were."""
    return (rules - MODE_RULES) | (MODE_RULES if Mode(mode) is Mode.BAZAR else frozenset())

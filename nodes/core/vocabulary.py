"""The words Bazar shows people, each defined once: what a node's process is doing, how a node
looks to someone watching it, and what became of a buy.

They are ``StrEnum``s, so a member equals the string it has always been written as (``NodeState.UP
== "up"``), keys dicts and JSON the same way, and code that still compares strings keeps working
while it moves over. Standard library only: every layer may use them (docs/architecture.md)."""
from __future__ import annotations

from enum import StrEnum


class NodeState(StrEnum):
    """A node's process, as its supervisor knows it."""

    STARTING = "starting"  # launched, not answering its health check yet
    UP = "up"
    DOWN = "down"  # crashed or stopped: no process
    HUNG = "hung"  # SIGSTOP: connections are accepted, nothing is answered
    EXITED = "exited"  # the process ended by itself


class HealthState(StrEnum):
    """A node as every view shows it: its process state, or the fault it is in, in the words a
    person reads. The order is how bad it is."""

    UP = "up"
    SLOW = "slow"
    STARTING = "starting"
    CUT_OFF = "cut off"
    HUNG = "hung"
    DOWN = "down"
    EXITED = "exited"

    @property
    def serving(self) -> bool:
        """Answers requests: up, or up but slow."""
        return self in SERVING

    @property
    def gone(self) -> bool:
        """No process: crashed, stopped or exited."""
        return self in GONE


#: States in which a node answers requests.
SERVING = frozenset({HealthState.UP, HealthState.SLOW})
#: States in which a node has no process at all.
GONE = frozenset({HealthState.DOWN, HealthState.EXITED})
#: States that are a fault: a node going into one is marked on the charts.
FAULTS = (HealthState.SLOW, HealthState.CUT_OFF, HealthState.HUNG, HealthState.DOWN, HealthState.EXITED)


class BuyResult(StrEnum):
    """What became of a buy, as the shop tells a shopper. A buy whose answer did not come is
    ``UNKNOWN``, never a failure: it may have gone through (W7, docs/weak-points.md)."""

    BOUGHT = "bought"
    OUT_OF_STOCK = "out of stock"
    BOOK_UNKNOWN = "book unknown"
    INVALID = "invalid"
    UNREACHABLE = "unreachable"  # no order replica could be reached: nothing was bought
    REFUSED = "refused"  # no majority of catalog replicas (W8): nothing changed
    UNKNOWN = "unknown"

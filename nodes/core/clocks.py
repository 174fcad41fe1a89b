"""What the protocol assumes of clocks, and the one rule that makes leases safe under it
(docs/weak-points.md, "Clocks").

Each node reads its own clock (``core.now``; ``time.monotonic()`` in a real node) and no two
clocks are compared: a time never crosses the wire. A lease travels as a *length* — "trust your
valid set for 1 s" — and its holder counts that length from the moment it *sent* the request
the lease answers, on its own clock, so the lease starts before it was granted. Whoever has to
outwait a lease (its grantor, or a writer told how much of a peer's grant is left) counts the
other way round: from the moment it *received* the news, and for longer — ``outwait``.

The assumption, stated once: every node's clock runs at a steady rate within ``MAX_DRIFT`` of
true time, give or take ``MAX_ERROR_S`` (it may step back and forth, as a clock corrected by
NTP does, but never strays further than that from such a clock). Any offset between two nodes'
clocks is fine. The simulator gives every node a clock of its own within these bounds, with
steps in both directions (``nodes/sim/world.py``, fault ``clock``), and finds stale reads once
they are exceeded (``tests/sim/test_clocks.py``). A real node's monotonic clock never steps and
drifts by a few parts per million, far inside them.
"""
from __future__ import annotations

#: A time before any reading of any clock: what "never" is. A clock may read anything, zero
#: and below included (the simulator draws offsets of an hour either way), so no time of ours
#: starts at 0.0: a lease "until 0.0" would hold for an hour on a clock that reads -3600.
NEVER = float("-inf")

#: How far from true time a node's clock may run fast or slow: 1 % (10,000 parts per million;
#: a quartz clock is off by less than 100).
MAX_DRIFT = 0.01
#: How far a node's clock may step away from a steady clock, in either direction (s).
MAX_ERROR_S = 0.025


def outwait(seconds: float) -> float:
    """How long to wait, on our clock, to be sure that ``seconds`` counted on another node's
    clock from no later than now have run out there: a length measured on a clock within the
    bounds is off by at most ``MAX_ERROR_S`` at each end and by ``MAX_DRIFT`` in rate, so the
    holder's ``seconds`` last at most (seconds + 2E) / (1 - ρ) of true time, while our wait of
    w lasts at least (w - 2E) / (1 + ρ)."""
    if seconds <= 0:
        return 0.0
    return (seconds + 2 * MAX_ERROR_S) * (1 + MAX_DRIFT) / (1 - MAX_DRIFT) + 2 * MAX_ERROR_S


def outwait_told(left: float) -> float:
    """How long to wait, on our clock, for a lease another replica granted and told us has
    ``left`` seconds to run as its clock counts: its ``granted_until`` (the moment the holder's
    ping came, plus ``outwait`` of the lease) minus its clock when it answered. That end already
    outwaits the holder's clock; what is left uncertain is only how long ago the grantor says
    the ping came, a length on its clock (off by 2E at most, and by ρ, which only shortens the
    true time it took). So if the holder sent its ping at T and the grantor answered at T_c,
    the lease ends by T_c − (ago − 2E)/(1 + ρ) + (L + 2E)/(1 − ρ), and a wait of
    ``outwait(L) − ago + 2E`` = ``left + 2E`` on our clock, begun once the answer came, lasts
    past it. ``outwait(left)`` counted the drift over the whole lease a second time: 0.83 s
    for a grant made just then, where 0.76 s is enough."""
    return max(0.0, left + 2 * MAX_ERROR_S)

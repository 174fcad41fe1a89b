"""Clocks (issue 25, item 3; nodes/core/clocks.py). No time crosses the wire: a lease travels as
a length, its holder counts it from before it asked, and whoever must outwait it counts longer
(``outwait``). Safe for any offset and for clocks within the stated bounds; the simulator,
which gives every node its own clock, finds stale reads once the bounds are exceeded."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nodes.core.catalog.state import FRONTEND_LEASE_S, LEASE_S
from nodes.core.clocks import MAX_DRIFT, MAX_ERROR_S, outwait, outwait_told
from nodes.core.effects import Sleep, Wait
from nodes.sim.run import Options, explore, simulate
from nodes.sim.world import Clock, Fiber, World

rates = st.floats(1 - MAX_DRIFT, 1 + MAX_DRIFT)
steps = st.floats(-MAX_ERROR_S, MAX_ERROR_S)


def holder_ends(sent: float, lease: float, rate: float, step_before: float, step_after: float) -> float:
    """True time at which a holder stops trusting a lease of ``lease`` seconds counted on its
    clock from ``sent``: its clock stood ``step_before`` off a steady one then, ``step_after``
    at the end (a clock at true time t reads offset + rate * t + step)."""
    return sent + (lease + step_before - step_after) / rate


def outwaiter_ends(heard: float, rate: float, step_before: float, step_after: float, lease: float) -> float:
    """True time at which whoever outwaits the lease (its grantor, or a writer told of it at
    ``heard``) stops waiting: ``outwait(lease)`` counted on its own clock."""
    return heard + (outwait(lease) + step_before - step_after) / rate


@settings(max_examples=500, deadline=None)
@given(lease=st.sampled_from([LEASE_S, FRONTEND_LEASE_S]), delay=st.floats(0, 0.5),
       holder_rate=rates, waiter_rate=rates, h0=steps, h1=steps, w0=steps, w1=steps)
def test_a_lease_runs_out_at_its_holder_before_anyone_who_outwaits_it_goes_on(
        lease: float, delay: float, holder_rate: float, waiter_rate: float,
        h0: float, h1: float, w0: float, w1: float) -> None:
    """Within the bounds, whatever the rates and steps: the holder asked at 0, the grant (or the
    news of it) came ``delay`` later, and the holder has stopped trusting before the one who
    outwaits the lease acts."""
    assert holder_ends(0.0, lease, holder_rate, h0, h1) <= outwaiter_ends(delay, waiter_rate, w0, w1, lease)


@settings(max_examples=1000, deadline=None)
@example(lease=LEASE_S, came=0.0, ago=0.3, heard=0.0, holder_rate=1 - MAX_DRIFT, grantor_rate=1 + MAX_DRIFT,
         writer_rate=1 + MAX_DRIFT, h0=MAX_ERROR_S, h1=-MAX_ERROR_S, g0=-MAX_ERROR_S, g1=MAX_ERROR_S,
         w0=-MAX_ERROR_S, w1=MAX_ERROR_S)  # every bound at its worst: the 2E are all needed
@given(lease=st.sampled_from([LEASE_S, FRONTEND_LEASE_S]), came=st.floats(0, 0.5), ago=st.floats(0, 0.8),
       heard=st.floats(0, 0.5), holder_rate=rates, grantor_rate=rates, writer_rate=rates,
       h0=steps, h1=steps, g0=steps, g1=steps, w0=steps, w1=steps)
def test_a_grant_a_peer_reports_runs_out_before_the_writer_told_of_it_goes_on(
        lease: float, came: float, ago: float, heard: float, holder_rate: float, grantor_rate: float,
        writer_rate: float, h0: float, h1: float, g0: float, g1: float, w0: float, w1: float) -> None:
    """``outwait_told``: the holder pings at 0; its ping comes to the grantor ``came`` later,
    which grants until its clock's ``outwait(lease)`` from then; ``ago`` later it answers a
    writer with the seconds its grant has left, and the writer hears it ``heard`` later and
    waits ``outwait_told`` of them on its own clock. Within the bounds the holder has stopped
    trusting by then, whatever the rates and steps."""
    granted_at, answered_at = came, came + ago
    left = (grantor_rate * granted_at + g0 + outwait(lease)) - (grantor_rate * answered_at + g1)
    waited = outwait_told(left)
    heard_at = answered_at + heard
    writer_goes_on = heard_at + (waited + w0 - w1) / writer_rate
    assert holder_ends(0.0, lease, holder_rate, h0, h1) <= writer_goes_on + 1e-9


def test_past_the_bounds_a_lease_can_outlive_its_outwaiting() -> None:
    """The teeth of the arithmetic: 10 % apart in rate, or steps of 100 ms, is enough."""
    assert holder_ends(0.0, LEASE_S, 0.9, 0.0, 0.0) > outwaiter_ends(0.0, 1.1, 0.0, 0.0, LEASE_S)
    assert holder_ends(0.0, LEASE_S, 1.0, 0.1, -0.1) > outwaiter_ends(0.0, 1.0, -0.1, 0.1, LEASE_S)


#: Faults that leave a live replica out of writes while the front-end may still read it, and
#: more readers: where a lease that outlives its outwaiting shows as a stale read.
SILENT_FAULTS = ("partition", "one-way", "cut")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("beyond", [{"drift": 0.9}, {"clock_error": 1.0, "faults": (*SILENT_FAULTS, "clock")}],
                         ids=["drift 90 %", "steps of 1 s"])
def test_the_simulator_finds_stale_reads_once_clocks_exceed_the_bounds(beyond: dict) -> None:
    options = Options(**{"faults": SILENT_FAULTS, "readers": 6, **beyond})
    # Up to 200 seeds from just before the first one found failing (drift: 24 when written,
    # 42 since the write a majority answered, 2026-12-07; steps: 92), until one fails for the
    # clocks. Leases count time (a stale read), and so does
    # the buys' retry window: a clock running far too fast forgets a buy before its retries are
    # over (a buy done twice). Other anomalies may come first (with a silent peer's waits cut,
    # 2026-12-06: no convergence); running all 200 seeds for them took 80-90 s a case on two
    # busy cores, near the time-out.
    first = 40 if "drift" in beyond else 81
    kinds: set[str] = set()
    for seed in range(first, first + 200):
        kinds |= {a.kind for a in simulate(replace(options, seed=seed)).anomalies}
        if kinds & {"stale read", "buy done twice"}:
            return
    assert kinds, f"200 seeds with clocks beyond the bounds ({beyond}) found nothing: the clocks have no teeth"
    raise AssertionError(f"200 seeds with clocks beyond the bounds found only {sorted(kinds)}")


@pytest.mark.timeout(120)
def test_within_the_bounds_the_same_runs_find_nothing() -> None:
    """The same silent faults and readers, clocks within the bounds (offsets of up to an hour
    either way, 1 % drift, 25 ms steps): the seeds that find stale reads beyond them (24 and 92) pass, and the others
    from 1 (the simulator's runs of thousands of seeds check more; this is the suite's sample)."""
    seeds = [*range(1, 25), 92]
    found = explore(Options(faults=(*SILENT_FAULTS, "clock"), readers=6), seeds, stop_at_first=False)
    assert not found.failures, "; ".join(str(a) for r in found.failures[:3] for a in r.anomalies[:2])


@pytest.mark.timeout(30)
@pytest.mark.parametrize("offset", [3600.123456789, -2277.7, 0.0])
def test_a_sleep_or_a_wait_ends_when_the_nodes_own_clock_reads_its_end(offset: float) -> None:
    """A timer fires once its clock reads the end. A clock far from zero is coarser than the
    true time under it, so 'when the true time comes' may read a hair before the end; a core
    that waits again until it reads the end (``_reserve_or_wait`` does) then waited forever
    (seed 2027312787). The core is resumed with its clock at the end at least."""
    world = World(1)
    process = world.processes["catalog0"]
    process.clock = Clock(offset=offset, rate=1.0 + 3e-7)
    process.start()
    world.run_until(0.1)
    core = process.core
    assert core is not None
    ends: list[tuple[float, float]] = []

    async def waiter() -> None:
        for step in range(200):
            deadline = core.now + 1 / 3 + step * 1e-9
            while core.now < deadline:
                await Wait(("nobody", step), deadline)
            waited = core.now - deadline
            until = core.now + 0.1 + step * 1e-9
            await Sleep(until)
            ends.append((waited, core.now - until))

    before = world.events
    Fiber(process, waiter(), lambda _r, _e: None).step()
    world.run_until(world.now + 200)
    # The other nodes' heartbeats and probes take some 40 events a second; a wait that never
    # ends takes millions, until the simulator calls the run a runaway.
    assert len(ends) == 200 and world.events - before < 20_000, (len(ends), world.events - before)
    assert all(waited >= 0 and slept >= 0 for waited, slept in ends)

"""The simulator performs the cores' effects as the node's driver does (nodes/runtime/driver.py,
tested in tests/unit/test_hedged.py): here its gather that stops waiting for a silent send a
patience after enough has answered, on a world with one replica hung."""
from __future__ import annotations

from typing import Any

import pytest

from nodes.core.effects import Gather, Send
from nodes.core.messages import Health, Healthy
from nodes.sim.world import Fiber, World

pytestmark = pytest.mark.timeout(30)


def answered(answers: list[Any]) -> bool:
    return any(isinstance(answer, Healthy) for answer in answers)


@pytest.mark.parametrize("patience", [0.1, None])
def test_a_gather_leaves_a_hung_replica_out_a_patience_after_enough_answered(patience: float | None) -> None:
    world = World(1)
    world.start_all()
    world.run_until(1.0)
    world.processes["catalog1"].pause()
    core = world.processes["catalog0"].core
    assert core is not None
    ended: list[tuple[float, list[Any]]] = []
    gathers: list[Gather] = []

    async def ask() -> None:
        sends = [Send(name, Health("catalog0"), 2.0) for name in ("catalog1", "catalog2")]
        gathers.append(Gather(sends) if patience is None else Gather(sends, enough=answered, patience=patience))
        answers = await gathers[0]
        ended.append((world.now, answers))

    started = world.now
    Fiber(world.processes["catalog0"], ask(), lambda _r, _e: None).step()
    world.run_until(started + 3.0)
    assert len(ended) == 1
    at, answers = ended[0]
    assert isinstance(answers[1], Healthy)
    if patience is None:
        assert at - started >= 2.0 - 0.01 and answers[0] is not None  # the hung one's time-out
    else:
        assert answers[0] is None and at - started < 0.1 + 0.2  # the patience, and the network's delays
    came, clock = gathers[0].arrived[1], world.processes["catalog0"].clock
    assert came is not None and clock.read(started) < came < clock.read(started + 0.1)  # catalog2's answer
    assert (gathers[0].arrived[0] is None) == (patience is not None)

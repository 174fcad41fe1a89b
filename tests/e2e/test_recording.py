"""A live session recorded and played back, on real processes: the run file the session wrote,
replayed, gives the model the state the live model had at every instant snapshotted (forwards,
at random, backwards); rewinding the live session does the same from its buffer while the
cluster keeps running, and back to live it follows the cluster again. The model is the one the
window draws, fed as the window feeds it (ClusterSession); only Qt is left out."""
from __future__ import annotations

import asyncio
import pickle
import random
from typing import Any

import pytest

from nodes.observe.views import MarkKind
from nodes.runs.player import Player
from nodes.runs.runfile import read_run
from nodes.session.session import ClusterSession
from tests.support import make_cluster, wait_until
from tests.unit.test_runs import _plain

pytestmark = pytest.mark.timeout(180)


def _state(keyframe: bytes) -> Any:
    return _plain(pickle.loads(keyframe))  # noqa: S301 - made by this test


class Snapshots:
    """The live model's state now and then, with the stamp of the last input it had taken."""

    def __init__(self, session: ClusterSession) -> None:
        self.session = session
        self.taken: list[tuple[float, int, bytes]] = []
        self.count = 0
        self.last = 0.0
        model = session.model
        recorded = model.tap
        assert recorded is not None

        def tap(at: float, item: Any) -> None:
            recorded(at, item)
            self.count += 1
            self.last = at

        model.tap = tap

    def take(self) -> None:
        if self.count:
            self.taken.append((self.last, self.count, self.session.model.keyframe()))


async def _session(tmp_path) -> tuple[ClusterSession, Snapshots]:
    cluster = make_cluster(tmp_path, catalogs=3, orders=2)
    session = ClusterSession(cluster, announce=lambda _line: None)
    session.start_recording()  # as ``start`` does first; here before it, to count every input
    snapshots = Snapshots(session)
    await session.start()
    return session, snapshots


async def _busy_minute(session: ClusterSession, snapshots: Snapshots, seconds: float) -> None:
    """Load, a crash and its restart, a cut-off and its heal, snapshotted every 0.25 s."""
    session.load.settings.rate = 60
    session.load.start()
    steps = [(0.25, session.controller.crash("catalog1")), (0.45, session.controller.start("catalog1")),
             (0.6, session.controller.cut_off("catalog2", True)), (0.75, session.controller.cut_off("catalog2", False))]
    loop = asyncio.get_running_loop()
    began = loop.time()
    pending = list(steps)
    while loop.time() - began < seconds:
        while pending and loop.time() - began >= pending[0][0] * seconds:
            await pending.pop(0)[1]
        snapshots.take()
        await asyncio.sleep(0.25)  # the snapshots' own pacing, not a wait for the cluster
    for _when, step in pending:
        step.close()
    await session.load.stop()


async def test_a_recorded_session_replays_to_the_state_the_live_model_had(tmp_path):
    session, snapshots = await _session(tmp_path)
    try:
        await _busy_minute(session, snapshots, 8)
        recorder = session.recorder
        assert recorder is not None and recorder.path is not None
        saved = recorder.save(tmp_path / "saved.jsonl.gz")  # a copy while recording goes on
    finally:
        await session.stop()
    run = read_run(recorder.path)
    assert run.problem is None and run.header.source == "window"
    assert read_run(saved).count <= run.count
    player = Player.of_run(run)
    taken = snapshots.taken
    assert len(taken) >= 24
    rng = random.Random(7)
    for at, count, state in taken + rng.sample(taken, len(taken)) + taken[::-1]:
        player.seek(at)
        assert player.index == count
        assert _state(player.model.keyframe()) == _state(state), f"{count} inputs in, {at - run.start:.2f} s"
    assert player.index_all()
    kinds = [(m.node, m.kind) for m in player.marks]
    assert ("catalog1", MarkKind.FAULT) in kinds and ("catalog1", MarkKind.HEAL) in kinds
    assert ("catalog2", MarkKind.FAULT) in kinds


async def test_rewinding_the_live_session_shows_each_instant_while_the_cluster_runs_on(tmp_path):
    session, snapshots = await _session(tmp_path)
    try:
        await _busy_minute(session, snapshots, 7)
        recorder = session.recorder
        assert recorder is not None
        session.load.start()  # the cluster keeps working while the window looks back
        for at, count, state in snapshots.taken[4::5][::-1] + snapshots.taken[2::7]:
            recorder.rewind(at)
            assert recorder.rewound and session.model.following is False
            assert recorder.player.index == count
            assert _state(session.model.keyframe()) == _state(state)
        before, recorded = session.model.arrows.count, snapshots.count
        await wait_until(lambda: snapshots.count > recorded + 200, 20, "the cluster to go on meanwhile")
        assert session.model.arrows.count == before  # rewound: nothing new is drawn
        recorder.back_to_live()
        assert session.model.following and not recorder.rewound
        assert session.model.arrows.count > before  # what happened meanwhile, applied
        live_now = snapshots.count
        await wait_until(lambda: snapshots.count > live_now + 50, 20, "live inputs after coming back")
        await session.load.stop()
    finally:
        await session.stop()
    # Everything the live model took, before, during and after the rewind, is what the file holds.
    run = read_run(recorder.path)
    player = Player.of_run(run)
    player.seek(run.end)
    assert player.index == snapshots.count
    assert _state(player.model.keyframe()) == _state(session.model.keyframe())

"""Run files and the player, without processes: every kind of input survives a run file; a
damaged, cut-off, foreign or newer file says what is wrong (and opens up to the damage); and a
model fed by the player shows, at every instant and however it got there (forwards, back to a
keyframe, from a live buffer that dropped its start), the state the live model had then."""
from __future__ import annotations

import gzip
import json
import pickle
import random
from collections import deque
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nodes.core.events import decode
from nodes.core.vocabulary import NodeState
from nodes.observe.latency import Samples
from nodes.observe.model import ClusterModel
from nodes.observe.observations import Anomaly, LogNote, ProcessChanged, StreamState, Tick
from nodes.observe.views import MarkKind, ProcessState
from nodes.runs.player import Player, Recording
from nodes.runs.runfile import (
    VERSION,
    Chunk,
    Header,
    RunFileError,
    RunWriter,
    input_of_text,
    prune,
    read_run,
    write_run,
)
from tests.unit.test_model_apply import RAW

pytestmark = pytest.mark.timeout(60)

NODES = {"frontend": "http://127.0.0.1:1", "catalog0": "http://127.0.0.1:2", "catalog1": "http://127.0.0.1:3",
         "catalog2": "http://127.0.0.1:4", "order0": "http://127.0.0.1:5"}
HEADER = Header("test", NODES, {"order0": "catalog0"}, ((1, "How to get a good grade", "graduate", 10.0, 5),))


def _inputs(count: int = 3000, seed: int = 3) -> list[tuple[float, Any]]:
    """A made-up session: every kind of input, on a steady clock, the snapshot first."""
    rng = random.Random(seed)
    at = 1000.0
    snapshot = {"kind": "snapshot", "node": "catalog0", "t": at,
                "state": {"role": "catalog", "lease_ok": True,
                          "books": [{"id": b, "seq": 1, "quantity": 5, "price": 10.0, "valid": True} for b in (1, 2)]}}
    out: list[tuple[float, Any]] = [(at, decode("catalog0", snapshot))]
    for number in range(count):
        at += rng.uniform(0.001, 0.02)
        roll = rng.random()
        if roll < 0.03:
            state = rng.choice([NodeState.UP, NodeState.DOWN, NodeState.HUNG])
            out.append((at, ProcessChanged(rng.choice(list(NODES)),
                                           ProcessState(state, mute_to=frozenset({"catalog1"}) if roll < 0.01 else
                                                        frozenset(), started_at=at))))
        elif roll < 0.04:
            out.append((at, StreamState(rng.choice(list(NODES)), rng.random() < 0.5)))
        elif roll < 0.08:
            out.append((at, Tick(at)))
        elif roll < 0.09:
            out.append((at, LogNote("frontend", f"note {number}", None if roll < 0.085 else at)))
        elif roll < 0.095:
            out.append((at, Anomaly(at, "catalog1", f"stale read {number}", ("a1", "a2"))))
        else:
            raw = dict(rng.choice(RAW), t=at)
            if raw["kind"] == "hop":
                raw["t0"] = at - 0.003
            raw["n"] = number
            if raw["kind"] == "request" and raw["node"] == "frontend":
                raw["trace"] = f"tr{number % 40}"
            out.append((at, decode(raw["node"], raw)))
    return out


def _live(inputs: list[tuple[float, Any]], every: int) -> tuple[ClusterModel, dict[int, bytes]]:
    """The live model fed ``inputs``, and its keyframe after every ``every`` of them."""
    model = ClusterModel(NODES, catalog_of={"order0": "catalog0"})
    states = {}
    for number, (at, item) in enumerate(inputs, start=1):
        model.replay(at, item)
        if number % every == 0:
            states[number] = model.keyframe()
    return model, states


def _plain(value: Any) -> Any:
    """Something ``==`` compares by content: objects as their fields, deques and arrays as lists."""
    if isinstance(value, Samples):  # numpy columns: compared as the samples they hold
        return ("Samples", _plain(value.__getstate__()))
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | deque):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(map(repr, value))
    if is_dataclass(value) or hasattr(value, "__dict__"):
        return (type(value).__name__, _plain(vars(value)))
    return value


def _state(keyframe: bytes) -> Any:
    return _plain(pickle.loads(keyframe))  # noqa: S301 - made by this test


# ---- the file ----------------------------------------------------------------------------------
def test_every_kind_of_input_survives_a_run_file(tmp_path: Path) -> None:
    inputs = _inputs(800)
    path = write_run(tmp_path / "a.jsonl.gz", HEADER, inputs, per_chunk=100)
    run = read_run(path)
    assert run.problem is None
    assert run.header.nodes == NODES and run.header.books == ((1, "How to get a good grade", "graduate", 10.0, 5),)
    assert run.records() == inputs
    kinds = {type(item).__name__ for _at, item in inputs}
    assert {"ProcessChanged", "StreamState", "Tick", "LogNote", "Anomaly", "Snapshot", "HopDone"} <= kinds


def test_a_line_read_alone_is_what_the_whole_chunk_gives(tmp_path: Path) -> None:
    inputs = _inputs(300)
    run = read_run(write_run(tmp_path / "a.jsonl.gz", HEADER, inputs, per_chunk=100))
    alone = [input_of_text(text) for chunk in run.chunks for text in chunk.lines()]
    assert alone == [pair for chunk in run.chunks for pair in chunk.inputs()] == inputs
    at, tick = input_of_text(b'[5.5,"t",NaN]')  # Python's json writes NaN; orjson alone does not read it
    assert at == 5.5 and isinstance(tick, Tick) and tick.t != tick.t


def test_the_writer_keeps_a_readable_run_while_it_records(tmp_path: Path) -> None:
    chunks: list[Chunk] = []
    writer = RunWriter(tmp_path / "live.jsonl.gz", HEADER, on_chunk=chunks.append)
    inputs = _inputs(500)
    for at, item in inputs[:300]:
        writer.add(item, at)
    writer.flush()
    assert read_run(writer.path).records() == inputs[:300]  # no ending written yet: still whole
    copy = writer.save_copy(tmp_path / "saved" / "copy.jsonl.gz")
    for at, item in inputs[300:]:
        writer.add(item, at)
    writer.close()
    assert read_run(copy).records() == inputs[:300]
    assert read_run(writer.path).records() == inputs
    assert [record for chunk in chunks for record in chunk.records()] == inputs


def test_a_cut_off_run_opens_up_to_where_it_ends(tmp_path: Path) -> None:
    inputs = _inputs(600)
    data = write_run(tmp_path / "a.jsonl.gz", HEADER, inputs, per_chunk=100).read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[:int(len(data) * 0.6)])
    run = read_run(cut)
    assert run.problem is not None and "ends early" in run.problem and "cut.jsonl.gz" in run.problem
    got = run.records()
    assert 100 <= len(got) < 600 and got == inputs[:len(got)]


def test_a_damaged_line_ends_the_run_there_and_says_which(tmp_path: Path) -> None:
    inputs = _inputs(50)
    lines = [json.dumps(HEADER.as_json())] + [json.dumps(line) for line in
                                               (json.loads(json.dumps(x)) for x in _lines(inputs))]
    lines[21] = '[1000.5, "e", {"kind": "seq", "node": "cat'  # a line cut in the middle and garbage after
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    run = read_run(path)
    assert run.problem is not None and "line 22 is damaged" in run.problem
    assert run.records() == inputs[:20]


def _lines(inputs: list[tuple[float, Any]]) -> list[Any]:
    from nodes.runs.runfile import line_of

    return [line_of(at, item) for at, item in inputs]


def test_files_that_are_not_runs_say_so(tmp_path: Path) -> None:
    cases = {"missing.jsonl.gz": None, "text.jsonl.gz": b"hello\n", "empty.jsonl.gz": b"",
             "other.jsonl.gz": gzip.compress(b'{"format": "something else"}\n')}
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(RunFileError) as error:
            read_run(tmp_path / name)
        assert name in str(error.value)
    newer = tmp_path / "newer.jsonl.gz"
    newer.write_bytes(gzip.compress((json.dumps({**HEADER.as_json(), "version": VERSION + 1, "bazar": "9.0"})
                                     + "\n").encode()))
    with pytest.raises(RunFileError, match="recorded by a newer Bazar .9.0, run format 2.*update Bazar"):
        read_run(newer)


def test_pruning_keeps_the_newest_runs_within_the_limit(tmp_path: Path) -> None:
    import os

    for number in range(5):
        path = tmp_path / f"run-{number}.jsonl.gz"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (1000 + number, 1000 + number))
    deleted = prune(tmp_path, 2500, keep=[tmp_path / "run-0.jsonl.gz"])
    assert [p.name for p in deleted] == ["run-1.jsonl.gz", "run-2.jsonl.gz", "run-3.jsonl.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-0.jsonl.gz", "run-4.jsonl.gz"]


# ---- the player ----------------------------------------------------------------------------------
def test_the_player_shows_what_the_live_model_showed_at_every_instant(tmp_path: Path) -> None:
    inputs = _inputs(3000)
    live, states = _live(inputs, every=97)
    run = read_run(write_run(tmp_path / "a.jsonl.gz", HEADER, inputs, per_chunk=250))
    player = Player.of_run(run)
    player.keyframe_s = 1.0
    points = sorted(states)
    rng = random.Random(5)
    order = points + rng.sample(points, len(points)) + points[::-1]  # forwards, at random, backwards
    for number in order:
        at = inputs[number - 1][0]
        player.seek(at)
        assert player.index == number
        assert _state(player.model.keyframe()) == _state(states[number]), f"at input {number}"
    assert len(player.keyframes) > 10  # it did go back to keyframes, not only forwards


def test_the_slider_knows_every_fault_heal_and_anomaly_of_the_run(tmp_path: Path) -> None:
    inputs = _inputs(3000)
    live, _ = _live(inputs, every=10_000)
    player = Player.of_run(read_run(write_run(tmp_path / "a.jsonl.gz", HEADER, inputs)))
    assert player.index_all()
    assert player.marks == list(live.marks)
    assert any(m.kind == MarkKind.ANOMALY for m in player.marks)
    player.seek(player.start)
    first = player.next_mark()
    assert first is not None and first == next(m for m in live.marks if m.kind != MarkKind.HEAL)
    player.seek(first.t)
    assert player.next_mark() != first


def test_a_live_buffer_drops_its_oldest_minutes_and_still_seeks(tmp_path: Path) -> None:
    inputs = _inputs(3000)
    live, states = _live(inputs, every=50)
    chunks: list[Chunk] = []
    writer = RunWriter(None, HEADER, on_chunk=chunks.append)
    recording = Recording(keep_s=10.0)
    model = ClusterModel(NODES, catalog_of={"order0": "catalog0"})
    player = Player(model, recording, keyframe_s=1.0)
    for number, (at, item) in enumerate(inputs, start=1):
        model.replay(at, item)  # the live model, as ``apply`` feeds it
        writer.add(item, at)
        if number % 100 == 0:
            writer.flush()
            for chunk in chunks:
                recording.add(chunk)
            chunks.clear()
            player.index = recording.end_index  # the live model is at the present
            player.take_keyframe()
    writer.close()
    for chunk in chunks:
        recording.add(chunk)
    player.index = recording.end_index  # rewinding starts from the present, all of it recorded
    assert recording.base > 0 and recording.end - recording.start <= 10 + 1.5  # and one chunk
    for number in sorted(states, reverse=True):
        if number <= recording.base + 200 or number > recording.end_index:
            continue
        player.seek(inputs[number - 1][0])
        assert _state(player.model.keyframe()) == _state(states[number]), f"at input {number}"


def test_the_cluster_files_runs_section_is_read_and_checked() -> None:
    from nodes.control.clusterfile import ClusterFileError, parse

    cluster = parse({"runs": {"record": False, "limit_mb": 50, "rewind_minutes": 3}})
    assert (cluster.record, cluster.runs_limit_mb, cluster.rewind_minutes) == (False, 50, 3)
    assert parse({}).record and parse({}).runs_limit_mb == 500 and parse({}).rewind_minutes == 10
    for bad, says in (({"record": "yes"}, "runs.record must be true or false"),
                      ({"limit_mb": 0}, "runs.limit_mb"), ({"rewind_minutes": 1000}, "runs.rewind_minutes"),
                      ({"keep": 1}, "keep")):
        with pytest.raises(ClusterFileError, match=says):
            parse({"runs": bad})


def test_a_full_disk_stops_the_file_not_the_recording(tmp_path: Path) -> None:
    import errno

    chunks: list[Chunk] = []
    writer = RunWriter(tmp_path / "full.jsonl.gz", HEADER, on_chunk=chunks.append)
    inputs = _inputs(200)
    for at, item in inputs[:100]:
        writer.add(item, at)
    writer.flush()

    def full(_data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    writer._file.write = full  # type: ignore[union-attr, method-assign]  # noqa: SLF001 - the disk fills up
    for at, item in inputs[100:]:
        writer.add(item, at)
    writer.flush()
    writer.close()
    assert writer.error is not None and "No space left on device" in writer.error and "full.jsonl.gz" in writer.error
    assert read_run(tmp_path / "full.jsonl.gz").records() == inputs[:100]  # whole up to where the disk filled
    assert [r for chunk in chunks for r in chunk.records()] == inputs  # the rewind buffer has all of it


def test_a_live_recording_with_nothing_in_it_yet_starts_now(tmp_path: Path) -> None:
    """A cluster ready before its first input arrived: the rewind buffer starts now, not at 0
    (the window's slider range, (now - start) in tenths of a second, once overflowed Qt's int)."""
    import time

    from nodes.runs.recorder import Recorder
    from nodes.runs.runfile import Header

    model = ClusterModel({"frontend": "http://127.0.0.1:9000"})
    recorder = Recorder(model, Header("test", {"frontend": "http://127.0.0.1:9000"}), None)
    try:
        assert abs(recorder.start - time.time()) < 5
    finally:
        recorder.writer.close()

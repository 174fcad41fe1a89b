"""Runs recorded by every other source open in the window and render: a checked run on real
processes (``check --record``), a documented figure (``scenario S3 --record``) and a simulated
failing seed (``simulate --seed --record``), each in a replay window that names it, every tab
drawn at its start, its end and its first fault or anomaly. The command line's own replay
(``--open … --screenshot … --at``) pictures an instant, and refuses what is not a run."""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gui.main_window import TABS, MainWindow, WindowOptions
from nodes.control.clusterfile import Cluster
from nodes.observe.views import MarkKind
from nodes.runs.runfile import read_run
from tests.support import close_window_loop, wait_until, window_loop

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(240)


def _launch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "launcher.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=180)


def _start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(ROOT / "launcher.py"), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("runs")
    made = {"check": folder / "check.jsonl.gz", "scenario": folder / "s3.jsonl.gz",
            "simulate": folder / "seed.jsonl.gz"}
    # The three at once (each on its own ports and folder): a third of the wait.
    launched = {
        "check": _start("check", "--seconds", "4", "--seed", "5", "--faults", "crash", "--record",
                         str(made["check"]), "--data-dir", str(folder / "check-data"), cwd=folder),
        "scenario": _start("scenario", "S3", "--record", str(made["scenario"]), "--data-dir",
                            str(folder / "s3-data"), cwd=folder),
        # The documented design's unguarded write loses buys with no fault at all (W1): a failing seed.
        "simulate": _start("simulate", "--seed", "1", "--mode", "documented", "--record", str(made["simulate"]),
                            cwd=folder),
    }
    try:
        done = {name: (process, *process.communicate(timeout=180)) for name, process in launched.items()}
    finally:
        for process in launched.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    for name in ("check", "scenario"):
        process, out, err = done[name]
        assert made[name].exists(), f"{name}: {out[-2000:]}{err[-2000:]}"
    process, out, err = done["simulate"]
    assert process.returncode == 1 and made["simulate"].exists(), out[-2000:] + err[-2000:]
    return made


@pytest.mark.parametrize("source", ["check", "scenario", "simulate"])
def test_a_recorded_run_opens_in_a_replay_window_and_every_tab_draws_it(qapp, runs, source):
    run = read_run(runs[source])
    assert run.problem is None
    loop = window_loop(qapp)
    asyncio.set_event_loop(loop)
    window = MainWindow(Cluster(), WindowOptions(1280, 720), run=run)
    try:
        window.show()
        window.start()
        bar = window.time.bar
        assert bar is not None and run.header.source in bar.banner.text()
        loop.run_until_complete(wait_until(lambda: bar.source.indexed >= 1, 60, "the run to be read through"))
        marks = bar.source.marks()
        anomalies = [m for m in marks if m.kind == MarkKind.ANOMALY]
        if source == "simulate":  # opened at its first anomaly, the blamed requests known
            assert anomalies and abs(bar.source.time - anomalies[0].t) < 1e-6 and window.model.blamed
            named = re.search(r"\bbook (\d+)\b", anomalies[0].text)  # and the Live picture on its book
            assert named is not None and window.live.chosen() == int(named[1]), anomalies[0].text
        else:
            assert any(m.kind == MarkKind.FAULT for m in marks)
        for instant in (bar.source.start, (marks or anomalies)[0].t, bar.source.end):
            bar.seek(instant)
            for name, _title in TABS:
                window.tabs.setCurrentWidget(window.view(name))
                window.time.after_jump()
                qapp.processEvents()
                assert not window.grab().isNull()
        assert not window.live.load_button.isEnabled() and window.controller.held is not None
    finally:
        window.close()
        window.deleteLater()
        qapp.processEvents()
        close_window_loop(loop)


def test_the_command_line_pictures_one_instant_and_refuses_what_is_not_a_run(runs, tmp_path):
    # An instant inside the run, however long it took here: S3's recording lasted 0.7 s on a
    # quiet machine (2026-12-07) and over a second before, and "--at 1" then met its end.
    recorded = read_run(runs["scenario"])
    at = round((recorded.end - recorded.start) / 2, 1)
    picture = tmp_path / "at-middle.png"
    done = _launch("--open", str(runs["scenario"]), "--screenshot", str(picture), "--at", f"{at:g}", "--tab",
                   "replicas", "--size", "1280x720", cwd=tmp_path)
    assert done.returncode == 0 and picture.stat().st_size > 10_000, done.stderr[-2000:]
    assert f"{at:.1f} s into the run" in done.stdout, (at, done.stdout)
    assert "outside the run" not in done.stderr
    junk = tmp_path / "junk.jsonl.gz"
    junk.write_bytes(b"not a run at all")
    done = _launch("--open", str(junk), cwd=tmp_path)
    assert done.returncode == 2 and "junk.jsonl.gz is not a Bazar run" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_command_line_times_a_drag_of_the_slider(runs, tmp_path):
    import json

    done = _launch("--open", str(runs["check"]), "--measure-scrub", "5", "--size", "1280x720", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [row["tab"] for row in rows] == ["live", "charts", "cluster", "replicas", "flow"]
    assert all(row["moves"] == 10 and 0 < row["p50"] <= row["p99"] <= row["max"] < 5000 for row in rows)
    done = _launch("--measure-scrub", cwd=tmp_path)
    assert done.returncode == 2 and "--measure-scrub goes with --open RUN" in done.stderr


def test_a_run_dropped_on_the_window_opens_beside_it(qapp, runs):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent

    loop = window_loop(qapp)
    asyncio.set_event_loop(loop)
    window = MainWindow(Cluster(), WindowOptions(1280, 720), run=read_run(runs["simulate"]))
    try:
        window.show()
        window.start()
        data = QMimeData()
        data.setUrls([QUrl.fromLocalFile(str(runs["scenario"]))])
        enter = QDragEnterEvent(QPointF(100, 100).toPoint(), Qt.DropAction.CopyAction, data,
                                Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        window.dragEnterEvent(enter)
        assert enter.isAccepted()
        window.dropEvent(QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                                    Qt.KeyboardModifier.NoModifier))
        assert "Opening s3.jsonl.gz" in window.message.text()  # read off the window's thread meanwhile
        opened = window.time.opened
        loop.run_until_complete(wait_until(lambda: len(opened) == 1, 30, "the dropped run to open"))
        assert "scenario S3" in opened[0].time.bar.banner.text() and "Opened s3.jsonl.gz" in window.message.text()
        junk = runs["scenario"].with_name("junk.jsonl.gz")
        junk.write_bytes(b"not a run")
        window.time.open_soon(junk)
        loop.run_until_complete(wait_until(lambda: "is not a Bazar run" in window.message.text(), 30,
                                           "the junk file's problem, in words"))
        assert len(opened) == 1
    finally:
        for other in window.time.opened:
            other.close()
        window.close()
        window.deleteLater()
        qapp.processEvents()
        close_window_loop(loop)

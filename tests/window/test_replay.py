"""Runs in the real window over a real cluster: the window records its session; rewound, it shows
the past while the cluster runs on, with every control that acts on the cluster held; saved and
opened again, the run replays in a window of its own that says so, with the faults marked on
its slider, jumps to them, steps through messages in causal order and plays."""
from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from gui.replay import STEPS_PER_S
from nodes.observe.observations import ProcessChanged
from nodes.observe.views import MarkKind
from nodes.runs.runfile import read_run
from tests.support import wait_until

pytestmark = pytest.mark.timeout(240)


def _crash_and_start(window, name: str) -> None:
    window.run(window.controller.crash(name))
    window.run(wait_until(lambda: window.model.health(name).gone, 20, f"{name} to be down"))
    window.run(window.controller.start(name))
    window.run(wait_until(lambda: not window.model.health(name).gone, 30, f"{name} to be back"))


def _states(source) -> str:
    """The node states a run recorded in its first minute, for a failure's message."""
    said = [f"{at - source.start:.2f}s {item.node}={item.process.state.value}"
            for at, item in source.run.records() if isinstance(item, ProcessChanged) and at - source.start < 60]
    return f"start {source.start}, time {source.time}, first_up {source.first_up()}: " + "; ".join(said)


def test_the_window_records_rewinds_saves_and_replays_its_session(window, qtbot, tmp_path):
    live = window.live
    window.tabs.setCurrentWidget(live)
    window.session.load.settings.rate = 40
    qtbot.mouseClick(live.load_button, Qt.MouseButton.LeftButton)
    window.run(wait_until(lambda: window.model.arrows.count > 200, 30, "messages under load"))
    _crash_and_start(window, "catalog1")
    window.run(wait_until(lambda: window.model.arrows.count > 600, 30, "more messages"))
    bar, rewinder = window.time.bar, window.time.rewinder
    assert bar is not None and rewinder is not None and not bar.rewound and not bar.isVisible()
    rewinder.refresh()
    assert rewinder.caption.text().startswith("Rewind ") and rewinder.slider.marks  # the crash, marked

    # Rewound to the crash: the picture shows catalog1 down while the cluster runs on.
    crash = next(m for m in window.model.marks if m.node == "catalog1" and m.kind == MarkKind.FAULT)
    window.run(wait_until(lambda: window.session.recorder.start <= crash.t, 30, "the buffer to reach the crash"))
    window.time.rewind(crash.t)  # the instant the model marked it
    assert bar.rewound and bar.isVisible() and "Rewound to" in bar.banner.text()
    assert window.model.health("catalog1").gone and window.model.now() < time.time() - 0.5
    assert not live.load_button.isEnabled() and not window.shop.isEnabled()
    assert not window.cluster_view.cards["catalog0"].crash_button.isEnabled()
    assert window.controller.held is not None
    recorded = window.session.recorder.writer.count
    window.run(wait_until(lambda: window.session.recorder.writer.count > recorded + 100, 20,
                          "the cluster to go on being recorded while rewound"))
    bar.step(1)  # the next message after the crash, in causal order, on the Live picture
    assert live.paused_at is not None and live.position == 1
    assert live.step_button.isEnabled()  # the Live tab's own Step reads the recording on too
    qtbot.mouseClick(live.step_button, Qt.MouseButton.LeftButton)
    assert live.position == 2
    assert not window.time.rewinder.isVisible()  # the strip has the slider while rewound
    qtbot.mouseClick(bar.live_button, Qt.MouseButton.LeftButton)
    assert not bar.rewound and not bar.isVisible() and window.controller.held is None
    assert window.time.rewinder.isVisible() and live.reads_on is None
    assert window.session.recorder.start <= crash.t  # back to live, the crash can be rewound to again
    assert not window.model.health("catalog1").gone and live.load_button.isEnabled()

    # Dragged: every tab follows the handle before it is let go; let go at the present, live again.
    slider = rewinder.slider
    rewinder.refresh()
    slider.setSliderDown(True)
    position = round((crash.t - rewinder.source.start) * STEPS_PER_S)
    slider.setSliderPosition(position)
    window.run(wait_until(lambda: bar.rewound, 5, "the window to rewind while the handle is still held"))
    shown = rewinder.source.start + position / STEPS_PER_S
    assert abs(window.model.now() - shown) < 0.01 and rewinder.isVisible()  # kept under the hand
    assert rewinder.caption.text().startswith("Rewind to ") and "s ago" in rewinder.caption.text()
    top = slider.maximum()  # the range stays while held: the hand's place names the same moment
    window.run(wait_until(lambda: round((time.time() - rewinder.source.start) * STEPS_PER_S) > top + 2, 5,
                          "the clock to move on"))
    rewinder.refresh()
    assert slider.maximum() == top and slider.value() == position
    slider.setSliderPosition(slider.maximum())
    slider.setSliderDown(False)
    assert not bar.rewound and not bar.isVisible() and rewinder.isVisible()
    assert not window.model.health("catalog1").gone

    # Saved, and opened again: a replay window of its own.
    saved = window.time.save(tmp_path / "lesson")
    assert saved is not None and saved.name == "lesson.jsonl.gz"
    assert read_run(saved).problem is None
    replay = window.time.open(saved)
    assert replay is not None
    try:
        rbar = replay.time.bar
        assert rbar is not None
        assert "Replay of lesson.jsonl.gz, recorded" in rbar.banner.text()
        assert not replay.live.load_button.isEnabled() and not replay.shop.isEnabled()
        assert not replay.cluster_view.cards["catalog1"].crash_button.isEnabled()
        window.run(wait_until(lambda: rbar.source.indexed >= 1, 60, "the run to be read through"))
        kinds = {(m.node, m.kind) for m in rbar.source.marks()}
        assert ("catalog1", MarkKind.FAULT) in kinds and ("catalog1", MarkKind.HEAL) in kinds
        assert rbar.slider.marks  # drawn on the slider
        # Opened where every node was first up (at its very start the cluster was starting).
        # Once, in the full suite, it opened at the start: the states recorded then say why.
        assert rbar.source.start < rbar.source.time == rbar.source.first_up(), _states(rbar.source)
        assert all(h.state == "up" for h in replay.model.healths())
        qtbot.mouseClick(rbar.next_fault, Qt.MouseButton.LeftButton)
        assert replay.model.health("catalog1").gone
        assert "catalog1" in replay.health.text()
        qtbot.mouseClick(rbar.next_message, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(rbar.next_message, Qt.MouseButton.LeftButton)
        assert replay.live.position == 2
        stepped = replay.live.told[:2]
        qtbot.mouseClick(rbar.back_message, Qt.MouseButton.LeftButton)
        assert replay.live.position == 1 and replay.live.stepped_message() == stepped[0]
        assert "Resume" == replay.live.pause_button.text() and "cluster keeps running" not in \
            replay.live.status.text()  # a replay has no cluster
        at = rbar.source.time
        rbar.speeds.setCurrentIndex(rbar.speeds.findData(8.0))
        qtbot.mouseClick(rbar.play_button, Qt.MouseButton.LeftButton)
        assert replay.live.paused_at is None  # playing on: the Live picture moves again
        window.run(wait_until(lambda: rbar.source.time > at + 2, 20, "the replay to play on"))
        # At 8× the run may have played to its end (and stopped) before the click: the button
        # then plays it again. Either way the click turns playing over (CI once found it ended).
        was_playing = rbar.playing
        qtbot.mouseClick(rbar.play_button, Qt.MouseButton.LeftButton)
        assert rbar.playing is not was_playing
        rbar.pause()
        assert window.model.following  # the live window went on meanwhile
        # A message chosen on the Flow tab's diagram: its request, and the list of requests beside it.
        flow = replay.flow
        flow.everything.setChecked(True)  # the diagram, from the moment the tab is first shown
        replay.tabs.setCurrentWidget(flow)
        rbar.seek(rbar.source.time - 1.0)
        chosen = replay.model.trace_ids()[-1]
        flow.show_request(chosen)
        assert flow.traces.count() == len(flow.listed) > 0
        assert chosen not in flow.listed or flow.listed[flow.traces.currentRow()] == chosen
        # Each window's Ctrl+Q is its own: the replay closes, the live window stays.
        replay.activateWindow()
        qtbot.keyClick(replay, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
        assert replay.stopped.is_set() and not window.stopped.is_set()
    finally:
        replay.close()

"""Issue 23, item 8, item 21 and "Experiments end with a verdict": the Experiments tab says how
long a run should take and how long is left, Cancel stops it at once with every cluster it
started, the outage experiment ends with a verdict in words and compares only answered
requests, the bar chart's names never touch, and no run leaves a folder in /tmp."""
from __future__ import annotations

import asyncio
import math
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF

from gui.experiments import ExperimentsView
from nodes.bench.common import Context, Progress, Table
from nodes.session.scenarios import Player, load
from tests.support import close_window_loop, wait_until, window_loop

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def loop(qapp):
    """The window's kind of loop (qasync: Qt and asyncio in one), without a window."""
    event_loop = window_loop(qapp)
    asyncio.set_event_loop(event_loop)
    yield event_loop
    close_window_loop(event_loop)


@pytest.fixture
def view(qtbot, loop):
    reported: list[str] = []
    widget = ExperimentsView(reported.append)
    widget.reported = reported
    qtbot.addWidget(widget)
    widget.resize(1280, 640)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def until(loop, check, timeout: float, what: str) -> None:
    loop.run_until_complete(asyncio.wait_for(wait_until(check, timeout, what), timeout + 5))


def processes_in(folder: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-f", str(folder)], capture_output=True, text=True)
    return found.stdout.split()


def choose(view: ExperimentsView, name: str, count: int) -> None:
    view.choice.setCurrentIndex(view.choice.findData(name))
    view.count.setValue(count)


def test_cancel_stops_a_run_at_once_with_every_cluster_it_started(view, loop):
    choose(view, "outages", 200)
    assert "Takes about" in view.doing.text(), "a time estimate before the run"
    view.run_button.click()
    assert view.run_button.text() == "Cancel" and view.run_button.isEnabled()
    context = view.context
    until(loop, lambda: context.progress.done > 0, 60, "the run to be measuring")
    until(loop, lambda: "left" in view.doing.text(), 5, "the time left")
    assert processes_in(context.data_root), "the experiment's cluster runs"
    cancelled_at = time.monotonic()
    view.run_button.click()
    until(loop, lambda: view.run_button.text() == "Run", 15, "the run to stop")
    assert time.monotonic() - cancelled_at < 10, "Cancel took too long"
    assert view.doing.text().startswith("Cancelled"), view.doing.text()
    assert not view.reported, view.reported
    assert not processes_in(context.data_root), "a cluster outlived the cancelled run"
    assert not context.data_root.exists(), "the run's folder stayed in /tmp"


def test_the_outage_experiment_ends_with_a_verdict_and_compares_only_answered_requests(view, loop):
    choose(view, "outages", 20)
    view.run_button.click()
    context = view.context
    until(loop, lambda: view.run_button.text() == "Run", 200, "the outage experiment to end")
    assert view.doing.text().startswith("Done in"), (view.doing.text(), view.reported)
    assert not context.data_root.exists(), "the run's folder stayed in /tmp"
    (table,) = view.tables
    rows = {row[0]: dict(zip(table.columns, row, strict=True)) for row in table.rows}
    for name, row in rows.items():
        if row["failed"] == int(row["answered"].split(" of ")[1]):  # every one failed
            assert math.isnan(row["mean ms"]) and math.isnan(row["vs none"]), f"{name}: failures compared as fast"
        else:
            assert row["mean ms"] > 0
    verdict = view.verdict.text()
    assert view.verdict.isVisible() and verdict.startswith("Measured:")
    assert "were answered" in verdict
    failing = [name for name, row in rows.items() if row["failed"] and math.isnan(row["mean ms"])]
    for name in failing:  # each phase in which every request failed is explained
        outage = name.split(", ", 1)[1]
        assert f"With one {outage}, every one of the" in verdict, (outage, verdict)
    if failing:
        assert "the front-end answered" in verdict and "majority" in verdict
        texts = [item for item in view.plot.getPlotItem().items if hasattr(item, "textItem")]
        assert len(texts) == len(failing), "a bar of no length for requests that all failed"


def test_the_bar_chart_never_puts_two_names_on_each_other(view, qtbot):
    names = [f"{op}, {what}" for op in ("reads", "buys") for what in
             ("none", "order replica crashed", "order replica hung", "catalog replica crashed", "catalog replica hung")]
    view._show([Table("Outages", ["operation, outage", "mean ms", "p50 ms"],
                      [[name, 1.5 + i, 1.0] for i, name in enumerate(names)], ["Measured: a test table."])])
    qtbot.wait(100)  # a layout pass
    box = view.plot.getViewBox()
    row = abs(box.mapViewToScene(QPointF(0, 1)).y() - box.mapViewToScene(QPointF(0, 0)).y())
    line = view.plot.fontMetrics().height()
    assert row >= 1.3 * line, f"rows {row:.0f} px apart for names {line} px high"
    assert view.verdict.text() == "Measured: a test table."


def test_no_run_and_no_scenario_leaves_a_folder_in_tmp(loop):
    context = Context(Progress())
    assert context.data_root.exists()
    context.close()
    assert not context.data_root.exists()
    given = Path(tempfile.mkdtemp(prefix="bazar-scenarios-"))  # as the window and the launcher make it
    player = Player(given)
    outcome = loop.run_until_complete(asyncio.wait_for(player.play(load("S1")), 90))
    assert outcome.trace is not None
    assert not given.exists(), "the scenario's folder was left in /tmp"


def test_closing_the_window_during_a_run_stops_its_clusters_at_once(qtbot, loop):
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    window = QWidget()
    qtbot.addWidget(window)
    view = ExperimentsView(lambda _message: None)
    QVBoxLayout(window).addWidget(view)
    window.resize(1280, 640)
    window.show()
    choose(view, "outages", 200)
    view.run_button.click()
    context = view.context
    until(loop, lambda: context.progress.done > 0, 60, "the run to be measuring")
    assert processes_in(context.data_root)
    window.close()  # no turn of the loop after this: the window may be gone before the next
    assert not processes_in(context.data_root), "a cluster outlived the window"
    assert not context.data_root.exists()
    until(loop, lambda: not view.running, 15, "the cancelled run to unwind")


def test_the_load_fault_choice_fits_1280_pixels_and_says_its_words_in_full(qtbot):
    """Issue 28: choosing load-fault shows its fault beside the experiment; neither list may
    widen the tab past a 1280-pixel screen (the fault's words did, at 1,364 pixels), and what
    a box cuts short its tooltip says in full."""
    view = ExperimentsView(lambda message: None)
    qtbot.addWidget(view)
    view.choice.setCurrentIndex(view.choice.findData("load-fault"))
    view.fault.setCurrentIndex(view.fault.findData("partition"))
    view.show()
    assert view.fault.isVisible()
    assert view.minimumSizeHint().width() <= 1280, view.minimumSizeHint()
    assert view.fault.toolTip() == view.fault.currentText()
    assert view.choice.toolTip() == view.choice.currentText()
    view.choice.setCurrentIndex(view.choice.findData("load"))
    assert not view.fault.isVisible()

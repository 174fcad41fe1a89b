"""The window tests' own harness: the loop they drive the window with behaves as the app's."""
from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.timeout(120)


def test_a_task_on_the_window_loop_survives_the_events_qt_processes_between_runs(window):
    """The app's loop runs for the window's life; a test's runs only inside ``window.run``, and
    Qt steps tasks between runs too. The load's task used to die there ("no running event
    loop"), so the lesson's *Stop load* click started it again (seen in CI, then here within a
    few hundred runs)."""
    load = window.session.load
    load.settings.rate = 200
    load.start()
    try:
        for i in range(300):
            window.run(asyncio.sleep(0.003))
            assert load.running, f"the load's task died after {i} runs"
    finally:
        window.run(load.stop())

"""Fixtures every lane shares; helpers live in tests/support.py."""
import os

import pytest

from tests import engine
from tests.support import open_window

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """The suite runs on two workers (``-n 2 --dist loadgroup``, pyproject.toml): a module's
    tests stay together on one worker (their module fixtures start one cluster), and the window
    tests all run on the same worker, one after another, so that two windows, each drawing a
    live cluster, never share the two cores. First of every plugin's: xdist names each test's
    group from these marks in its own hook, and ran before them, so no test had a group, every
    test was dealt out alone, and the lesson's steps (one window, in order) ran on both workers
    — its step 3 on a fresh window where step 2's load had never started (1 CI run in 3)."""
    for item in items:
        lane = item.path.parent.name
        group = "window" if lane == "window" else str(item.path.relative_to(config.rootpath))
        item.add_marker(pytest.mark.xdist_group(group))
    # The window group, the longest by far, is dealt out first (its own order kept): collected
    # last, it went to whichever worker freed up near the end and ran alone for minutes, and a
    # clean clone's suite took 616-622 s on two slow cores.
    items.sort(key=lambda item: item.path.parent.name != "window")


def pytest_sessionstart(session):
    """The container tests' engine and image are made in the background from here, in the
    process that deals the tests out, before any worker starts (tests/engine.py)."""
    if not hasattr(session.config, "workerinput"):
        engine.start_in_background([str(arg) for arg in session.config.args])


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        engine.finish()


@pytest.fixture
def supervisors():
    """Start clusters with ``supervisors.append(start(...))``; all are stopped afterwards,
    whether the test passed or failed."""
    started = []
    yield started
    for supervisor in started:
        supervisor.close()


@pytest.fixture
def window(qapp, tmp_path):
    """The real window over a real 3 + 3 cluster, on a qasync loop; ``window.run(coro)`` runs
    a coroutine on it (Qt keeps drawing meanwhile)."""
    yield from open_window(qapp, tmp_path)

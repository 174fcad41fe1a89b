"""Fixtures every lane shares; helpers live in tests/support.py."""
import os

import pytest

from tests.support import open_window

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_collection_modifyitems(config, items):
    """The suite runs on two workers (``-n 2 --dist loadgroup``, pyproject.toml): a module's
    tests stay together on one worker (their module fixtures start one cluster), and the window
    tests all run on the same worker, one after another, so that two windows, each drawing a
    live cluster, never share the two cores."""
    for item in items:
        lane = item.path.parent.name
        group = "window" if lane == "window" else str(item.path.relative_to(config.rootpath))
        item.add_marker(pytest.mark.xdist_group(group))


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

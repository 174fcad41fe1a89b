"""Fixtures every lane shares; helpers live in tests/support.py."""
import os

import pytest

from tests.support import open_window

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


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

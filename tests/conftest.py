import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def supervisors():
    """Start clusters with ``supervisors.append(start(...))``; all are stopped afterwards,
    whether the test passed or failed."""
    started = []
    yield started
    for supervisor in started:
        supervisor.close()

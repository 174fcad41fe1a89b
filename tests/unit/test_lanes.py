"""The suite's own lanes: on two workers, a module's tests share a worker (one module fixture,
one cluster) and every window test runs on the same worker, in order (tests/conftest.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def test_xdist_deals_out_groups_not_single_tests() -> None:
    """xdist reads each test's group in a hook of its own; the marks that name the groups must be
    set before it runs, or every test is dealt out alone (as it was: the lesson's steps, which
    share one window, ran on both workers and out of order)."""
    # A module of quick tests with no process of their own: test_cli.py, used before, ran a
    # simulate run and its Ctrl-C beside the same test on the suite's other worker.
    module = "tests/unit/test_single_flight.py"
    result = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-v", "-p", "no:cacheprovider", module],
                            cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stdout[-2000:]
    ran = [line for line in result.stdout.splitlines() if "PASSED" in line]
    assert len(ran) >= 2 and all(line.rstrip().endswith(f"@{module}") for line in ran), ran
    assert len({line.split("]")[0] for line in ran}) == 1, f"one module on two workers: {ran}"

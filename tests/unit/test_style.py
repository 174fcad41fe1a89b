"""The code passes ruff, so CI fails on style errors as it does on broken tests."""
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(60)
def test_ruff_finds_nothing():
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(root)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

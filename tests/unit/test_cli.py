"""The command line says what it can do: ``launcher.py --help`` lists every command with one line,
and each command's ``--help`` ends with examples that name it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import launcher

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(60)


def _help(*argv: str) -> str:
    result = subprocess.run([sys.executable, "launcher.py", *argv, "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_command_has_its_line_and_only_commands_that_run() -> None:
    assert set(launcher.COMMAND_LINES) == set(launcher.COMMANDS)
    text = _help()
    for name, line in launcher.COMMAND_LINES.items():
        assert f"  {name}" in text and line in text


@pytest.mark.parametrize("command", sorted(launcher.COMMANDS))
def test_each_command_help_has_an_example_of_itself(command: str) -> None:
    text = _help(command)
    examples = text.split("examples:", 1)[1]
    assert f"python3 launcher.py {command}" in examples

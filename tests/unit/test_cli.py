"""The command line says what it can do: ``launcher.py --help`` lists every command with one line,
and each command's ``--help`` ends with examples that name it."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

import launcher
from tests.support import communicate_or_show_where, popen_as_from_a_terminal, wait_until_sync

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


def test_ctrl_c_stops_a_simulate_run_at_once_with_what_it_found(tmp_path) -> None:
    """Ctrl-C used to wait for every worker's chunk of seeds (~40 s) and end in a traceback; one
    that came while the pool started hung the command at exit, its workers left running."""
    errors = tmp_path / "stderr"
    with errors.open("w") as sink:
        run = popen_as_from_a_terminal([sys.executable, str(ROOT / "launcher.py"), "simulate", "--seeds", "5000",
                                        "--first-seed", "770001", "--jobs", "2"], cwd=ROOT,
                                       stdout=subprocess.PIPE, stderr=sink, text=True)
        try:
            wait_until_sync(lambda: "simulating (" in errors.read_text(), timeout=20, what="the progress bar")
            run.send_signal(signal.SIGINT)
            out, _ = communicate_or_show_where(run, timeout=10)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    assert run.returncode == 130, out
    assert "stopped (Ctrl-C) after" in out and "verdict: none, stopped before the end" in out, out
    assert "Traceback" not in errors.read_text(), errors.read_text()[-2000:]
    left = subprocess.run(["pgrep", "-f", "--first-seed 770001"], capture_output=True, text=True).stdout.split()
    assert not left, f"workers left running: {left}"

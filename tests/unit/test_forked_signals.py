"""A node forked by the fork server is its child, not the launcher's: once the fork server has
reaped it, its pid may be given to another process before the launcher hears of the exit. The
launcher signals it through a pidfd, which names that process alone (nodes/control/spawn.py)."""
from __future__ import annotations

import io
import os
import signal
import subprocess
from pathlib import Path

import pytest

from nodes.control import spawn
from nodes.control.spawn import Forked
from tests.support import wait_until_sync

pytestmark = pytest.mark.timeout(30)


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_forked_node_is_signalled_through_its_pidfd_and_never_by_its_pid(monkeypatch):
    def no_kill(pid: int, signum: int) -> None:
        raise AssertionError(f"os.kill({pid}, {signum}): a pid may name another process by now")

    child = subprocess.Popen(["sleep", "30"])
    try:
        node = Forked(child.pid, io.BytesIO(), ["sleep", "30"])
        monkeypatch.setattr(spawn.os, "kill", no_kill)
        node.send_signal(signal.SIGSTOP)
        wait_until_sync(lambda: state(child.pid) == "T", what="the node stopped")
        node.send_signal(signal.SIGCONT)
        wait_until_sync(lambda: state(child.pid) != "T", what="the node resumed")
        # Reaped by its parent before the launcher has heard: the pidfd reaches nobody.
        killer = os.pidfd_open(child.pid)
        signal.pidfd_send_signal(killer, signal.SIGKILL)  # not os.kill: it is watched here
        os.close(killer)
        child.wait()
        with pytest.raises(ProcessLookupError):
            node.send_signal(signal.SIGKILL)
        node._exited(-9)
        node.send_signal(signal.SIGKILL)  # known to have ended: nothing is sent at all
        assert node.returncode == -9 and node._pidfd is None
    finally:
        monkeypatch.undo()
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_node_reaped_before_it_could_be_named_is_never_signalled_by_its_pid(monkeypatch):
    """Review: the fork server may reap a node before the launcher opens its pidfd; the pid
    may name another process by then, so a signal is refused rather than sent by pid."""
    child = subprocess.Popen(["true"])
    child.wait()
    node = Forked(child.pid, io.BytesIO(), ["true"])

    def no_kill(pid: int, signum: int) -> None:
        raise AssertionError(f"os.kill({pid}, {signum})")

    monkeypatch.setattr(spawn.os, "kill", no_kill)
    with pytest.raises(ProcessLookupError):
        node.send_signal(signal.SIGSTOP)

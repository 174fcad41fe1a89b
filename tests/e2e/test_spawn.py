"""How the supervisor starts nodes (nodes/control/spawn.py): forked from a warm fork server,
each a real process of its own, ended, killed and reported as a ``Popen`` child would be."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from nodes.control import spawn
from nodes.control.supervisor import ClusterError, Supervisor, _wake
from nodes.core.vocabulary import NodeState
from tests.support import make_cluster, start, wait_until_sync

pytestmark = pytest.mark.timeout(120)


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def cpu_s(pid: int) -> float:
    """The CPU time a process has used (user and system), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_forked_node_is_a_process_of_its_own_that_imported_nothing_again(tmp_path, supervisors, monkeypatch):
    forked = start(make_cluster(tmp_path / "forked", catalogs=2, orders=1))
    supervisors.append(forked)
    monkeypatch.setenv("BAZAR_FORK_SERVER", "0")
    execed = start(make_cluster(tmp_path / "execed", catalogs=1, orders=1))
    supervisors.append(execed)
    pids = {name: node.proc.pid for name, node in forked.nodes.items()}
    assert len(set(pids.values())) == len(pids)
    for name, pid in pids.items():
        node = forked.node(name)
        assert isinstance(node.proc, spawn.Forked)
        assert cmdline(pid) == " ".join(node.command), "ps and pgrep -f show the node's own command line"
        assert "nodes.runtime.forkserver" in cmdline(parent_of(pid))
        assert str(tmp_path / "forked") in cmdline(pid) or name == "frontend"
    assert isinstance(execed.node("catalog0").proc, subprocess.Popen)
    # Ready and idle, a forked node has used a fraction of the CPU of one that imported everything
    # itself (about 0.01 s against 0.5 s on the development machine).
    assert cpu_s(pids["catalog0"]) < cpu_s(execed.node("catalog0").proc.pid) / 3


def test_a_forked_nodes_end_is_reported_as_popen_reports_it(tmp_path, supervisors):
    supervisor = start(make_cluster(tmp_path, catalogs=1, orders=1))
    supervisors.append(supervisor)
    proc = supervisor.node("order0").proc
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    wait_until_sync(lambda: supervisor.node("order0").state == NodeState.EXITED, what="order0 reported ended")
    assert supervisor.node("order0").exit_code == -signal.SIGKILL
    with pytest.raises(subprocess.TimeoutExpired):
        supervisor.node("catalog0").proc.wait(0.05)
    supervisor.stop("catalog0")
    assert supervisor.node("catalog0").proc.returncode == 0, "SIGTERM: a clean stop"
    supervisor.start("catalog0")
    supervisor.start("order0")
    supervisor.wait_ready(timeout=30)


def test_a_node_that_cannot_start_exits_with_its_code_and_says_why(tmp_path, supervisors):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        supervisor = Supervisor(replace(make_cluster(tmp_path, catalogs=1, orders=1), catalog_ports=(port,)))
        supervisors.append(supervisor)
        supervisor.start("catalog0")
        with pytest.raises(ClusterError, match=r"catalog0 exited with code 3 while starting:(.|\n)*cannot listen"):
            supervisor.wait_ready(["catalog0"], timeout=30)


def test_if_the_fork_server_dies_its_nodes_die_with_it_and_the_next_start_makes_a_new_one(tmp_path, supervisors):
    supervisor = start(make_cluster(tmp_path, catalogs=1, orders=1))
    supervisors.append(supervisor)
    pids = [node.proc.pid for node in supervisor.nodes.values()]
    server = parent_of(pids[0])
    os.kill(server, signal.SIGKILL)
    wait_until_sync(lambda: all(node.state == NodeState.EXITED for node in supervisor.nodes.values()),
                    what="every node reported ended")
    for pid in pids:
        wait_until_sync(lambda pid=pid: not Path(f"/proc/{pid}").exists() or
                        Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
                        what=f"node {pid} gone with the fork server")
    supervisor.start_all()
    supervisor.wait_ready(timeout=30)
    assert parent_of(supervisor.node("catalog0").proc.pid) != server


def test_the_end_of_a_nodes_old_process_never_says_its_new_one_is_ready(tmp_path, supervisors):
    """A restart stops a node and starts it again; the old process's reader, ending just then,
    woke ``wait_ready`` for the new one before it had begun (a scenario's restart failed at
    once, "not ready", under load). Only the node's current process sets its event."""
    supervisor = start(make_cluster(tmp_path, catalogs=1, orders=1))
    supervisors.append(supervisor)
    node = supervisor.node("order0")
    old = node.proc
    node.ready.clear()
    supervisor.stop("order0")
    # Its reader, ending, wakes its waiters (it is still the node's process): then it is done.
    wait_until_sync(node.ready.is_set, what="the old process's reader to end")
    node.ready.clear()
    node.proc = subprocess.Popen(["sleep", "30"])  # stands in for the next process, not yet ready
    try:
        _wake(supervisor._lock, node, old)
        assert not node.ready.is_set(), "the old process's end woke whoever waits for the new one"
        _wake(supervisor._lock, node, node.proc)
        assert node.ready.is_set()
    finally:
        node.proc.kill()
        node.proc.wait()
        node.proc = old

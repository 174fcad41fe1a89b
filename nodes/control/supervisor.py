"""The supervisor: starts, watches, breaks and heals the nodes of one cluster. No Qt.

Each node is a process of its own, forked from a warm fork server (nodes/control/spawn.py) or
started with ``subprocess.Popen``, and read by one thread each, so process control never
depends on whichever event loop the caller runs (qasync has no subprocess transport). Every
node asks the kernel to kill it when its parent dies (the launcher, or the fork server, which
dies with the launcher), however it dies.

Outage toggles (the README says what each looks like to a student):
- crash: SIGKILL; a restart keeps the database and loses all memory (the valid set);
- hang: SIGSTOP / SIGCONT; the kernel still accepts connections, nothing answers;
- slow: the node adds a delay to every answer (admin endpoint);
- cut off: the node drops all traffic but admin and telemetry, and sends none (admin endpoint).
"""
from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import aiohttp

from nodes.control.admin import NodeAdmin
from nodes.control.clusterfile import Cluster
from nodes.control.engine import ComposeEngine, by_engine
from nodes.control.errors import ClusterError
from nodes.control.processes import ManagedNode, free_port
from nodes.control.spawn import Forked, start_node
from nodes.core.catalog import BUY_WINDOW_S, Consistency, Mode
from nodes.core.vocabulary import NodeState
from nodes.runtime.server import parse_ready_line

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
STOP_GRACE_S = 3.0


class Supervisor(NodeAdmin):
    """The processes of one cluster: planned from its cluster file, started, watched, broken and
    healed. What it asks of running nodes over HTTP (slow, cut off, partitions, state, reset) is
    ``NodeAdmin``'s."""

    def __init__(self, cluster: Cluster, *, python: str = sys.executable) -> None:
        self.cluster = cluster
        self.secret = cluster.secret or secrets.token_hex(16)
        self.python = python
        self.data_dir = Path(cluster.data_dir).resolve()
        self.listeners: list[Callable[[ManagedNode], None]] = []
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")
        self._lock = threading.RLock()
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self.nodes: dict[str, ManagedNode] = {}
        #: Teaching speed: ms every node holds each message it sends (0: full speed); a node
        #: started later is started with it.
        self.pace_ms = 0
        self._folder_claim: int | None = None  # the data folder's lock, held from the first start
        #: Attached to a Compose cluster: crash, hang and start go through its engine.
        self.engine = ComposeEngine(cluster.attach_project) if cluster.attach_engine == "compose" else None
        if cluster.attached:
            self._plan_attached()
        else:
            self._plan()

    # ---- planning -------------------------------------------------------------------------
    def _plan(self) -> None:
        c = self.cluster
        host = c.host
        catalog_ports = list(c.catalog_ports) or [free_port(host) for _ in range(c.catalogs)]
        order_ports = list(c.order_ports) or [free_port(host) for _ in range(c.orders)]
        frontend_port = c.frontend_port or free_port(host)
        url = lambda port: f"http://{host}:{port}"  # noqa: E731
        catalogs = [url(p) for p in catalog_ports]
        orders = [url(p) for p in order_ports]
        frontend = url(frontend_port)
        try:
            (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ClusterError(f"cannot create the data folder {self.data_dir / 'logs'}: {exc.strerror}; "
                               "choose another with --data-dir (or data_dir in the cluster file)") from None

        def common(role: str, index: int, port: int) -> list[str]:
            t = c.timeouts[role]
            return [self.python, "-m", "nodes", role, "--id", str(index), "--host", host, "--port", str(port),
                    "--connect-timeout-ms", str(t.connect_ms), "--total-timeout-ms", str(t.total_ms),
                    "--parent-pid", str(os.getpid())] + ([] if c.telemetry else ["--no-telemetry"])

        self._add(ManagedNode("frontend", 0, frontend, frontend_port, common("frontend", 0, frontend_port) + [
            "--catalogs", "|".join(catalogs), "--orders", "|".join(orders),
            "--lookup-cache", str(c.lookup_cache), "--search-cache", str(c.search_cache)]))
        for i, port in enumerate(catalog_ports):
            self._add(ManagedNode("catalog", i, catalogs[i], port, common("catalog", i, port) + [
                "--db", str(self.data_dir / f"catalog{i}.db"), "--replicas", "|".join(catalogs),
                "--frontend", frontend, "--mode", c.catalog_mode]
                + (["--consistency", c.consistency] if c.consistency else [])
                + (["--books", str(c.books)] if c.books else [])
                + (["--buy-window", f"{c.buy_window_s:g}"] if c.buy_window_s != BUY_WINDOW_S else [])))
        for i, port in enumerate(order_ports):
            k = c.catalog_of(i)
            self._add(ManagedNode("order", i, orders[i], port, common("order", i, port) + [
                "--db", str(self.data_dir / f"order{i}.db"), "--catalog", catalogs[k], "--catalog-id", str(k)]
                + _order_flags(c)))

    def _plan_attached(self) -> None:
        c = self.cluster
        assert c.attach_frontend is not None  # attached: the front-end's address is what makes it so
        engine = c.attach_engine is not None
        self._add(ManagedNode("frontend", 0, c.attach_frontend, 0, attached=True, by_engine=engine, state=NodeState.UP))
        for i, address in enumerate(c.attach_catalogs):
            self._add(ManagedNode("catalog", i, address, 0, attached=True, by_engine=engine, state=NodeState.UP))
        for i, address in enumerate(c.attach_orders):
            self._add(ManagedNode("order", i, address, 0, attached=True, by_engine=engine, state=NodeState.UP))

    def _add(self, node: ManagedNode) -> None:
        if not node.attached:
            node.log_path = self.data_dir / "logs" / f"{node.name}.log"
        self.nodes[node.name] = node

    @property
    def frontend(self) -> ManagedNode:
        return self.nodes["frontend"]

    def of_role(self, role: str) -> list[ManagedNode]:
        return [n for n in self.nodes.values() if n.role == role]

    def node(self, name: str) -> ManagedNode:
        try:
            return self.nodes[name]
        except KeyError:
            raise ClusterError(f"no node named {name!r}; nodes: {', '.join(self.nodes)}") from None

    def _note(self, node: ManagedNode, text: str) -> None:
        """A line in the node's log file for what was done to it from outside (a stopped
        process cannot say it was stopped), so that ``log NODE`` tells the whole story."""
        if node.log_path is None:
            return
        try:
            with open(node.log_path, "ab") as log:
                log.write(f"---- {time.strftime('%H:%M:%S')} {node.name} {text}\n".encode())
        except OSError:
            pass  # a full or failing disk costs this line, never the action it describes

    def _changed(self, node: ManagedNode) -> None:
        for listener in list(self.listeners):
            listener(node)

    # ---- processes ------------------------------------------------------------------------
    def start_all(self) -> None:
        for node in self.nodes.values():
            if not node.attached and node.state in (NodeState.DOWN, NodeState.EXITED):
                self.start(node.name)

    def _claim_folder(self) -> None:
        """Hold the data folder for this supervisor's life, before anything is written there: a
        second launcher on the same folder is refused before it touches the first one's logs."""
        if self._folder_claim is not None:
            return
        try:
            fd = os.open(self.data_dir / ".launcher.lock", os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            raise ClusterError(f"cannot write in the data folder {self.data_dir}: {exc.strerror}; choose another "
                               "with --data-dir (or data_dir in the cluster file)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ClusterError(f"the data folder {self.data_dir} is in use by another running Bazar; stop that "
                               "one first, or give this one another folder with --data-dir") from None
        self._folder_claim = fd

    def start(self, name: str) -> None:
        node = self.node(name)
        if self._by_engine(node, "start"):
            return
        self._claim_folder()
        with self._lock:
            if node.state in (NodeState.STARTING, NodeState.UP, NodeState.HUNG):
                return
            node.ready.clear()
            node.exit_code = None
            node.slow_ms = 0
            node.cut_off = False
            env = {**os.environ, "BAZAR_SECRET": self.secret, "PYTHONUNBUFFERED": "1",
                   "BAZAR_PACE_MS": str(self.pace_ms)}
            assert node.log_path is not None  # planned nodes have one; attached ones are never started
            # Unbuffered: a write the disk refuses leaves nothing pending to fail again later.
            log = open(node.log_path, "ab", buffering=0)  # noqa: SIM115 - owned by the reader thread
            _append(log, f"---- {time.strftime('%H:%M:%S')} starting {node.name}\n".encode())
            node.proc = self._spawner.submit(start_node, node.command, cwd=PROJECT_ROOT, env=env).result()
            node.state = NodeState.STARTING
            node.started_at = time.time()
            threading.Thread(target=self._read, args=(node, node.proc, log), name=f"log-{node.name}",
                             daemon=True).start()
        self._changed(node)

    def _read(self, node: ManagedNode, proc: subprocess.Popen | Forked, log) -> None:
        assert proc.stdout is not None
        lost = 0  # lines the disk would not take since the last one it did
        with log:
            for raw in proc.stdout:
                lost = _append(log, raw, lost)
                line = raw.decode("utf-8", "replace").rstrip("\n")
                node.tail.append(line)
                if parse_ready_line(line) is not None and node.proc is proc:
                    with self._lock:
                        if node.state == NodeState.STARTING:
                            node.state = NodeState.UP
                    self._changed(node)  # listeners first: whoever waits sees them done
                    _wake(self._lock, node, proc)
            code = proc.wait()
            _append(log, f"---- {time.strftime('%H:%M:%S')} {node.name} ended with code {code}\n".encode(), lost)
        with self._lock:
            if node.proc is not proc:
                return
            if node.state != NodeState.DOWN:
                node.state = NodeState.EXITED
                node.exit_code = code
        self._changed(node)
        _wake(self._lock, node, proc)  # wake anyone waiting: it will not become ready now

    def wait_ready(self, names: Iterable[str] | None = None, timeout: float = 30.0) -> None:
        """Block until the named nodes (all by default) print their ready line."""
        deadline = time.monotonic() + timeout
        for name in list(names) if names is not None else list(self.nodes):
            node = self.node(name)
            if node.attached:
                continue
            node.ready.wait(max(0.0, deadline - time.monotonic()))
            if node.state == NodeState.EXITED:
                tail = self.log_tail(name, 15)
                raise ClusterError(f"{name} exited with code {node.exit_code} while starting:\n{tail}")
            if node.state != NodeState.UP:
                waited = time.monotonic() - deadline + timeout
                raise ClusterError(f"{name} did not become ready within {waited:.1f} s{_where(node)}:\n"
                                   f"{self.log_tail(name, 15)}")

    def stop(self, name: str) -> None:
        node = self.node(name)
        if self._by_engine(node, "stop"):
            return
        with self._lock:
            proc = node.proc
            if proc is None or node.state in (NodeState.DOWN, NodeState.EXITED):
                node.state = NodeState.DOWN
                return
            node.state = NodeState.DOWN
        self._note(node, "asked to stop (SIGTERM)")
        _terminate(proc)
        self._changed(node)

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def crash(self, name: str) -> None:
        """SIGKILL: nothing is flushed, nothing in memory survives."""
        node = self.node(name)
        if self._by_engine(node, "crash"):
            return
        with self._lock:
            if node.proc is None or node.state in (NodeState.DOWN, NodeState.EXITED):
                return
            node.state = NodeState.DOWN
            node.proc.kill()
        node.proc.wait()
        self._note(node, "crashed (SIGKILL)")
        self._changed(node)

    def hang(self, name: str) -> None:
        """SIGSTOP: connections are still accepted by the kernel and never answered."""
        node = self.node(name)
        if self._by_engine(node, "hang"):
            return
        with self._lock:
            if node.state != NodeState.UP:
                raise ClusterError(f"{name} is {node.status}; only a node that is up can hang")
            assert node.proc is not None  # _need_process
            node.proc.send_signal(signal.SIGSTOP)
            node.state = NodeState.HUNG
        self._note(node, "hung (SIGSTOP)")
        self._changed(node)

    def resume(self, name: str) -> None:
        node = self.node(name)
        if self._by_engine(node, "resume"):
            return
        with self._lock:
            if node.state != NodeState.HUNG:
                return
            assert node.proc is not None  # _need_process
            node.proc.send_signal(signal.SIGCONT)
            node.state = NodeState.UP
        self._note(node, "resumed (SIGCONT)")
        self._changed(node)

    def stop_all(self) -> None:
        with self._lock:
            running = [(n, n.proc) for n in self.nodes.values()
                       if not n.attached and n.proc is not None and n.state not in (NodeState.DOWN, NodeState.EXITED)]
            for node, _ in running:
                node.state = NodeState.DOWN
        for _, proc in running:
            _signal(proc, signal.SIGCONT)
            _signal(proc, signal.SIGTERM)
        for _, proc in running:
            _terminate(proc)
        for node, _ in running:
            self._changed(node)

    def close(self) -> None:
        self.stop_all()
        self._spawner.shutdown(wait=False)
        if self._folder_claim is not None:
            os.close(self._folder_claim)
            self._folder_claim = None

    def _by_engine(self, node: ManagedNode, action: str) -> bool:
        """True when ``node`` is attached and its container engine did ``action``; an attached
        node with no engine named in the cluster file has no process to act on here."""
        if not node.attached:
            return False
        if self.engine is None:
            raise ClusterError(f"cannot {action} {node.name}: it is attached, not started here, and the cluster "
                               "file names no container engine (attach.engine); only slow and cut off work")
        by_engine(self.engine, node, action)  # no log line: the engine keeps the container's output
        self._changed(node)
        return True

    def log_tail(self, name: str, lines: int = 50) -> str:
        node = self.node(name)
        if node.by_engine and self.engine is not None:  # a container's output is the engine's to keep
            return self.engine.logs(name, lines)
        if node.log_path is not None and node.log_path.exists():
            with open(node.log_path, "rb") as handle:
                handle.seek(max(0, handle.seek(0, os.SEEK_END) - 64 * 1024))
                return "\n".join(handle.read().decode("utf-8", "replace").splitlines()[-lines:])
        return "\n".join(list(node.tail)[-lines:])


def _order_flags(cluster: Cluster) -> list[str]:
    """An order replica writes a book it last saw in stock at once (nodes/core/order/protocol.py)
    only where the write's check round vouches for the copy as the read would: majority writes.
    The documented mode reads first as its figures draw it; so does available consistency, where
    only the read keeps a replica cut off from selling a copy no peer vouches for."""
    documented = cluster.catalog_mode == Mode.DOCUMENTED
    available = cluster.consistency == Consistency.AVAILABLE
    return ["--read-first"] if documented or available else []


def _append(log: BinaryIO, data: bytes, lost: int = 0) -> int:
    """Write ``data`` to a node's log, first saying how many lines were lost before it; returns
    the lines lost now. The node's output is drained whatever the disk does: a full or failing
    disk costs log lines (counted, and said once it takes lines again), never a node blocked on a
    full pipe (issue 25)."""
    try:
        if lost:
            log.write(f"---- {time.strftime('%H:%M:%S')} {lost} lines of output lost: the disk was full "
                      "or failing\n".encode())
        log.write(data)
        return 0
    except OSError:
        return lost + 1


def _wake(lock: threading.RLock, node: ManagedNode, proc: subprocess.Popen | Forked) -> None:
    """Wake whoever waits for ``node`` — if ``proc`` is still its process. A process's reader
    ends when the process does, and a restart may have started the next one meanwhile: set
    then, the event told ``wait_ready`` the new process was done starting before it had begun
    (a scenario's restart failed "not ready" at once, under load)."""
    with lock:
        if node.proc is proc:
            node.ready.set()


def _where(node: ManagedNode) -> str:
    """Where a node that never became ready is: its process's state and, if it waits, on what
    (Linux's /proc), for whoever looks into why."""
    pid = node.proc.pid if node.proc is not None else None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        waiting = Path(f"/proc/{pid}/wchan").read_text().strip()
    except (OSError, IndexError):
        return ""
    words = {"R": "running", "S": "sleeping", "D": "waiting on the disk", "T": "stopped", "Z": "ended"}
    return f" (process {pid}: {words.get(state, state)}{f' in {waiting}' if waiting not in ('', '0') else ''})"


def _signal(proc: subprocess.Popen | Forked, signum: int) -> None:
    try:
        proc.send_signal(signum)
    except ProcessLookupError:
        pass


def _terminate(proc: subprocess.Popen | Forked) -> None:
    """SIGTERM, then SIGKILL if it has not gone within the grace period."""
    _signal(proc, signal.SIGCONT)
    _signal(proc, signal.SIGTERM)
    try:
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

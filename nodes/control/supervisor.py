"""The supervisor: starts, watches, breaks and heals the nodes of one cluster. No Qt.

Processes are plain ``subprocess.Popen`` children read by one thread each, so process
control never depends on whichever event loop the caller runs (qasync has no subprocess
transport). Every node is told the launcher's pid and asks the kernel to kill it when the
launcher dies, however it dies.

Outage toggles (the README says what each looks like to a student):
- crash: SIGKILL; a restart keeps the database and loses all memory (the valid set);
- hang: SIGSTOP / SIGCONT; the kernel still accepts connections, nothing answers;
- slow: the node adds a delay to every answer (admin endpoint);
- cut off: the node drops all traffic but admin and telemetry, and sends none (admin endpoint).
"""
from __future__ import annotations

import asyncio
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from nodes.control.clusterfile import Cluster
from nodes.runtime.client import SECRET_HEADER
from nodes.runtime.server import parse_ready_line

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
STOP_GRACE_S = 3.0


class ClusterError(RuntimeError):
    """A node could not be started or controlled; the message says which and why."""


@dataclass
class ManagedNode:
    role: str
    index: int
    address: str
    port: int
    command: list[str] = field(default_factory=list)
    log_path: Path | None = None
    attached: bool = False
    proc: subprocess.Popen | None = None
    state: str = "down"  # starting, up, down, hung, exited
    exit_code: int | None = None
    slow_ms: int = 0
    cut_off: bool = False
    #: Partitions in force: nodes whose messages never reach this one, and the reverse.
    deaf_to: frozenset[str] = frozenset()
    mute_to: frozenset[str] = frozenset()
    started_at: float | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    tail: deque = field(default_factory=lambda: deque(maxlen=200))

    @property
    def name(self) -> str:
        return "frontend" if self.role == "frontend" else f"{self.role}{self.index}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.state != "down" else None

    @property
    def status(self) -> str:
        """What a person should read: the process state plus any toggle in force."""
        if self.state == "exited":
            return f"exited with code {self.exit_code}"
        parts = [self.state]
        if self.state in ("up", "hung", "starting"):
            if self.slow_ms:
                parts.append(f"slowed {self.slow_ms} ms")
            if self.cut_off:
                parts.append("cut off")
            elif self.deaf_to or self.mute_to:
                parts.append("partitioned from " + ", ".join(sorted(self.deaf_to | self.mute_to)))
        return ", ".join(parts)

    @property
    def uptime_s(self) -> float | None:
        return time.time() - self.started_at if self.started_at and self.state in ("up", "hung") else None


def _ephemeral_low() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_port_lock = threading.Lock()
_next_port: list[int] = []  # this process's cursor; starts at a random port, then walks on


def free_port(host: str = "127.0.0.1", count: int = 1) -> int:
    """The first of ``count`` free ports in a row, below the kernel's ephemeral range: a port
    the kernel picked (bind to 0) can be handed to an outgoing connection between this check
    and the node's start, or while a node is down between a crash and its restart, and the
    node then cannot listen ("address already in use"). Ports below that range never are.

    A process walks the range from a random start instead of drawing each port at random, so
    it hands out no port twice until it has walked the whole range, some 22,000 ports (two
    nodes of one cluster, or a node of the last test that is still being stopped, drew the
    same port about once a full suite run)."""
    low, high = 10_000, max(_ephemeral_low(), 12_000) - count
    with _port_lock:
        if not _next_port:
            _next_port.append(random.SystemRandom().randrange(low, high))
        for _ in range(2_000):
            first = _next_port[0] if _next_port[0] <= high else low  # the whole block below the range
            _next_port[0] = first + count
            held: list[socket.socket] = []
            try:
                for port in range(first, first + count):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    held.append(sock)
                    sock.bind((host, port))
                return first
            except OSError:
                continue
            finally:
                for sock in held:
                    sock.close()
    raise ClusterError(f"no {count} free ports in a row found on {host} below the ephemeral range")


class Supervisor:
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
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)

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
                + (["--consistency", c.consistency] if c.consistency else [])))
        for i, port in enumerate(order_ports):
            k = c.catalog_of(i)
            self._add(ManagedNode("order", i, orders[i], port, common("order", i, port) + [
                "--db", str(self.data_dir / f"order{i}.db"), "--catalog", catalogs[k], "--catalog-id", str(k)]))

    def _plan_attached(self) -> None:
        c = self.cluster
        self._add(ManagedNode("frontend", 0, c.attach_frontend, 0, attached=True, state="up"))
        for i, address in enumerate(c.attach_catalogs):
            self._add(ManagedNode("catalog", i, address, 0, attached=True, state="up"))
        for i, address in enumerate(c.attach_orders):
            self._add(ManagedNode("order", i, address, 0, attached=True, state="up"))

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
        with open(node.log_path, "ab") as log:
            log.write(f"---- {time.strftime('%H:%M:%S')} {node.name} {text}\n".encode())

    def _changed(self, node: ManagedNode) -> None:
        for listener in list(self.listeners):
            listener(node)

    # ---- processes ------------------------------------------------------------------------
    def start_all(self) -> None:
        for node in self.nodes.values():
            if not node.attached and node.state in ("down", "exited"):
                self.start(node.name)

    def start(self, name: str) -> None:
        node = self.node(name)
        self._need_process(node, "start")
        with self._lock:
            if node.state in ("starting", "up", "hung"):
                return
            node.ready.clear()
            node.exit_code = None
            node.slow_ms = 0
            node.cut_off = False
            env = {**os.environ, "BAZAR_SECRET": self.secret, "PYTHONUNBUFFERED": "1",
                   "BAZAR_PACE_MS": str(self.pace_ms)}
            log = open(node.log_path, "ab")  # noqa: SIM115 - owned by the reader thread
            log.write(f"---- {time.strftime('%H:%M:%S')} starting {node.name}\n".encode())
            log.flush()
            node.proc = self._spawner.submit(
                subprocess.Popen, node.command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            ).result()
            node.state = "starting"
            node.started_at = time.time()
            threading.Thread(target=self._read, args=(node, node.proc, log), name=f"log-{node.name}",
                             daemon=True).start()
        self._changed(node)

    def _read(self, node: ManagedNode, proc: subprocess.Popen, log) -> None:
        assert proc.stdout is not None
        with log:
            for raw in proc.stdout:
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                node.tail.append(line)
                if parse_ready_line(line) is not None and node.proc is proc:
                    with self._lock:
                        if node.state == "starting":
                            node.state = "up"
                    self._changed(node)  # listeners first: whoever waits sees them done
                    node.ready.set()
            code = proc.wait()
            log.write(f"---- {time.strftime('%H:%M:%S')} {node.name} ended with code {code}\n".encode())
        with self._lock:
            if node.proc is not proc:
                return
            if node.state != "down":
                node.state = "exited"
                node.exit_code = code
        self._changed(node)
        node.ready.set()  # wake anyone waiting: it will not become ready now

    def wait_ready(self, names: Iterable[str] | None = None, timeout: float = 30.0) -> None:
        """Block until the named nodes (all by default) print their ready line."""
        deadline = time.monotonic() + timeout
        for name in list(names) if names is not None else list(self.nodes):
            node = self.node(name)
            if node.attached:
                continue
            node.ready.wait(max(0.0, deadline - time.monotonic()))
            if node.state == "exited":
                tail = self.log_tail(name, 15)
                raise ClusterError(f"{name} exited with code {node.exit_code} while starting:\n{tail}")
            if node.state != "up":
                raise ClusterError(f"{name} did not become ready within {timeout:.0f} s:\n{self.log_tail(name, 15)}")

    def stop(self, name: str) -> None:
        node = self.node(name)
        self._need_process(node, "stop")
        with self._lock:
            proc = node.proc
            if proc is None or node.state in ("down", "exited"):
                node.state = "down"
                return
            node.state = "down"
        self._note(node, "asked to stop (SIGTERM)")
        _terminate(proc)
        self._changed(node)

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def crash(self, name: str) -> None:
        """SIGKILL: nothing is flushed, nothing in memory survives."""
        node = self.node(name)
        self._need_process(node, "crash")
        with self._lock:
            if node.proc is None or node.state in ("down", "exited"):
                return
            node.state = "down"
            node.proc.kill()
        node.proc.wait()
        self._note(node, "crashed (SIGKILL)")
        self._changed(node)

    def hang(self, name: str) -> None:
        """SIGSTOP: connections are still accepted by the kernel and never answered."""
        node = self.node(name)
        self._need_process(node, "hang")
        with self._lock:
            if node.state != "up":
                raise ClusterError(f"{name} is {node.status}; only a node that is up can hang")
            os.kill(node.proc.pid, signal.SIGSTOP)
            node.state = "hung"
        self._note(node, "hung (SIGSTOP)")
        self._changed(node)

    def resume(self, name: str) -> None:
        node = self.node(name)
        self._need_process(node, "resume")
        with self._lock:
            if node.state != "hung":
                return
            os.kill(node.proc.pid, signal.SIGCONT)
            node.state = "up"
        self._note(node, "resumed (SIGCONT)")
        self._changed(node)

    def stop_all(self) -> None:
        with self._lock:
            running = [(n, n.proc) for n in self.nodes.values()
                       if not n.attached and n.proc is not None and n.state not in ("down", "exited")]
            for node, _ in running:
                node.state = "down"
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

    def _need_process(self, node: ManagedNode, action: str) -> None:
        if node.attached:
            raise ClusterError(f"cannot {action} {node.name}: it is attached, not started here "
                               "(only slow and cut off work on attached nodes)")

    def log_tail(self, name: str, lines: int = 50) -> str:
        node = self.node(name)
        if node.log_path is not None and node.log_path.exists():
            with open(node.log_path, "rb") as handle:
                handle.seek(max(0, handle.seek(0, os.SEEK_END) - 64 * 1024))
                return "\n".join(handle.read().decode("utf-8", "replace").splitlines()[-lines:])
        return "\n".join(list(node.tail)[-lines:])

    # ---- admin over HTTP (slow, cut off, reset, state) ------------------------------------
    async def admin(self, name: str, method: str, path: str, body: Any = None, *, timeout: float = 3.0) -> Any:
        node = self.node(name)
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session = aiohttp.ClientSession()
            self._session_loop = loop
        try:
            async with self._session.request(
                method, node.address + path, json=body, headers={SECRET_HEADER: self.secret},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                data = await resp.json(content_type=None)
                if resp.status >= 400:
                    raise ClusterError(f"{name} refused {method} {path}: {data.get('message', resp.status)}")
                return data
        except TimeoutError:
            raise ClusterError(f"{name} did not answer in time ({timeout:.0f} s); it is {node.status}") from None
        except aiohttp.ClientError:
            raise ClusterError(f"{name} could not be reached; it is {node.status}") from None

    async def slow(self, name: str, ms: int) -> None:
        await self.admin(name, "POST", "/admin/slow", {"ms": ms})
        self.node(name).slow_ms = ms
        self._note(self.node(name), f"slowed by {ms} ms per answer" if ms else "back to normal speed")
        self._changed(self.node(name))

    async def pace(self, ms: int) -> list[str]:
        """Teaching speed for the whole cluster: every running node holds each message it sends
        for ``ms`` (0: full speed). Returns the nodes that could not be told (hung, say)."""
        self.pace_ms = ms
        missed = []
        for node in self.nodes.values():
            if node.state != "up":
                continue
            try:
                await self.admin(node.name, "POST", "/admin/pace", {"ms": ms})
            except ClusterError:
                missed.append(node.name)
        return missed

    async def cut_off(self, name: str, on: bool) -> None:
        await self.admin(name, "POST", "/admin/cutoff", {"on": on})
        self.node(name).cut_off = on
        self._note(self.node(name), "cut off" if on else "healed")
        self._changed(self.node(name))

    async def partition(self, a: str, b: str, *, one_way: bool = False, on: bool = True) -> None:
        """Cut the link from ``a`` to ``b`` (and back, unless ``one_way``): messages on it are
        lost, as on a network that stopped delivering (W8). ``on=False`` restores it."""
        links = [(a, b)] if one_way else [(a, b), (b, a)]
        for name in (a, b):
            self.node(name)  # an unknown name is refused before anything changes
        for sender, receiver in links:
            for name, attribute, other in ((sender, "mute_to", receiver), (receiver, "deaf_to", sender)):
                node = self.node(name)
                current = getattr(node, attribute)
                setattr(node, attribute, current | {other} if on else current - {other})
        for name in dict.fromkeys((a, b)):
            await self._push_links(name)
        arrow = "->" if one_way else "<->"
        self._note(self.node(a), f"link {a} {arrow} {b} {'cut' if on else 'restored'}")

    async def heal_partitions(self) -> None:
        """Restore every link a partition cut."""
        for node in list(self.nodes.values()):
            if node.deaf_to or node.mute_to:
                node.deaf_to = node.mute_to = frozenset()
                await self._push_links(node.name)

    async def _push_links(self, name: str) -> None:
        node = self.node(name)
        if node.state in ("up", "hung", "starting") and not node.attached:
            await self.admin(name, "POST", "/admin/links", {"deaf_to": sorted(node.deaf_to),
                                                            "mute_to": sorted(node.mute_to)})
        self._changed(node)

    async def state(self, name: str) -> dict[str, Any]:
        return await self.admin(name, "GET", "/admin/state")

    async def wait_settled(self, timeout: float = 10.0) -> None:
        """Wait until the front-end sees every running replica up and every running catalog
        replica sees its running peers up and vouches again (W2), so the first requests go
        where the rules say."""
        running = {n.name for n in self.nodes.values() if n.state == "up" and not n.cut_off}
        deadline = time.monotonic() + timeout
        while True:
            missing = await self._unseen(running)
            if not missing:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"still not seen as up after {timeout:.0f} s: {', '.join(missing)}")
            await asyncio.sleep(0.05)

    async def wait_noticed(self, name: str, timeout: float = 10.0) -> None:
        """Wait until the front-end (and, for a catalog, its running peers) have found ``name``
        out (W4): an outage is then measured as the cluster lives with it, not while it learns."""
        node = self.node(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replicas = (await self.state("frontend"))[f"{node.role}s"]["replicas"]
            seen_down = not replicas[node.index]["up"]
            if node.role == "catalog":
                for peer in self.of_role("catalog"):
                    if peer is not node and peer.state == "up":
                        peers = (await self.state(peer.name))["peers"]
                        seen_down &= not next(p for p in peers if p["id"] == node.index)["up"]
            if seen_down:
                return
            await asyncio.sleep(0.05)

    async def _unseen(self, running: set[str]) -> list[str]:
        missing = []
        if "frontend" in running:
            state = await self.state("frontend")
            seen = {f"{ring}{r['id']}" for ring in ("catalog", "order")
                    for r in state[f"{ring}s"]["replicas"] if r["up"]}
            missing += [f"{name} (by the front-end)" for name in sorted(running - seen - {"frontend"})]
        for node in self.of_role("catalog"):
            if node.name in running:
                state = await self.state(node.name)
                missing += [f"catalog{p['id']} (by {node.name})" for p in state["peers"]
                            if not p["up"] and f"catalog{p['id']}" in running]
                if state.get("rejoining"):
                    missing.append(f"{node.name} (back after a lapse, not yet heard by every peer)")
        return missing

    async def reset(self) -> list[str]:
        """Every replica's database back to the seven books; caches and histories emptied.
        Catalogs are told one new generation number, so that the ones already reset take
        nothing from the ones not yet reset (a replica down now adopts it when back)."""
        generation = time.time_ns()
        done = []
        for node in self.nodes.values():
            if node.state == "up":
                body = {"generation": generation} if node.role == "catalog" else None
                await self.admin(node.name, "POST", "/admin/reset", body)
                self._note(node, "reset: back to the seven books")
                done.append(node.name)
        return done

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _signal(proc: subprocess.Popen, signum: int) -> None:
    try:
        proc.send_signal(signum)
    except ProcessLookupError:
        pass


def _terminate(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not gone within the grace period."""
    _signal(proc, signal.SIGCONT)
    _signal(proc, signal.SIGTERM)
    try:
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

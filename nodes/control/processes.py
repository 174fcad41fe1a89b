"""A node as the supervisor keeps it (role, address, process, state, toggles in force), and the
free ports new nodes listen on."""
from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on Windows: each process keeps its own cursor
    fcntl = None  # type: ignore[assignment]

from nodes.control.errors import ClusterError
from nodes.control.spawn import Forked
from nodes.core.vocabulary import HealthState, NodeState


@dataclass
class ManagedNode:
    role: str
    index: int
    address: str
    port: int
    command: list[str] = field(default_factory=list)
    log_path: Path | None = None
    attached: bool = False
    #: Attached, and its process is the container engine's to kill, pause and start
    #: (nodes/control/engine.py): every fault works on it as on a node started here.
    by_engine: bool = False
    proc: subprocess.Popen | Forked | None = None
    state: NodeState = NodeState.DOWN
    exit_code: int | None = None
    slow_ms: int = 0
    cut_off: bool = False
    disk_full: bool = False  # a catalog replica's database may not grow (the disk-full fault)
    #: HTTP aborts set on it: path prefix -> (probability, "request" or "response").
    aborts: dict[str, tuple[float, str]] = field(default_factory=dict)
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
        return self.proc.pid if self.proc is not None and self.state != NodeState.DOWN else None

    @property
    def status(self) -> str:
        """What a person should read: the process state plus any toggle in force."""
        if self.state == NodeState.EXITED:
            return f"exited with code {self.exit_code}"
        parts: list[str] = [self.state]
        if self.state in (NodeState.UP, NodeState.HUNG, NodeState.STARTING):
            if self.slow_ms:
                parts.append(f"slowed {self.slow_ms} ms")
            if self.cut_off:
                parts.append(HealthState.CUT_OFF)
            elif self.deaf_to or self.mute_to:
                parts.append("partitioned from " + ", ".join(sorted(self.deaf_to | self.mute_to)))
        return ", ".join(parts)

    @property
    def uptime_s(self) -> float | None:
        if self.started_at is None or self.state not in (NodeState.UP, NodeState.HUNG):
            return None
        return time.time() - self.started_at


def _ephemeral_low() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_port_lock = threading.Lock()
_next_port: list[int] = []  # this process's cursor, when no shared one can be kept
#: The cursor every Bazar process on this machine walks together (see free_port).
CURSOR_FILE = "bazar-port-cursor"


def free_port(host: str = "127.0.0.1", count: int = 1) -> int:
    """The first of ``count`` free ports in a row, below the kernel's ephemeral range: a port
    the kernel picked (bind to 0) can be handed to an outgoing connection between this check
    and the node's start, or while a node is down between a crash and its restart, and the
    node then cannot listen ("address already in use"). Ports below that range never are.

    The range is walked from a cursor, so no port is handed out twice until the whole range,
    some 22,000 ports, has been walked (a node of the last test that is still being stopped
    keeps its port meanwhile). The cursor is kept in a file in the temporary folder, locked
    while it moves, and shared by every Bazar process of the machine: with one cursor each,
    two processes starting clusters at once (the test suite's two workers) walked the same
    stretch and handed out one port to two nodes, the later of which could not listen (twice
    in one CI run). Where no file can be kept, the cursor is this process's own."""
    low, high = 10_000, max(_ephemeral_low(), 12_000) - count
    with _port_lock, _shared_cursor(low, high) as cursor:
        for _ in range(2_000):
            first = cursor[0] if low <= cursor[0] <= high else low  # the whole block below the range
            cursor[0] = first + count
            if _free(host, first, count):
                return first
    raise ClusterError(f"no {count} free ports in a row found on {host} below the ephemeral range")


def _free(host: str, first: int, count: int) -> bool:
    held: list[socket.socket] = []
    try:
        for port in range(first, first + count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for sock in held:
            sock.close()


@contextlib.contextmanager
def _shared_cursor(low: int, high: int) -> Iterator[list[int]]:
    """The machine's port cursor as a one-item list, written back on leaving; the file stays
    locked meanwhile. It starts at a random port."""
    handle = None
    if fcntl is not None:  # without it the file could not be locked: not opened at all
        with contextlib.suppress(OSError):
            handle = open(Path(tempfile.gettempdir()) / CURSOR_FILE, "a+")  # noqa: SIM115 - closed below
    if handle is None:
        if not _next_port:
            _next_port.append(random.SystemRandom().randrange(low, high))
        yield _next_port
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        handle.seek(0)
        text = handle.read().strip()
        cursor = [int(text) if text.isdigit() else random.SystemRandom().randrange(low, high)]
        try:
            yield cursor
        finally:
            handle.seek(0)
            handle.truncate()
            handle.write(str(cursor[0]))
            handle.flush()

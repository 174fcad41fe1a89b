"""How the supervisor starts a node's process: forked from a warm fork server
(nodes/runtime/forkserver.py), or, where that cannot be used, ``subprocess.Popen``.

A forked node is a real process of its own, as an exec'd one is; what changes is that it does
not spend half a second of CPU importing aiohttp and SQLAlchemy first: the fork server imported
them once. ``Forked`` answers what the supervisor asks of a ``Popen`` (pid, output, wait, poll,
signals), so the supervisor treats both alike.

One fork server serves every supervisor of a process. It is started, and its answers read, by a
thread of its own that lives as long as it does: the kernel kills the fork server when the thread
that started it ends (PR_SET_PDEATHSIG belongs to the thread), so it must not be a supervisor's
short-lived one.

``BAZAR_FORK_SERVER=0`` in the environment starts every node with ``Popen`` instead."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

from nodes.runtime.forkserver import MESSAGE_BYTES

#: How long the fork server may take to import everything and say it is ready.
READY_S = 30.0


class Forked:
    """A node forked by the fork server, as the supervisor sees a ``subprocess.Popen``."""

    def __init__(self, pid: int, stdout: IO[bytes], args: list[str]) -> None:
        self.pid = pid
        self.stdout: IO[bytes] | None = stdout
        self.args = args
        self.returncode: int | None = None
        self._ended = threading.Event()
        self._signalling = threading.Lock()  # no pidfd closed (and its number reused) mid-signal
        # The node is the fork server's child, not ours: once it has reaped it, its pid may be
        # given to another process before we hear of the exit. A pidfd names this process
        # alone; a signal through it after the exit reaches nobody.
        self._gone = False  # reaped before we could name it: its pid is nobody's to signal
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pidfd, self._gone = None, True
        except OSError:  # a kernel without pidfds: the pid, as Popen does
            self._pidfd = None

    def _exited(self, code: int) -> None:
        with self._signalling:
            self.returncode = code
            pidfd, self._pidfd = self._pidfd, None
            if pidfd is not None:
                os.close(pidfd)
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Signal the node, and never another process: not once its exit is known, and through
        its pidfd (if the kernel gave one) in the moment between its reaping and our hearing of
        it (raises ProcessLookupError then, as ``os.kill`` does for a pid that is gone)."""
        with self._signalling:
            if self.returncode is not None:
                return
            if self._gone:
                raise ProcessLookupError(f"process {self.pid} has ended")
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signum)
            else:
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkServerError(RuntimeError):
    pass


class ForkServer:
    """The fork server process and the thread that started it and reads its answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._asked: dict[int, tuple[Future[Forked], IO[bytes], list[str]]] = {}
        self._nodes: dict[int, Forked] = {}
        self._ready: Future[socket.socket] = Future()
        # Its errors go to a file: a pipe nobody reads while it runs could fill and stop it.
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - kept for the fork server's life
        self.alive = True
        threading.Thread(target=self._run, name="fork-server", daemon=True).start()
        self._sock = self._ready.result(READY_S + 5)

    def _run(self) -> None:
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            with theirs:
                process = subprocess.Popen(
                    [sys.executable, "-m", "nodes.runtime.forkserver", "--socket", str(theirs.fileno()),
                     "--parent-pid", str(os.getpid())],
                    cwd=Path(__file__).resolve().parents[2], pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=self._errors, start_new_session=True,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
            ours.settimeout(READY_S)
            hello = ours.recv(MESSAGE_BYTES)
            ours.settimeout(None)
            if not hello:
                raise ForkServerError(f"the fork server ended while starting: {self._tail(process)}")
        except (OSError, ForkServerError) as error:
            self.alive = False
            self._ready.set_exception(ForkServerError(str(error)))
            return
        self._ready.set_result(ours)
        try:
            for message in _messages(ours):
                try:
                    self._take(json.loads(message))
                except Exception:  # noqa: BLE001 - one odd message must not end every node
                    traceback.print_exc()
        finally:
            self._end(process)

    def _take(self, message: dict[str, Any]) -> None:
        with self._lock:
            if "exited" in message:
                node = self._nodes.pop(message["exited"], None)
                if node is not None:
                    node._exited(message["code"])
                return
            asked = self._asked.pop(message.get("id") or 0, None)
            if asked is None:  # its asker gave up waiting: the node it forked is nobody's
                if "pid" in message:
                    with contextlib.suppress(OSError):
                        os.kill(message["pid"], signal.SIGKILL)
                return
            future, stdout, args = asked
            if "pid" in message:
                node = Forked(message["pid"], stdout, args)
                self._nodes[node.pid] = node
                future.set_result(node)
            else:
                stdout.close()
                future.set_exception(ForkServerError(message.get("error", "the fork server refused")))

    def _end(self, process: subprocess.Popen) -> None:
        """The fork server is gone (it never should be while its process runs): whatever was
        asked fails, and every node it forked is reported ended (the kernel killed them with it)."""
        with self._lock:
            self.alive = False
            for future, stdout, _args in self._asked.values():
                stdout.close()
                future.set_exception(ForkServerError(f"the fork server ended: {self._tail(process)}"))
            self._asked.clear()
            for node in self._nodes.values():
                node._exited(-9)
            self._nodes.clear()
        process.kill()
        process.wait()

    def _tail(self, process: subprocess.Popen) -> str:
        if process.poll() is None:
            return "it stopped answering"
        self._errors.seek(0)
        errors = self._errors.read()[-2000:].decode("utf-8", "replace").strip()
        return f"exit code {process.returncode}" + (f": {errors}" if errors else "")

    def spawn(self, command: list[str], *, cwd: Path, env: dict[str, str]) -> Forked:
        """Fork ``python -m nodes ARGS`` (``command``) with ``env`` in ``cwd``; its output (and
        errors) readable from the returned node's ``stdout``."""
        read, write = os.pipe()
        stdout = os.fdopen(read, "rb")
        future: Future[Forked] = Future()
        with self._lock:
            if not self.alive:
                os.close(write)
                stdout.close()
                raise ForkServerError("the fork server has ended")
            self._next += 1
            ident = self._next
            self._asked[ident] = (future, stdout, command)
        request = {"id": ident, "argv": command[3:], "env": env, "cwd": str(cwd)}
        try:
            socket.send_fds(self._sock, [json.dumps(request).encode()], [write])
        except OSError as error:
            with self._lock:
                self._asked.pop(ident, None)
            stdout.close()
            raise ForkServerError(f"cannot reach the fork server: {error.strerror}") from None
        finally:
            os.close(write)
        try:
            return future.result(READY_S)
        except TimeoutError:
            with self._lock:
                if self._asked.pop(ident, None) is not None:
                    stdout.close()
            raise ForkServerError(f"the fork server did not answer within {READY_S:.0f} s") from None


def _messages(sock: socket.socket) -> Iterator[bytes]:
    """The fork server's messages, one at a time, until it closes the socket."""
    while True:
        try:
            data = sock.recv(MESSAGE_BYTES)
        except OSError:
            return
        if not data:
            return
        yield data


_server: ForkServer | None = None
_server_lock = threading.Lock()


def _fork_server() -> ForkServer:
    global _server
    with _server_lock:
        if _server is None or not _server.alive:
            _server = ForkServer()
        return _server


def forkable(command: list[str]) -> bool:
    """Whether ``command`` is a node the fork server can start: this Python's ``-m nodes``, on
    Linux, unless BAZAR_FORK_SERVER=0 says not to."""
    return (sys.platform.startswith("linux") and os.environ.get("BAZAR_FORK_SERVER", "1") != "0"
            and command[:3] == [sys.executable, "-m", "nodes"])


def start_node(command: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.Popen | Forked:
    """Start a node's process: forked where it can be, else ``Popen``. Its output and errors
    come out of ``stdout``; it has a session of its own (a Ctrl-C in the terminal is the
    launcher's to handle); stdin is /dev/null."""
    if forkable(command):
        try:
            return _fork_server().spawn(command, cwd=cwd, env=env)
        except (ForkServerError, TimeoutError):
            pass  # started the usual way below; the next start tries a new fork server
    return subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)

"""The fork server: one warm process that starts Bazar's nodes by forking itself.

A node started as ``python -m nodes ...`` spends about half a second of CPU importing aiohttp,
SQLAlchemy and its own code before it does anything (measured: 0.53 s on average over the 802
nodes one run of the test suite started, some 40 % of the suite's CPU). This process imports all
of it once; each node is then a ``fork()`` of it that runs ``nodes.__main__.main`` with the
node's own arguments, environment, working folder and output. The node is a real process of its
own — its own pid, port, database and memory — started in milliseconds. The supervisor talks to
this process through nodes/control/spawn.py; docs/architecture.md says where it sits.

The protocol, over a Unix SOCK_SEQPACKET socket (one message each, JSON):

- the supervisor asks ``{"id": n, "argv": [...], "env": {...}, "cwd": "..."}`` with one file
  descriptor attached, the write end of the pipe the node's output goes to;
- this process answers ``{"id": n, "pid": pid}`` (or ``{"id": n, "error": "..."}``), and, when
  a node it forked ends, ``{"exited": pid, "code": code}`` (``-N``: ended by signal N, as
  ``subprocess`` says it).

It ends when the supervisor's process closes the socket, and the kernel kills it when the thread
that started it ends (``--parent-pid``, as for every node); each node it forked asks the kernel
to kill it when this process ends, so a launcher that dies, however it dies, takes every node with
it, as before.

Run as ``python -m nodes.runtime.forkserver --socket FD --parent-pid PID``."""
from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import select
import signal
import socket
import sys
import traceback
from typing import Any

from nodes.runtime.server import die_with_parent

#: The largest message either side sends: a request carries the environment.
MESSAGE_BYTES = 1 << 17


#: setproctitle's, where it is installed (requirements.txt): set up before the environment
#: changes, as it moves the environment to make room for a longer title.
_title: Any = None


def _warm() -> None:
    """Import what every kind of node imports, so that a fork has nothing left to load."""
    global _title
    try:
        from setproctitle import setproctitle
        setproctitle(" ".join(sys.orig_argv))  # its set-up, done once here
        _title = setproctitle
    except ImportError:
        pass
    import nodes.__main__  # noqa: F401
    import nodes.runtime.catalog.app  # noqa: F401
    import nodes.runtime.frontend.app  # noqa: F401
    import nodes.runtime.order.app  # noqa: F401


def _node_argv(argv: list[str], parent: int) -> list[str]:
    """The node's arguments, its parent now this process: the node dies with it (and this
    process with the launcher)."""
    out = list(argv)
    if "--parent-pid" in out:
        out[out.index("--parent-pid") + 1] = str(parent)
    return out


def _become_node(request: dict[str, Any], output: int, closing: list[int]) -> int:
    """In the forked child: become the node ``request`` describes and run it; its exit code."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh interpreter has it
    for fd in closing:
        os.close(fd)
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(null)
    os.close(output)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    argv = _node_argv(request["argv"], os.getppid())
    sys.argv = [sys.argv[0], *argv]
    if _title is not None:  # what ps and pgrep -f show: the node's own command line
        _title(" ".join([sys.executable, "-m", "nodes", *request["argv"]]))  # as the supervisor planned it
    from nodes.__main__ import main
    try:
        main(argv)
        code = 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - a node's crash is printed to its log, as Python would
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # what the interpreter's own exit would run (logging's flush among them)
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    try:
        sock.send(json.dumps(message).encode())
    except OSError:
        pass  # the supervisor is gone; this process ends at the next read


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def serve(sock: socket.socket) -> None:
    """Fork a node for each request until the supervisor closes ``sock``."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that SIGCHLD writes to the pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        readable: list[Any] = select.select([sock, wake_read], [], [])[0]  # type: ignore[type-var]
        if wake_read in readable:
            while True:
                try:
                    if not os.read(wake_read, 512):
                        break
                except BlockingIOError:
                    break
            _reap(sock)
        if sock not in readable:
            continue
        try:
            data, fds, _flags, _address = socket.recv_fds(sock, MESSAGE_BYTES, 1)
        except OSError:
            return
        if not data:
            return  # the supervisor's process ended
        try:
            request = json.loads(data)
            request["argv"], request["env"], request["cwd"]  # noqa: B018 - what a request must hold
        except (ValueError, KeyError, TypeError) as error:
            for fd in fds:
                os.close(fd)
            _send(sock, {"id": None, "error": f"not a request: {error}"})
            continue
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            _send(sock, {"id": request.get("id"), "error": "a request must carry the node's output"})
            continue
        try:
            pid = os.fork()
        except OSError as error:
            os.close(fds[0])
            _send(sock, {"id": request.get("id"), "error": f"fork failed: {error.strerror}"})
            continue
        if pid == 0:
            code = 1
            try:
                code = _become_node(request, fds[0], [sock.fileno(), wake_read, wake_write])
            except BaseException:  # noqa: BLE001 - said before the child ends (a folder gone, say)
                traceback.print_exc()
                sys.stderr.flush()
            finally:
                os._exit(code)
        os.close(fds[0])
        _send(sock, {"id": request.get("id"), "pid": pid})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nodes.runtime.forkserver", description=__doc__.split("\n")[0])
    parser.add_argument("--socket", type=int, required=True, help="the inherited Unix socket's descriptor")
    parser.add_argument("--parent-pid", type=int, help="die when this process (the launcher) dies")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.socket)
    die_with_parent(args.parent_pid)
    _warm()
    # What is imported stays: out of the collector's sight, a node's collections never walk it
    # nor write its reference counts' pages (shared with the fork server until written).
    gc.collect()
    gc.freeze()
    _send(sock, {"ready": os.getpid()})
    serve(sock)


if __name__ == "__main__":
    main()

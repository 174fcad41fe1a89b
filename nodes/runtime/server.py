"""Running one node as an OS process: bind, print the ready line, stop cleanly on SIGTERM,
and never outlive the launcher that started it."""
from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import signal
import sys

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from nodes.runtime.node import Node

READY_PREFIX = "BAZAR-READY "
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (also when the parent is
    SIGKILLed, and also while this process is stopped by SIGSTOP)."""
    if parent_pid is None or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


class OneLineForMalformedRequests(logging.Filter):
    """A request the HTTP parser rejects (a request line over 8 KiB, a NUL in a header, an unknown
    method ...) is the client's mistake, answered 400 before any handler runs; aiohttp logs each
    as an ERROR with a traceback, so any client could write ~10 log lines per request. Here each
    becomes one warning line, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "rejected a malformed request: %s", (error.message or type(error).__name__,)
            record.exc_info = record.exc_text = None
        return True


def run_node(app: web.Application, node: Node, *, host: str, port: int, parent_pid: int | None) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {node.name} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.server").addFilter(OneLineForMalformedRequests())
    die_with_parent(parent_pid)
    asyncio.run(_serve(app, node, host, port))


async def _serve(app: web.Application, node: Node, host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
    try:
        await site.start()
    except OSError as exc:
        print(f"{node.name}: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr, flush=True)
        await runner.cleanup()
        raise SystemExit(3) from None
    bound_host, bound_port = runner.addresses[0][:2]
    ready = {"role": node.role, "id": node.index, "address": f"http://{bound_host}:{bound_port}", "pid": os.getpid()}
    print(READY_PREFIX + json.dumps(ready), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    logging.getLogger(__name__).info("stopping on signal")
    await runner.cleanup()


def parse_ready_line(line: str) -> dict | None:
    """The ready line's fields, or None when ``line`` is not a ready line."""
    if not line.startswith(READY_PREFIX):
        return None
    try:
        return json.loads(line[len(READY_PREFIX):])
    except ValueError:
        return None

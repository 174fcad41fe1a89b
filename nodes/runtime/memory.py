"""Giving the allocator's free pages back to the system, so a node's memory follows what it keeps.

A node's Python objects stay flat over a long day (docs/measurements.md, "long-day"), but its
RSS grew: glibc's main heap keeps the pages of the holes that a busy node's short-lived
buffers leave inside it (asyncio, for one, reads each socket into a 256 KiB block and then
shrinks it to what arrived). ``malloc_trim(0)`` hands the whole free pages inside those holes
back (``madvise(MADV_DONTNEED)``). It walks the allocator's free lists: 0.2 ms with nothing to
give back, 2 ms for 19 MB of holes (measured in a test process), every ``TRIM_EVERY_S``;
mapping every large block instead (``MALLOC_MMAP_THRESHOLD_``) cost a fifth of the load
throughput.

Only glibc has ``malloc_trim``; elsewhere (macOS, musl) ``trimmer()`` is ``None`` and nothing runs.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from nodes.runtime.tasks import cancel_and_wait

#: How often a node gives its free pages back.
TRIM_EVERY_S = 30.0


def trimmer() -> Callable[[], int] | None:
    """``malloc_trim(0)`` of this process's C library (1 if it gave memory back), or ``None``."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


async def trim_now_and_then(every_s: float = TRIM_EVERY_S) -> None:
    """Give the free pages back every ``every_s`` seconds, until cancelled."""
    trim = trimmer()
    if trim is None:
        return
    while True:
        await asyncio.sleep(every_s)
        trim()


async def trim_ctx(_app: web.Application) -> AsyncIterator[None]:
    """An aiohttp cleanup context running ``trim_now_and_then`` for the node's lifetime."""
    task = asyncio.create_task(trim_now_and_then())
    yield
    await cancel_and_wait(task)

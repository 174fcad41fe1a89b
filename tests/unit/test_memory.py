"""A node gives its allocator's free pages back (nodes/runtime/memory.py)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os

import pytest

from nodes.runtime.memory import trimmer

pytestmark = pytest.mark.timeout(30)

PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


@pytest.mark.skipif(trimmer() is None, reason="no malloc_trim: not glibc")
def test_the_free_holes_a_busy_heap_leaves_are_given_back():
    """The long day's growth in small: blocks the heap lends (under the mmap threshold) freed
    between blocks still kept, so the heap cannot shrink from its top; the trim gives the
    holes' pages back."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    freed, kept = [], []
    for _ in range(1000):  # 128 MB in 64 KiB blocks: every other one freed, its neighbours kept
        for blocks in (freed, kept):
            block = libc.malloc(64 * 1024)
            ctypes.memset(block, 1, 64 * 1024)
            blocks.append(block)
    for block in freed:
        libc.free(block)
    held = resident_bytes()
    trim = trimmer()
    assert trim is not None
    trim()
    given_back = held - resident_bytes()
    for block in kept:
        libc.free(block)
    assert given_back > 32 * 1024 * 1024, f"the trim gave back {given_back / 1e6:.1f} MB of ~64"

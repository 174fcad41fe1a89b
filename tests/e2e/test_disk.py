"""A full disk never stops a node (issue 25, item 1): the supervisor drains every node's output
whatever the disk does, so a node that prints while its log's disk is full goes on answering, and
its log says how many lines were lost once the disk takes lines again. The logs folder is a real
256 KiB tmpfs mounted for the test (root only; skipped elsewhere) and unmounted after."""
from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.support import Http, make_cluster, start, wait_until

pytestmark = pytest.mark.timeout(120)


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "256k"):
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Take every free byte of ``folder``'s disk; the filler file, to delete later."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 4096)
    return filler


async def malformed(address: str, count: int) -> None:
    """Requests the HTTP parser rejects (a NUL inside a header): each makes the node print a line."""
    host, port = address.removeprefix("http://").split(":")
    for _ in range(count):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n")
        await writer.drain()
        await asyncio.wait_for(reader.read(4096), 5)  # a node blocked on its output answers nothing
        writer.close()


async def test_a_node_that_prints_while_its_logs_disk_is_full_keeps_answering(tmp_path, supervisors):
    with small_disk(tmp_path / "logs") as logs:
        supervisor = start(make_cluster(tmp_path, catalogs=2, orders=2))
        supervisors.append(supervisor)
        http = Http(supervisor)
        try:
            filler = fill(logs)
            # Far more than a pipe holds (64 KiB): with nobody draining it, the node would block.
            await malformed(supervisor.node("catalog0").address, 1500)
            status, _ = await asyncio.wait_for(http.get("/health", node="catalog0"), 5)
            assert status == 200
            assert supervisor.node("catalog0").state == "up"
            status, book = await http.get("/lookup/1")
            assert status == 200, book
            filler.unlink()
            await malformed(supervisor.node("catalog0").address, 1)
            log = logs / "catalog0.log"
            await wait_until(lambda: "lines of output lost: the disk was full" in log.read_text(errors="replace"),
                             10, "the log to say how many lines were lost")
        finally:
            await http.close()
            await supervisor.aclose()
            supervisor.close()

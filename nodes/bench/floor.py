"""The floor: what one request/answer exchange costs between two processes on this machine, an
aiohttp client and server (Bazar's stack) next to bare asyncio streams."""
from __future__ import annotations

import asyncio

from nodes.bench.common import STAT_COLUMNS, Context, Table, stats_row
from nodes.control.supervisor import PROJECT_ROOT, free_port
from nodes.verify.workload import Stats, percentile

# ---- the floor: one exchange on this stack, next to a bare asyncio exchange ---------------------
#: The bare servers the floor is measured against (nodes/bench/reference/floor_*.py).
_FLOOR_SERVERS = {"aiohttp": "nodes.bench.reference.floor_aiohttp", "asyncio": "nodes.bench.reference.floor_asyncio"}


async def floor(ctx: Context, exchanges: int = 2000) -> list[Table]:
    """What one request/answer exchange costs between two processes on this machine: an
    aiohttp client and server (Bazar's stack), next to bare asyncio streams doing the same
    HTTP/1.1 exchange on a kept-alive connection. Bazar's buy makes several exchanges in a
    row; this is the floor under each."""
    import sys
    import time

    import aiohttp

    ctx.progress.plan(2 * exchanges)
    rows = []
    for name, module in _FLOOR_SERVERS.items():
        port = free_port()
        server = await asyncio.create_subprocess_exec(sys.executable, "-m", module, str(port), cwd=PROJECT_ROOT)
        try:
            for _ in range(200):
                try:
                    _r, w = await asyncio.open_connection("127.0.0.1", port)
                    w.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"the bare {name} server did not start")
            times: list[float] = []
            if name == "aiohttp":
                async with aiohttp.ClientSession() as session:
                    for _ in range(exchanges):
                        t0 = time.perf_counter()
                        async with session.get(f"http://127.0.0.1:{port}/lookup/1") as resp:
                            await resp.json()
                        times.append((time.perf_counter() - t0) * 1000)
                        ctx.progress.step()
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                request = f"GET /lookup/1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
                for _ in range(exchanges):
                    t0 = time.perf_counter()
                    writer.write(request)
                    await reader.readuntil(b"\r\n\r\n")
                    await reader.readexactly(2)
                    times.append((time.perf_counter() - t0) * 1000)
                    ctx.progress.step()
                writer.close()
            times.sort()
            stats = Stats(len(times), sum(times) / len(times), percentile(times, 50), percentile(times, 95),
                          percentile(times, 99))
            rows.append(stats_row(f"{name} client and server", stats))
        finally:
            if server.returncode is None:
                server.terminate()
            await server.wait()
    return [Table(f"The floor: one exchange between two processes ({exchanges} in a row, kept-alive)",
                  ["stack", *STAT_COLUMNS], rows,
                  [f"aiohttp costs {rows[0][1] / rows[1][1]:.1f}x a bare asyncio exchange."])]

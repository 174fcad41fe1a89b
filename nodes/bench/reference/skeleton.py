"""The floor under the load goal (issue 17): Bazar's five processes and its message shapes
with nothing else. A buy makes the same seven exchanges in a row (shopper → front-end →
order → catalog read, catalog write → peer check, peer update ∥ front-end invalidation) with
the same durable SQLite commits (WAL, synchronous=FULL) at the order and both catalogs,
buys of a book ride one write round (group commit), the front-end keeps an LRU lookup cache
of 3; aiohttp both ways. No replication rules, no leases, no failover, no telemetry, no
middleware, no input checks: it is unsafe under any fault and answers nothing but the
load's two requests. What it can serve on a machine is the most Bazar could; it imports
nothing from Bazar, and Bazar nothing from it.

``launcher.py bench --experiment load --against skeleton`` (or ``skeleton-no-check``, the
same without the peer check: six exchanges) puts it beside Bazar in one run.
"""
from __future__ import annotations

import asyncio
import collections
import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from nodes.bench.reference.documented_v2 import ROOT, _die_with_parent, stop, wait_ready

__all__ = ["start", "stop", "wait_ready"]

BOOKS = range(1, 8)
STOCK = 100_000


def _database(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE IF NOT EXISTS rows (key INTEGER PRIMARY KEY, value TEXT)")
    return connection


class Disk:
    """Durable commits in a worker thread, one writer at a time (as SQLite takes them)."""

    def __init__(self, path: Path) -> None:
        self.connection = _database(path)
        self.lock = threading.Lock()

    def _commit(self, key: int, value: str) -> None:
        with self.lock:
            self.connection.execute("BEGIN")
            self.connection.execute("INSERT OR REPLACE INTO rows VALUES (?, ?)", (key, value))
            self.connection.execute("COMMIT")

    async def commit(self, key: int, value: dict) -> None:
        await asyncio.to_thread(self._commit, key, json.dumps(value))


async def serve(role: str, index: int, port: int, config: dict) -> None:
    import aiohttp
    from aiohttp import web

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    frontend, orders, catalogs = config["frontend"], config["orders"], config["catalogs"]
    app = web.Application()
    routes = app.router
    if role == "frontend":
        cache: collections.OrderedDict[int, dict] = collections.OrderedDict()
        turn = [0]

        async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
            # The load benchmark's request id sent back, as Bazar's front-end does, so that
            # both are timed per request alike (nodes/bench/load.py).
            tag = request.headers.get("X-Bazar-Trace")
            if tag is not None:
                response.headers["X-Bazar-Trace"] = tag

        app.on_response_prepare.append(echo_request_id)

        async def lookup(request: web.Request) -> web.Response:
            book = int(request.match_info["id"])
            if book in cache:
                cache.move_to_end(book)
                return web.json_response(cache[book])
            turn[0] = (turn[0] + 1) % len(catalogs)
            async with session.get(f"{catalogs[turn[0]]}/query/{book}") as answer:
                found = await answer.json()
            cache[book] = found
            while len(cache) > 3:
                cache.popitem(last=False)
            return web.json_response(found)

        async def buy(request: web.Request) -> web.Response:
            book = int(request.match_info["id"])
            async with session.put(f"{orders[book % len(orders)]}/buy/{book}") as answer:
                return web.json_response(await answer.json())

        async def invalidate(request: web.Request) -> web.Response:
            cache.pop(int(request.match_info["id"]), None)
            return web.Response(status=204)

        routes.add_get("/lookup/{id}", lookup)
        routes.add_put("/buy/{id}", buy)
        routes.add_delete("/invalidate/{id}", invalidate)
    elif role == "order":
        disk, catalog, count = Disk(Path(config["db"])), catalogs[index % len(catalogs)], [0]

        async def buy(request: web.Request) -> web.Response:
            book = int(request.match_info["id"])
            async with session.get(f"{catalog}/query/{book}") as answer:
                found = await answer.json()
            async with session.put(f"{catalog}/update/{book}", json={"quantity": found["quantity"] - 1}) as answer:
                await answer.json()
            count[0] += 1
            await disk.commit(count[0], {"book": book})
            return web.json_response({"bought": book})

        routes.add_put("/buy/{id}", buy)
    else:
        disk = Disk(Path(config["db"]))
        peers = [c for i, c in enumerate(catalogs) if i != index]
        books = {book: {"id": book, "quantity": STOCK, "seq": 0} for book in BOOKS}
        waiting: dict[int, list[asyncio.Future]] = collections.defaultdict(list)
        leading: set[int] = set()

        async def call(method: str, url: str, body: dict | None = None) -> None:
            async with session.request(method, url, json=body) as answer:
                await answer.read()

        async def rounds(book: int) -> None:
            try:
                while waiting[book]:
                    riders, waiting[book] = waiting[book], []  # every buy waiting rides this round
                    if config["check"]:
                        await asyncio.gather(*(call("POST", f"{p}/check/{book}", {"seq": books[book]["seq"]})
                                               for p in peers))
                    new = {**books[book], "quantity": books[book]["quantity"] - len(riders),
                           "seq": books[book]["seq"] + 1}
                    await asyncio.gather(*(call("POST", f"{p}/rep/{book}", new) for p in peers),
                                         call("DELETE", f"{frontend}/invalidate/{book}"))
                    await disk.commit(book, new)
                    books[book] = new
                    for rider in riders:
                        rider.set_result(new)
            finally:
                leading.discard(book)

        async def query(request: web.Request) -> web.Response:
            return web.json_response(books[int(request.match_info["id"])])

        async def update(request: web.Request) -> web.Response:
            book = int(request.match_info["id"])
            await request.json()
            ride = asyncio.get_running_loop().create_future()
            waiting[book].append(ride)
            if book not in leading:
                leading.add(book)
                asyncio.ensure_future(rounds(book))
            return web.json_response(await ride)

        async def check(request: web.Request) -> web.Response:
            await request.json()
            return web.json_response({"granted": True})

        async def replicate(request: web.Request) -> web.Response:
            new = await request.json()
            await disk.commit(new["id"], new)
            books[new["id"]] = new
            return web.json_response({"applied": True})

        routes.add_get("/query/{id}", query)
        routes.add_put("/update/{id}", update)
        routes.add_post("/check/{id}", check)
        routes.add_post("/rep/{id}", replicate)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def start(port: int, data: Path, *, check: bool = True) -> tuple[str, list[subprocess.Popen]]:
    """Two catalogs and two orders and a front-end on ``port`` .. ``port + 4``."""
    url = lambda p: f"http://127.0.0.1:{p}"  # noqa: E731
    config = {"frontend": url(port), "orders": [url(port + 1), url(port + 2)],
              "catalogs": [url(port + 3), url(port + 4)], "check": check}
    plans = [("frontend", 0, port), ("order", 0, port + 1), ("order", 1, port + 2),
             ("catalog", 0, port + 3), ("catalog", 1, port + 4)]
    data.mkdir(parents=True, exist_ok=True)
    log = open(data / "skeleton.log", "ab")  # noqa: SIM115 (the children hold it open)
    processes = []
    for role, index, p in plans:
        mine = {**config, "db": str(data / f"skeleton-{role}{index}.db")}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "nodes.bench.reference.skeleton", role, str(index), str(p), json.dumps(mine)],
            cwd=ROOT, stdout=log, stderr=log, preexec_fn=_die_with_parent))
    log.close()
    return url(port), processes


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])))

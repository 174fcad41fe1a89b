"""The order replica's HTTP application: the buy flow of protocol.md against its one
catalog replica, made idempotent by the buy's id (W7), and its purchase history."""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from ..config import OrderConfig
from ..shared.client import Timeouts
from ..shared.errors import ApiError, book_id
from ..shared.node import Node, build_app
from .store import OrderStore, Purchase

BUY_ID_HEADER = "X-Bazar-Buy-Id"
PURCHASED = "Book with the specified ID purchased"
OUT_OF_STOCK = "Book with the specified ID is out of stock"
#: How long one buy keeps re-reading and retrying after 409s before it gives up.
RETRY_BUDGET_S = 3.0
HEALTH_TIMEOUTS = Timeouts(connect=0.1, total=0.25)


def init_app(config: OrderConfig) -> web.Application:
    node = Node("order", config.index, config.timeouts, secret=config.secret, telemetry_on=config.telemetry)
    catalog = config.catalog
    catalog_name = f"catalog{config.catalog_index}"
    disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="order-db")
    holder: dict[str, OrderStore] = {}
    recorded: set[str] = set()  # buy ids in this replica's history, so a repeat costs no disk read
    counts = {"bought": 0, "out_of_stock": 0, "unreachable": 0}

    async def store_ctx(_app: web.Application):
        holder["store"] = await asyncio.get_running_loop().run_in_executor(disk, OrderStore, config.db)
        recorded.update(await on_disk(holder["store"].buy_ids))
        yield
        disk.shutdown(wait=True)
        holder["store"].close()

    def on_disk(fn, *args):
        return asyncio.get_running_loop().run_in_executor(disk, fn, *args)

    node.describe = lambda: {"catalog": catalog, "catalog_id": config.catalog_index, **counts}

    async def health() -> tuple[int, dict]:
        # An order replica is only useful while its catalog answers (S8, S11): say so, so
        # the front-end's probe can route around it before a shopper pays the timeout (W4).
        probe = await node.client.call("GET", f"{catalog}/health", to=catalog_name, label="/health",
                                       timeouts=HEALTH_TIMEOUTS, record=False)
        if probe.status == 200:
            return 200, {"status": "up"}
        return 503, {"status": "degraded", "message": f"Catalog server {catalog_name} could not be reached"}

    node.health = health

    def unreachable(outcome: str) -> ApiError:
        counts["unreachable"] += 1
        node.telemetry.emit("order", outcome="unreachable")
        return ApiError(504, f"Catalog server {catalog_name} could not be reached", outcome=outcome)

    def purchased(purchase: Purchase | None, buy_id: str) -> web.Response:
        counts["bought"] += 1
        node.telemetry.emit("order", outcome="bought", buy_id=buy_id)
        body = {"success": True, "message": PURCHASED, "buy_id": buy_id}
        if purchase is not None:
            body["order_id"] = purchase.order_id
        return web.json_response(body)

    async def buy(request: web.Request) -> web.Response:
        target = book_id(request)
        buy_id = (request.headers.get(BUY_ID_HEADER) or uuid.uuid4().hex)[:100]
        store = holder["store"]
        if buy_id in recorded:  # W7: the same buy again gets its first outcome
            return purchased(await on_disk(store.find, buy_id), buy_id)
        deadline = time.monotonic() + RETRY_BUDGET_S
        since = time.time()  # travels with every attempt: the older buy wins a conflict
        attempt = 0
        while True:
            attempt += 1
            read = await node.client.call("GET", f"{catalog}/query/item/{target}", to=catalog_name,
                                          label=f"/query/item/{target}")
            if not read.answered:
                raise unreachable("not done")
            if read.status == 404:
                raise ApiError(404, "Book with the specified ID does not exist")
            if read.status == 200:
                book = read.data
                if book["quantity"] <= 0:
                    counts["out_of_stock"] += 1
                    node.telemetry.emit("order", outcome="out_of_stock", buy_id=buy_id)
                    return web.json_response({"success": False, "message": OUT_OF_STOCK, "buy_id": buy_id})
                write = await node.client.call(
                    "PUT",
                    f"{catalog}/update/{target}",
                    to=catalog_name,
                    label=f"/update/{target} quantity: {book['quantity'] - 1}",
                    body={"quantity": book["quantity"] - 1, "seq": book["seq"], "buy_id": buy_id, "since": since},
                )
                if not write.answered:
                    # The catalog may have carried it out; a retry with the same id is safe.
                    raise unreachable("unknown" if write.maybe_processed else "not done")
                if write.status == 200:
                    purchase = None
                    if not write.data.get("duplicate"):
                        purchase = await on_disk(store.record, buy_id, target, book["title"], book["price"])
                        recorded.add(buy_id)
                    return purchased(purchase, buy_id)
                if write.status == 404:
                    raise ApiError(404, "Book with the specified ID does not exist")
                if write.status == 503:
                    raise unreachable("not done")  # the catalog withdrew it: another path may succeed
                if write.status != 409:
                    raise unreachable("unknown")
            elif read.status != 409:
                raise unreachable("not done")
            # 409: our catalog's copy was outdated or another buy holds the book; read again.
            if time.monotonic() > deadline:
                raise ApiError(503, "The book is in too much demand right now; try again", outcome="not done")
            await asyncio.sleep(random.uniform(0, min(0.05, 0.005 * attempt)))  # back-off, not a wait

    async def orders(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            raise ApiError(422, "'limit' must be a number") from None
        limit = max(1, min(limit, 10_000))
        history = await on_disk(holder["store"].history, limit)
        return web.json_response([purchase.as_record() for purchase in history])

    async def reset(_request: web.Request) -> web.Response:
        await on_disk(holder["store"].reset)
        recorded.clear()
        for key in counts:
            counts[key] = 0
        node.emit_snapshot()
        return web.json_response(node.state())

    routes = [
        web.put("/buy/{id}", buy),
        web.get("/orders", orders),
        web.post("/admin/reset", reset),
    ]
    return build_app(node, routes, cleanup_ctx=[store_ctx])

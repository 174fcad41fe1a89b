"""The order replica's HTTP application: the buy flow of protocol.md against its one
catalog replica, made idempotent by the buy's id (W7), and its purchase history."""
from __future__ import annotations

import asyncio

from aiohttp import web

from nodes.core.messages import Buy
from nodes.core.order.protocol import OrderReplica
from nodes.core.wire import response_of
from nodes.runtime.client import Pace
from nodes.runtime.config import OrderConfig
from nodes.runtime.contract import ATTEMPT, BUY_ID, OBJECT, TRACE, Param, get, post, put
from nodes.runtime.driver import Driver
from nodes.runtime.errors import ApiError, attempt_of, book_id, buy_id_of
from nodes.runtime.node import Node, build_app
from nodes.runtime.order.store import OrderStore
from nodes.runtime.signing import is_loopback


def init_app(config: OrderConfig) -> web.Application:
    # The history names every buyer's buy id: internal, like the catalogs' /update (issue 25).
    node = Node("order", config.index, config.timeouts, secret=config.secret, loopback=is_loopback(config.host),
                telemetry_on=config.telemetry, otel=config.otel,
                pace=Pace(config.pace_ms), internal_prefixes=("/orders",))
    core = OrderReplica(config.index, config.catalog_index, timeout_s=config.timeouts.total,
                        connect_s=config.timeouts.connect, write_first=not config.read_first)
    holder: dict[str, Driver] = {}

    async def store_ctx(_app: web.Application):
        store = await asyncio.to_thread(OrderStore, config.db)
        driver = Driver(core, node, {core.catalog: config.catalog}, store)
        await driver.run(core.start())
        holder["driver"] = driver
        yield
        driver.close()
        driver.store.close()

    def run(operation):
        return holder["driver"].run(operation)

    node.describe = lambda _books: {"catalog": config.catalog, "catalog_id": config.catalog_index, **core.counts}

    async def health(_sender: str) -> tuple[int, dict]:
        return response_of(None, await run(core.health()))

    node.health = health

    async def buy(request: web.Request) -> web.Response:
        target = book_id(request)
        buy_id = buy_id_of(request)
        status, body = response_of(None, await run(core.buy(Buy(target, buy_id, attempt_of(request)))))
        if status >= 400:
            raise ApiError(status, body.pop("message"), **body)
        return web.json_response(body, status=status)

    async def orders(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            raise ApiError(422, "'limit' must be a number") from None
        limit = max(1, min(limit, 10_000))
        history = await holder["driver"].on_disk("history", limit)
        return web.json_response([purchase.as_record() for purchase in history])

    async def reset(_request: web.Request) -> web.Response:
        await run(core.reset())
        node.emit_snapshot()
        return web.json_response(node.state())

    bought = {"type": "object", "required": ["success", "message", "buy_id"],
              "properties": {"success": {"type": "boolean"}, "message": {"type": "string"},
                             "buy_id": {"type": "string"}, "order_id": {"type": "integer"}}}
    routes = [
        put("/buy/{id}", buy, "Buy one copy through this replica's catalog",
            {200: ("Bought ('success': true), or out of stock ('success': false)", bought),
             503: "Not done: the catalog refused (no majority), or the book stayed in too much demand",
             504: "The catalog could not be reached ('outcome': not done, or unknown)"},
            params=(BUY_ID, ATTEMPT, TRACE)),
        get("/orders", orders, "The purchase history, oldest first",
            {200: ("The latest purchases", {"type": "array", "items": OBJECT})},
            params=(Param("limit", "query", {"type": "integer"}, "How many of the latest (1 to 10,000; default 100)",
                          errors={422: "'limit' is not a number"}),)),
        post("/admin/reset", reset, "Empty the history", {200: ("The node's state", OBJECT)}),
    ]
    return build_app(node, routes, cleanup_ctx=[store_ctx])


"""The front-end's HTTP application: api.md's public endpoints (search, lookup, buy) over
the LRU caches and the failover rings, and the invalidation endpoints catalogs call."""
from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp import web

from nodes.core.frontend.protocol import RING_MODES, Frontend, NoCatalogServer
from nodes.core.messages import Buy, Invalidate, NotFound, Read, Search
from nodes.core.wire import BUY_ID_HEADER, response_of
from nodes.runtime.client import Pace
from nodes.runtime.config import FrontendConfig
from nodes.runtime.driver import Driver
from nodes.runtime.errors import ApiError, book_id, json_object, optional_int, whole_number
from nodes.runtime.node import Node, build_app
from nodes.runtime.tasks import cancel_and_wait


def init_app(config: FrontendConfig) -> web.Application:
    node = Node("frontend", 0, config.timeouts, secret=config.secret, internal_prefixes=("/invalidate/",),
                telemetry_on=config.telemetry, pace=Pace(config.pace_ms))
    core = Frontend(len(config.catalogs), len(config.orders), lookup_cache=config.lookup_cache,
                    search_cache=config.search_cache, timeout_s=config.timeouts.total,
                    connect_s=config.timeouts.connect)
    addresses = {f"catalog{i}": a for i, a in enumerate(config.catalogs)}
    addresses.update({f"order{i}": a for i, a in enumerate(config.orders)})
    driver = Driver(core, node, addresses)

    def describe() -> dict[str, Any]:
        driver.feed_time()
        return core.describe()

    node.describe = describe

    async def probe_ctx(_app: web.Application):
        probe = asyncio.create_task(driver.run(core.probe()), name="probe")
        yield
        await cancel_and_wait(probe)

    async def answer(message) -> web.Response:
        result = await driver.run(core.handle(message))
        if isinstance(result, NoCatalogServer):
            raise ApiError(504, "No catalog server could be reached",
                           tried=[{"replica": name, "answer": text} for name, text in result.tried])
        status, body = response_of(message, result)
        if isinstance(result, NotFound) or status >= 400:
            raise ApiError(status, body.pop("message"), **body)
        return web.Response(status=204) if body is None else web.json_response(body, status=status)

    async def search(request: web.Request) -> web.Response:
        return await answer(Search(request.match_info["topic"]))

    async def lookup(request: web.Request) -> web.Response:
        return await answer(Read(book_id(request)))

    async def buy(request: web.Request) -> web.Response:
        buy_id = (request.headers.get(BUY_ID_HEADER) or uuid.uuid4().hex)[:100]
        return await answer(Buy(book_id(request), buy_id))

    async def invalidate_item(request: web.Request) -> web.Response:
        return await answer(Invalidate(book_id(request), whole_number(request.query.get("seq"), "seq", status=422)))

    async def invalidate_topic(request: web.Request) -> web.Response:
        core.searches.invalidate_topic(request.match_info["topic"])
        return web.Response(status=204)

    async def invalidate_all_topics(_request: web.Request) -> web.Response:
        core.searches.clear()
        return web.Response(status=204)

    async def set_failover(request: web.Request) -> web.Response:
        data = await json_object(request)
        mode = data.get("mode")
        if mode is not None and mode not in RING_MODES:
            raise ApiError(400, f"'mode' must be one of {', '.join(RING_MODES)}")
        for ring, key in ((core.catalogs, "catalog_turn"), (core.orders, "order_turn")):
            turn = optional_int(data, key, minimum=0)
            if turn is not None:
                if turn >= len(ring.members):
                    raise ApiError(400, f"'{key}' must be below {len(ring.members)}")
                ring.turn = turn
            if mode is not None:
                ring.mode = mode
        return web.json_response(node.state())

    async def reset(_request: web.Request) -> web.Response:
        core.reset()
        node.emit_snapshot()
        return web.json_response(node.state())

    routes = [
        web.get("/search/{topic}", search),
        web.get("/lookup/{id}", lookup),
        web.put("/buy/{id}", buy),
        web.delete("/invalidate/item/{id}", invalidate_item),
        web.delete("/invalidate/topic/", invalidate_all_topics),
        web.delete("/invalidate/topic/{topic}", invalidate_topic),
        web.post("/admin/failover", set_failover),
        web.post("/admin/reset", reset),
    ]
    return build_app(node, routes, cleanup_ctx=[probe_ctx])


"""The front-end's HTTP application: api.md's public endpoints (search, lookup, buy) over
the LRU caches and the failover rings, and the invalidation endpoints catalogs call."""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from nodes.core.frontend.protocol import RING_MODES, Frontend, NoCatalogServer
from nodes.core.messages import Buy, Invalidate, NotFound, Read
from nodes.core.wire import response_of
from nodes.runtime.client import Pace
from nodes.runtime.config import FrontendConfig
from nodes.runtime.contract import (
    BUY_ID,
    HITS,
    LOOKUP,
    OBJECT,
    PAGE,
    TRACE,
    WHOLE,
    Param,
    body,
    delete,
    get,
    post,
    put,
)
from nodes.runtime.driver import Driver
from nodes.runtime.errors import ApiError, book_id, buy_id_of, json_object, optional_int, search_of, whole_number
from nodes.runtime.node import Node, build_app
from nodes.runtime.signing import is_loopback
from nodes.runtime.tasks import cancel_and_wait


def init_app(config: FrontendConfig) -> web.Application:
    node = Node("frontend", 0, config.timeouts, secret=config.secret, loopback=is_loopback(config.host),
                internal_prefixes=("/invalidate/",),
                telemetry_on=config.telemetry, otel=config.otel, pace=Pace(config.pace_ms))
    core = Frontend(len(config.catalogs), len(config.orders), lookup_cache=config.lookup_cache,
                    search_cache=config.search_cache, timeout_s=config.timeouts.total,
                    connect_s=config.timeouts.connect)
    addresses = {f"catalog{i}": a for i, a in enumerate(config.catalogs)}
    addresses.update({f"order{i}": a for i, a in enumerate(config.orders)})
    driver = Driver(core, node, addresses)

    def describe(_books: str) -> dict[str, Any]:
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
        return await answer(search_of(request))

    async def lookup(request: web.Request) -> web.Response:
        return await answer(Read(book_id(request)))

    async def buy(request: web.Request) -> web.Response:
        buy_id = buy_id_of(request)
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

    state = ("The node's state", OBJECT)
    no_catalog = "No catalog server could be reached (the replicas tried are in 'tried')"
    bought = {"type": "object", "required": ["success", "message", "buy_id"],
              "properties": {"success": {"type": "boolean"}, "message": {"type": "string"},
                             "buy_id": {"type": "string"}, "order_id": {"type": "integer"}}}
    routes = [
        get("/search/{topic}", search, "The books whose topic contains the text",
            {200: ("Every matching book, or one page of them; [] when none", HITS), 504: no_catalog},
            params=(*PAGE, TRACE)),
        get("/lookup/{id}", lookup, "One book: title, stock, price", {200: ("The book", LOOKUP), 504: no_catalog},
            params=(TRACE,)),
        put("/buy/{id}", buy, "Buy one copy",
            {200: ("Bought ('success': true), or out of stock ('success': false)", bought),
             202: ("Unknown: an order replica may have carried it out, none confirmed it", OBJECT),
             503: "Not done: no majority of catalog replicas, or the book in too much demand",
             504: "No order server could carry out the buy"}, params=(BUY_ID, TRACE)),
        delete("/invalidate/item/{id}", invalidate_item, "Drop a book from the lookup cache",
               {204: "Dropped"}, params=(Param("seq", "query", WHOLE, "Cache no copy older than this seq from now on",
                                               errors={422: "'seq' is not a whole number"}),)),
        delete("/invalidate/topic/", invalidate_all_topics, "Drop every cached search", {204: "Dropped"}),
        delete("/invalidate/topic/{topic}", invalidate_topic, "Drop the cached searches that include the topic",
               {204: "Dropped"}),
        post("/admin/failover", set_failover, "The rings' mode and whose turn it is (S9-S12)", {200: state},
             body=body({"mode": {"type": "string", "enum": list(RING_MODES)}, "catalog_turn": WHOLE,
                        "order_turn": WHOLE})),
        post("/admin/reset", reset, "Empty both caches, zero the counters", {200: state}),
    ]
    return build_app(node, routes, cleanup_ctx=[probe_ctx])


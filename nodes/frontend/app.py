"""The front-end's HTTP application: api.md's public endpoints (search, lookup, buy) over
the LRU caches and the failover rings, and the invalidation endpoints catalogs call."""
from __future__ import annotations

import uuid
from urllib.parse import quote

from aiohttp import web

from ..config import FrontendConfig
from ..shared.client import Reply
from ..shared.errors import ApiError, book_id, json_object, optional_int, whole_number
from ..shared.node import Node, build_app
from .cache import LruCache
from .failover import MODES, Attempt, ReplicaRing

BUY_ID_HEADER = "X-Bazar-Buy-Id"
NOT_FOUND = "Book with the specified ID does not exist"


def init_app(config: FrontendConfig) -> web.Application:
    node = Node("frontend", 0, config.timeouts, secret=config.secret, internal_prefixes=("/invalidate/",),
                telemetry_on=config.telemetry)
    lookups = LruCache("lookup", config.lookup_cache, node.telemetry)
    searches = LruCache("search", config.search_cache, node.telemetry)
    catalogs = ReplicaRing("catalog", config.catalogs, node.client, node.telemetry)
    orders = ReplicaRing("order", config.orders, node.client, node.telemetry)
    counts = {"bought": 0, "out_of_stock": 0, "unknown": 0, "failed": 0}

    node.describe = lambda: {
        "caches": {"lookup": lookups.describe(), "search": searches.describe()},
        "catalogs": catalogs.describe(),
        "orders": orders.describe(),
        "buys": dict(counts),
    }

    async def rings_ctx(_app: web.Application):
        catalogs.start()
        orders.start()
        yield
        await catalogs.stop()
        await orders.stop()

    def no_catalog(attempts: list[Attempt]) -> ApiError:
        return ApiError(504, "No catalog server could be reached", tried=_tried(attempts))

    async def search(request: web.Request) -> web.Response:
        topic = request.match_info["topic"]
        key = topic.casefold()
        entry = searches.get(key)
        if entry is not None:
            return web.json_response(entry.value)
        ticket = searches.ticket()
        reply, attempts = await catalogs.call(
            "GET", f"/query/topic/{quote(topic, safe='')}", label=f"/query/topic/{topic}",
            try_next=lambda r: r.status != 200,
        )
        if reply is None:
            raise no_catalog(attempts)
        topics = frozenset(hit["topic"].casefold() for hit in reply.data)
        searches.put(key, reply.data, ticket, topics)
        return web.json_response(reply.data)

    async def lookup(request: web.Request) -> web.Response:
        target = book_id(request)
        entry = lookups.get(target)
        if entry is None:
            ticket = lookups.ticket()
            reply, attempts = await catalogs.call(
                "GET", f"/query/item/{target}", label=f"/query/item/{target}",
                try_next=lambda r: r.status not in (200, 404),
            )
            if reply is None:
                raise no_catalog(attempts)
            # W5: an unknown id is cached too, so asking again costs no trip to a catalog.
            value = reply.data if reply.status == 200 else None
            seq = value.get("seq") if isinstance(value, dict) else None
            lookups.put(target, value, ticket, seq=seq if isinstance(seq, int) else None)
        else:
            value = entry.value
        if value is None:
            raise ApiError(404, NOT_FOUND)
        return web.json_response(value)

    async def buy(request: web.Request) -> web.Response:
        target = book_id(request)
        buy_id = (request.headers.get(BUY_ID_HEADER) or uuid.uuid4().hex)[:100]
        reply, attempts = await orders.call(
            "PUT", f"/buy/{target}", label=f"/buy/{target}", timeouts=config.timeouts.doubled(),
            headers={BUY_ID_HEADER: buy_id}, try_next=lambda r: r.status in (503, 504),
        )
        if reply is not None:
            if reply.status == 200:
                counts["bought" if reply.data.get("success") else "out_of_stock"] += 1
            return web.json_response(reply.data, status=reply.status)
        # W7: when any order replica may have carried the buy out, its outcome is unknown.
        if any(_maybe_done(a.reply) for a in attempts):
            counts["unknown"] += 1
            node.telemetry.emit("order", outcome="unknown", buy_id=buy_id)
            return web.json_response(
                {
                    "success": None,
                    "outcome": "unknown",
                    "buy_id": buy_id,
                    "message": "The purchase may or may not have gone through: no order server confirmed it. "
                    "Check the order history, or buy again with the same X-Bazar-Buy-Id to learn the outcome.",
                    "tried": _tried(attempts),
                },
                status=202,
            )
        counts["failed"] += 1
        raise ApiError(504, "No order server could carry out the buy", tried=_tried(attempts), buy_id=buy_id)

    async def invalidate_item(request: web.Request) -> web.Response:
        lookups.invalidate(book_id(request), whole_number(request.query.get("seq"), "seq", status=422))
        return web.Response(status=204)

    async def invalidate_topic(request: web.Request) -> web.Response:
        searches.invalidate_topic(request.match_info["topic"])
        return web.Response(status=204)

    async def invalidate_all_topics(_request: web.Request) -> web.Response:
        searches.clear()
        return web.Response(status=204)

    async def set_failover(request: web.Request) -> web.Response:
        data = await json_object(request)
        mode = data.get("mode")
        if mode is not None and mode not in MODES:
            raise ApiError(400, f"'mode' must be one of {', '.join(MODES)}")
        for ring, key in ((catalogs, "catalog_turn"), (orders, "order_turn")):
            turn = optional_int(data, key, minimum=0)
            if turn is not None:
                if turn >= len(ring.members):
                    raise ApiError(400, f"'{key}' must be below {len(ring.members)}")
                ring.turn = turn
            if mode is not None:
                ring.mode = mode
        return web.json_response(node.state())

    async def reset(_request: web.Request) -> web.Response:
        lookups.clear()
        searches.clear()
        for key in counts:
            counts[key] = 0
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
    return build_app(node, routes, cleanup_ctx=[rings_ctx])


def _maybe_done(reply: Reply) -> bool:
    if reply.maybe_processed:
        return True
    return reply.status in (503, 504) and isinstance(reply.data, dict) and reply.data.get("outcome") == "unknown"


def _tried(attempts: list[Attempt]) -> list[dict[str, str]]:
    return [
        {
            "replica": a.member.name,
            "answer": str(a.reply.status) if a.reply.answered else f"no answer ({a.reply.failure})",
        }
        for a in attempts
    ]

"""What every Bazar node has: a name, telemetry, one outgoing client, the outage toggles
(slow, cut off), the cluster secret, and the admin routes that read and flip them."""
from __future__ import annotations

import asyncio
import json
import math
import os
import random
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from aiohttp import web

from nodes.core.telemetry import (
    SPAN_HEADER,
    TRACE_HEADER,
    TRACEPARENT_HEADER,
    Telemetry,
    current_span,
    current_trace,
    from_traceparent,
    new_span_id,
    new_trace_id,
)
from nodes.core.wire import BUY_ID_HEADER
from nodes.runtime.client import (
    MAX_PACE_MS,
    SENDER_HEADER,
    UNHELD_HEADER,
    Pace,
    PeerClient,
    Timeouts,
    status_text,
)
from nodes.runtime.contract import (
    OBJECT,
    Param,
    Route,
    body,
    describe,
    get,
    openapi_route,
    post,
    route_table,
)
from nodes.runtime.errors import ApiError, json_errors, json_object, optional_int
from nodes.runtime.memory import trim_ctx
from nodes.runtime.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from nodes.runtime.metrics import Metrics
from nodes.runtime.signing import Verifier

ADMIN_PREFIX = "/admin/"
#: Background chatter (probes, heartbeats) left out of the request events.
QUIET_PATHS = frozenset({"/health", "/rep/ping", "/metrics"})
#: Events a live subscriber may fall behind by before it loses the oldest.
SUBSCRIBER_LIMIT = 5000
#: The forms `GET /admin/state?books=` takes (Node.describe).
BOOK_FORMS = ("rows", "columns", "no")
TELEMETRY_SNDBUF = 64 * 1024
TITLES = {"frontend": "Bazar front-end", "catalog": "Bazar catalog replica", "order": "Bazar order replica"}


@dataclass
class Faults:
    """The reversible outage toggles that live inside the node (crash and hang are signals)."""

    slow_ms: int = 0
    cut_off: bool = False
    #: Partitions (W8), as links that stopped delivering: nodes whose messages never reach
    #: us (``deaf_to``) and nodes ours never reach (``mute_to``); "*" is every node.
    deaf_to: frozenset[str] = frozenset()
    mute_to: frozenset[str] = frozenset()
    #: HTTP aborts (Chaos Mesh's HTTPChaos): path prefix -> (probability, "request" or
    #: "response"). A request aborted is dropped unanswered before it is handled; a response
    #: aborted is dropped after: the work is done, and the caller cannot tell which happened.
    aborts: dict[str, tuple[float, str]] = field(default_factory=dict)

    def aborted(self, path: str, direction: str) -> bool:
        for prefix, (p, when) in self.aborts.items():
            if when == direction and path.startswith(prefix) and random.random() < p:
                return True
        return False

    def hears(self, sender: str | None) -> bool:
        if self.cut_off:
            return False  # cut off: nobody reaches it but the admin (and its telemetry)
        return not sender or not (sender in self.deaf_to or "*" in self.deaf_to)

    def reaches(self, target: str) -> bool:
        return not (self.cut_off or target in self.mute_to or "*" in self.mute_to)


@dataclass
class Node:
    role: str  # "catalog", "order" or "frontend"
    index: int
    timeouts: Timeouts
    secret: str | None = None
    #: Bound to loopback: the plain secret header is taken as well as a signature (signing.py).
    loopback: bool = True
    #: Path prefixes only the cluster (holders of the secret) may call (W6).
    internal_prefixes: tuple[str, ...] = ()
    faults: Faults = field(default_factory=Faults)
    #: Teaching speed: how long every message this node sends is held (client.Pace).
    pace: Pace = field(default_factory=Pace)
    started: float = field(default_factory=time.time)
    telemetry: Telemetry = field(init=False)
    client: PeerClient = field(init=False)
    #: Role-specific part of ``GET /admin/state``, given the form of a catalog's per-book rows
    #: (``?books=``: ``rows``, ``columns`` or ``no``; a role without books ignores it).
    describe: Callable[[str], dict[str, Any]] = field(default=lambda _books: {})
    #: Called for every request that reaches the node (not admin): proof it is not cut off.
    on_contact: Callable[[], None] = field(default=lambda: None)
    #: Role-specific answer to ``GET /health?from=NAME``: (status, body). Default: 200 up.
    health: Callable[[str], Awaitable[tuple[int, dict[str, Any]]]] | None = None

    telemetry_on: bool = True
    #: Export every hop and request as OpenTelemetry spans (otel.py).
    otel: bool = False

    def __post_init__(self) -> None:
        self.telemetry = Telemetry(self.name, enabled=self.telemetry_on)
        self.metrics = Metrics(self.name)
        self.telemetry.observers.append(self.metrics.observe)
        self.client = PeerClient(self.telemetry, timeouts=self.timeouts, secret=self.secret, sender=self.name,
                                 links=self.faults, pace=self.pace)
        self.client.count_bytes = self._count_bytes

    def _count_bytes(self, sent: int, received: int) -> None:
        self.metrics.peer_bytes.labels("sent").inc(sent)
        self.metrics.peer_bytes.labels("received").inc(received)

    @property
    def name(self) -> str:
        return "frontend" if self.role == "frontend" else f"{self.role}{self.index}"

    def emit_snapshot(self) -> None:
        """Tell live subscribers the whole state again (after a reset, say)."""
        self.telemetry.emit("snapshot", state=self.state(books="columns"))

    def state(self, books: str = "rows") -> dict[str, Any]:
        """``GET /admin/state``'s body; ``books`` as its query names it (``describe``)."""
        return {
            "role": self.role,
            "id": self.index,
            "name": self.name,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started, 3),
            # Python's objects' memory blocks: beside the RSS, whether a growth is objects kept
            # or the allocator's (the long day's memory, docs/measurements.md).
            "python_blocks": sys.getallocatedblocks(),
            "slow_ms": self.faults.slow_ms,
            "cut_off": self.faults.cut_off,
            "pace_ms": self.pace.ms,
            "deaf_to": sorted(self.faults.deaf_to),
            "mute_to": sorted(self.faults.mute_to),
            "aborts": {path: {"p": p, "direction": when} for path, (p, when) in self.faults.aborts.items()},
            "telemetry": {
                "on": self.telemetry.enabled,
                "subscribers": [{"queued": len(s.events), "dropped": s.dropped} for s in self.telemetry.subscribers],
            },
            **self.describe(books),
        }


#: Where an application keeps its node (``nodes/__main__.py`` runs it from there).
NODE_KEY = web.AppKey("node", Node)


def build_app(node: Node, routes: Sequence[Route], *,
              cleanup_ctx: Sequence[Callable[..., Any]] = ()) -> web.Application:
    """The aiohttp application every service shares the shape of (aiohttp-demos style): its own
    routes, the admin routes every node has, and ``GET /openapi.json`` describing all of them,
    built from the same declarations (contract.py)."""
    from nodes.runtime.errors import MAX_BODY_BYTES

    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[_cut_off(node), _observe(node), _pace(node), _slow(node), json_errors, _secret(node),
                     _plain_headers],
    )
    app[NODE_KEY] = node
    description: dict[str, Any] = {}
    declared = [*routes, *_admin_routes(node), openapi_route(lambda: description)]
    description.update(describe(declared, title=TITLES.get(node.role, node.role),
                                internal_prefixes=node.internal_prefixes + (ADMIN_PREFIX,), secret=bool(node.secret)))
    app.add_routes(route_table(declared))

    async def client_ctx(_app: web.Application):
        await node.client.start()
        yield
        await node.client.close()

    async def close_subscribers(_app: web.Application) -> None:
        node.telemetry.close()  # a live telemetry stream would hold graceful shutdown up

    if node.otel:
        from nodes.runtime.otel import SpanExport
        export = SpanExport(node.name)
        node.telemetry.observers.append(export.observe)

        async def flush_spans(_app: web.Application) -> None:
            await asyncio.to_thread(export.close)

        app.on_cleanup.append(flush_spans)

    app.on_shutdown.append(close_subscribers)
    app.cleanup_ctx.append(client_ctx)
    app.cleanup_ctx.append(trim_ctx)
    app.cleanup_ctx.extend(cleanup_ctx)
    return app


def _cut_off(node: Node):
    """Cut links, as a network that stopped delivering: a message from a node we do not hear
    is never taken; an answer to a node we do not reach is never sent. Either way the caller
    waits out its time-out, and learns nothing it could tell apart from a lost packet."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        sender = request.headers.get(SENDER_HEADER) or None
        if not node.faults.hears(sender):
            await _hold(request)
        if node.faults.aborts and node.faults.aborted(request.path, "request"):
            _drop(request)  # the HTTP abort fault: never handled
        node.on_contact()
        response = await handler(request)
        if sender and not node.faults.reaches(sender):
            await _hold(request)  # done, but the answer is lost on the way back
        if node.faults.aborts and node.faults.aborted(request.path, "response"):
            _drop(request)  # done, and the connection dropped before the answer
        return response

    return middleware


def _drop(request: web.Request) -> NoReturn:
    """Close the connection with no answer at all (the caller sees it drop at once)."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError()


async def _hold(request: web.Request, limit_s: float = 60.0) -> None:
    """Keep the connection open and silent until the caller gives up, then drop it."""
    deadline = time.monotonic() + limit_s
    while request.transport is not None and not request.transport.is_closing() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError()


def _observe(node: Node):
    @web.middleware
    async def middleware(request: web.Request, handler):
        if request.path.startswith(ADMIN_PREFIX) or request.path in QUIET_PATHS:
            return await handler(request)
        # Both go on in headers: one no header can carry (bytes that were not UTF-8) is made anew.
        # A client that speaks W3C Trace Context names the trace and its span in traceparent.
        context = from_traceparent(request.headers.get(TRACEPARENT_HEADER))
        trace = _plain_or(request.headers.get(TRACE_HEADER), lambda: context[0] if context else new_trace_id())
        token = current_trace.set(trace[:64])
        # The span this request is served under: its caller's hop, or a new one for a client.
        span_token = current_span.set(_plain_or(request.headers.get(SPAN_HEADER),
                                                lambda: context[1] if context else new_span_id())[:32])
        t0 = time.perf_counter()
        sender = request.headers.get(SENDER_HEADER)
        node.telemetry.emit("request_in", method=request.method, path=request.path,
                            **({"from": sender[:20]} if sender else {}))
        status = 500
        try:
            response = await handler(request)
            status = response.status
            response.headers[TRACE_HEADER] = trace[:64]
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            route = request.match_info.route.resource
            node.telemetry.emit(
                "request",
                method=request.method,
                path=request.path,
                route=route.canonical if route is not None else request.path,
                status=status,
                ms=round((time.perf_counter() - t0) * 1000, 3),
            )
            current_span.reset(span_token)
            current_trace.reset(token)

    return middleware


def _pace(node: Node):
    """Teaching speed: an answer is held for the node's pace before it goes (its request was
    held by its sender, client.Pace), unless it answers background chatter."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        response = await handler(request)
        held_ms = node.pace.ms
        if (held_ms and not request.path.startswith(ADMIN_PREFIX) and request.path not in QUIET_PATHS
                and UNHELD_HEADER not in request.headers):
            node.telemetry.emit("reply", to=request.headers.get(SENDER_HEADER) or "client", status=response.status,
                                answer=status_text(response.status), path=request.path, held_ms=held_ms)
            await asyncio.sleep(held_ms / 1000)
        return response

    return middleware


def _slow(node: Node):
    @web.middleware
    async def middleware(request: web.Request, handler):
        response = await handler(request)
        if node.faults.slow_ms and not request.path.startswith(ADMIN_PREFIX):
            await asyncio.sleep(node.faults.slow_ms / 1000)
        return response

    return middleware


def _secret(node: Node):
    """Internal and admin routes only for holders of the secret: a signed request, or on
    loopback the plain header (signing.py)."""
    verifier = Verifier(node.secret, plain_ok=node.loopback) if node.secret else None

    @web.middleware
    async def middleware(request: web.Request, handler):
        if verifier is not None and request.path.startswith(node.internal_prefixes + (ADMIN_PREFIX,)):
            body = await request.read() if request.body_exists else b""
            refusal = verifier.refusal(request.method, request.raw_path, body, request.headers)
            if refusal is not None:
                raise ApiError(401, refusal)
        return await handler(request)

    return middleware


def _plain(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _plain_or(given: str | None, make: Callable[[], str]) -> str:
    return given if given and _plain(given) else make()


@web.middleware
async def _plain_headers(request: web.Request, handler):
    """A buy id travels on to other nodes in a header and names the buy in every answer and log:
    printable ASCII only (bytes that are not UTF-8 reach us as surrogates no header can carry)."""
    given = request.headers.get(BUY_ID_HEADER)
    if given is not None and not _plain(given):
        raise ApiError(400, f"{BUY_ID_HEADER} must be printable ASCII")
    return await handler(request)


def _admin_routes(node: Node) -> list[Route]:
    async def health(request: web.Request) -> web.Response:
        if node.health is None:
            return web.json_response({"status": "up", "name": node.name})
        status, body = await node.health(request.query.get("from", "")[:20])
        return web.json_response({"name": node.name, **body}, status=status)

    async def state(request: web.Request) -> web.Response:
        books = request.query.get("books", "rows")
        if books not in BOOK_FORMS:
            raise ApiError(422, f"'books' must be one of {', '.join(BOOK_FORMS)}")
        return web.json_response(node.state(books))

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=node.metrics.exposition(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def set_slow(request: web.Request) -> web.Response:
        data = await json_object(request)
        delay = optional_int(data, "ms", minimum=0)
        if delay is None or delay > 60_000:
            raise ApiError(400, "'ms' must be an integer from 0 to 60000")
        node.faults.slow_ms = delay
        node.telemetry.emit("fault", fault="slow", ms=delay)
        return web.json_response(node.state(books="no"))

    async def set_cut_off(request: web.Request) -> web.Response:
        data = await json_object(request)
        if not isinstance(data.get("on"), bool):
            raise ApiError(400, "'on' must be true or false")
        node.faults.cut_off = data["on"]
        node.telemetry.emit("fault", fault="cut_off", on=data["on"])
        return web.json_response(node.state(books="no"))

    async def set_abort(request: web.Request) -> web.Response:
        data = await json_object(request)
        path, p, direction = data.get("path"), data.get("p"), data.get("direction", "request")
        if not isinstance(path, str) or not path.startswith("/") or path.startswith(ADMIN_PREFIX) or len(path) > 100:
            raise ApiError(400, "'path' must be a path prefix such as \"/rep/update/\" (not an admin route)")
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise ApiError(400, "'p' must be a probability from 0 to 1 (0 heals)")
        if direction not in ("request", "response"):
            raise ApiError(400, "'direction' must be \"request\" (dropped before it is handled) or \"response\"")
        if p:
            node.faults.aborts[path] = (float(p), direction)
        else:
            node.faults.aborts.pop(path, None)
        node.telemetry.emit("fault", fault="abort", path=path, p=float(p), direction=direction)
        return web.json_response(node.state(books="no"))

    async def set_pace(request: web.Request) -> web.Response:
        data = await json_object(request)
        held = optional_int(data, "ms", minimum=0)
        if held is None or held > MAX_PACE_MS:
            raise ApiError(400, f"'ms' must be an integer from 0 to {MAX_PACE_MS}")
        node.pace.ms = held
        node.telemetry.emit("pace", ms=held)
        return web.json_response(node.state(books="no"))

    async def set_links(request: web.Request) -> web.Response:
        data = await json_object(request)
        sets = {}
        for key in ("deaf_to", "mute_to"):
            names = data.get(key, [])
            if not isinstance(names, list) or not all(isinstance(n, str) and 0 < len(n) <= 20 for n in names):
                raise ApiError(400, f"'{key}' must be a list of node names")
            sets[key] = frozenset(names)
        node.faults.deaf_to, node.faults.mute_to = sets["deaf_to"], sets["mute_to"]
        node.telemetry.emit("fault", fault="partition", deaf_to=sorted(sets["deaf_to"]),
                            mute_to=sorted(sets["mute_to"]))
        return web.json_response(node.state(books="no"))

    async def events(request: web.Request) -> web.Response:
        trace = request.query.get("trace")
        found = node.telemetry.for_trace(trace) if trace else list(node.telemetry.recent)
        return web.json_response(found)

    async def telemetry(request: web.Request) -> web.WebSocketResponse:
        """The live stream: one snapshot, then batches (JSON lists) of events as they happen.
        A reader that falls behind loses its oldest events and is told how many: what one
        subscriber holds is bounded by its queue (``?limit=``) plus the batch being sent."""
        ws = web.WebSocketResponse(heartbeat=5.0)
        wake = asyncio.Event()
        snapshot = {"kind": "snapshot", "node": node.name, "t": time.time(), "state": node.state(books="columns")}
        try:
            limit = max(10, min(SUBSCRIBER_LIMIT, int(request.query.get("limit", SUBSCRIBER_LIMIT))))
        except ValueError:
            raise ApiError(422, "'limit' must be a number") from None
        try:
            since = float(request.query["since"]) if "since" in request.query else None
        except ValueError:
            raise ApiError(422, "'since' must be a time in Unix seconds") from None
        if since is not None and not math.isfinite(since):
            raise ApiError(422, "'since' must be a time in Unix seconds")
        await ws.prepare(request)
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:  # the kernel's buffer for a stalled reader is bounded too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, TELEMETRY_SNDBUF)
        subscriber = node.telemetry.subscribe(limit, wake.set)
        # A reader back after a break names the last event it holds (``after=PID:N``); one that
        # has read nothing of this node yet, when it began following (``since``, Unix seconds).
        # What this process emitted since comes before the snapshot, so no hop of a request made
        # while the reader was away or not yet through (a restart, a slow first connection) is
        # missing from its traces, and the snapshot, newer, sets the state. Read with the
        # subscription taken, before any await: no event falls between.
        missed = _missed(node.telemetry.recent, request.query.get("after"), since)

        async def watch_close() -> None:
            async for _message in ws:
                pass
            wake.set()

        closing = asyncio.create_task(watch_close())
        try:
            await ws.send_str(json.dumps([*missed, snapshot]))
            while not ws.closed and not subscriber.closed:
                await wake.wait()
                wake.clear()
                batch = list(subscriber.events)
                subscriber.events.clear()
                if subscriber.dropped:
                    batch.append({"kind": "dropped", "node": node.name, "count": subscriber.dropped})
                    subscriber.dropped = 0
                if batch and not ws.closed:
                    await ws.send_str(json.dumps(batch))
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            node.telemetry.unsubscribe(subscriber)
            closing.cancel()
        if subscriber.closed and not ws.closed:
            await ws.close()
        return ws

    state_answer = ("The node's state (docs/api.md, 'Every node')", OBJECT)
    health_answers: dict[int, Any] = {200: ("Up", body({"name": {"type": "string"}, "status": {"type": "string"},
                                                         "lease_s": {"type": "number"}}))}
    if node.role == "order":
        health_answers[503] = "Degraded: its catalog replica cannot be reached"
    elif node.role == "catalog":
        health_answers[503] = ("Degraded: out of touch with every other catalog replica, or its disk refuses "
                               "writes; to the front-end, still with its cache lease",
                               body({"name": {"type": "string"}, "status": {"type": "string"},
                                     "message": {"type": "string"}, "lease_s": {"type": "number"}}))
    names = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 20}}
    return [
        get("/admin/telemetry", telemetry, "The live event stream (a WebSocket)",
            {101: "Switching to the WebSocket: a [snapshot], then lists of events",
             400: "Not a WebSocket request", 422: "'limit' or 'since' is not a number"},
            params=(Param("limit", "query", {"type": "integer", "minimum": 10, "maximum": SUBSCRIBER_LIMIT},
                          "The most events the reader's queue holds"),
                    Param("after", "query", {"type": "string", "maxLength": 40},
                          "PID:N, the last event a reader back after a break read: the events of this process "
                          "since then come before the snapshot"),
                    Param("since", "query", {"type": "number"},
                          "Unix seconds: a reader that has read nothing of this node yet, when it began "
                          "following; the events since then come before the snapshot (without 'after')"))),
        get("/health", health, "Is the node up? (the front-end's probe, an order replica's check)", health_answers,
            params=(Param("from", "query", {"type": "string"}, "The prober's name"),)),
        get("/admin/state", state, "The node's state", {200: state_answer},
            params=(Param("books", "query", {"type": "string", "enum": list(BOOK_FORMS)},
                          "A catalog replica's rows: 'rows' (the default) one object a book, 'columns' one "
                          "list a field (a third of the bytes), 'no' counts only (a large catalog's polls)",
                          errors={422: "'books' is none of rows, columns, no"}),)),
        get("/metrics", metrics, "Prometheus metrics: requests, latency, calls, cache, buys, replication",
            {200: "Prometheus' text format (text/plain; version=0.0.4)"}),
        post("/admin/slow", set_slow, "Delay every answer (admin routes excepted)",
             {200: state_answer}, body=body({"ms": {"type": "integer", "minimum": 0, "maximum": 60_000}},
                                            required=["ms"])),
        post("/admin/cutoff", set_cut_off, "Cut every link in and out, or heal them", {200: state_answer},
             body=body({"on": {"type": "boolean"}}, required=["on"])),
        post("/admin/abort", set_abort, "HTTP abort: drop requests to a path, or their answers, with a probability",
             {200: state_answer}, body=body({"path": {"type": "string"}, "p": {"type": "number", "minimum": 0,
                                                                                 "maximum": 1},
                                             "direction": {"type": "string", "enum": ["request", "response"]}},
                                            required=["path", "p"])),
        post("/admin/links", set_links, "A partition: the links that stop delivering", {200: state_answer},
             body=body({"deaf_to": names, "mute_to": names})),
        post("/admin/pace", set_pace, "Teaching speed: hold every message sent", {200: state_answer},
             body=body({"ms": {"type": "integer", "minimum": 0, "maximum": MAX_PACE_MS}}, required=["ms"])),
        get("/admin/events", events, "The node's recent events, or one trace's",
            {200: ("Events, oldest first", {"type": "array", "items": OBJECT})},
            params=(Param("trace", "query", {"type": "string"}, "Only the events of this trace"),)),
    ]


def _missed(recent: Iterable[dict[str, Any]], after: str | None, since: float | None = None) -> list[dict[str, Any]]:
    """The events of ``recent`` a telemetry reader that last held ``after`` ("PID:N", the last
    event it read) has not seen: those after N from this process, or all of this process's
    when it last read another (the node restarted). A reader that has read none of them yet
    names when it began following (``since``): those emitted since. None without either."""
    if not after:
        return [] if since is None else [event for event in recent if event.get("t", 0.0) >= since]
    pid, _sep, n = after.partition(":")
    if not n.lstrip("-").isdigit():
        return []  # not a place in any stream: the snapshot alone, as for a first reader
    last = int(n) if pid == str(os.getpid()) else -1
    return [event for event in recent if event.get("n", -1) > last]

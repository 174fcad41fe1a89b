"""The catalog replica's HTTP application: api.md's query and update endpoints, the
replica-to-replica ``/rep/*`` messages of protocol.md, and its admin endpoints."""
from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from nodes.core.books import Book
from nodes.core.catalog import MODES, BookUnknown
from nodes.core.catalog.state import BUY_BUCKETS
from nodes.core.messages import (
    Check,
    FetchBuys,
    Get,
    Health,
    OtherGeneration,
    Ping,
    Read,
    Release,
    Update,
    Write,
)
from nodes.core.wire import GENERATION_HEADER, response_of
from nodes.runtime.catalog.replication import ReplicaNode
from nodes.runtime.catalog.store import CatalogStore
from nodes.runtime.client import Pace
from nodes.runtime.config import CatalogConfig
from nodes.runtime.contract import (
    HITS,
    LOOKUP,
    OBJECT,
    PAGE,
    RECORD,
    REPLICA_NUMBERS,
    SEQ,
    TEXT_ID,
    WHOLE,
    Param,
    body,
    get,
    post,
    put,
)
from nodes.runtime.errors import (
    MAX_PRICE,
    MAX_QUANTITY,
    MAX_WHOLE,
    ApiError,
    book_id,
    json_object,
    optional_int,
    optional_number,
    search_of,
    whole_number,
)
from nodes.runtime.node import Node, build_app
from nodes.runtime.signing import is_loopback

MAX_ID_TEXT = 100
#: A generation is a time in nanoseconds: never beyond 64 bits (SQLite's integers).
MAX_GENERATION = 2**63 - 1
#: A book id as a key of a ping's ``seqs``: ASCII digits only (str.isdigit takes '²' too).
_BOOK_KEY = re.compile(r"[0-9]{1,15}")
_DIGEST = re.compile(r"[0-9a-f]{16}")
#: A position in a replica's change log (``Ping.base``, ``position``, ``heard``).
POSITION: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": 2**53 - 1}


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def init_app(config: CatalogConfig) -> web.Application:
    node = Node(
        "catalog",
        config.index,
        config.timeouts,
        secret=config.secret,
        loopback=is_loopback(config.host),
        internal_prefixes=("/update/", "/rep/"),
        telemetry_on=config.telemetry, otel=config.otel,
        pace=Pace(config.pace_ms),
    )
    replicas = config.replicas or [f"http://{config.host}:{config.port}"]
    holder: dict[str, ReplicaNode] = {}

    async def replica_ctx(_app: web.Application):
        replica = ReplicaNode(
            node,
            CatalogStore(config.db, config.books),
            replicas,
            frontend=config.frontend,
            mode=config.mode,
            consistency=config.consistency,
            seed=config.seed,
            peer_order=config.peer_order,
            buy_window_s=config.buy_window_s,
        )
        await replica.start()
        holder["replica"] = replica
        node.describe = replica.describe
        node.on_contact = replica.contact

        async def health(sender: str) -> tuple[int, dict]:
            replica.driver.feed_time()
            return response_of(Health(sender), replica.core.on_health(sender))

        node.health = health
        yield
        await replica.stop()

    def replica() -> ReplicaNode:
        return holder["replica"]

    async def answer(message: Any, request: web.Request | None = None) -> web.Response:
        """Hand ``message`` to the core and its answer back as HTTP. A peer's message from
        another generation of the data (a reset under way, or missed) is refused with 503."""
        node_ = replica()
        if request is not None:
            theirs = whole_number(request.headers.get(GENERATION_HEADER), GENERATION_HEADER, maximum=MAX_GENERATION)
            if theirs is not None:
                node_.driver.feed_time()
                if not node_.core.same_generation(theirs):
                    await node_.run(_noop())  # starts the reset to a newer generation, if any
                    return _json(*response_of(message, OtherGeneration(node_.core.generation)))
        try:
            result = await node_.run(node_.core.handle(message))
        except BookUnknown:
            raise ApiError(404, "Book with the specified ID does not exist") from None
        return _json(*response_of(message, result))

    async def query_item(request: web.Request) -> web.Response:
        buy_id = request.query.get("buy_id")
        if buy_id is not None and not 0 < len(buy_id) <= MAX_ID_TEXT:
            raise ApiError(400, f"'buy_id' must be a non-empty string of at most {MAX_ID_TEXT} characters")
        return await answer(Read(book_id(request), buy_id))

    async def query_topic(request: web.Request) -> web.Response:
        return await answer(search_of(request))

    async def update(request: web.Request) -> web.Response:
        target = book_id(request)
        data = await json_object(request)
        quantity = optional_int(data, "quantity", minimum=0, maximum=MAX_QUANTITY)
        price = optional_number(data, "price", minimum=0, maximum=MAX_PRICE)
        if quantity is None and price is None:
            raise ApiError(400, "Nothing to update: give 'quantity' and/or 'price'")
        return await answer(Write(target, quantity, price, base_seq=optional_int(data, "seq", minimum=0),
                                  buy_id=_optional_text(data, "buy_id"),
                                  since=optional_number(data, "since", minimum=0),
                                  take=optional_int(data, "take", minimum=1),
                                  attempt=_optional_text(data, "attempt")))

    async def rep_get(request: web.Request) -> web.Response:
        data = await json_object(request)
        asked = data.get("req", [])
        if not isinstance(asked, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in asked):
            raise ApiError(400, "'req' must be a list of replica numbers")
        message = Get(book_id(request), tuple(asked), _required_int(data, "from"),
                      _required_int(data, "seq_n", minimum=-1))
        return await answer(message, request)

    async def rep_check(request: web.Request) -> web.Response:
        data = await json_object(request)
        message = Check(
            book_id(request),
            _required_int(data, "seq_n", minimum=0),
            _required_int(data, "from"),
            _required_text(data, "token"),
            _optional_text(data, "buy_id"),
            optional_number(data, "since", minimum=0),
            _text_list(data, "riders"),
        )
        return await answer(message, request)

    async def rep_update(request: web.Request) -> web.Response:
        data = await json_object(request)
        target = book_id(request)
        copy = _copy_of(target, data)
        buy_ids = _text_list(data, "buy_ids")
        sender = optional_int(data, "from")
        excluded = data.get("excluded", [])
        if not isinstance(excluded, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in excluded):
            raise ApiError(400, "'excluded' must be a list of replica numbers")
        late = data.get("late", False)
        if not isinstance(late, bool):
            raise ApiError(400, "'late' must be true or false")
        confirmed = data.get("confirmed", False)
        if not isinstance(confirmed, bool):
            raise ApiError(400, "'confirmed' must be true or false")
        settles_in = data.get("settles_in", 0.0)
        if isinstance(settles_in, bool) or not isinstance(settles_in, int | float) or not 0 <= settles_in <= 3600:
            raise ApiError(400, "'settles_in' must be a number of seconds from 0 to 3600")
        message = Update(copy, -1 if sender is None else sender, _required_text(data, "token"), tuple(buy_ids),
                         late=late, excluded=tuple(excluded), settles_in=float(settles_in), confirmed=confirmed)
        return await answer(message, request)

    async def rep_release(request: web.Request) -> web.Response:
        data = await json_object(request)
        return await answer(Release(book_id(request), _required_text(data, "token")), request)

    async def rep_ping(request: web.Request) -> web.Response:
        data = await json_object(request)
        seqs = data.get("seqs", {})
        if not isinstance(seqs, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) and _BOOK_KEY.fullmatch(k) for k, v in seqs.items()):
            raise ApiError(400, "'seqs' must be an object of book id to seq")
        epoch, heard = data.get("epoch", ""), data.get("heard", ["", 0])
        if not isinstance(epoch, str) or len(epoch) > 80:
            raise ApiError(400, "'epoch' must be a text of at most 80 characters")
        if not (isinstance(heard, list) and len(heard) == 2 and isinstance(heard[0], str) and len(heard[0]) <= 80
                and _whole(heard[1])):
            raise ApiError(400, "'heard' must be [epoch, position]: a text and a whole number from 0")
        base, position = data.get("base", 0), data.get("position", 0)
        if not _whole(base) or not _whole(position) or base > position:
            raise ApiError(400, "'base' and 'position' must be whole numbers from 0, 'base' no larger")
        more, lease = data.get("more", False), data.get("lease", True)
        if not isinstance(more, bool) or not isinstance(lease, bool):
            raise ApiError(400, "'more' and 'lease' must be true or false")
        return await answer(Ping(_required_int(data, "from"), {int(k): v for k, v in seqs.items()}, epoch, base,
                                 position, (heard[0], heard[1]), more, lease), request)

    async def rep_buys(request: web.Request) -> web.Response:
        return await answer(FetchBuys(book_id(request)), request)

    async def rep_buys_of_buckets(request: web.Request) -> web.Response:
        data = await json_object(request)
        digests = data.get("digests")
        if not (isinstance(digests, list) and len(digests) == BUY_BUCKETS
                and all(isinstance(d, str) and _DIGEST.fullmatch(d) for d in digests)):
            raise ApiError(400, f"'digests' must be a list of {BUY_BUCKETS} digests, each 16 hex digits")
        return await answer(FetchBuys(book_id(request), tuple(int(d, 16) for d in digests)), request)

    async def set_mode(request: web.Request) -> web.Response:
        data = await json_object(request)
        if data.get("mode") not in MODES:
            raise ApiError(400, f"'mode' must be one of {', '.join(MODES)}")
        replica().core.mode = data["mode"]
        return web.json_response(node.state(books="no"))

    async def set_disk(request: web.Request) -> web.Response:
        """The "disk full" fault on this replica's real database: SQLite refuses every commit
        that needs a new page ("database or disk is full") until it is freed again."""
        data = await json_object(request)
        if not isinstance(data.get("full"), bool):
            raise ApiError(400, "'full' must be true (the database may not grow) or false")
        await replica().driver.on_disk("fill", data["full"])
        node.telemetry.emit("fault", fault="disk_full", on=data["full"])
        return web.json_response(node.state(books="no"))

    async def set_peer_order(request: web.Request) -> web.Response:
        data = await json_object(request)
        order = data.get("order")
        if order is not None and not (
            isinstance(order, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in order)
        ):
            raise ApiError(400, "'order' must be a list of replica numbers, or null for random choice")
        if "seed" in data:
            replica().core.rng.seed(optional_int(data, "seed"))
        replica().core.peer_order = order
        return web.json_response(node.state(books="no"))

    async def reset(request: web.Request) -> web.Response:
        data = await json_object(request) if request.body_exists else {}
        # A generation is a time in nanoseconds (Supervisor.reset): beyond what a JSON number keeps
        # exactly, but never beyond 64 bits.
        await replica().reset(optional_int(data, "generation", minimum=0, maximum=MAX_GENERATION))
        return web.json_response(node.state(books="no"))

    async def applied_buys(_request: web.Request) -> web.Response:
        """Every buy id this replica has applied, with its book and the seq it produced."""
        return web.json_response([{"buy_id": buy_id, "book": book, "seq": seq}
                                  for buy_id, (book, seq) in replica().core.buys.items()])

    # The routes as docs/api.md describes them ('Catalog replica'): routed and described from here.
    generation = Param(GENERATION_HEADER, "header", WHOLE, "Which reset of the data the sending replica holds",
                       errors={400: f"{GENERATION_HEADER} is not a whole number",
                               503: "This replica holds another generation of the data ('generation')"})
    peer = (generation,)
    state = ("The node's state", OBJECT)
    conflict = "Not done here: busy, ahead, or no current copy; read again and retry"
    whole_below_2_53 = {"type": "integer", "maximum": MAX_WHOLE}
    ids = {"type": "array", "maxItems": MAX_LIST, "items": TEXT_ID}
    routes = [
        get("/query/item/{id}", query_item, "One book, once the read rule has made sure it is current (S1-S3)",
            {200: ("The book ('known_buy' when the named buy is applied here)", LOOKUP),
             409: "No replica on the read's path could vouch for a copy, or the named buy is not confirmed"},
            params=(Param("buy_id", "query", TEXT_ID, "An order replica's read: is this buy applied here?",
                          errors={400: "'buy_id' is empty or too long"}),)),
        get("/query/topic/{topic}", query_topic, "The books whose topic contains the text",
            {200: ("Every matching book, or one page of them", HITS)}, params=PAGE),
        put("/update/{id}", update, "Write a book's stock and/or price (a buy's write, W1)",
            {200: ("Written ('duplicate': the buy was already applied)", OBJECT), 409: conflict,
             503: "Nothing was written (no majority, W8), or written and not confirmed (W2)"},
            body=body({"quantity": {"type": "integer", "minimum": 0, "maximum": MAX_QUANTITY},
                       "price": {"type": "number", "minimum": 0, "maximum": MAX_PRICE},
                       "seq": SEQ, "buy_id": TEXT_ID, "since": {"type": "number", "minimum": 0, "maximum": MAX_WHOLE},
                       "take": {"type": "integer", "minimum": 1, "maximum": MAX_WHOLE},
                       "attempt": TEXT_ID},
                      anyOf=[{"required": ["quantity"]}, {"required": ["price"]}])),
        post("/rep/get/{id}", rep_get, "A read's hop", {200: ("The copy", body({"book": RECORD})), 409: conflict},
             params=peer, body=body({"req": REPLICA_NUMBERS, "from": whole_below_2_53,
                                     "seq_n": {"type": "integer", "minimum": -1, "maximum": MAX_WHOLE}},
                                    required=["from", "seq_n"])),
        post("/rep/check/{id}", rep_check, "A write's check and reservation (W1)",
             {200: ("Granted, or one of the buys is already applied here", OBJECT), 409: conflict,
              503: "Not granted: this replica's disk refuses writes"}, params=peer,
             body=body({"seq_n": SEQ, "from": whole_below_2_53, "token": TEXT_ID, "buy_id": TEXT_ID,
                        "since": {"type": "number", "minimum": 0, "maximum": MAX_WHOLE}, "riders": ids},
                       required=["seq_n", "from", "token"])),
        post("/rep/update/{id}", rep_update, "A write's fan-out: the whole new copy",
             {200: ("Applied, with the leases granted to the replicas left out", OBJECT), 409: conflict,
              503: "Not stored: this replica's disk refuses writes"}, params=peer,
             body=body({"title": {"type": "string"}, "topic": {"type": "string"},
                        "price": {"type": "number", "minimum": 0, "maximum": MAX_WHOLE},
                        "quantity": {"type": "integer", "minimum": 0, "maximum": MAX_WHOLE}, "seq": SEQ,
                        "token": TEXT_ID, "buy_ids": ids, "from": whole_below_2_53, "excluded": REPLICA_NUMBERS,
                        "late": {"type": "boolean"}, "confirmed": {"type": "boolean"},
                        "settles_in": {"type": "number", "minimum": 0, "maximum": 3600}},
                       required=["title", "topic", "price", "quantity", "seq", "token"])),
        post("/rep/release/{id}", rep_release, "Hand back a reservation", {204: "Released"}, params=peer,
             body=body({"token": TEXT_ID}, required=["token"])),
        post("/rep/ping", rep_ping, "The heartbeat: seqs out, newer rows and a read lease back (W2, W3)",
             {200: ("This replica's seqs, newer rows, buy counts and lease", OBJECT)}, params=peer,
             body=body({"from": whole_below_2_53,
                        "seqs": {"type": "object", "propertyNames": {"pattern": "^[0-9]{1,15}$"},
                                 "additionalProperties": SEQ},
                        "epoch": {"type": "string", "maxLength": 80}, "base": POSITION, "position": POSITION,
                        "heard": {"type": "array", "prefixItems": [{"type": "string", "maxLength": 80}, POSITION],
                                  "minItems": 2, "maxItems": 2}, "more": {"type": "boolean"},
                        "lease": {"type": "boolean"}}, required=["from"])),
        get("/rep/buys/{id}", rep_buys, "The buys of a book this replica applied",
            {200: ("[[buy_id, seq, settles_in?, left_s?], ...]", {"type": "array"})}, params=peer),
        post("/rep/buys/{id}", rep_buys_of_buckets,
             "The buys of a book this replica applied, of the buckets whose digests differ from the asker's",
             {200: ("[[buy_id, seq, settles_in?, left_s?], ...]", {"type": "array"})}, params=peer,
             body=body({"digests": {"type": "array", "minItems": BUY_BUCKETS, "maxItems": BUY_BUCKETS,
                                    "items": {"type": "string", "pattern": "^[0-9a-f]{16}$"}}},
                       required=["digests"])),
        post("/admin/mode", set_mode, "The replication rules: Bazar's or the documented ones", {200: state},
             body=body({"mode": {"type": "string", "enum": list(MODES)}}, required=["mode"])),
        post("/admin/disk", set_disk, "The disk-full fault: the database may not grow, or may again",
             {200: state}, body=body({"full": {"type": "boolean"}}, required=["full"])),
        post("/admin/peer-order", set_peer_order, "The order in which reads choose peers", {200: state},
             body=body({"order": {"anyOf": [REPLICA_NUMBERS, {"type": "null"}]}, "seed": {"type": "integer"}})),
        post("/admin/reset", reset, "Back to the seven books at seq 0 in a new generation", {200: state},
             body=body({"generation": {"type": "integer", "minimum": 0, "maximum": MAX_GENERATION}}),
             body_required=False),
        get("/admin/buys", applied_buys, "Every buy this replica applied",
            {200: ("[{buy_id, book, seq}, ...]", {"type": "array", "items": OBJECT})}),
    ]
    return build_app(node, routes, cleanup_ctx=[replica_ctx])


async def _noop() -> None:
    return None


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=204) if body is None else web.json_response(body, status=status)


def _required_int(data: dict[str, Any], key: str, *, minimum: int | None = None) -> int:
    value = optional_int(data, key, minimum=minimum)
    if value is None:
        raise ApiError(400, f"'{key}' is required")
    return value


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_ID_TEXT:
        raise ApiError(400, f"'{key}' must be a non-empty string of at most {MAX_ID_TEXT} characters")
    return value


#: The most ids one message may carry (a write round carries at most 33 buys).
MAX_LIST = 1000


def _text_list(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if (not isinstance(value, list) or len(value) > MAX_LIST
            or not all(isinstance(b, str) and 0 < len(b) <= MAX_ID_TEXT for b in value)):
        raise ApiError(400, f"'{key}' must be a list of at most {MAX_LIST} non-empty short strings")
    return tuple(value)


def _copy_of(book: int, data: dict[str, Any]) -> Book:
    """The whole copy a ``/rep/update`` carries, each field of its own type: never a number read
    from text, cut from a fraction or too large for the database."""
    title, topic = data.get("title"), data.get("topic")
    if not isinstance(title, str) or not isinstance(topic, str):
        raise ApiError(400, "'/rep/update' needs the whole book: title, topic, price, quantity, seq")
    price = optional_number(data, "price", minimum=0)
    if price is None:
        raise ApiError(400, "'price' is required")
    return Book(book, title, topic, price, _required_int(data, "quantity", minimum=0),
                _required_int(data, "seq", minimum=0))


def _required_text(data: dict[str, Any], key: str) -> str:
    value = _optional_text(data, key)
    if value is None:
        raise ApiError(400, f"'{key}' is required")
    return value

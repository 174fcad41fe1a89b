"""The wire contract as data (docs/api.md): each route is declared once — method, path, handler
and what the contract says of it — and both the aiohttp route table and the OpenAPI 3 description
that ``GET /openapi.json`` serves are built from that one declaration, so neither can drift from
the other. The handlers keep their own checks and messages (docs/api.md's ``{"message"}``); the
schemas here say what those checks accept, for readers and for schemathesis."""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from nodes.runtime.errors import MAX_BODY_BYTES
from nodes.runtime.signing import SECRET_HEADER

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Schema = dict[str, Any]
#: What one status means on one route: a description, and the body's schema when it has one
#: (errors always have ``ERROR``'s shape, 204 and 101 none).
Answer = str | tuple[str, Schema]

OPENAPI_PATH = "/openapi.json"
SECURITY_SCHEME = "BazarSecret"

ERROR: Schema = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
    "description": "Every error (docs/api.md, 'Rules every answer keeps'); some carry more fields.",
}
#: Any JSON object: the answers whose fields docs/api.md lists in prose (a node's state, say).
OBJECT: Schema = {"type": "object"}
WHOLE: Schema = {"type": "integer", "minimum": 0}
SEQ: Schema = {"type": "integer", "minimum": 0, "maximum": 2**53 - 1}
TEXT_ID: Schema = {"type": "string", "minLength": 1, "maxLength": 100}
REPLICA_NUMBERS: Schema = {"type": "array", "items": {"type": "integer"}}
LOOKUP: Schema = {
    "type": "object",
    "required": ["title", "quantity", "price", "seq"],
    "properties": {"title": {"type": "string"}, "quantity": {"type": "integer"}, "price": {"type": "number"},
                   "seq": {"type": "integer"}, "known_buy": {"type": "boolean"}},
}
RECORD: Schema = {
    "type": "object",
    "required": ["id", "title", "topic", "price", "quantity", "seq"],
    "properties": {"id": {"type": "integer"}, "title": {"type": "string"}, "topic": {"type": "string"},
                   "price": {"type": "number"}, "quantity": {"type": "integer"}, "seq": {"type": "integer"}},
}
HITS: Schema = {
    "type": "array",
    "items": {"type": "object", "required": ["id", "title", "topic"],
              "properties": {"id": {"type": "integer"}, "title": {"type": "string"}, "topic": {"type": "string"}}},
}


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter, with the error answers it brings when it is wrong."""

    name: str
    where: str  # "path", "query" or "header"
    schema: Schema
    description: str
    required: bool = False
    errors: Mapping[int, str] = field(default_factory=dict)

    def as_openapi(self) -> dict[str, Any]:
        return {"name": self.name, "in": self.where, "required": self.required or self.where == "path",
                "description": self.description, "schema": self.schema}


BOOK_ID = Param("id", "path", {"type": "integer", "examples": [1, 7]},
                "The book's id: a whole number; one of more than 15 digits, or below 1, names no book.",
                errors={404: "No book has that id", 422: "The id is not a number"})
TOPIC = Param("topic", "path", {"type": "string", "minLength": 1, "examples": ["distributed"]},
              "A topic or part of one, matched ignoring case; '%' and '_' are plain characters.")
#: A search's page (``?limit=N&offset=M``): a catalog of many books answers in pages.
PAGE = (Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1_000_000},
              "At most this many hits, in the order of the ids (left out: every hit)",
              errors={422: "'limit' or 'offset' is not a whole number in range"}),
        Param("offset", "query", {"type": "integer", "minimum": 0, "maximum": 1_000_000},
              "Skip this many hits first (0 when left out)"))
TRACE = Param("X-Bazar-Trace", "header", {"type": "string", "maxLength": 64},
              "A trace id; made when absent (or not printable ASCII), carried by every hop, echoed by the answer")
BUY_ID = Param("X-Bazar-Buy-Id", "header", {"type": "string", "minLength": 1, "maxLength": 100,
                                             "pattern": "^[ -~]+$"},
               "The buy's id (W7), printable ASCII; made when absent. The same id again answers the first outcome",
               errors={400: "The buy id is empty, over 100 characters, or not printable ASCII",
                       422: "The buy id was already used to buy another book"})
ATTEMPT = Param("X-Bazar-Attempt", "header", {"type": "string", "minLength": 1, "maxLength": 100,
                                              "pattern": "^[ -~]+$"},
                "Internal: the front-end's name for one attempt of a buy; a copy of it gets its answer",
                errors={400: "The attempt is empty, over 100 characters, or not printable ASCII"})
#: The path parameters a route's ``{name}`` stands for, unless the route declares its own.
PATH_PARAMS = {param.name: param for param in (BOOK_ID, TOPIC)}
_PATH_NAMES = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class Route:
    """One route: what aiohttp routes and what the description says of it, side by side."""

    method: str
    path: str
    handler: Handler
    summary: str
    answers: Mapping[int, Answer]
    params: tuple[Param, ...] = ()
    #: The JSON body's schema, or None when the route reads no body.
    body: Schema | None = None
    body_required: bool = True

    def route_def(self) -> web.RouteDef:
        # No HEAD twin for a GET (aiohttp's default): the contract describes none.
        extra = {"allow_head": False} if self.method == "GET" else {}
        return web.route(self.method, self.path, self.handler, **extra)

    def all_params(self) -> list[Param]:
        """The path's parameters first (the route's own declaration, else the shared one), then the rest."""
        own = {param.name: param for param in self.params}
        path = []
        for name in _PATH_NAMES.findall(self.path):
            param = own.pop(name, None) or PATH_PARAMS.get(name)
            if param is None:
                raise ValueError(f"{self.method} {self.path}: no declaration of the path parameter {name!r}")
            path.append(param)
        return path + list(own.values())


def get(path: str, handler: Handler, summary: str, answers: Mapping[int, Answer], **kw: Any) -> Route:
    return Route("GET", path, handler, summary, answers, **kw)


def post(path: str, handler: Handler, summary: str, answers: Mapping[int, Answer], **kw: Any) -> Route:
    return Route("POST", path, handler, summary, answers, **kw)


def put(path: str, handler: Handler, summary: str, answers: Mapping[int, Answer], **kw: Any) -> Route:
    return Route("PUT", path, handler, summary, answers, **kw)


def delete(path: str, handler: Handler, summary: str, answers: Mapping[int, Answer], **kw: Any) -> Route:
    return Route("DELETE", path, handler, summary, answers, **kw)


def body(properties: Mapping[str, Schema], *, required: Iterable[str] = (), **extra: Any) -> Schema:
    """A JSON object body: fields the handler does not know are ignored, as docs/api.md allows."""
    schema: Schema = {"type": "object", "properties": dict(properties), **extra}
    if required:
        schema["required"] = list(required)
    return schema


def route_table(routes: Iterable[Route]) -> list[web.RouteDef]:
    return [route.route_def() for route in routes]


def describe(routes: Iterable[Route], *, title: str, internal_prefixes: tuple[str, ...],
             secret: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` as the node enforces them: with a cluster secret,
    the routes under ``internal_prefixes`` need it (the ``BazarSecret`` apiKey scheme, and 401)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        internal = route.path.startswith(internal_prefixes)
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, internal, secret and internal)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1",
                 "description": "Generated from the node's route declarations; docs/api.md says the rest."},
        "paths": paths,
        "components": {"schemas": {"Error": ERROR}},
    }
    if secret:
        document["components"]["securitySchemes"] = {
            SECURITY_SCHEME: {"type": "apiKey", "in": "header", "name": SECRET_HEADER,
                              "description": "The cluster's secret: internal and admin routes need it (W6). Taken "
                                             "only by a node bound to loopback; every node takes instead an "
                                             "X-Bazar-Signature header (an HMAC of the request under the "
                                             "secret: docs/api.md, Headers), the only way off loopback."}}
    return document


def _operation(route: Route, internal: bool, secured: bool) -> dict[str, Any]:
    params = route.all_params()
    answers: dict[int, Answer] = dict(route.answers)
    for param in params:
        for status, text in param.errors.items():
            answers.setdefault(status, text)
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": _operation_id(route),
        "tags": ["admin" if route.path.startswith("/admin/") else "internal" if internal else "public"],
    }
    if params:
        operation["parameters"] = [param.as_openapi() for param in params]
    if route.body is not None:
        operation["requestBody"] = {"required": route.body_required,
                                    "content": {"application/json": {"schema": route.body}}}
        answers.setdefault(400, "The body is empty, not JSON, not an object, or a field is wrong (named)")
        answers.setdefault(413, f"The body is over {MAX_BODY_BYTES} bytes")
    if secured:
        operation["security"] = [{SECURITY_SCHEME: []}]
        answers.setdefault(401, f"No valid signature or {SECRET_HEADER}: the route is internal to the cluster")
    operation["responses"] = {str(status): _response(status, answers[status]) for status in sorted(answers)}
    return operation


def _response(status: int, answer: Answer) -> dict[str, Any]:
    text, schema = answer if isinstance(answer, tuple) else (answer, None)
    if status >= 400:
        schema = schema or {"$ref": "#/components/schemas/Error"}
    response: dict[str, Any] = {"description": text}
    if schema is not None and status not in (101, 204):
        response["content"] = {"application/json": {"schema": schema}}
    return response


def _operation_id(route: Route) -> str:
    words = re.sub(r"[^a-zA-Z0-9]+", "_", route.path.replace("{", "by_")).strip("_")
    return f"{route.method.lower()}_{words or 'root'}"


def openapi_route(document: Callable[[], dict[str, Any]]) -> Route:
    """``GET /openapi.json``: public on every node."""

    async def serve(_request: web.Request) -> web.Response:
        return web.json_response(document())

    return get(OPENAPI_PATH, serve, "This description (OpenAPI 3.1)", {200: ("The description", OBJECT)})

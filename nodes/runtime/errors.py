"""The one boundary where anything a handler raises becomes a JSON ``{"message": ...}``."""
from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from aiohttp import web

from nodes.core.books import MAX_BOOKS
from nodes.core.messages import Search
from nodes.core.wire import ATTEMPT_HEADER, BUY_ID_HEADER, NOT_FOUND

log = logging.getLogger(__name__)

#: Largest request body any node accepts; bigger ones are answered 413.
MAX_BODY_BYTES = 64 * 1024

_ID_PATTERN = re.compile(r"-?[0-9]+")
#: The largest whole number a body may carry: JSON readers and SQLite both keep it exactly.
MAX_WHOLE = 2**53 - 1
#: The most copies of one book, and the highest price, the catalog keeps (docs/api.md).
MAX_QUANTITY = 1_000_000_000
MAX_PRICE = 1_000_000_000
_WHOLE_NUMBER = re.compile(r"[0-9]+")


class ApiError(Exception):
    """An error a client provoked: answered with ``status`` and ``{"message": message}``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"message": message, **extra}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, **exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 413:
            message = f"Request body too large (limit {MAX_BODY_BYTES} bytes)"
        elif exc.status == 404:
            message = f"No such endpoint: {request.method} {request.path}"
        elif exc.status == 405:
            allowed = exc.headers.get("Allow", "")
            message = f"Method {request.method} not allowed on {request.path} (allowed: {allowed})"
        else:
            message = exc.reason or "Request failed"
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return web.json_response({"message": message}, status=exc.status, headers=headers)
    except ConnectionResetError:
        raise
    except Exception:  # the boundary: log it, never show a traceback to the client
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "Internal error; see the node's log")


def book_id(request: web.Request) -> int:
    """The ``{id}`` in the path, or 422 ``Book ID must be a number``."""
    raw = request.match_info["id"]
    if not _ID_PATTERN.fullmatch(raw):
        raise ApiError(422, "Book ID must be a number")
    if len(raw.lstrip("-")) > 15:  # a number, but beyond any id a book can have
        raise ApiError(404, NOT_FOUND)
    return int(raw)


#: The longest buy id taken; a longer one is refused, never cut (two ids cut alike would be one).
MAX_BUY_ID = 100


def buy_id_of(request: web.Request) -> str:
    """The request's ``X-Bazar-Buy-Id`` (an idempotency key: the same id again repeats the same
    buy), or a new one when it has none. Too long or empty is 400: cut short, two different ids
    could become one and a buy would be answered with another's outcome (issue 25)."""
    given = request.headers.get(BUY_ID_HEADER)
    if given is None:
        return uuid.uuid4().hex
    if not given.strip() or len(given) > MAX_BUY_ID:
        raise ApiError(400, f"{BUY_ID_HEADER} must be 1 to {MAX_BUY_ID} characters (it was {len(given)})")
    return given


def attempt_of(request: web.Request) -> str | None:
    """The request's ``X-Bazar-Attempt`` (the front-end's name for one attempt of a buy), or
    None; printable ASCII of at most MAX_BUY_ID characters, else 400."""
    given = request.headers.get(ATTEMPT_HEADER)
    if given is not None and not (0 < len(given) <= MAX_BUY_ID and given.isascii() and given.isprintable()):
        raise ApiError(400, f"{ATTEMPT_HEADER} must be 1 to {MAX_BUY_ID} printable ASCII characters")
    return given


def whole_number(text: str | None, name: str, *, status: int = 400, maximum: int = MAX_WHOLE) -> int | None:
    """A whole number given as text (a query parameter, a header), None when absent. Its length
    is checked first: Python will not even read a number of more than 4300 digits."""
    if text is None:
        return None
    if not _WHOLE_NUMBER.fullmatch(text) or len(text) > len(str(maximum)) or int(text) > maximum:
        raise ApiError(status, f"'{name}' must be a whole number from 0 to {maximum}")
    return int(text)


def search_of(request: web.Request) -> Search:
    """A search by the path's topic; ``?limit=N&offset=M`` asks for one page of its hits (N from
    1, M from 0: the hits are in the order of the ids). 422 for a page that cannot be read."""
    limit = whole_number(request.query.get("limit"), "limit", status=422, maximum=MAX_BOOKS)
    if limit == 0:
        raise ApiError(422, f"'limit' must be a whole number from 1 to {MAX_BOOKS} (leave it out for every hit)")
    offset = whole_number(request.query.get("offset"), "offset", status=422, maximum=MAX_BOOKS) or 0
    return Search(request.match_info["topic"], limit, offset)


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or 400 saying what is wrong with it."""
    body = await request.read()
    if not body.strip():
        raise ApiError(400, "Request body must be a JSON object; it was empty")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "Request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return data


def optional_int(data: dict[str, Any], key: str, *, minimum: int | None = None,
                 maximum: int = MAX_WHOLE) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"'{key}' must be an integer")
    if minimum is not None and value < minimum:
        raise ApiError(400, f"'{key}' must not be below {minimum}")
    if value > maximum:
        raise ApiError(400, f"'{key}' must not be above {maximum}")
    return value


def optional_number(data: dict[str, Any], key: str, *, minimum: float | None = None,
                    maximum: float = MAX_WHOLE) -> float | int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (
        float("inf"),
        float("-inf"),
    ):
        raise ApiError(400, f"'{key}' must be a finite number")
    if minimum is not None and value < minimum:
        raise ApiError(400, f"'{key}' must not be below {minimum}")
    if value > maximum:
        raise ApiError(400, f"'{key}' must not be above {maximum}")
    return value

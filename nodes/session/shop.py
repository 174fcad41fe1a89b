"""The shopper's side of a session: search, look up and buy through the front-end, and what a
buy's answer means (a ``BuyResult``: bought, out of stock, unknown, ...), in words a person reads."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from nodes.core.vocabulary import BuyResult
from nodes.core.wire import BUY_ID_HEADER

#: How long the shop waits for the front-end's answer to a buy before it says "unknown".
BUY_TIMEOUT_S = 12.0


@dataclass(frozen=True)
class BuyOutcome:
    """One buy as the shop saw it: its result, the front-end's words, the order replicas it tried."""

    kind: BuyResult
    message: str
    tried: tuple[str, ...] = ()
    #: The buy's id, sent with it: the way to learn an unknown outcome later (W7).
    buy_id: str = ""

    @property
    def sentence(self) -> str:
        """The answer in plain words, for a shopper."""
        match self.kind:
            case BuyResult.BOUGHT:
                return "Bought. Enjoy your book!"
            case BuyResult.OUT_OF_STOCK:
                return "Sorry, that book is out of stock."
            case BuyResult.BOOK_UNKNOWN:
                return "There is no book with that number."
            case BuyResult.UNREACHABLE:
                tried = f" (tried {', '.join(self.tried)})" if self.tried else ""
                return f"No order replica could be reached{tried}. Nothing was bought."
            case BuyResult.REFUSED:
                return f"{self.message}. The cluster refused rather than risk selling a copy twice."
            case BuyResult.UNKNOWN:
                return (f"Outcome unknown: no answer confirmed the purchase in time, so it may or may not have "
                        f"gone through. Buy id {self.buy_id}: press “Look it up” to learn what happened.")
        return self.message


@dataclass(frozen=True)
class ShopError:
    """What went wrong between the shop and the front-end, in plain words."""

    message: str
    #: True when the request may have reached the front-end (a time-out, a dropped
    #: connection): whatever it asked for may have happened.
    maybe_done: bool


#: The most hits the Shop tab lists for a search in a large catalog.
SEARCH_PAGE = 200


class Shop:
    """What a shopper can do, through the front-end only."""

    def __init__(self, frontend: str) -> None:
        self.frontend = frontend.rstrip("/")
        self.session: aiohttp.ClientSession | None = None
        self.buy_timeout = BUY_TIMEOUT_S
        #: Added to every wait at teaching speed, when every message is held (client.Pace).
        self.slack_s = 0.0
        #: How many hits a search shows: None, every one (the documents' seven books); a large
        #: catalog's "t" would be most of it, megabytes, so it is asked for a page.
        self.page: int | None = None

    async def _call(self, method: str, path: str, timeout: float = 10.0,
                    headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """(status, JSON body); status 0 and a ``ShopError`` when nothing came back."""
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession()
        timeout += self.slack_s
        try:
            async with self.session.request(method, self.frontend + path, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                return resp.status, await resp.json(content_type=None)
        except aiohttp.ClientConnectorError:
            return 0, ShopError("The front-end could not be reached: it is down or cut off.", maybe_done=False)
        except TimeoutError:
            return 0, ShopError(f"The front-end did not answer within {timeout:.0f} s: it may be hung or "
                                "overloaded.", maybe_done=True)
        except (aiohttp.ClientError, ValueError):
            return 0, ShopError("The connection to the front-end broke before it answered.", maybe_done=True)

    @staticmethod
    def _failure(status: int, body: Any) -> str:
        if isinstance(body, ShopError):
            return body.message
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
        return f"The front-end answered with an error (status {status})."

    async def search(self, topic: str) -> tuple[bool, list[dict[str, Any]] | str]:
        """The books whose topic holds ``topic``; with ``page`` set (a large catalog), the first
        ``page`` of them and one more, which tells the shopper there are more."""
        if not topic.strip():
            return False, "Type a topic to search for, e.g. distributed"
        query = "" if self.page is None else f"?limit={self.page + 1}"
        status, body = await self._call("GET", f"/search/{quote(topic.strip(), safe='')}{query}")
        return (True, body) if status == 200 else (False, self._failure(status, body))

    async def lookup(self, book: int) -> tuple[bool, dict[str, Any] | str]:
        status, body = await self._call("GET", f"/lookup/{book}")
        return (True, body) if status == 200 else (False, self._failure(status, body))

    async def buy(self, book: int, buy_id: str | None = None) -> BuyOutcome:
        buy_id = buy_id or uuid.uuid4().hex[:12]
        status, body = await self._call("PUT", f"/buy/{book}", timeout=self.buy_timeout,
                                        headers={BUY_ID_HEADER: buy_id})
        if isinstance(body, ShopError):
            # A buy that may have reached the front-end may have been carried out (W7).
            return BuyOutcome(BuyResult.UNKNOWN if body.maybe_done else BuyResult.UNREACHABLE, body.message, (),
                              buy_id)
        message = body.get("message", "") if isinstance(body, dict) else ""
        tried = tuple(t["replica"] for t in body.get("tried", [])) if isinstance(body, dict) else ()
        if status == 200:
            return BuyOutcome(BuyResult.BOUGHT if body.get("success") else BuyResult.OUT_OF_STOCK, message, (),
                              buy_id)
        if status == 202:
            return BuyOutcome(BuyResult.UNKNOWN, message, tried, buy_id)
        if status == 404:
            return BuyOutcome(BuyResult.BOOK_UNKNOWN, message, (), buy_id)
        if status == 422:
            return BuyOutcome(BuyResult.INVALID, message, (), buy_id)
        if status == 503 and isinstance(body, dict) and body.get("outcome") == "not done":
            return BuyOutcome(BuyResult.REFUSED, message, tried, buy_id)  # W8: no majority; nothing changed
        return BuyOutcome(BuyResult.UNREACHABLE, message, tried, buy_id)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


@dataclass(frozen=True)
class BuyLookup:
    buy_id: str
    record: dict[str, Any] | None
    asked: tuple[str, ...]
    silent: tuple[str, ...]

    @property
    def sentence(self) -> str:
        if self.record is not None:
            return (f"Buy {self.buy_id} went through: {self.record['replica']} recorded order "
                    f"{self.record['order_id']} for “{self.record['title']}”.")
        if self.silent:
            return (f"Buy {self.buy_id} is in no history that could be read ({', '.join(self.asked) or 'none'}); "
                    f"{', '.join(self.silent)} could not be asked, so it is still unknown. Try again later.")
        return f"Buy {self.buy_id} is in no order replica's history: it was not carried out."


@dataclass(frozen=True)
class OrderHistory:
    """The order replicas' histories as read just now: the records, newest first, and the
    replicas that could not be read, each with why ("down", "hung", "cut off", ...)."""

    records: list[dict[str, Any]]
    unread: tuple[tuple[str, str], ...] = ()
    replicas: int = 0

    @property
    def note(self) -> str:
        """What the history cannot show, in words; empty when every order replica was read."""
        missing = ", ".join(f"{name} ({why})" for name, why in self.unread)
        if self.unread and len(self.unread) == self.replicas:
            return (f"No order replica can be read now — {missing} — so no order can be shown. The history "
                    "comes back when one of them does.")
        if self.unread:
            return f"Not shown: the orders of {missing}, which could not be read."
        return "" if self.records else "No orders yet."

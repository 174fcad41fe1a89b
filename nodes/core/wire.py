"""The one place where Bazar's messages (``nodes/core/messages.py``) meet HTTP: for each message,
the method, path, body and hop label it travels as; for each answer, its status and body;
and back again. docs/api.md's contract and docs/protocol.md's hop labels live here and nowhere else."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from nodes.core.books import Book
from nodes.core.messages import (
    Applied,
    Bought,
    Busy,
    Buy,
    BuysOf,
    Check,
    Conflict,
    Degraded,
    Done,
    FetchBuys,
    Found,
    Get,
    Granted,
    Health,
    Healthy,
    Hits,
    Invalidate,
    KnownBuy,
    Newer,
    NoOrderServer,
    NotFound,
    NotWritten,
    OtherGeneration,
    OutcomeUnknown,
    OutOfStock,
    Ping,
    Pong,
    Read,
    Release,
    ReusedBuyId,
    Search,
    Unconfirmed,
    Unreachable,
    Update,
    Write,
    Written,
)

GENERATION_HEADER = "X-Bazar-Generation"
BUY_ID_HEADER = "X-Bazar-Buy-Id"
#: One attempt of a buy, front-end to order replica (``Buy.attempt``).
ATTEMPT_HEADER = "X-Bazar-Attempt"
NOT_FOUND = "Book with the specified ID does not exist"
PURCHASED = "Book with the specified ID purchased"
OUT_OF_STOCK = "Book with the specified ID is out of stock"


class Failure:
    """An answer that is not one the protocol knows (a 401, a 500, a body that is not JSON):
    the sender treats it as not having reached the receiver's protocol at all."""

    def __init__(self, status: int, data: Any) -> None:
        self.status = status
        self.data = data

    def __repr__(self) -> str:
        return f"Failure({self.status})"


# ---- requests ---------------------------------------------------------------------------


def request_of(message: Any) -> tuple[str, str, Any, str, dict[str, str]]:
    """(method, path, JSON body, hop label, extra headers) for a message."""
    body: dict[str, Any]
    match message:
        case Read(book, buy_id):
            query = "" if buy_id is None else f"?buy_id={quote(buy_id, safe='')}"
            return "GET", f"/query/item/{book}{query}", None, f"/query/item/{book}", {}
        case Search(topic):
            return ("GET", f"/query/topic/{quote(topic, safe='')}{message.query}", None,
                    f"/query/topic/{topic}{message.query}", {})
        case Write(book, quantity, price, base_seq, buy_id, since, take, attempt):
            body = {k: v for k, v in (("quantity", quantity), ("price", price), ("seq", base_seq),
                                      ("buy_id", buy_id), ("since", since), ("take", take),
                                      ("attempt", attempt)) if v is not None}
            changes = " ".join(f"{k}: {body[k]}" for k in ("quantity", "price") if k in body)
            return "PUT", f"/update/{book}", body, f"/update/{book} {changes}".rstrip(), {}
        case Get(book, req, sender, seq_n):
            return ("POST", f"/rep/get/{book}", {"req": list(req), "from": sender, "seq_n": seq_n},
                    f"/rep/get/{book} req: {list(req)} seq_n: {seq_n}", {})
        case Check(book, seq_n, sender, token, buy_id, since, riders):
            body = {"seq_n": seq_n, "from": sender, "token": token, "buy_id": buy_id, "since": since}
            if riders:
                body["riders"] = list(riders)
            return "POST", f"/rep/check/{book}", body, f"/rep/check/{book} seq_n: {seq_n}", {}
        case Update(copy, sender, token, buy_ids, late, excluded, settles_in, confirmed):
            record = {**copy.as_record(), "token": token, "buy_ids": list(buy_ids), "from": sender,
                      "excluded": list(excluded), "late": late, "settles_in": settles_in}
            if confirmed:
                record["confirmed"] = True
            label = (f"/rep/update/{copy.id} seq_n: {copy.seq} (confirmed)" if confirmed else
                     f"/rep/update/{copy.id} seq_n: {copy.seq} (late)" if late else
                     f"/rep/update/{copy.id} seq_n: {copy.seq} quantity: {copy.quantity} "
                     f"price: {record['price']}")
            return "POST", f"/rep/update/{copy.id}", record, label, {}
        case Release(book, token):
            return "POST", f"/rep/release/{book}", {"token": token}, f"/rep/release/{book}", {}
        case Ping(sender, seqs, epoch, base, position, heard, more, lease):
            return ("POST", "/rep/ping", {"from": sender, "seqs": {str(k): v for k, v in seqs.items()}, "epoch": epoch,
                                          "base": base, "position": position, "heard": list(heard), "more": more,
                                          "lease": lease},
                    "/rep/ping", {})
        case FetchBuys(book, digests):
            if digests is None:
                return "GET", f"/rep/buys/{book}", None, f"/rep/buys/{book}", {}
            return ("POST", f"/rep/buys/{book}", {"digests": [f"{d:016x}" for d in digests]},
                    f"/rep/buys/{book} (of the buckets that differ)", {})
        case Invalidate(book, seq):
            query = "" if seq is None else f"?seq={seq}"
            return "DELETE", f"/invalidate/item/{book}{query}", None, f"/invalidate/item/{book}", {}
        case Buy(book, buy_id, attempt):
            headers = {BUY_ID_HEADER: buy_id} if attempt is None else {BUY_ID_HEADER: buy_id, ATTEMPT_HEADER: attempt}
            return "PUT", f"/buy/{book}", None, f"/buy/{book}", headers
        case Health(sender):
            return "GET", "/health" + (f"?from={sender}" if sender else ""), None, "/health", {}
    raise TypeError(f"no wire form for {message!r}")


# ---- answers: what a receiver sends back ----------------------------------------------------


def response_of(message: Any, answer: Any) -> tuple[int, Any]:
    """(status, JSON body or None for 204) for ``answer`` to ``message``."""
    body: dict[str, Any]
    match answer:
        case NotFound():
            return 404, {"message": NOT_FOUND}
        case OtherGeneration(generation):
            return 503, {"message": "This replica holds another generation of the data (a reset is under way)",
                         "generation": generation}
        case Done():
            return 204, None
        case Found(book) if isinstance(message, Get):
            return 200, {"book": book.as_record()}
        case Found(book):
            return 200, book.as_lookup()
        case Hits(books):
            return 200, [book.as_search_hit() for book in books]
        case Conflict(book, reason, seq) if isinstance(message, Get):
            return 409, {"message": reason or "Conflict: no current copy on this path", "seq": seq}
        case Conflict(book, reason, _seq) if isinstance(message, Write):
            body = {"message": f"The replica's copy was outdated or busy ({reason}); read again and retry",
                    "reason": reason}
            if book is not None:
                body["book"] = book.as_record()
            return 409, body
        case Conflict(_book, reason, _seq):
            return 409, {"message": reason or "Conflict"}
        case Written(book, duplicate):
            record = book.as_record()
            return 200, {"title": record["title"], "quantity": record["quantity"], "topic": record["topic"],
                         "price": record["price"], "seq": record["seq"], "duplicate": duplicate}
        case NotWritten(reason):
            return 503, {"message": f"Nothing was written: {reason}", "outcome": "not done", "reason": reason}
        case Unconfirmed(reason):
            return 503, {"message": f"The write is not confirmed: {reason}", "outcome": "unknown"}
        case Applied(seq, holds):
            return 200, {"seq": seq, "holds": [[i, left] for i, left in holds]}
        case Granted(seq):
            return 200, {"seq": seq}
        case KnownBuy(book) if isinstance(message, Read):
            return 200, {**book.as_lookup(), "known_buy": True}
        case KnownBuy(book, settles_in, buy_id):
            return 200, {"known_buy": True, "book": book.as_record(), "settles_in": settles_in, "buy_id": buy_id}
        case Newer(book):
            return 409, {"message": "Conflict", "book": book.as_record()}
        case Busy(holder):
            return 409, {"message": "Conflict", "busy": True, "holder": holder}
        case Pong(seqs, newer, buy_counts, lease_s, buy_digests, settling, sums, unverified, witnessed,
                  expiring, epoch, base, position, heard, more):
            return 200, {"seqs": {str(k): v for k, v in seqs.items()},
                         "newer": [{"book": book.as_record(), "buy_ids": list(buys)} for book, buys in newer],
                         "buy_counts": {str(k): v for k, v in buy_counts.items()}, "lease_s": lease_s,
                         "buy_digests": {str(k): v for k, v in buy_digests.items()}, "settling": settling,
                         "sums": {str(k): v for k, v in sums.items()},
                         "unverified": list(unverified),
                         "witnessed": {str(k): [seq, sum_] for k, (seq, sum_) in witnessed.items()},
                         "expiring": expiring, "epoch": epoch, "base": base, "position": position, "heard": heard,
                         "more": more}
        case BuysOf(buys, settling, expiring):
            # [buy id, seq, seconds before it is vouched for (0: now), seconds left of its window]
            return 200, [[buy_id, seq, settling.get(buy_id, 0.0), expiring[buy_id]] if buy_id in expiring else
                         [buy_id, seq, settling[buy_id]] if buy_id in settling else [buy_id, seq]
                         for buy_id, seq in buys]
        case Healthy(lease_s):
            return 200, {"status": "up"} if lease_s is None else {"status": "up", "lease_s": lease_s}
        case Degraded(text, lease_s):
            return 503, ({"status": "degraded", "message": text} if lease_s is None else
                         {"status": "degraded", "message": text, "lease_s": lease_s})
        case Bought(buy_id, order_id):
            body = {"success": True, "message": PURCHASED, "buy_id": buy_id}
            if order_id is not None:
                body["order_id"] = order_id
            return 200, body
        case OutOfStock(buy_id):
            return 200, {"success": False, "message": OUT_OF_STOCK, "buy_id": buy_id}
        case ReusedBuyId(buy_id, book):
            return 422, {"message": f"Buy id {buy_id} was already used to buy book {book}; a new buy needs a new "
                                    "id (the same id again only repeats that buy)", "buy_id": buy_id, "used_for": book}
        case Unreachable(text, outcome, busy):
            return (503 if busy else 504), {"message": text, "outcome": outcome}
        case OutcomeUnknown(buy_id, tried):
            return 202, {
                "success": None,
                "outcome": "unknown",
                "buy_id": buy_id,
                "message": "The purchase may or may not have gone through: no order server confirmed it. "
                "Check the order history, or buy again with the same X-Bazar-Buy-Id to learn the outcome.",
                "tried": _tried(tried),
            }
        case NoOrderServer(buy_id, tried, refusal) if refusal:
            return 503, {"message": refusal, "tried": _tried(tried), "buy_id": buy_id, "outcome": "not done"}
        case NoOrderServer(buy_id, tried, _refusal):
            return 504, {"message": "No order server could carry out the buy", "tried": _tried(tried),
                         "buy_id": buy_id}
    if isinstance(answer, Failure):
        # Passed on from a replica that answered outside the protocol: what it did is not known.
        return 502, {"message": f"A replica answered {answer.status}, which this request does not expect; "
                                "whether it acted is unknown", "outcome": "unknown"}
    raise TypeError(f"no wire form for {answer!r}")


def _tried(tried: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"replica": name, "answer": answer} for name, answer in tried]


# ---- answers: what a sender makes of what came back -------------------------------------------


def answer_of(message: Any, status: int, data: Any) -> Any:
    """The answer a status and body stand for, given the message they answer."""
    body = data if isinstance(data, dict) else {}
    if status == 503 and isinstance(body.get("generation"), int) and not isinstance(message, (Buy, Health)):
        return OtherGeneration(body["generation"])
    try:
        return _answer_of(message, status, data, body)
    except (KeyError, TypeError, ValueError):
        return Failure(status, data)


def _optional_float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _book(record: Any, book_id: int | None = None) -> Book:
    if book_id is not None:
        record = {"topic": "", **record, "id": book_id}
    return Book.from_record(record)


def _answer_of(message: Any, status: int, data: Any, body: dict[str, Any]) -> Any:
    if status == 404 and not isinstance(message, Health):
        return NotFound()
    if status == 422 and isinstance(body.get("used_for"), int) and isinstance(body.get("buy_id"), str):
        return ReusedBuyId(body["buy_id"], body["used_for"])
    match message:
        case Read(book):
            if status == 200 and body.get("known_buy"):
                return KnownBuy(_book({k: v for k, v in body.items() if k != "known_buy"}, book))
            if status == 200:
                return Found(_book(body, book))
            if status == 409:
                return Conflict(None, body.get("message", ""))
        case Search():
            if status == 200 and isinstance(data, list):
                return Hits(tuple(Book(int(h["id"]), str(h["title"]), str(h["topic"]), 0, 0) for h in data))
        case Write(book):
            if status == 200:
                return Written(_book(body, book), bool(body.get("duplicate")))
            if status == 409:
                copy = _book(body["book"]) if isinstance(body.get("book"), dict) else None
                return Conflict(copy, str(body.get("reason", "")))
            if status == 503 and body.get("outcome") == "not done":
                return NotWritten(str(body.get("reason", body.get("message", ""))))
            if status == 503 and body.get("outcome") == "unknown":
                return Unconfirmed(str(body.get("message", "")))
        case Get():
            if status == 200:
                return Found(_book(body["book"]))
            if status == 409:
                return Conflict(None, str(body.get("message", "")), body.get("seq"))
        case Check():
            if status == 200 and body.get("known_buy"):
                return KnownBuy(_book(body["book"]), _optional_float(body.get("settles_in")) or 0.0,
                                body.get("buy_id") if isinstance(body.get("buy_id"), str) else None)
            if status == 200:
                return Granted(int(body.get("seq", 0)))
            if status == 409 and body.get("busy"):
                return Busy(body.get("holder"))
            if status == 409 and isinstance(body.get("book"), dict):
                return Newer(_book(body["book"]))
            if status == 503 and body.get("status") == "degraded":
                return Degraded(str(body.get("message", "")))  # its disk refuses writes: no reservation
        case Update():
            if status == 200:
                return Applied(int(body.get("seq", 0)), tuple((int(i), float(u)) for i, u in body.get("holds", [])))
            if status == 503 and body.get("status") == "degraded":
                return Degraded(str(body.get("message", "")))  # not stored: its disk refused it
            if status == 409 and body.get("busy"):
                return Busy(body.get("holder"))
            if status == 409 and isinstance(body.get("book"), dict):
                return Newer(_book(body["book"]))
        case Release() | Invalidate():
            if 200 <= status < 300:
                return Done()
        case Ping():
            if status == 200:
                return Pong({int(k): int(v) for k, v in body["seqs"].items()},
                            tuple((_book(item["book"]), tuple(item.get("buy_ids", []))) for item in body["newer"]),
                            {int(k): int(v) for k, v in body.get("buy_counts", {}).items()},
                            _optional_float(body.get("lease_s")),
                            {int(k): str(v) for k, v in body.get("buy_digests", {}).items()},
                            {str(k): float(v) for k, v in body.get("settling", {}).items()},
                            {int(k): None if v is None else str(v) for k, v in (body.get("sums") or {}).items()},
                            tuple(int(b) for b in body.get("unverified", [])),
                            {int(k): (int(v[0]), str(v[1])) for k, v in body.get("witnessed", {}).items()},
                            {str(k): float(v) for k, v in body.get("expiring", {}).items()},
                            str(body.get("epoch", "")), int(body.get("base", 0)), int(body.get("position", 0)),
                            int(body.get("heard", 0)), body.get("more") is True)
        case FetchBuys():
            if status == 200 and isinstance(data, list):
                return BuysOf(tuple((str(entry[0]), int(entry[1])) for entry in data),
                              {str(entry[0]): float(entry[2]) for entry in data if len(entry) > 2 and entry[2] > 0},
                              {str(entry[0]): float(entry[3]) for entry in data if len(entry) > 3})
        case Buy(_book_id, buy_id):
            if status == 200 and body.get("success") is True:
                return Bought(str(body.get("buy_id", buy_id)), body.get("order_id"))
            if status == 200 and body.get("success") is False:
                return OutOfStock(str(body.get("buy_id", buy_id)))
            if status in (503, 504):
                return Unreachable(str(body.get("message", "")), str(body.get("outcome", "not done")),
                                   busy=status == 503)
        case Health():
            if status == 200:
                return Healthy(_optional_float(body.get("lease_s")))
            return Degraded(str(body.get("message", f"answered {status}")), _optional_float(body.get("lease_s")))
    return Failure(status, data)

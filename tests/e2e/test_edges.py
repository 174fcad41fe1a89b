"""What a client can send that the services must answer plainly (issue 25): every error a JSON
``{"message": ...}`` with the right status, never a 500, never a success that did nothing."""
from __future__ import annotations

import asyncio

import pytest

from tests.support import Http, make_cluster, start

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    supervisor = start(make_cluster(tmp_path_factory.mktemp("edges"), catalogs=2, orders=2))
    yield supervisor
    supervisor.close()


@pytest.fixture
async def http(cluster):
    client = Http(cluster)
    await cluster.wait_settled()
    yield client
    await client.close()
    await cluster.aclose()


async def raw_request(address: str, head: bytes) -> tuple[int, bytes]:
    """Send raw bytes (headers a client library would refuse to send) and read the answer."""
    host, port = address.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


async def test_a_secret_that_is_not_utf8_is_refused_401_on_every_node(cluster):
    for node in cluster.nodes.values():
        path = b"/admin/state"
        status, body = await raw_request(
            node.address, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nX-Bazar-Secret: \xff\xfe\x80\r\n"
            b"Connection: close\r\n\r\n")
        assert status == 401, (node.name, body[:200])
        assert b"X-Bazar-Secret" in body


async def test_numbers_beyond_what_is_kept_are_refused_400_and_change_nothing(http):
    before = await http.book_state("catalog0", 1)
    for body in ({"quantity": 2**70}, {"quantity": 2**63}, {"quantity": 1_000_000_001}, {"price": 10**30},
                 {"price": 1e308}, {"quantity": 1, "seq": 2**64}):
        status, answer = await http.put("/update/1", body, node="catalog0", secret=True)
        assert status == 400, (body, answer)
        assert "must not be above" in answer["message"]
    status, answer, _ = await http.request("PUT", "catalog0", "/update/1", data=b"[" * 30_000, secret=True,
                                           headers={"Content-Type": "application/json"})
    assert status == 400 and "nested too deeply" in answer["message"]
    assert await http.book_state("catalog0", 1) == before
    status, answer = await http.put("/update/1", {"quantity": before["quantity"]}, node="catalog0", secret=True)
    assert status == 200, answer  # the book is not left busy


async def test_a_numeric_id_no_book_has_is_404_however_long(http):
    for path in ("/lookup/1180591620717411303424", "/lookup/-99999999999999999999", "/buy/99999999999999999999"):
        method = "PUT" if path.startswith("/buy") else "GET"
        status, answer, _ = await http.request(method, "frontend", path)
        assert status == 404 and answer == {"message": "Book with the specified ID does not exist"}, (path, answer)


@pytest.mark.parametrize("topic", ["..", ".", "%2E", "%2E%2E", "a%2F.."])
async def test_a_topic_made_of_dots_is_searched_as_written(cluster, topic):
    """Sent as written (a client library would drop the dots); no book's topic has them."""
    head = f"GET /search/{topic} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    status, body = await raw_request(cluster.frontend.address, head)
    assert (status, body) == (200, b"[]"), body[:300]


async def test_the_order_history_is_internal(http):
    status, answer = await http.get("/orders", node="order0")
    assert status == 401 and "X-Bazar-Secret" in answer["message"]
    assert (await http.get("/orders", node="order0", secret=True))[0] == 200


async def test_a_buy_id_reused_for_another_book_is_refused_422_and_takes_nothing(http):
    """An idempotency key names one buy: the same id again repeats it (its first outcome), the
    same id for another book is a mistake, refused, changing nothing; never cut short."""
    stock = {book: (await http.get(f"/lookup/{book}"))[1]["quantity"] for book in (2, 3)}
    first = await http.request("PUT", "frontend", "/buy/2", headers={"X-Bazar-Buy-Id": "reused-1"})
    assert first[0] == 200 and first[1]["success"] is True, first
    again = await http.request("PUT", "frontend", "/buy/2", headers={"X-Bazar-Buy-Id": "reused-1"})
    assert again[0] == 200 and again[1]["buy_id"] == "reused-1"  # a retry: the first outcome
    other = await http.request("PUT", "frontend", "/buy/3", headers={"X-Bazar-Buy-Id": "reused-1"})
    assert other[0] == 422 and "already used to buy book 2" in other[1]["message"], other
    # Straight to an order replica too (it remembers, and so do the catalogs): still refused.
    for order in ("order0", "order1"):
        direct = await http.request("PUT", order, "/buy/3", headers={"X-Bazar-Buy-Id": "reused-1"})
        assert direct[0] == 422, (order, direct)
    assert (await http.get("/lookup/2"))[1]["quantity"] == stock[2] - 1
    assert (await http.get("/lookup/3"))[1]["quantity"] == stock[3]


async def test_a_buy_id_too_long_is_400_not_cut_short(http):
    stock = (await http.get("/lookup/4"))[1]["quantity"]
    for node in ("frontend", "order0"):
        status, answer, _ = await http.request("PUT", node, "/buy/4", headers={"X-Bazar-Buy-Id": "x" * 101})
        assert status == 400 and "1 to 100 characters" in answer["message"], (node, answer)
    assert (await http.get("/lookup/4"))[1]["quantity"] == stock


async def test_a_copy_of_a_write_attempt_gets_its_answer_and_changes_nothing(http):
    """W7: a buy's write delivered twice (a pooled connection that died on first use is tried
    once more) must not be carried out as a new attempt, nor refused: a refusal could reach the
    order replica before the first's answer and a buy carried out be answered "not done"
    (simulator seed 512). A copy, while the first runs or after, gets the first's answer, and
    the stock moved once."""
    _, before = await http.get("/lookup/6")
    write = {"quantity": before["quantity"] - 1, "seq": before["seq"], "buy_id": "edge-dup-1", "take": 1,
             "since": 1.0, "attempt": "test.attempt.1"}
    (status, first), (copy_status, overlapping) = await asyncio.gather(
        http.put("/update/6", write, node="catalog0", secret=True),
        http.put("/update/6", write, node="catalog0", secret=True))
    assert status == copy_status == 200 and first == overlapping, (first, overlapping)
    assert first["quantity"] == before["quantity"] - 1, first
    status, late = await http.put("/update/6", write, node="catalog0", secret=True)
    assert status == 200 and late == first, late
    status, again = await http.get("/query/item/6", node="catalog1", secret=True)
    assert status == 200 and again["quantity"] == before["quantity"] - 1, again


async def test_a_late_copy_of_a_buy_attempt_answered_not_done_buys_nothing(cluster, http):
    """Simulator seed 2081010325: the front-end's buy reached an order replica twice, the copy
    after the answer ("not done": its catalog could not write). Run anew, the copy bought the
    book while the client held "not done". A copy of one attempt (``X-Bazar-Attempt``) is
    answered that attempt's outcome; another attempt of the buy runs anew."""
    _, before = await http.get("/lookup/5")
    attempt = {"X-Bazar-Buy-Id": "edge-late-copy", "X-Bazar-Attempt": "test.late.1"}
    cluster.crash("catalog0")  # order0's catalog
    try:
        status, first, _ = await http.request("PUT", "order0", "/buy/5", headers=attempt, secret=True)
        assert status == 504 and first["outcome"] == "not done", first
    finally:
        cluster.start("catalog0")
        await asyncio.to_thread(cluster.wait_ready, ["catalog0"])
    await cluster.wait_settled()
    status, copy, _ = await http.request("PUT", "order0", "/buy/5", headers=attempt, secret=True)
    assert (status, copy) == (504, first), copy
    assert (await http.get("/lookup/5"))[1]["quantity"] == before["quantity"]
    retry = {**attempt, "X-Bazar-Attempt": "test.late.2"}
    status, bought, _ = await http.request("PUT", "order0", "/buy/5", headers=retry, secret=True)
    assert status == 200 and bought["success"] is True, bought
    status, bad, _ = await http.request("PUT", "order0", "/buy/5", headers={**attempt, "X-Bazar-Attempt": ""},
                                        secret=True)
    assert status == 400 and "X-Bazar-Attempt" in bad["message"], bad

"""The three services as real processes behind the front-end, as docs/api.md describes them."""
from __future__ import annotations

import asyncio

import pytest

from tests.support import Http, fast_timeouts, make_cluster, start, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    supervisor = start(make_cluster(tmp_path_factory.mktemp("services"), catalogs=2, orders=2))
    yield supervisor
    supervisor.close()


@pytest.fixture
async def http(cluster):
    client = Http(cluster)
    await cluster.reset()
    await cluster.wait_settled()
    yield client
    await client.close()
    await cluster.aclose()


async def test_search_matches_topic_case_insensitively(http):
    status, hits = await http.get("/search/distributed")
    assert status == 200
    assert [hit["id"] for hit in hits] == [1, 2]
    assert set(hits[0]) == {"id", "title", "topic"}
    status, everything = await http.get("/search/t")
    assert [hit["id"] for hit in everything] == [1, 2, 3, 4, 5, 6, 7]
    assert await http.get("/search/cooking") == (200, [])


async def test_search_treats_percent_and_underscore_as_plain_characters(http):
    assert await http.get("/search/%25") == (200, [])
    assert await http.get("/search/_") == (200, [])
    assert await http.get("/search/Graduate_School") == (200, [])


async def test_lookup_answers_title_quantity_price(http):
    status, book = await http.get("/lookup/2")
    assert status == 200
    assert (book["title"], book["quantity"], book["price"]) == ("RPCs for Dummies", 5, 50)


async def test_lookup_of_unknown_and_non_numeric_ids(http):
    assert await http.get("/lookup/99") == (404, {"message": "Book with the specified ID does not exist"})
    assert await http.get("/lookup/abc") == (422, {"message": "Book ID must be a number"})
    assert await http.get("/lookup/99999999999999999999999") == (
        404, {"message": "Book with the specified ID does not exist"})  # a number, beyond every id
    # asked twice: the unknown id is answered the same way from the cache (W5)
    assert (await http.get("/lookup/99"))[0] == 404


async def test_buy_until_out_of_stock(http):
    for left in range(4, -1, -1):
        status, answer = await http.put("/buy/2")
        assert status == 200
        assert answer["success"] is True and answer["message"] == "Book with the specified ID purchased"
        assert (await http.get("/lookup/2"))[1]["quantity"] == left
    status, answer = await http.put("/buy/2")
    assert (status, answer["success"], answer["message"]) == (
        200, False, "Book with the specified ID is out of stock")
    assert await http.put("/buy/99") == (404, {"message": "Book with the specified ID does not exist"})
    assert await http.put("/buy/x") == (422, {"message": "Book ID must be a number"})


async def test_cached_lookup_then_buy_then_lookup_shows_new_stock(http):
    assert (await http.get("/lookup/3"))[1]["quantity"] == 10
    state = await http.state("frontend")
    assert 3 in state["caches"]["lookup"]["keys"]
    assert (await http.put("/buy/3"))[1]["success"] is True
    assert (await http.get("/lookup/3"))[1]["quantity"] == 9


async def test_a_buy_keeps_cached_searches_which_do_not_show_stock(http):
    hits = (await http.get("/search/graduate"))[1]
    assert (await http.put("/buy/3"))[1]["success"] is True
    assert (await http.state("frontend"))["caches"]["search"]["keys"] == ["graduate"]
    assert (await http.get("/search/graduate"))[1] == hits


async def test_order_history_records_each_purchase(http):
    await http.put("/buy/4")
    await http.put("/buy/4")
    records = []
    for order in ("order0", "order1"):
        status, history = await http.get("/orders", node=order, secret=True)
        assert status == 200
        records += history
    assert [(r["book_id"], r["title"], r["price"]) for r in records] == [
        (4, "Cooking for the Impatient Graduate Student", 10)] * 2
    assert len({r["buy_id"] for r in records}) == 2


async def test_lookups_take_turns_and_buys_go_to_their_books_order_replica(http):
    """Lookups go round-robin (S9); a buy goes to its book's order replica (book id modulo
    the order replicas), so buys of one book meet at one order and one catalog replica and
    queue there instead of refusing each other across replicas (issue 17)."""
    await http.supervisor.admin("frontend", "POST", "/admin/failover", {"catalog_turn": 0, "order_turn": 0})
    traces = []
    for book in (1, 2, 3, 4):  # four misses: each goes to a catalog
        _status, _body, headers = await http.request("GET", "frontend", f"/lookup/{book}")
        traces.append(headers["X-Bazar-Trace"])
    for book in (5, 5, 4, 4, 5):
        await http.put(f"/buy/{book}")
    events = await http.supervisor.admin("frontend", "GET", "/admin/events")
    hops = [e for e in events if e["kind"] == "hop"]
    # Each lookup's first hop (by when it was sent) is its turn; a slow answer may bring a
    # hedged second hop to the next replica, which ends first and is told first.
    catalogs = [min((e for e in hops if e.get("trace") == trace), key=lambda e: e["t0"])["to"] for trace in traces]
    orders = [e["to"] for e in hops if e["label"].startswith("/buy/")][-5:]
    assert catalogs == ["catalog0", "catalog1", "catalog0", "catalog1"]
    assert orders == ["order1", "order1", "order0", "order0", "order1"]


async def test_bad_inputs_get_a_json_message_and_change_nothing(http):
    before = await http.state("catalog0")
    cases = [
        ("GET", "frontend", "/no/such/path", None, None, 404),
        ("POST", "frontend", "/lookup/1", None, None, 405),
        ("PUT", "catalog0", "/update/1", None, b"{not json", 400),
        ("PUT", "catalog0", "/update/1", None, b"", 400),
        ("PUT", "catalog0", "/update/1", None, b"[1, 2]", 400),
        ("PUT", "catalog0", "/update/1", {"quantity": -1}, None, 400),
        ("PUT", "catalog0", "/update/1", {"price": -5}, None, 400),
        ("PUT", "catalog0", "/update/1", {"quantity": "many"}, None, 400),
        ("PUT", "catalog0", "/update/1", {"quantity": True}, None, 400),
        ("PUT", "catalog0", "/update/abc", {"quantity": 1}, None, 422),
        ("PUT", "catalog0", "/update/99", {"quantity": 1}, None, 404),
        ("PUT", "catalog0", "/update/1", None, b'{"quantity": 1, "pad": "' + b"x" * 70_000 + b'"}', 413),
        ("POST", "catalog0", "/rep/get/1", {"req": "nope", "from": 1, "seq_n": 0}, None, 400),
        ("POST", "catalog0", "/rep/update/1", {"quantity": 1}, None, 400),
    ]
    for method, node, path, body, data, expected in cases:
        headers = {"Content-Type": "application/json"} if data is not None else None
        status, answer, response_headers = await http.request(
            method, node, path, body, data=data, secret=True, headers=headers)
        assert status == expected, (method, path, body, data and data[:40], answer)
        assert response_headers["Content-Type"].startswith("application/json")
        assert isinstance(answer["message"], str) and answer["message"]
    assert (await http.state("catalog0"))["books"] == before["books"]


async def test_internal_endpoints_need_the_cluster_secret(http):
    status, answer = await http.put("/update/1", {"quantity": 0}, node="catalog0")
    assert status == 401 and "X-Bazar-Secret" in answer["message"]
    status, _, _ = await http.request("DELETE", "frontend", "/invalidate/item/1")
    assert status == 401
    status, _, _ = await http.request("DELETE", "frontend", "/invalidate/item/1", secret=True)
    assert status == 204
    assert (await http.get("/lookup/1"))[1]["quantity"] == 10


async def test_invalidations_drop_cache_entries(http):
    await http.get("/lookup/1")
    await http.get("/search/distributed")
    await http.get("/search/graduate")
    await http.request("DELETE", "frontend", "/invalidate/item/1", secret=True)
    await http.request("DELETE", "frontend", "/invalidate/topic/Distributed%20Systems", secret=True)
    caches = (await http.state("frontend"))["caches"]
    assert 1 not in caches["lookup"]["keys"]
    assert caches["search"]["keys"] == ["graduate"]
    await http.request("DELETE", "frontend", "/invalidate/topic/", secret=True)
    assert (await http.state("frontend"))["caches"]["search"]["keys"] == []


async def test_invalidation_naming_a_seq_keeps_older_copies_out_of_the_cache(http):
    # Catalogs invalidate while their write is still reaching the other replicas, naming its
    # seq: a copy older than that, fetched meanwhile, must not be cached.
    assert (await http.get("/lookup/1"))[1]["seq"] == 0
    status, _, _ = await http.request("DELETE", "frontend", "/invalidate/item/1?seq=5", secret=True)
    assert status == 204
    assert (await http.get("/lookup/1"))[1]["seq"] == 0  # no write reached seq 5: the catalog's copy
    assert 1 not in (await http.state("frontend"))["caches"]["lookup"]["keys"]
    await http.get("/lookup/2")  # other books are cached as before
    assert 2 in (await http.state("frontend"))["caches"]["lookup"]["keys"]
    for bad in ("-1", "x", "1.5"):
        status, answer, _ = await http.request("DELETE", "frontend", f"/invalidate/item/1?seq={bad}", secret=True)
        assert status == 422 and "'seq'" in answer["message"]
    await http.supervisor.reset()
    await http.get("/lookup/1")  # a reset puts seqs back to 0, and the floors with them
    assert 1 in (await http.state("frontend"))["caches"]["lookup"]["keys"]


@pytest.fixture
def small_cluster(tmp_path, supervisors):
    supervisor = start(make_cluster(tmp_path, catalogs=2, orders=2, timeouts=fast_timeouts()))
    supervisors.append(supervisor)
    return supervisor


@pytest.mark.parametrize("catalogs, consistency, buys", [(3, "majority", True), (2, "available", True),
                                                         (2, "majority", False)])
async def test_requests_succeed_with_one_replica_of_each_kind_down(tmp_path, supervisors, catalogs, consistency,
                                                                   buys):
    """Reads always survive one catalog replica down. Buys do with three replicas (two of three
    are a majority), and with two only when the cluster chose availability over consistency
    ("available", W8); with "majority" the buy is refused, saying why, and nothing changes."""
    cluster = start(make_cluster(tmp_path, catalogs=catalogs, orders=2, timeouts=fast_timeouts(),
                                 consistency=consistency))
    supervisors.append(cluster)
    http = Http(cluster)
    await cluster.wait_settled()
    try:
        cluster.crash("catalog1")
        cluster.crash("order1")  # order0 still has its catalog0
        for book in (1, 2, 3, 4, 5):
            assert (await http.get(f"/lookup/{book}"))[0] == 200
        for _ in range(4):
            status, answer = await http.put("/buy/6")
            if buys:
                assert status == 200 and answer["success"] is True
            else:
                assert status == 503
                assert answer["message"] == "Nothing was bought: only 1 of 2 catalog replicas reachable; 2 needed"
        assert (await http.get("/lookup/6"))[1]["quantity"] == (13 if buys else 17)
    finally:
        await http.close()
        await cluster.aclose()


async def test_all_replicas_down_gives_504(small_cluster):
    http = Http(small_cluster)
    await small_cluster.wait_settled()
    try:
        for name in ("catalog0", "catalog1"):
            small_cluster.crash(name)
        status, answer = await http.get("/lookup/1")
        assert status == 504 and answer["message"] == "No catalog server could be reached"
        assert [t["replica"] for t in answer["tried"]] == ["catalog0", "catalog1"] or len(answer["tried"]) == 2
        status, answer = await http.put("/buy/1")
        assert status == 504
        assert {t["replica"] for t in answer["tried"]} == {"order0", "order1"}
        small_cluster.start("catalog0")
        small_cluster.wait_ready(["catalog0"])

        async def lookup_works() -> bool:
            return (await http.get("/lookup/1"))[0] == 200

        await wait_until(lookup_works, timeout=10, what="a lookup to succeed after catalog0 restarted")
    finally:
        await http.close()
        await small_cluster.aclose()


async def test_concurrent_requests_are_all_answered(http):
    results = await asyncio.gather(*(http.get(f"/lookup/{1 + i % 7}") for i in range(50)))
    assert all(status == 200 for status, _ in results)

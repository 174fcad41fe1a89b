"""Weak points of the documented design that Bazar does not inherit (docs/weak-points.md W1, W2, W3, W7)."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from nodes.core.wire import BUY_ID_HEADER
from tests.support import Http, fast_timeouts, hops_of, live, make_cluster, wait_until

pytestmark = pytest.mark.timeout(180)


async def catalog_books(http: Http, book: int) -> list[tuple[int, int]]:
    """(quantity, seq) of ``book`` on every catalog replica."""
    return [((b := await http.book_state(n.name, book))["quantity"], b["seq"])
            for n in http.supervisor.of_role("catalog")]


async def catalogs_agree(http: Http) -> bool:
    """Every catalog replica holds every book at the same quantity and seq."""
    states = [await http.state(n.name) for n in http.supervisor.of_role("catalog")]
    return len({tuple((b["quantity"], b["seq"]) for b in s["books"]) for s in states}) == 1


async def order_history(http: Http) -> list[dict]:
    records = []
    for node in http.supervisor.of_role("order"):
        if node.state == "up":
            records += (await http.get("/orders?limit=10000", node=node.name, secret=True))[1]
    return records


@pytest.fixture
async def threes(tmp_path, supervisors):
    async with live(make_cluster(tmp_path, catalogs=3, orders=3), supervisors) as (_supervisor, http):
        yield http


async def test_w1_concurrent_buyers_never_sell_more_than_the_stock(threes):
    http = threes
    await http.set_stock(2, 50)
    attempts = iter(range(200))
    answers: list[tuple[int, dict]] = []

    async def buyer() -> None:
        for _ in attempts:
            answers.append(await http.put("/buy/2"))

    await asyncio.gather(*(buyer() for _ in range(8)))
    assert len(answers) == 200
    assert all(status == 200 for status, _ in answers), [a for a in answers if a[0] != 200][:3]
    bought = sum(1 for _, body in answers if body["success"] is True)
    out_of_stock = sum(1 for _, body in answers if body["success"] is False)
    assert (bought, out_of_stock) == (50, 150)

    async def replicas_agree() -> bool:
        books = await catalog_books(http, 2)
        return len(set(books)) == 1 and books[0][0] == 0

    await wait_until(replicas_agree, timeout=5, what="every replica to hold stock 0 at the same seq")
    assert len([r for r in await order_history(http) if r["book_id"] == 2]) == 50


async def test_w3_restarted_replica_catches_up_without_any_read(threes):
    http = threes
    supervisor = http.supervisor
    supervisor.crash("catalog2")
    for i in range(20):
        status, body = await http.put(f"/buy/{1 + i % 7}")
        assert status == 200 and body["success"] is True, body
    supervisor.start("catalog2")
    supervisor.wait_ready(["catalog2"])

    async def caught_up() -> bool:
        states = [await http.state(f"catalog{i}") for i in range(3)]
        rows = [[(b["id"], b["quantity"], b["seq"]) for b in s["books"]] for s in states]
        return rows[0] == rows[1] == rows[2]

    await wait_until(caught_up, timeout=5, what="catalog2 to hold the same stock and seq as its peers")
    state = await http.state("catalog2")
    assert state["catch_ups"] == 7
    assert not any(b["valid"] for b in state["books"])  # no read touched it: all done in the background


async def test_w2_a_replica_back_from_a_lapse_vouches_again_for_the_new_copy_while_a_peer_hangs(tmp_path, supervisors):
    # A replica cut off past its lease vouches for nothing; a write leaves it out meanwhile.
    # Healed while another peer hangs, it vouches again once enough peers granted it a lease
    # (with majority writes, n - majority of them: one of three here, so a hung peer does not
    # hold it back) — and only for the copy those peers hold, adopted before the lease is
    # taken, never its old one. Until 2026-12-06 this test asserted that it stayed lapsed
    # until every peer answered, the rule before majority leases; it passed only while the
    # state was read before the next ping renewed the lease (CI failed on it once).
    cluster = make_cluster(tmp_path, catalogs=4, orders=1, timeouts=fast_timeouts())
    async with live(cluster, supervisors) as (supervisor, http):
        async def state(name: str) -> dict:
            return await http.state(name)

        assert (await http.get("/query/item/1", node="catalog2"))[0] == 200
        assert (await http.book_state("catalog2", 1))["valid"]
        await supervisor.cut_off("catalog2", True)
        await wait_until(lambda: _flag(state("catalog2"), "rejoining"), what="catalog2's lease to lapse")
        await wait_until(lambda: _not(_valid(http.book_state("catalog2", 1))), timeout=2,
                         what="the lapse to drop catalog2's valid set")  # its next heartbeat, 0.15 s
        old = await http.book_state("catalog2", 1)

        status, body = await http.put("/buy/1")  # catalogs 0, 1 and 3: a majority without catalog2
        assert status == 200 and body["success"] is True, body
        new = await http.book_state("catalog0", 1)
        assert new["seq"] > old["seq"]
        assert (await http.book_state("catalog2", 1))["seq"] == old["seq"]  # left out

        supervisor.hang("catalog1")
        await supervisor.cut_off("catalog2", False)
        await wait_until(lambda: _not(_flag(state("catalog2"), "rejoining")),
                         what="catalog2 to hold a lease again while catalog1 hangs")
        status, body = await http.get("/query/item/1", node="catalog2")
        assert status == 200 and body["quantity"] == new["quantity"], body
        held = await http.book_state("catalog2", 1)
        assert held["seq"] == new["seq"] and held["quantity"] == new["quantity"]
        assert held["valid"]

        supervisor.resume("catalog1")
        await wait_until(lambda: catalogs_agree(http), what="every replica to hold the buy")


async def _flag(state, key: str) -> bool:
    return bool((await state)[key])


async def _valid(book) -> bool:
    return bool((await book)["valid"])


async def _not(flag) -> bool:
    return not await flag


async def test_a_reset_is_not_undone_by_a_replica_that_missed_it(threes):
    # Replicas are reset one after the other, and one may be down: its older rows must not
    # travel back into the others by catch-up. It takes on the new generation instead.
    http = threes
    supervisor = http.supervisor
    for i in range(7):
        assert (await http.put(f"/buy/{1 + i}"))[1]["success"] is True
    supervisor.crash("catalog2")
    await supervisor.reset()
    fresh = await http.book_state("catalog0", 1)
    supervisor.start("catalog2")
    supervisor.wait_ready(["catalog2"])

    async def all_fresh() -> bool:
        states = [await http.state(f"catalog{i}") for i in range(3)]
        rows = {tuple((b["id"], b["quantity"], b["seq"]) for b in s["books"]) for s in states}
        return len(rows) == 1 and all(seq == 0 for _id, _q, seq in next(iter(rows)))

    await wait_until(all_fresh, timeout=5, what="catalog2 to take on the reset instead of undoing it")
    assert await catalog_books(http, 1) == [(fresh["quantity"], 0)] * 3
    for node in ("catalog0", "catalog1", "catalog2"):
        assert await supervisor.admin(node, "GET", "/admin/buys") == []
    generations = {(await http.state(f"catalog{i}"))["generation"] for i in range(3)}
    assert len(generations) == 1


async def test_w7_buys_through_a_slowed_order_replica_are_carried_out_once(tmp_path, supervisors):
    cluster = make_cluster(tmp_path, catalogs=3, orders=3, timeouts=fast_timeouts())
    async with live(cluster, supervisors) as (supervisor, http):
        # Every third buy goes to order1 first (documented round-robin, no skipping), which
        # carries it out and then answers after the front-end's buy timeout (2 x 1 s).
        await supervisor.admin("frontend", "POST", "/admin/failover", {"mode": "documented", "order_turn": 0})
        await supervisor.slow("order1", 2500)
        before = sum(b["quantity"] for b in (await http.state("catalog0"))["books"])
        answers = [await http.put(f"/buy/{1 + i % 7}") for i in range(9)]
        acknowledged = [body for status, body in answers if status == 200 and body["success"] is True]
        assert len(acknowledged) == 9, answers

        await wait_until(lambda: catalogs_agree(http), timeout=5, what="replicas to agree")
        after = sum(b["quantity"] for b in (await http.state("catalog0"))["books"])
        assert before - after == len(acknowledged)  # copies taken == buys acknowledged
        await supervisor.slow("order1", 0)
        history = await order_history(http)
        assert sorted(r["buy_id"] for r in history) == sorted(a["buy_id"] for a in acknowledged)


async def test_w7_a_buy_whose_outcome_is_unknown_says_so_and_a_retry_learns_it(tmp_path, supervisors):
    cluster = make_cluster(tmp_path, catalogs=2, orders=1, timeouts=fast_timeouts())
    async with live(cluster, supervisors) as (supervisor, http):
        await supervisor.slow("order0", 2500)
        buy_id = uuid.uuid4().hex
        status, body, _ = await http.request("PUT", "frontend", "/buy/3", headers={BUY_ID_HEADER: buy_id})
        assert status == 202 and body["outcome"] == "unknown" and body["success"] is None
        assert "may or may not" in body["message"]
        await supervisor.slow("order0", 0)
        await supervisor.wait_settled()
        # Asking again with the same id learns the first outcome and takes no second copy.
        status, body, _ = await http.request("PUT", "frontend", "/buy/3", headers={BUY_ID_HEADER: buy_id})
        assert status == 200 and body["success"] is True and body["buy_id"] == buy_id
        assert (await http.book_state("catalog0", 3))["quantity"] == 9
        assert [r["buy_id"] for r in await order_history(http)] == [buy_id]


async def test_w4_a_buy_at_an_order_replica_whose_catalog_fell_silent_is_hedged_and_done_once(tmp_path, supervisors):
    """A buy sent to an order replica whose catalog replica has just fallen silent (the probe
    has not yet learnt it) waited that replica's 1.5 s time-out and then went on: under load
    these were the buys over a second and the time-outs (issue 28). After 0.5 s it is now asked
    of the next order replica too, with the same buy id: answered within a second, carried out
    once."""
    cluster = make_cluster(tmp_path, catalogs=3, orders=3)
    async with live(cluster, supervisors) as (supervisor, http):
        before = sum(b["quantity"] for b in (await http.state("catalog0"))["books"])
        # catalog1 stops hearing order1 (order1 -> catalog1 is order i's catalog i): order1's
        # reads wait out its time-out, while every other link works, so the other path is quick.
        await supervisor.admin("catalog1", "POST", "/admin/links", {"deaf_to": ["order1"]})

        async def buy(book: int) -> tuple[float, int, dict, str]:
            started = time.monotonic()
            status, body, headers = await http.request("PUT", "frontend", f"/buy/{book}")
            return time.monotonic() - started, status, body, headers["X-Bazar-Trace"]

        # At once, before the probe can learn that order1 is no use: books 1, 4 and 7 are order1's.
        answers = await asyncio.gather(*(buy(book) for book in (1, 4, 7, 1, 4, 7)))
        assert all(status == 200 and body["success"] is True for _s, status, body, _t in answers), answers
        slowest = max(seconds for seconds, *_ in answers)
        assert slowest < 1.4, f"a buy took {slowest:.2f} s: order1's time-out (1.5 s) was waited out"
        await supervisor.admin("catalog1", "POST", "/admin/links", {"deaf_to": []})

        async def asked(trace: str) -> set[str]:  # a hop is told when it ends: order1's last
            return {h["to"] for h in await hops_of(supervisor, trace) if h["node"] == "frontend"}

        async def hedged() -> bool:  # order1's attempts have ended (its 504), each beside another
            told = [await asked(trace) for *_, trace in answers]
            return all("order1" in names and len(names) >= 2 for names in told)
        await wait_until(hedged, timeout=10, what="each buy asked of order1 and of another order replica")
        assert (await http.state("order1"))["unreachable"] == 6  # order1 did none of them
        await wait_until(lambda: catalogs_agree(http), timeout=5, what="replicas to agree")
        after = sum(b["quantity"] for b in (await http.state("catalog0"))["books"])
        assert before - after == 6  # six copies taken for six buys acknowledged
        history = sorted(r["buy_id"] for r in await order_history(http))
        assert history == sorted(body["buy_id"] for _s, _st, body, _t in answers)  # each recorded once

"""The twelve figures of the replication document (S1–S12 in protocol.md), each replayed on
real processes: the starting state is built through crashes, restarts and real writes, the
figure's request is sent, and the hops, answers and final seq/valid marks are asserted."""
from __future__ import annotations

from dataclasses import replace

import pytest

from nodes.shared.telemetry import TRACE_HEADER, new_trace_id
from tests.helpers import Http, fast_timeouts, hops_of, make_cluster, seqs_and_valid, short, start

pytestmark = pytest.mark.timeout(120)
BOOK = 2


@pytest.fixture
async def five(tmp_path, supervisors):
    """Five catalog replicas running the rules exactly as documented, one order replica."""
    cluster = replace(make_cluster(tmp_path, catalogs=5, orders=1), catalog_mode="documented")
    supervisor = start(cluster)
    supervisors.append(supervisor)
    http = Http(supervisor)
    yield supervisor, http
    await http.close()
    await supervisor.aclose()


async def restart(supervisor, *names: str) -> None:
    for name in names:
        supervisor.stop(name) if supervisor.node(name).state == "up" else None
        supervisor.start(name)
    supervisor.wait_ready(names)


async def fix_peer_order(supervisor) -> None:
    """Replicas ask peers in number order, so the hops draw the figure's path."""
    await supervisor.wait_settled()
    count = len(supervisor.of_role("catalog"))
    for node in supervisor.of_role("catalog"):
        if node.state == "up":
            await supervisor.admin(node.name, "POST", "/admin/peer-order", {"order": list(range(count))})


async def write(http: Http, via: str, quantity: int) -> None:
    status, body = await http.put(f"/update/{BOOK}", {"quantity": quantity}, node=via, secret=True)
    assert status == 200, body


async def traced(http: Http, method: str, node: str, path: str, body=None):
    trace = new_trace_id()
    status, answer, _ = await http.request(method, node, path, body, secret=True, headers={TRACE_HEADER: trace})
    return trace, status, answer


def get(sender: int, to: int, req: list[int], seq_n: int, answer: str) -> tuple[str, str, str, str]:
    return f"catalog{sender}", f"catalog{to}", f"/rep/get/{BOOK} req: {req} seq_n: {seq_n}", answer


async def test_s1_cold_start_read_hops_to_the_last_replica(five):
    supervisor, http = five
    await fix_peer_order(supervisor)
    trace, status, book = await traced(http, "GET", "catalog0", f"/query/item/{BOOK}")
    assert status == 200 and book["seq"] == 0
    assert short(await hops_of(supervisor, trace, among="catalog")) == [
        get(0, 1, [], 0, "200 OK"),
        get(1, 2, [0], 0, "200 OK"),
        get(2, 3, [0, 1], 0, "200 OK"),
        get(3, 4, [0, 1, 2], 0, "200 OK"),
    ]
    assert await seqs_and_valid(supervisor, BOOK) == [(0, True)] * 5


async def test_s2_read_hops_to_a_valid_replica(five):
    supervisor, http = five
    supervisor.crash("catalog0")
    supervisor.crash("catalog1")
    await write(http, "catalog2", 4)
    await write(http, "catalog2", 3)  # 2, 3, 4 at seq 2, all valid
    await restart(supervisor, "catalog0", "catalog1", "catalog3", "catalog4")  # only 2 stays valid
    await fix_peer_order(supervisor)
    assert await seqs_and_valid(supervisor, BOOK) == [(0, False), (0, False), (2, True), (2, False), (2, False)]

    trace, status, book = await traced(http, "GET", "catalog0", f"/query/item/{BOOK}")
    assert (status, book["seq"], book["quantity"]) == (200, 2, 3)
    assert short(await hops_of(supervisor, trace, among="catalog")) == [
        get(0, 1, [], 0, "200 OK"),
        get(1, 2, [0], 0, "200 OK"),
    ]
    assert await seqs_and_valid(supervisor, BOOK) == [(2, True), (2, True), (2, True), (2, False), (2, False)]


async def test_s3_read_after_total_failure_takes_the_highest_copy(five):
    supervisor, http = five
    supervisor.crash("catalog0")
    supervisor.crash("catalog4")
    await write(http, "catalog1", 4)  # 1, 2, 3 at seq 1
    supervisor.crash("catalog2")
    supervisor.crash("catalog3")
    await write(http, "catalog1", 3)  # 1 alone at seq 2
    await restart(supervisor, "catalog0", "catalog1", "catalog2", "catalog3", "catalog4")
    await fix_peer_order(supervisor)
    assert await seqs_and_valid(supervisor, BOOK) == [(0, False), (2, False), (1, False), (1, False), (0, False)]

    trace, status, book = await traced(http, "GET", "catalog0", f"/query/item/{BOOK}")
    assert (status, book["seq"], book["quantity"]) == (200, 2, 3)
    hops = short(await hops_of(supervisor, trace, among="catalog"))
    # Requests go out 0 → 1 → 2 → 3 → 4; answers come back 409, 409, 409, then 200 at 1.
    assert hops == [
        get(0, 1, [], 0, "200 OK"),
        get(1, 2, [0], 2, "409 Conflict"),
        get(2, 3, [0, 1], 2, "409 Conflict"),
        get(3, 4, [0, 1, 2], 2, "409 Conflict"),
    ]
    assert await seqs_and_valid(supervisor, BOOK) == [(2, True), (2, True), (1, False), (1, False), (0, False)]


async def test_s4_write_with_every_replica_at_the_same_seq(five):
    supervisor, http = five
    await write(http, "catalog0", 4)  # all at seq 1
    await restart(supervisor, *(f"catalog{i}" for i in range(5)))  # none valid
    assert await seqs_and_valid(supervisor, BOOK) == [(1, False)] * 5

    trace, status, book = await traced(http, "PUT", "catalog0", f"/update/{BOOK}", {"quantity": 3})
    assert (status, book["seq"], book["quantity"]) == (200, 2, 3)
    hops = short(await hops_of(supervisor, trace, among="catalog"))
    checks, updates = hops[:4], hops[4:]
    peers = (1, 2, 3, 4)
    assert sorted(checks) == [("catalog0", f"catalog{i}", f"/rep/check/{BOOK} seq_n: 1", "200 OK") for i in peers]
    update = f"/rep/update/{BOOK} seq_n: 2 quantity: 3 price: 50"
    assert sorted(updates) == [("catalog0", f"catalog{i}", update, "200 OK") for i in peers]
    assert await seqs_and_valid(supervisor, BOOK) == [(2, True)] * 5


async def test_s5_write_on_an_outdated_copy_is_refused_and_refreshed(five):
    supervisor, http = five
    supervisor.crash("catalog1")
    await write(http, "catalog0", 9)  # 0, 2, 3, 4 at seq 1
    supervisor.crash("catalog0")
    supervisor.crash("catalog2")
    await write(http, "catalog3", 8)  # 3, 4 at seq 2
    supervisor.crash("catalog4")
    await write(http, "catalog3", 7)  # 3 at seq 3, valid
    await restart(supervisor, "catalog0", "catalog1", "catalog2", "catalog4")
    assert await seqs_and_valid(supervisor, BOOK) == [(1, False), (0, False), (1, False), (3, True), (2, False)]

    trace, status, answer = await traced(http, "PUT", "catalog0", f"/update/{BOOK}", {"quantity": 1})
    assert status == 409 and answer["book"]["seq"] == 3
    hops = short(await hops_of(supervisor, trace, among="catalog"))
    checks, releases = hops[:4], hops[4:]
    assert sorted(checks) == [
        ("catalog0", "catalog1", f"/rep/check/{BOOK} seq_n: 1", "200 OK"),
        ("catalog0", "catalog2", f"/rep/check/{BOOK} seq_n: 1", "200 OK"),
        ("catalog0", "catalog3", f"/rep/check/{BOOK} seq_n: 1", "409 Conflict"),
        ("catalog0", "catalog4", f"/rep/check/{BOOK} seq_n: 1", "409 Conflict"),
    ]
    # Bazar's W1 addition: the reservations 1 and 2 granted are handed back.
    assert sorted(releases) == [("catalog0", f"catalog{i}", f"/rep/release/{BOOK}", "204 No Content") for i in (1, 2)]
    # 0 took 3's copy (seq 3, quantity 7) as current; nothing was written.
    assert await seqs_and_valid(supervisor, BOOK) == [(3, True), (0, False), (1, False), (3, True), (2, False)]
    assert (await http.book_state("catalog0", BOOK))["quantity"] == 7


# ---- S6–S12: three catalog and three order replicas -------------------------------------
@pytest.fixture
async def threes(tmp_path, supervisors):
    cluster = replace(make_cluster(tmp_path, catalogs=3, orders=3, timeouts=fast_timeouts()),
                      catalog_mode="documented")
    supervisor = start(cluster)
    supervisors.append(supervisor)
    http = Http(supervisor)
    await supervisor.wait_settled()
    await supervisor.admin("frontend", "POST", "/admin/failover", {"mode": "documented"})
    yield supervisor, http
    await http.close()
    await supervisor.aclose()


def order_hops(hops):
    return [(h["node"], h["to"], h["label"].split(" ")[0], h["answer"]) for h in hops
            if h["node"] == "order0" and h["to"] == "catalog0"]


async def test_s6_order_normal_flow(threes):
    supervisor, http = threes
    trace, status, answer = await traced(http, "PUT", "order0", f"/buy/{BOOK}")
    assert status == 200 and answer["success"] is True
    assert order_hops(await hops_of(supervisor, trace)) == [
        ("order0", "catalog0", f"/query/item/{BOOK}", "200 OK"),
        ("order0", "catalog0", f"/update/{BOOK}", "200 OK"),
    ]


async def test_s7_order_retries_after_409_from_an_outdated_catalog(threes):
    supervisor, http = threes
    assert (await http.get(f"/query/item/{BOOK}", node="catalog0"))[0] == 200  # catalog0 holds it valid
    await supervisor.cut_off("catalog0", True)
    await write(http, "catalog1", 4)  # catalog0 misses it and still believes its copy (W2)
    await supervisor.cut_off("catalog0", False)
    assert (await http.book_state("catalog0", BOOK))["valid"] is True

    trace, status, answer = await traced(http, "PUT", "order0", f"/buy/{BOOK}")
    assert status == 200 and answer["success"] is True
    assert order_hops(await hops_of(supervisor, trace)) == [
        ("order0", "catalog0", f"/query/item/{BOOK}", "200 OK"),
        ("order0", "catalog0", f"/update/{BOOK}", "409 Conflict"),
        ("order0", "catalog0", f"/query/item/{BOOK}", "200 OK"),
        ("order0", "catalog0", f"/update/{BOOK}", "200 OK"),
    ]
    assert [b["quantity"] for b in [await http.book_state(f"catalog{i}", BOOK) for i in range(3)]] == [3, 3, 3]


async def test_s8_order_cannot_reach_its_catalog(threes):
    supervisor, http = threes
    supervisor.crash("catalog0")
    trace, status, answer = await traced(http, "PUT", "order0", f"/buy/{BOOK}")
    assert status == 504 and "catalog0" in answer["message"]
    assert order_hops(await hops_of(supervisor, trace)) == [
        ("order0", "catalog0", f"/query/item/{BOOK}", "no answer (refused)"),
    ]


def frontend_hops(hops, ring: str):
    return [(h["to"], h["answer"]) for h in hops if h["node"] == "frontend" and h["to"].startswith(ring)]


async def test_s9_frontend_sends_to_the_replica_whose_turn_it_is(threes):
    supervisor, http = threes
    await supervisor.admin("frontend", "POST", "/admin/failover", {"catalog_turn": 1, "order_turn": 2})
    trace, status, _ = await traced(http, "GET", "frontend", f"/lookup/{BOOK}")
    assert status == 200
    assert frontend_hops(await hops_of(supervisor, trace), "catalog") == [("catalog1", "200 OK")]
    trace, status, _ = await traced(http, "PUT", "frontend", f"/buy/{BOOK}")
    assert status == 200
    assert frontend_hops(await hops_of(supervisor, trace), "order") == [("order2", "200 OK")]
    state = await supervisor.state("frontend")
    assert (state["catalogs"]["turn"], state["orders"]["turn"]) == (2, 0)


async def test_s10_frontend_fails_over_past_down_replicas(threes):
    supervisor, http = threes
    supervisor.crash("catalog0")  # the figure's Catalog1
    supervisor.crash("catalog2")  # the figure's Catalog3
    await supervisor.admin("frontend", "POST", "/admin/failover", {"catalog_turn": 2})
    trace, status, book = await traced(http, "GET", "frontend", f"/lookup/{BOOK}")
    assert status == 200 and book["title"] == "RPCs for Dummies"
    assert frontend_hops(await hops_of(supervisor, trace), "catalog") == [
        ("catalog2", "no answer (refused)"),
        ("catalog0", "no answer (refused)"),
        ("catalog1", "200 OK"),
    ]
    assert (await supervisor.state("frontend"))["catalogs"]["turn"] == 2


async def test_s11_order_gateway_timeouts_send_the_buy_on(threes):
    supervisor, http = threes
    supervisor.crash("catalog2")  # order2 cannot reach its catalog
    supervisor.crash("catalog0")  # nor can order0
    await supervisor.admin("frontend", "POST", "/admin/failover", {"order_turn": 2})
    trace, status, answer = await traced(http, "PUT", "frontend", f"/buy/{BOOK}")
    assert status == 200 and answer["success"] is True
    assert frontend_hops(await hops_of(supervisor, trace), "order") == [
        ("order2", "504 Gateway Timeout"),
        ("order0", "504 Gateway Timeout"),
        ("order1", "200 OK"),
    ]


async def test_s12_everything_down_gives_504(threes):
    supervisor, http = threes
    for i in range(3):
        supervisor.crash(f"order{i}")
    status, answer = await http.put(f"/buy/{BOOK}")
    assert status == 504 and [t["answer"] for t in answer["tried"]] == ["no answer (refused)"] * 3
    for i in range(3):
        supervisor.crash(f"catalog{i}")
    status, answer = await http.get(f"/lookup/{BOOK}")
    assert status == 504 and len(answer["tried"]) == 3

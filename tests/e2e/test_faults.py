"""Correct under faults: a checked fault run, fuzzed inputs, and crash safety of writes."""
from __future__ import annotations

import asyncio
import json
import random
import string

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes.control.fault_run import catalog_rows, converged, fault_run
from tests.support import Http, fast_timeouts, make_cluster, start

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def cluster(tmp_path, supervisors):
    supervisor = start(make_cluster(tmp_path, catalogs=3, orders=3, timeouts=fast_timeouts()))
    supervisors.append(supervisor)
    await supervisor.wait_settled()
    yield supervisor
    await supervisor.aclose()


async def test_a_short_checked_fault_run_finds_no_anomaly(cluster):
    verdict = await fault_run(cluster, 15, seed=3, buyers=3, readers=2, stock=40)
    print(verdict.render())
    assert len(verdict.history.faults) >= 3
    assert sum(1 for op in verdict.history.operations if op.kind == "buy" and op.outcome == "bought") > 20
    assert verdict.anomalies == []
    assert verdict.convergence_s is not None and verdict.convergence_s < 15


async def test_a_checked_run_of_full_disks_and_http_aborts_finds_no_anomaly(cluster):
    """Issue 25, item 4: the new fault kinds alone, on real processes and real databases."""
    verdict = await fault_run(cluster, 15, seed=8, buyers=3, readers=2, stock=60, faults=("disk", "abort"))
    print(verdict.render())
    kinds = {fault.action for fault in verdict.history.faults}
    assert kinds == {"disk", "abort"}, kinds
    assert verdict.anomalies == []


# ---- fuzzed inputs ------------------------------------------------------------------------
NODES = ("frontend", "catalog0", "catalog0", "order0")
TEMPLATES = {"/search/{t}": "GET", "/lookup/{i}": "GET", "/buy/{i}": "PUT", "/query/item/{i}": "GET",
             "/query/topic/{t}": "GET", "/update/{i}": "PUT", "/rep/get/{i}": "POST", "/rep/check/{i}": "POST",
             "/rep/update/{i}": "POST", "/rep/release/{i}": "POST", "/rep/ping": "POST", "/rep/buys/{i}": "GET",
             "/invalidate/item/{i}": "DELETE", "/invalidate/topic/{t}": "DELETE", "/invalidate/topic/": "DELETE",
             "/orders": "GET", "/health": "GET", "/admin/state": "GET", "/admin/slow": "POST",
             "/admin/cutoff": "POST", "/admin/mode": "POST", "/admin/peer-order": "POST",
             "/admin/failover": "POST", "/admin/events": "GET", "/admin/buys": "GET", "/{t}": "GET",
             "/{t}/{t}": "GET"}
segment = st.one_of(st.integers(-10**20, 10**20).map(str), st.text(string.printable, max_size=12),
                    st.sampled_from(["1", "2", "7", "99", "abc", "%25", "_", "", "..", "１"]))
json_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                                    st.floats(allow_nan=True), st.text(max_size=20)),
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                     max_size=4), max_leaves=12)
body = st.one_of(st.none(), json_value.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200),
                 st.fixed_dictionaries({"quantity": st.integers(-5, 100) | st.text(max_size=3),
                                        "price": st.floats(-5, 100) | st.none()}).map(lambda v: json.dumps(v).encode()))


@st.composite
def fuzzed_request(draw):
    template = draw(st.sampled_from(sorted(TEMPLATES)))
    book = draw(st.one_of(st.sampled_from(["1", "2", "7"]), segment))  # often a real book, to reach the handler
    path = template.replace("{i}", book, 1).replace("{t}", draw(segment)).replace("{t}", draw(segment))
    any_method = st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD"])
    return {
        "node": draw(st.sampled_from(NODES)),
        "method": draw(st.one_of(st.just(TEMPLATES[template]), any_method)),  # often the right one
        "path": "/" + path.lstrip("/").replace("?", "%3F").replace("#", "%23"),
        "body": draw(body),
        "secret": draw(st.sampled_from([True, True, False])),
        "headers": draw(st.dictionaries(st.sampled_from(["X-Bazar-Trace", "X-Bazar-Buy-Id", "Content-Type",
                                                         "Accept", "X-Bazar-Secret"]),
                                        st.text(string.ascii_letters + string.digits + "-_/", max_size=30),
                                        max_size=3)),
    }


@pytest.fixture(scope="module")
def fuzz_cluster(tmp_path_factory):
    supervisor = start(make_cluster(tmp_path_factory.mktemp("fuzz"), catalogs=2, orders=1,
                                    timeouts=fast_timeouts()))
    yield supervisor
    supervisor.close()


@pytest.mark.timeout(300)
def test_fuzzed_requests_never_get_a_500_or_hang_and_rejected_ones_change_nothing(fuzz_cluster):
    loop = asyncio.new_event_loop()
    http = Http.__new__(Http)
    http.supervisor = fuzz_cluster

    async def open_session() -> None:
        http.session = aiohttp.ClientSession()

    loop.run_until_complete(open_session())
    seen_statuses: set[int] = set()

    async def snapshot() -> list:
        return [(await fuzz_cluster.state(n))["books"] for n in ("catalog0", "catalog1")]

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(request=fuzzed_request())
    def one(request) -> None:
        async def go() -> None:
            if request["path"].startswith(("/admin/slow", "/admin/cutoff", "/admin/mode", "/admin/peer-order",
                                           "/admin/failover")) and request["secret"]:
                return  # valid toggles of the cluster itself are tested elsewhere; here they would break it
            before = await snapshot()
            headers = {k: v for k, v in request["headers"].items() if k != "X-Bazar-Secret"}
            status, answer, response_headers = await asyncio.wait_for(http.request(
                request["method"], request["node"], request["path"], data=request["body"],
                secret=request["secret"], headers=headers, timeout=10), 15)
            seen_statuses.add(status)
            assert status != 500 and status < 600, (request, answer)
            if request["method"] != "HEAD" and status not in (101, 204):
                assert response_headers.get("Content-Type", "").startswith("application/json"), (request, status)
            if status >= 400:
                assert await snapshot() == before, ("a rejected request changed the catalog", request, status)

        loop.run_until_complete(go())

    try:
        one()
    finally:
        loop.run_until_complete(http.session.close())
        loop.run_until_complete(fuzz_cluster.aclose())
        loop.close()
    assert {400, 404, 405} <= seen_statuses  # the fuzzer did reach the error paths


# ---- crash safety ---------------------------------------------------------------------------
async def test_sigkill_in_the_middle_of_writes_never_loses_an_acknowledged_one(cluster):
    http = Http(cluster)
    rng = random.Random(9)
    acknowledged: list[str] = []
    try:
        for book in range(1, 8):
            await http.set_stock(book, 1000)
        async def writer(stop: asyncio.Event) -> None:
            while not stop.is_set():
                status, answer = await http.put(f"/buy/{rng.randint(1, 7)}")
                if status == 200 and answer["success"]:
                    acknowledged.append(answer["buy_id"])

        for _ in range(8):
            stop = asyncio.Event()
            writers = [asyncio.create_task(writer(stop)) for _ in range(3)]
            await asyncio.sleep(rng.uniform(0.05, 0.3))  # let the writes get going before the kill
            cluster.crash("catalog1")
            cluster.start("catalog1")
            await asyncio.to_thread(cluster.wait_ready, ["catalog1"])  # the database opened again
            stop.set()
            await asyncio.gather(*writers)
        await cluster.wait_settled()
        assert await converged(cluster, 10) is not None
        rows = await catalog_rows(cluster)
        assert rows["catalog1"] == rows["catalog0"] == rows["catalog2"]
        applied = {b["buy_id"] for b in await cluster.admin("catalog1", "GET", "/admin/buys")}
        missing = [buy for buy in acknowledged if buy not in applied]
        assert len(acknowledged) > 50 and missing == []
        taken = sum(1000 - quantity for quantity, _ in rows["catalog1"].values())
        assert taken == len(applied) >= len(acknowledged)
    finally:
        await http.close()

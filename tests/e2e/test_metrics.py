"""What an operator's tools read (issue 27, item 5): every node serves Prometheus metrics at
``GET /metrics``, counted from the events it emits, with telemetry streamed or not."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import live, make_cluster

pytestmark = pytest.mark.timeout(120)


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of Prometheus' text format, parsed by prometheus-client's own parser."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_every_node_counts_what_it_did_in_prometheus_format(tmp_path, supervisors):
    async with live(make_cluster(tmp_path, catalogs=2, orders=2), supervisors) as (_supervisor, http):
        await http.set_stock(3, 50)
        for _ in range(5):
            status, body = await http.put("/buy/3")
            assert status == 200 and body["success"] is True, body
        for _ in range(4):
            assert (await http.get("/lookup/3"))[0] == 200

        scraped = {}
        for node in ("frontend", "order0", "order1", "catalog0", "catalog1"):
            async with http.session.get(http.url(node, "/metrics")) as answer:  # no secret needed
                assert answer.status == 200 and answer.content_type == "text/plain", (node, answer.headers)
                scraped[node] = samples(await answer.text())

        front = scraped["frontend"]
        bought = front[("bazar_requests_total", frozenset({("method", "PUT"), ("route", "/buy/{id}"),
                                                           ("status", "200")}))]
        assert bought == 5
        assert front[("bazar_request_seconds_count", frozenset({("route", "/buy/{id}")}))] == 5
        lookups = sum(v for (name, labels), v in front.items() if name == "bazar_cache_events_total"
                      and ("cache", "lookup") in labels and dict(labels)["op"] in ("hit", "miss"))
        assert lookups >= 4
        orders = sum(v for (name, labels), v in {**scraped["order0"], **scraped["order1"]}.items()
                     if name == "bazar_buys_total" and ("outcome", "bought") in labels)
        assert orders == 5
        # Each buy is one row stored at each replica (the writer's and the peer's), the stock
        # update one more.
        for catalog in ("catalog0", "catalog1"):
            assert scraped[catalog][("bazar_rows_stored_total", frozenset())] >= 6, catalog
            calls = [name for name, _labels in scraped[catalog] if name == "bazar_calls_total"]
            assert calls, f"{catalog} counted no call to its peers"
        assert ("bazar_disk_trouble", frozenset()) in scraped["catalog0"]


async def test_a_trace_named_in_w3c_traceparent_is_followed_through_the_cluster(tmp_path, supervisors):
    """W3C Trace Context (issue 27, item 5): a client's traceparent names the trace a lookup is
    told under at every node it reaches, and every hop carries one of its own."""
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with live(make_cluster(tmp_path, catalogs=2, orders=2), supervisors) as (_supervisor, http):
        status, _, headers = await http.request("GET", "frontend", "/lookup/4", headers={
            "traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
        assert status == 200 and headers["X-Bazar-Trace"] == trace
        status, events, _ = await http.request("GET", "frontend", f"/admin/events?trace={trace}", secret=True)
        assert status == 200
        hops = [e for e in events if e["kind"] == "hop"]
        assert hops and all(e["trace"] == trace for e in hops), events


def test_traceparent_is_well_formed_whatever_bazar_names_a_trace():
    from nodes.core.telemetry import from_traceparent, traceparent
    header = traceparent("0123456789abcdef", "a1b2c3d4e5f6")
    assert header == "00-00000000000000000123456789abcdef-0000a1b2c3d4e5f6-01"
    assert from_traceparent(header) == ("00000000000000000123456789abcdef", "0000a1b2c3d4e5f6")
    made = traceparent("my trace!", "s")  # a client's own trace id: hashed into hex
    version, trace_id, span_id, flags = made.split("-")
    assert (version, flags, len(trace_id), len(span_id)) == ("00", "01", 32, 16)
    for bad in ("", "00-abc-def-01", f"01-{'a' * 32}-{'b' * 16}-01", f"00-{'0' * 32}-{'b' * 16}-01"):
        assert from_traceparent(bad) is None

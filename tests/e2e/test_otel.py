"""OpenTelemetry export (issue 27 item 5): with BAZAR_OTEL=on, real nodes export one buy as one
trace whose spans chain across processes through ``traceparent`` — the front-end's server span,
its client span to an order replica, the order replica's server span under it, and on to a
catalog replica. Spans go to each node's own output (its log) with OTEL_TRACES_EXPORTER=console,
so no collector is needed to test it."""
from __future__ import annotations

import json

import aiohttp
import pytest

from nodes.core.telemetry import TRACE_HEADER, traceparent
from nodes.runtime.otel import CONSOLE_PREFIX
from tests.support import make_cluster, start

pytestmark = pytest.mark.timeout(120)
pytest.importorskip("opentelemetry.sdk", reason="OpenTelemetry export needs opentelemetry-sdk (requirements-dev.txt)")


async def test_one_buy_is_one_trace_whose_spans_chain_across_the_nodes(tmp_path, monkeypatch, supervisors):
    monkeypatch.setenv("BAZAR_OTEL", "on")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    supervisor = start(make_cluster(tmp_path, catalogs=2, orders=1))
    supervisors.append(supervisor)
    await supervisor.wait_settled()
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{supervisor.frontend.address}/buy/2") as answer:
            assert answer.status == 200 and (await answer.json())["success"] is True
            trace = answer.headers[TRACE_HEADER]
    await supervisor.aclose()
    supervisor.stop_all()  # a clean stop (SIGTERM) flushes every node's last spans

    spans = []
    for log in (tmp_path / "logs").glob("*.log"):
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(CONSOLE_PREFIX):
                spans.append(json.loads(line.removeprefix(CONSOLE_PREFIX)))
    otel_trace = "0x" + traceparent(trace, "0").split("-")[1]
    ours = [s for s in spans if s["context"]["trace_id"] == otel_trace]
    by_id = {s["context"]["span_id"]: s for s in ours}
    node = lambda s: s["resource"]["attributes"]["bazar.node"]  # noqa: E731

    [entry] = [s for s in ours if s["parent_id"] is None]
    assert entry["kind"] == "SpanKind.SERVER" and node(entry) == "frontend", entry
    assert entry["name"].startswith("PUT /buy/"), entry["name"]
    [to_order] = [s for s in ours if s["kind"] == "SpanKind.CLIENT" and node(s) == "frontend"
                  and s["attributes"]["bazar.to"] == "order0"]
    assert to_order["parent_id"] == entry["context"]["span_id"], "the front-end's hop is not under its request"
    [at_order] = [s for s in ours if s["kind"] == "SpanKind.SERVER" and node(s) == "order0"]
    assert at_order["parent_id"] == to_order["context"]["span_id"], "the order replica did not continue the trace"
    to_catalog = [s for s in ours if s["kind"] == "SpanKind.CLIENT" and node(s) == "order0"]
    assert to_catalog and all(by_id.get(s["parent_id"]) is not None for s in to_catalog), \
        "an order replica's hop names a parent no node exported"
    assert any(node(s).startswith("catalog") and s["kind"] == "SpanKind.SERVER" for s in ours), \
        "no catalog replica exported a span of the buy"
    for span in ours:
        assert span["start_time"] <= span["end_time"], span

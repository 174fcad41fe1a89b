"""What an operator's tools read: every node's Prometheus metrics at ``GET /metrics``
(prometheus-client's text format), counted from the very events its telemetry tells
(``nodes/core/events.py``) — whether or not anyone streams them, and with telemetry off too.

One registry per node, so that nodes built in one process (tests) never share counts. The
labels take only a bounded set of values (routes, not paths; status codes; node names), so a
client cannot grow the metrics by sending odd requests.
"""
from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Seconds: a cached lookup takes well under a millisecond, a write round some, a time-out 1–2 s.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """A node's counters and histograms, fed by ``observe`` (a telemetry observer)."""

    def __init__(self, node: str) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("bazar_requests", "Requests this node answered, by route and status",
                                ["method", "route", "status"], registry=registry)
        self.request_seconds = Histogram("bazar_request_seconds", "Time this node took to answer, by route",
                                         ["route"], buckets=LATENCY_BUCKETS, registry=registry)
        self.calls = Counter("bazar_calls", "Calls this node made to other nodes, by target and answer",
                             ["to", "answer"], registry=registry)
        self.call_seconds = Histogram("bazar_call_seconds", "Time calls to other nodes took, by target",
                                      ["to"], buckets=LATENCY_BUCKETS, registry=registry)
        self.cache = Counter("bazar_cache_events", "The front-end's cache: hits, misses, inserts, evictions, "
                             "invalidations", ["cache", "op"], registry=registry)
        self.buys = Counter("bazar_buys", "Buys by outcome (bought, out of stock, unknown, ...)", ["outcome"],
                            registry=registry)
        self.rows = Counter("bazar_rows_stored", "Book rows this catalog replica stored: writes, updates and "
                            "catch-up", registry=registry)
        self.catch_ups = Counter("bazar_catch_ups", "Rows this catalog replica brought in by catch-up",
                                 registry=registry)
        self.lease_lapses = Counter("bazar_lease_lapses", "Times this catalog replica's read lease lapsed",
                                    registry=registry)
        self.lease_waits = Counter("bazar_lease_waits", "Writes that waited out a left-out replica's lease",
                                   registry=registry)
        self.faults = Counter("bazar_faults", "Faults set on this node, by kind", ["fault"], registry=registry)
        self.disk_trouble = Gauge("bazar_disk_trouble", "1 while this catalog replica's database refuses commits",
                                  registry=registry)
        self.peer_bytes = Counter("bazar_peer_bytes", "Bytes of message bodies this node sent to other nodes and "
                                  "read back from them, all calls counted (the heartbeat's too)", ["direction"],
                                  registry=registry)
        self.damaged = Counter("bazar_rows_damaged", "Stored rows that failed their checksum at start",
                               registry=registry)
        self.node = node

    def observe(self, kind: str, fields: dict[str, Any]) -> None:
        """Count one event (a ``Telemetry`` observer: called for every event the node emits)."""
        if kind == "request":
            route = str(fields.get("route", "?"))
            self.requests.labels(fields.get("method", "?"), route, str(fields.get("status", "?"))).inc()
            self.request_seconds.labels(route).observe(float(fields.get("ms", 0.0)) / 1000)
        elif kind == "hop":
            to = str(fields.get("to", "?"))
            status = fields.get("status")
            self.calls.labels(to, str(status) if status is not None else "no answer").inc()
            self.call_seconds.labels(to).observe(float(fields.get("ms", 0.0)) / 1000)
        elif kind == "cache":
            self.cache.labels(str(fields.get("cache", "?")), str(fields.get("op", "?"))).inc()
        elif kind == "order":
            self.buys.labels(str(fields.get("outcome", "?"))).inc()
        elif kind == "seq":
            self.rows.inc()
        elif kind == "catch_up":
            self.catch_ups.inc()
        elif kind == "lease" and fields.get("held") is False:
            self.lease_lapses.inc()
        elif kind == "lease_wait":
            self.lease_waits.inc()
        elif kind == "fault":
            self.faults.labels(str(fields.get("fault", "?"))).inc()
        elif kind == "disk":
            self.disk_trouble.set(0 if fields.get("ok") else 1)
        elif kind == "damaged":
            self.damaged.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

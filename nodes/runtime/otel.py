"""OpenTelemetry export, when asked for (a node's ``--otel``, or ``BAZAR_OTEL=on`` in the
environment of the node or of the launcher that starts it) and installed (``pip install
opentelemetry-sdk``, plus an exporter): Bazar needs neither to run. Every hop a node makes
becomes a client span whose id is the hop's own span id, the one its ``traceparent`` carries, so
that the node it reached continues the same trace; every request a node serves becomes a server
span under the caller's hop. Spans are built from the node's telemetry events (the same ones the
window draws), so there is one account of a request, not two.

Where the spans go is OpenTelemetry's own setting: ``OTEL_TRACES_EXPORTER`` is ``otlp`` (the
default; ``pip install opentelemetry-exporter-otlp-proto-http``, and ``OTEL_EXPORTER_OTLP_ENDPOINT`` to a
collector such as Jaeger) or ``console`` (one JSON line per span on the node's output, its log)."""
from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from nodes.core.telemetry import current_span, current_trace, traceparent

#: Whether the request a node is serving came from another node (set at ``request_in``).
_from_node: ContextVar[bool] = ContextVar("from_node", default=False)
CONSOLE_PREFIX = "otel-span "


class OtelUnavailable(Exception):
    """Export asked for, but what it needs is not installed: the message says what to install."""


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("BAZAR_OTEL", "").lower() in ("1", "on", "true", "yes")


def check_installed() -> None:
    """Raise ``OtelUnavailable`` naming the package when the SDK or the chosen exporter is missing."""
    _exporter()


def _exporter() -> Any:
    try:
        import opentelemetry.sdk.trace.export as export
    except ImportError:
        raise OtelUnavailable("OpenTelemetry export needs its SDK: pip install opentelemetry-sdk") from None
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")[0].strip()
    if kind == "console":
        return export.ConsoleSpanExporter(
            out=sys.stdout, formatter=lambda span: CONSOLE_PREFIX + json.dumps(json.loads(span.to_json())) + "\n")
    if kind == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise OtelUnavailable("OTEL_TRACES_EXPORTER=otlp needs its exporter: pip install opentelemetry-"
                                  "exporter-otlp-proto-http (or set OTEL_TRACES_EXPORTER=console)") from None
        return OTLPSpanExporter()
    raise OtelUnavailable(f"OTEL_TRACES_EXPORTER={kind} is not one Bazar sets up; use otlp or console")


class SpanExport:
    """A ``Telemetry`` observer turning a node's ``hop`` and ``request`` events into spans."""

    def __init__(self, node: str) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import IdGenerator

        class ChosenIds(IdGenerator):
            """Span ids as Bazar chose them (a hop's is in its traceparent), else random."""

            def __init__(self) -> None:
                self.span: int | None = None
                self.trace: int | None = None

            def generate_span_id(self) -> int:
                chosen, self.span = self.span, None
                return chosen or random.getrandbits(64) or 1

            def generate_trace_id(self) -> int:
                chosen, self.trace = self.trace, None
                return chosen or random.getrandbits(128) or 1

        self.ids = ChosenIds()
        self.provider = TracerProvider(id_generator=self.ids, resource=Resource.create(
            {"service.name": "bazar", "service.instance.id": node, "bazar.node": node}))
        self.provider.add_span_processor(BatchSpanProcessor(_exporter()))
        self.tracer = self.provider.get_tracer("bazar")
        self.node = node

    def observe(self, kind: str, fields: dict[str, Any]) -> None:
        if kind == "request_in":
            _from_node.set(bool(fields.get("from")))
            return
        trace, span = current_trace.get(), current_span.get()
        if trace is None or kind not in ("hop", "request"):
            return
        from opentelemetry.trace import SpanKind

        now = time.time()
        ms = float(fields.get("ms", 0.0))
        if kind == "hop":
            self._span(f"{fields.get('label', '?')}", SpanKind.CLIENT, trace, own=fields.get("span"),
                       parent=fields.get("parent"), start=float(fields.get("t0", now - ms / 1000)), ms=ms,
                       attributes={"bazar.to": str(fields.get("to", "")), "bazar.answer": str(fields.get("answer", "")),
                                   **({"http.response.status_code": int(fields["status"])}
                                      if fields.get("status") is not None else {})})
        else:
            # Served for a client: this span is the one the request's hops name as their parent.
            # Served for a node: a span of its own, under the caller's hop.
            entry = not _from_node.get()
            self._span(f"{fields.get('method', '')} {fields.get('route', fields.get('path', ''))}", SpanKind.SERVER,
                       trace, own=span if entry else None, parent=None if entry else span, start=now - ms / 1000,
                       ms=ms, attributes={"http.request.method": str(fields.get("method", "")),
                                          "url.path": str(fields.get("path", "")),
                                          "http.response.status_code": int(fields.get("status", 0))})

    def _span(self, name: str, kind: Any, trace: str, *, own: str | None, parent: str | None, start: float,
              ms: float, attributes: dict[str, Any]) -> None:
        from opentelemetry import trace as api

        ids = traceparent(trace, parent or own or "0").split("-")
        context = None
        if parent:
            remote = api.SpanContext(int(ids[1], 16), int(ids[2], 16), is_remote=True,
                                     trace_flags=api.TraceFlags(api.TraceFlags.SAMPLED))
            context = api.set_span_in_context(api.NonRecordingSpan(remote))
        else:
            self.ids.trace = int(ids[1], 16)
        if own:
            self.ids.span = int(traceparent(trace, own).split("-")[2], 16)
        started_ns = int(start * 1e9)
        span = self.tracer.start_span(name, context=context, kind=kind, attributes=attributes, start_time=started_ns)
        span.end(end_time=started_ns + int(ms * 1e6))

    def close(self) -> None:
        """Send what is still buffered (a node stopping)."""
        self.provider.shutdown()

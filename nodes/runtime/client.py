"""Outgoing calls between nodes: timeouts, the cluster secret, the trace id, and one
``hop`` event per call so that a request's path can be drawn the way the figures draw it. Each
call has a span id of its own (``X-Bazar-Span``), and its events name the span its sender was
serving as their ``parent``: the window orders a trace by them, not by clocks (telemetry.py)."""
from __future__ import annotations

import asyncio
import errno
import http
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import yarl

from nodes.core.telemetry import (
    SPAN_HEADER,
    TRACE_HEADER,
    TRACEPARENT_HEADER,
    Telemetry,
    current_span,
    current_trace,
    new_span_id,
    traceparent,
)
from nodes.runtime.signing import signed

#: Who sends a message between nodes: a partition drops messages by link (node.py).
SENDER_HEADER = "X-Bazar-From"
#: Sent with background chatter (probes, pings): its answer is never held at teaching speed.
UNHELD_HEADER = "X-Bazar-Unheld"
#: At teaching speed, how many held messages one call's timeout allows for beyond its own:
#: the answer, and the hops its target makes before answering (a read chain through every
#: catalog replica, a write's check and update rounds, a buy's read and write).
HELD_PER_CALL = 20
#: The longest a node may hold each message (ms).
MAX_PACE_MS = 5000


@dataclass
class Pace:
    """Teaching speed: the node holds every message it sends (a traced request, an answer to
    one) for ``ms`` before it goes, so that a class can follow each one; 0 is full speed.
    Background chatter (probes, heartbeats, leases) is never held, so a slow class is not
    mistaken for an outage, and the timeouts of held calls are lengthened by ``slack_s``."""

    ms: int = 0

    @property
    def slack_s(self) -> float:
        return self.ms * HELD_PER_CALL / 1000


@dataclass(frozen=True)
class Timeouts:
    """Connection establishment and whole exchange, in seconds (docs/api.md's table). The cluster
    file and a node's flags give them in whole milliseconds: ``from_ms`` and the ``_ms`` views."""

    connect: float
    total: float

    @classmethod
    def from_ms(cls, connect_ms: int, total_ms: int) -> Timeouts:
        return cls(connect_ms / 1000, total_ms / 1000)

    @property
    def connect_ms(self) -> int:
        return round(self.connect * 1000)

    @property
    def total_ms(self) -> int:
        return round(self.total * 1000)

    def doubled(self) -> Timeouts:
        return Timeouts(self.connect * 2, self.total * 2)


@dataclass
class Reply:
    """What came back from one call. ``status`` is None when nothing came back."""

    status: int | None
    data: Any
    ms: float
    #: "refused" (nobody listens at a reachable address: no process, see ``refused``),
    #: "unreachable" (no name, no route: the peer may be alive behind a cut), "connect timeout",
    #: "timeout", "disconnected", "cut off".
    failure: str | None = None

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def maybe_processed(self) -> bool:
        """True when the peer may have acted on the request although no answer came."""
        return self.failure in ("timeout", "disconnected")


def status_text(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


class Links(Protocol):
    """Which nodes this one's messages reach, and whose it hears (a partition, node.py)."""

    def reaches(self, target: str) -> bool: ...

    def hears(self, sender: str | None) -> bool: ...


class PeerClient:
    """One pooled aiohttp session per node, used for every call it makes to another node."""

    def __init__(
        self,
        telemetry: Telemetry,
        *,
        timeouts: Timeouts,
        secret: str | None = None,
        sender: str = "",
        links: Links | None = None,
        pace: Pace | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.timeouts = timeouts
        self.secret = secret
        self.sender = sender
        self.links = links
        self.pace = pace or Pace()
        self.session: aiohttp.ClientSession | None = None
        #: Told the bytes of each call's body sent and answer read (``Metrics.peer_bytes``).
        self.count_bytes: Callable[[int, int], None] = lambda sent, received: None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
        self.session = aiohttp.ClientSession(connector=connector, json_serialize=_dumps)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def call(
        self,
        method: str,
        url: str,
        *,
        to: str,
        label: str,
        body: Any = None,
        timeouts: Timeouts | None = None,
        headers: dict[str, str] | None = None,
        record: bool = True,
    ) -> Reply:
        started = time.time()
        t0 = time.perf_counter()
        timeouts = timeouts or self.timeouts
        held_ms = self.pace.ms if record else 0
        span, parent = new_span_id(), current_span.get()
        family = {"span": span, **({"parent": parent} if parent else {})}
        if held_ms:
            # Teaching speed: the message is on its way for held_ms; the window draws it so.
            self.telemetry.emit("send", to=to, label=label, held_ms=held_ms, **family)
            await asyncio.sleep(held_ms / 1000)
        if not record:
            headers = {**(headers or {}), UNHELD_HEADER: "1"}
        if self.links is not None and not self.links.reaches(to):
            # The link to it stopped delivering: the connection is never made (a lost SYN).
            await asyncio.sleep(timeouts.connect)
            reply = Reply(None, None, 0.0, "connect timeout")
        else:
            trace = current_trace.get()
            carried = {SPAN_HEADER: span, **({TRACEPARENT_HEADER: traceparent(trace, span)} if trace else {})}
            reply = await self._exchange(method, url, body, timeouts, {**(headers or {}), **carried})
            if self.links is not None and not self.links.hears(to):
                # It got the message and may have acted; its answer is lost on the way back.
                await asyncio.sleep(max(0.0, timeouts.total - (time.perf_counter() - t0)))
                reply = Reply(None, None, 0.0, "timeout")
        reply.ms = (time.perf_counter() - t0) * 1000
        if record:
            self.telemetry.emit(
                "hop",
                to=to,
                label=label,
                answer=status_text(reply.status) if reply.status is not None else f"no answer ({reply.failure})",
                status=reply.status,
                ms=round(reply.ms, 3),
                t0=started,
                **({"held_ms": held_ms} if held_ms else {}),
                **family,
            )
        return reply

    async def _exchange(
        self, method: str, url: str, body: Any, timeouts: Timeouts, extra_headers: dict[str, str] | None
    ) -> Reply:
        assert self.session is not None, "PeerClient.start() was not awaited"
        headers = dict(extra_headers or {})
        if self.sender:
            headers[SENDER_HEADER] = self.sender
        trace = current_trace.get()
        if trace:
            headers[TRACE_HEADER] = trace
        timeout = aiohttp.ClientTimeout(total=timeouts.total, sock_connect=timeouts.connect)
        deadline = time.monotonic() + timeouts.total
        # The path is quoted already (nodes/core/wire.py): sent as it is, so that a topic ".." stays
        # a topic instead of being read as "the folder above".
        target = yarl.URL(url, encoded=True)
        data = None if body is None else _dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self.secret:  # signed, each try anew: the secret itself never crosses the wire
                headers.update(signed(self.secret, method, target.raw_path_qs, data or b""))
            try:
                async with self.session.request(method, target, data=data, headers=headers,
                                                timeout=timeout) as resp:
                    raw = await resp.read()
                    self.count_bytes(len(data or b""), len(raw))
                    data = _loads(raw) if raw else None
                    return Reply(resp.status, data, 0.0)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # A pooled connection to a peer that restarted dies on first use; one fresh
                # try tells that apart from a peer that really hangs up on us.
                if attempt == 1 and time.monotonic() < deadline and not isinstance(exc, aiohttp.ClientConnectorError):
                    timeout = aiohttp.ClientTimeout(
                        total=max(0.01, deadline - time.monotonic()), sock_connect=timeouts.connect
                    )
                    continue
                if isinstance(exc, aiohttp.ClientConnectorError):
                    return Reply(None, None, 0.0, "refused" if refused(exc) else "unreachable")
                return Reply(None, None, 0.0, "disconnected")
            except aiohttp.ConnectionTimeoutError:
                return Reply(None, None, 0.0, "connect timeout")
            except TimeoutError:
                return Reply(None, None, 0.0, "timeout")
            except aiohttp.ClientError:
                return Reply(None, None, 0.0, "unreachable")
        return Reply(None, None, 0.0, "disconnected")  # pragma: no cover - loop always returns


def refused(exc: aiohttp.ClientConnectorError) -> bool:
    """Whether a failed connection says the peer has no process: the address was reached and
    answered that nobody listens there (ECONNREFUSED). The protocol trusts that — a replica
    that refused holds no lease and takes no write (docs/weak-points.md, W2) — so nothing
    else may pass for it: a name that no longer resolves (a container taken off its network)
    or a host or network out of reach may hide a live replica behind a cut. A firewall that
    rejects instead of dropping would also answer ECONNREFUSED: docs/containers.md says to drop."""
    return getattr(exc.os_error, "errno", None) == errno.ECONNREFUSED


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None

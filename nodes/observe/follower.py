"""The model's I/O: follow every node's telemetry websocket (and follow it again after a restart),
copy the supervisor's process states across threads, tick the clock, and fetch a finished
request's trace from the nodes. Everything it learns it hands to ``ClusterModel.apply``."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from nodes.control.supervisor import ClusterError
from nodes.core.events import decode
from nodes.core.vocabulary import NodeState
from nodes.observe.model import ClusterModel
from nodes.observe.observations import ProcessChanged, StreamState, Tick
from nodes.observe.traces import Trace
from nodes.observe.views import ProcessState
from nodes.runtime.signing import signed
from nodes.runtime.tasks import cancel_and_wait

RECONNECT_S = 0.3
#: After a stream that broke in error (not a node that went away), the pause grows to this.
RECONNECT_MOST_S = 5.0
#: The largest message read from a stream: a snapshot of 1,000,000 books is about 30 MB.
STREAM_MESSAGE_MOST = 64 * 1024 * 1024
TICK_S = 1.0


class Follower:
    """Feeds one model from a running cluster: ``watch`` a supervisor's process states, ``start``
    following the nodes' streams and the clock, ``stop`` it all."""

    def __init__(self, model: ClusterModel, secret: str | None) -> None:
        self.model = model
        self.secret = secret
        self._tasks: list[asyncio.Task] = []
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor: Any = None
        #: When ``start`` began following (Unix seconds): a node's first connection asks for its
        #: events since then, which a slow first connection or a restart before it would lose.
        self._since = time.time()

    @classmethod
    def of(cls, supervisor: Any, **kw: Any) -> Follower:
        """A follower of a new model of ``supervisor``'s cluster (``kw`` go to the model)."""
        return cls(ClusterModel.for_supervisor(supervisor, **kw), supervisor.secret)

    # ---- process states, from the supervisor ----------------------------------------------
    def watch(self, supervisor: Any) -> None:
        """Follow the supervisor's process states. Its listeners run on process-reader threads;
        each change is copied there and applied on this loop."""
        self._loop = asyncio.get_running_loop()
        self._supervisor = supervisor
        supervisor.listeners.append(self._from_thread)
        for node in supervisor.nodes.values():
            self.model.apply(ProcessChanged(node.name, ProcessState.of(node)))

    def _from_thread(self, node: Any) -> None:
        change = ProcessChanged(node.name, ProcessState.of(node))
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.model.apply, change)

    # ---- the nodes' streams ---------------------------------------------------------------
    async def start(self) -> None:
        self._since = time.time()
        self._session = aiohttp.ClientSession()
        self._tasks = [asyncio.create_task(self._follow(view.name, view.address), name=f"follow-{view.name}")
                       for view in self.model.nodes.values()]
        self._tasks.append(asyncio.create_task(self._clock(), name="model-clock"))

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        if self._session is not None:
            await self._session.close()
        if self._supervisor is not None and self._from_thread in self._supervisor.listeners:
            self._supervisor.listeners.remove(self._from_thread)

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)  # the clock's own pacing: rates and uptimes move with time
            self.model.apply(Tick(time.time()))

    async def _follow(self, name: str, address: str) -> None:
        assert self._session is not None
        pause = RECONNECT_S
        last: tuple[Any, int] | None = None  # (the node's pid, the last event read from it)
        while True:
            # Back after a break, ask for what the node emitted meanwhile: a request made while
            # a restarted node's stream was down lost its hops from the model's trace. Not yet
            # through to it, for what it emitted since we began: a request made before a slow
            # first connection (or before a restart that came first) lost them too.
            path = "/admin/telemetry" + (f"?since={self._since:.6f}" if last is None else f"?after={last[0]}:{last[1]}")
            # Signed anew for each connection: a signature is taken once (signing.py).
            headers = signed(self.secret, "GET", path) if self.secret else {}
            broke = False
            try:
                async with self._session.ws_connect(address + path, headers=headers,
                                                    heartbeat=2.0, timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
                                                    autoping=True, max_msg_size=STREAM_MESSAGE_MOST) as ws:
                    self.model.apply(StreamState(name, True))
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            broke = message.type == aiohttp.WSMsgType.ERROR
                            break
                        batch = json.loads(message.data)
                        last = _read_to(last, batch)
                        for raw in batch:
                            self.model.apply(decode(name, raw))
                        pause = RECONNECT_S
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
                pass
            self.model.apply(StreamState(name, False))
            # A node gone is looked for again soon (it may be restarting); a stream that broke
            # in error is not asked again at once, for each new one costs the node a snapshot.
            pause = min(RECONNECT_MOST_S, pause * 2) if broke else RECONNECT_S
            await asyncio.sleep(pause)  # pacing between reconnection attempts


def _read_to(last: tuple[Any, int] | None, batch: list[Any]) -> tuple[Any, int] | None:
    """The (pid, event number) a stream has been read to, after ``batch``. A snapshot names
    its process; the events sent before it on a reconnect are of that process too."""
    numbers = [raw["n"] for raw in batch if isinstance(raw, dict) and isinstance(raw.get("n"), int)]
    snapshot = next((raw for raw in batch if isinstance(raw, dict) and raw.get("kind") == "snapshot"), None)
    if snapshot is not None:
        pid = (snapshot.get("state") or {}).get("pid")
        return pid, max([last[1] if last is not None and last[0] == pid else -1, *numbers])
    return None if last is None else (last[0], max([last[1], *numbers]))


async def fetch_trace(supervisor: Any, trace_id: str) -> Trace:
    """A finished request's trace, put back together from every reachable node's events."""
    events = []
    for node in supervisor.nodes.values():
        if node.state == NodeState.UP:
            try:
                found = await supervisor.admin(node.name, "GET", f"/admin/events?trace={trace_id}")
            except ClusterError:
                continue  # a node that cannot answer just adds no events
            events += [decode(raw.get("node", node.name) if isinstance(raw, dict) else node.name, raw)
                       for raw in found]
    return Trace.from_events(trace_id, events)

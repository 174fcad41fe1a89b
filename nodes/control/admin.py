"""What the supervisor asks of running nodes over HTTP, on their admin routes: slow a node, cut it
off, cut or restore one link (partitions), teaching speed, read its state, wait until the cluster
has settled, reset every database. Process control (start, crash, hang) is the supervisor's own."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import yarl

from nodes.control.engine import ComposeEngine
from nodes.control.errors import ClusterError
from nodes.control.processes import ManagedNode
from nodes.core.vocabulary import HealthState, NodeState
from nodes.runtime.signing import signed


class NodeAdmin:
    """The admin calls of a ``Supervisor``: every one goes to a node by name, with the cluster's
    secret, on one shared client session bound to the caller's event loop."""

    nodes: dict[str, ManagedNode]
    secret: str
    pace_ms: int
    _session: aiohttp.ClientSession | None
    _session_loop: asyncio.AbstractEventLoop | None
    node: Callable[[str], ManagedNode]
    of_role: Callable[[str], list[ManagedNode]]
    _note: Callable[[ManagedNode, str], None]
    _changed: Callable[[ManagedNode], None]
    engine: ComposeEngine | None

    # ---- admin over HTTP (slow, cut off, reset, state) ------------------------------------
    async def admin(self, name: str, method: str, path: str, body: Any = None, *, timeout: float = 3.0) -> Any:
        node = self.node(name)
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session = aiohttp.ClientSession()
            self._session_loop = loop
        url = yarl.URL(node.address + path)
        data = None if body is None else json.dumps(body).encode()
        headers = signed(self.secret, method, url.raw_path_qs, data or b"")  # the secret stays here
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method, url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                data = await resp.json(content_type=None)
                if resp.status >= 400:
                    raise ClusterError(f"{name} refused {method} {path}: {data.get('message', resp.status)}")
                return data
        except TimeoutError:
            raise ClusterError(f"{name} did not answer in time ({timeout:.0f} s); it is {node.status}") from None
        except aiohttp.ClientError:
            raise ClusterError(f"{name} could not be reached; it is {node.status}") from None

    async def slow(self, name: str, ms: int) -> None:
        await self.admin(name, "POST", "/admin/slow", {"ms": ms})
        self.node(name).slow_ms = ms
        self._note(self.node(name), f"slowed by {ms} ms per answer" if ms else "back to normal speed")
        self._changed(self.node(name))

    async def pace(self, ms: int) -> list[str]:
        """Teaching speed for the whole cluster: every running node holds each message it sends
        for ``ms`` (0: full speed). Returns the nodes that could not be told (hung, say)."""
        self.pace_ms = ms
        told = [node.name for node in self.nodes.values() if node.state == NodeState.UP]
        # All at once: one node slow to answer (a restart under way, say) must not leave the
        # others at the old pace meanwhile.
        answers = await asyncio.gather(*(self.admin(name, "POST", "/admin/pace", {"ms": ms}) for name in told),
                                       return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, ClusterError):
                raise answer
        return [name for name, answer in zip(told, answers, strict=True) if isinstance(answer, ClusterError)]

    async def cut_off(self, name: str, on: bool) -> None:
        """The node drops every message but admin and telemetry; a node of a Compose cluster is
        taken off its network instead (a real partition: the window loses it too)."""
        if self.node(name).by_engine and self.engine is not None:
            await asyncio.to_thread(self.engine.cut, name, on)
        else:
            await self.admin(name, "POST", "/admin/cutoff", {"on": on})
        self.node(name).cut_off = on
        self._note(self.node(name), HealthState.CUT_OFF if on else "healed")
        self._changed(self.node(name))

    async def fill_disk(self, name: str, full: bool) -> None:
        """The disk-full fault on a catalog replica: its real database may not grow (SQLite
        answers "database or disk is full"), or may again."""
        await self.admin(name, "POST", "/admin/disk", {"full": full})
        self.node(name).disk_full = full
        self._note(self.node(name), "disk full: its database may not grow" if full else "disk freed")
        self._changed(self.node(name))

    async def abort(self, name: str, path: str, p: float, direction: str = "request") -> None:
        """HTTP aborts on ``name``: requests to ``path`` (a prefix) dropped before they are
        handled, or their answers after (``direction``), with probability ``p`` (0 heals)."""
        await self.admin(name, "POST", "/admin/abort", {"path": path, "p": p, "direction": direction})
        node = self.node(name)
        if p:
            node.aborts[path] = (p, direction)
            self._note(node, f"aborts {p:.0%} of the {direction}s to {path}")
        else:
            node.aborts.pop(path, None)
            self._note(node, f"no longer aborts {path}")
        self._changed(node)

    async def partition(self, a: str, b: str, *, one_way: bool = False, on: bool = True) -> None:
        """Cut the link from ``a`` to ``b`` (and back, unless ``one_way``): messages on it are
        lost, as on a network that stopped delivering (W8). ``on=False`` restores it."""
        links = [(a, b)] if one_way else [(a, b), (b, a)]
        for name in (a, b):
            self.node(name)  # an unknown name is refused before anything changes
        for sender, receiver in links:
            for name, attribute, other in ((sender, "mute_to", receiver), (receiver, "deaf_to", sender)):
                node = self.node(name)
                current = getattr(node, attribute)
                setattr(node, attribute, current | {other} if on else current - {other})
        for name in dict.fromkeys((a, b)):
            await self._push_links(name)
        arrow = "->" if one_way else "<->"
        self._note(self.node(a), f"link {a} {arrow} {b} {'cut' if on else 'restored'}")

    async def heal_partitions(self) -> None:
        """Restore every link a partition cut."""
        for node in list(self.nodes.values()):
            if node.deaf_to or node.mute_to:
                node.deaf_to = node.mute_to = frozenset()
                await self._push_links(node.name)

    async def _push_links(self, name: str) -> None:
        node = self.node(name)
        if node.state in (NodeState.UP, NodeState.HUNG, NodeState.STARTING) and (not node.attached or node.by_engine):
            await self.admin(name, "POST", "/admin/links", {"deaf_to": sorted(node.deaf_to),
                                                            "mute_to": sorted(node.mute_to)})
        self._changed(node)

    async def state(self, name: str, *, books: bool = True) -> dict[str, Any]:
        """A node's state; ``books=False``: without a catalog replica's rows (large catalogs)."""
        return await self.admin(name, "GET", "/admin/state" if books else "/admin/state?books=no")

    async def wait_settled(self, timeout: float = 10.0) -> None:
        """Wait until the front-end sees every running replica up and every running catalog
        replica sees its running peers up and vouches again (W2), so the first requests go
        where the rules say."""
        running = {n.name for n in self.nodes.values() if n.state == NodeState.UP and not n.cut_off}
        deadline = time.monotonic() + timeout
        while True:
            missing = await self._unseen(running)
            if not missing:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"still not seen as up after {timeout:.0f} s: {', '.join(missing)}")
            await asyncio.sleep(0.05)

    async def wait_noticed(self, name: str, timeout: float = 10.0) -> None:
        """Wait until the front-end (and, for a catalog, its running peers) have found ``name``
        out (W4): an outage is then measured as the cluster lives with it, not while it learns."""
        node = self.node(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replicas = (await self.state("frontend"))[f"{node.role}s"]["replicas"]
            seen_down = not replicas[node.index]["up"]
            if node.role == "catalog":
                for peer in self.of_role("catalog"):
                    if peer is not node and peer.state == NodeState.UP:
                        peers = (await self.state(peer.name, books=False))["peers"]
                        seen_down &= not next(p for p in peers if p["id"] == node.index)["up"]
            if seen_down:
                return
            await asyncio.sleep(0.05)

    async def _unseen(self, running: set[str]) -> list[str]:
        missing = []
        if "frontend" in running:
            state = await self.state("frontend")
            seen = {f"{ring}{r['id']}" for ring in ("catalog", "order")
                    for r in state[f"{ring}s"]["replicas"] if r["up"]}
            missing += [f"{name} (by the front-end)" for name in sorted(running - seen - {"frontend"})]
        for node in self.of_role("catalog"):
            if node.name in running:
                state = await self.state(node.name, books=False)
                missing += [f"catalog{p['id']} (by {node.name})" for p in state["peers"]
                            if not p["up"] and f"catalog{p['id']}" in running]
                if state.get("rejoining"):
                    missing.append(f"{node.name} (back after a lapse, not yet heard by every peer)")
        return missing

    async def reset(self) -> list[str]:
        """Every replica's database back to the seven books; caches and histories emptied.
        Catalogs are told one new generation number, so that the ones already reset take
        nothing from the ones not yet reset (a replica down now adopts it when back)."""
        generation = time.time_ns()
        done = []
        for node in self.nodes.values():
            if node.state == NodeState.UP:
                body = {"generation": generation} if node.role == "catalog" else None
                await self.admin(node.name, "POST", "/admin/reset", body)
                self._note(node, "reset: back to the seven books")
                done.append(node.name)
        return done

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

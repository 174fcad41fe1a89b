"""The one client for "try the replicas in turn": round-robin with failover, used by the
front-end for catalog replicas and order replicas alike.

``documented`` follows protocol.md to the letter (S9–S12): the replica whose turn it is is
tried first, every try moves the turn on, a failed one sends the request to the next.
``adaptive`` (the default) fixes W4: the turn moves once per request, and replicas that a
failed call or the background health probe found out are tried only after the others,
until a probe finds them back.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..shared.client import PeerClient, Reply, Timeouts
from ..shared.tasks import cancel_and_wait
from ..shared.telemetry import Telemetry

PROBE_INTERVAL_S = 0.5
PROBE_TIMEOUTS = Timeouts(connect=0.1, total=0.3)
MODES = ("adaptive", "documented")


@dataclass
class Member:
    index: int
    name: str
    address: str
    up: bool = True


@dataclass
class Attempt:
    member: Member
    reply: Reply


class ReplicaRing:
    def __init__(self, kind: str, addresses: list[str], client: PeerClient, telemetry: Telemetry) -> None:
        self.kind = kind
        self.members = [Member(i, f"{kind}{i}", address.rstrip("/")) for i, address in enumerate(addresses)]
        self.client = client
        self.telemetry = telemetry
        self.turn = 0
        self.mode = "adaptive"
        self._probe: asyncio.Task | None = None

    # ---- choosing ------------------------------------------------------------------------
    def _order(self) -> list[Member]:
        n = len(self.members)
        ring = [self.members[(self.turn + k) % n] for k in range(n)]
        if self.mode == "documented":
            return ring
        self.turn = (self.turn + 1) % n
        return [m for m in ring if m.up] + [m for m in ring if not m.up]

    async def call(
        self,
        method: str,
        path: str,
        *,
        label: str,
        body: Any = None,
        timeouts: Timeouts | None = None,
        headers: dict[str, str] | None = None,
        try_next: Callable[[Reply], bool] = lambda reply: False,
    ) -> tuple[Reply | None, list[Attempt]]:
        """Try the replicas in turn. Returns the answer that ended it (None when every one
        failed) and every attempt made, in order."""
        attempts: list[Attempt] = []
        for member in self._order():
            if self.mode == "documented":
                self.turn = (member.index + 1) % len(self.members)
            reply = await self.client.call(
                method, member.address + path, to=member.name, label=label, body=body, timeouts=timeouts,
                headers=headers,
            )
            attempts.append(Attempt(member, reply))
            if reply.answered and not try_next(reply):
                self._mark(member, True)
                return reply, attempts
            if not reply.answered or reply.status in (503, 504):
                self._mark(member, False)
        return None, attempts

    def _mark(self, member: Member, up: bool) -> None:
        if member.up != up:
            member.up = up
            self.telemetry.emit("replica", ring=self.kind, replica=member.index, up=up)

    # ---- the background health probe (W4) -------------------------------------------------
    def start(self) -> None:
        self._probe = asyncio.create_task(self._probe_loop(), name=f"probe-{self.kind}")

    async def stop(self) -> None:
        await cancel_and_wait(self._probe)

    async def _probe_loop(self) -> None:
        while True:
            started = time.monotonic()
            replies = await asyncio.gather(
                *(
                    self.client.call("GET", m.address + "/health", to=m.name, label="/health",
                                     timeouts=PROBE_TIMEOUTS, record=False)
                    for m in self.members
                )
            )
            for member, reply in zip(self.members, replies, strict=True):
                self._mark(member, reply.status == 200)
            await asyncio.sleep(max(0.0, PROBE_INTERVAL_S - (time.monotonic() - started)))

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "turn": self.turn,
            "replicas": [{"id": m.index, "address": m.address, "up": m.up} for m in self.members],
        }

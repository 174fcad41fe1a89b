"""What goes wrong (the "nemesis" of Jepsen's client/nemesis/checker split): random crashes,
hangs, cut-offs and restarts of catalog and order replicas, for a bounded time, each one
healed before the next and all of them healed at the end."""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from .supervisor import ClusterError, Supervisor

ACTIONS = ("crash", "hang", "cut off", "restart")


@dataclass(frozen=True)
class Fault:
    start: float
    end: float
    node: str
    action: str


class Nemesis:
    """Breaks one random catalog or order replica at a time, keeps it broken for a random
    while, heals it, rests, and goes again until ``until``."""

    def __init__(self, supervisor: Supervisor, seed: int, *, broken_s: tuple[float, float] = (0.5, 2.5),
                 rest_s: tuple[float, float] = (0.3, 1.5)) -> None:
        self.supervisor = supervisor
        self.rng = random.Random(seed)
        self.broken_s = broken_s
        self.rest_s = rest_s
        self.faults: list[Fault] = []

    def _victims(self) -> list[str]:
        return [n.name for n in self.supervisor.nodes.values() if n.role in ("catalog", "order") and not n.attached]

    async def run(self, until: float) -> list[Fault]:
        while time.monotonic() < until:
            node = self.rng.choice(self._victims())
            action = self.rng.choice(ACTIONS)
            started = time.time()
            await self.break_(node, action)
            await asyncio.sleep(self.rng.uniform(*self.broken_s))  # how long the fault lasts
            await self.heal(node, action)
            self.faults.append(Fault(started, time.time(), node, action))
            await asyncio.sleep(self.rng.uniform(*self.rest_s))  # quiet time between faults
        return self.faults

    async def break_(self, node: str, action: str) -> None:
        if action == "crash":
            self.supervisor.crash(node)
        elif action == "hang":
            self.supervisor.hang(node)
        elif action == "cut off":
            await self.supervisor.cut_off(node, True)
        else:
            await asyncio.to_thread(self.supervisor.restart, node)

    async def heal(self, node: str, action: str) -> None:
        if action == "crash":
            self.supervisor.start(node)
        elif action == "hang":
            self.supervisor.resume(node)
        elif action == "cut off":
            await self.supervisor.cut_off(node, False)
        await asyncio.to_thread(self.supervisor.wait_ready, [node])

    async def heal_all(self) -> None:
        """Whatever is still broken, heal it (used when a run is cut short)."""
        for node in self.supervisor.nodes.values():
            if node.attached or node.role == "frontend":
                continue
            try:
                if node.state == "hung":
                    self.supervisor.resume(node.name)
                if node.cut_off:
                    await self.supervisor.cut_off(node.name, False)
                if node.state in ("down", "exited"):
                    self.supervisor.start(node.name)
            except ClusterError:
                continue
        await asyncio.to_thread(self.supervisor.wait_ready)

"""What goes wrong (the "nemesis" of Jepsen's client/nemesis/checker split), on real processes:
crashes, hangs, cut-offs, restarts, partitions and full disks of catalog and order replicas, for a bounded
time, each healed before the next and all of them healed at the end. Every fault is written
into the run's one history (``history.Fault``) on the same clock as the operations."""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace

from nodes.control.supervisor import ClusterError, Supervisor
from nodes.core.vocabulary import NodeState
from nodes.verify.history import Fault

ACTIONS = ("crash", "hang", "cut", "restart", "partition", "disk", "abort")
#: Where the abort fault strikes, by role: the messages a write, a buy and a read are made of.
ABORTED_PATHS = {"catalog": ("/rep/update/", "/rep/check/", "/update/", "/query/item/", "/rep/get/"),
                 "order": ("/buy/",)}
#: How likely each request to an aborted path is to be dropped.
ABORT_P = 0.3
#: Every fault a person or a program can apply and heal; the injector picks from ACTIONS.
KINDS = (*ACTIONS, "slow")


def fault(action: str, *nodes: str, one_way: bool = False, ms: int = 0, path: str = "",
          direction: str = "request") -> Fault:
    """The one fault record, for every caller: the injector, the scenarios, the headless
    prompt and the window. ``partition`` names two nodes (the link from the first to the
    second, and back unless ``one_way``); ``slow`` carries its delay."""
    if action not in KINDS:
        raise ClusterError(f"unknown fault '{action}'; choose from {', '.join(KINDS)}")
    if action == "partition":
        a, b = nodes
        return Fault(action, (a, b), time.monotonic(), one_way=one_way,
                     detail=f"{'one-way ' if one_way else ''}{a} {'->' if one_way else '<->'} {b}")
    if action == "slow":
        return Fault(action, nodes, time.monotonic(), ms=ms, detail=f"{nodes[0]} {ms} ms")
    if action == "abort":
        return Fault(action, nodes, time.monotonic(), path=path, direction=direction,
                     detail=f"{nodes[0]} {direction}s to {path}")
    return Fault(action, nodes, time.monotonic())


async def apply(supervisor: Supervisor, fault: Fault, *, wait_ready: bool = True) -> None:
    """Break the cluster as ``fault`` says. Process control runs in a worker thread, so no
    caller's event loop ever waits on a process."""
    node = fault.nodes[0] if fault.nodes else ""
    if fault.action == "crash":
        await asyncio.to_thread(supervisor.crash, node)
    elif fault.action == "hang":
        await asyncio.to_thread(supervisor.hang, node)
    elif fault.action == "cut":
        await supervisor.cut_off(node, True)
    elif fault.action == "restart":
        await asyncio.to_thread(supervisor.restart, node)
        if wait_ready:
            await asyncio.to_thread(supervisor.wait_ready, [node])
    elif fault.action == "partition":
        await supervisor.partition(fault.nodes[0], fault.nodes[1], one_way=fault.one_way)
    elif fault.action == "slow":
        await supervisor.slow(node, fault.ms)
    elif fault.action == "disk":
        await supervisor.fill_disk(node, True)
    elif fault.action == "abort":
        await supervisor.abort(node, fault.path, ABORT_P, fault.direction)
    else:
        raise ClusterError(f"unknown fault '{fault.action}'; choose from {', '.join(KINDS)}")


async def heal(supervisor: Supervisor, fault: Fault, *, wait_ready: bool = True) -> None:
    """Undo ``fault`` (start what was crashed, resume what hung, restore links and speed) and,
    unless told not to, wait until its node answers again."""
    node = fault.nodes[0] if fault.nodes else ""
    if fault.action == "crash":
        await asyncio.to_thread(supervisor.start, node)
    elif fault.action == "hang":
        await asyncio.to_thread(supervisor.resume, node)
    elif fault.action == "cut":
        await supervisor.cut_off(node, False)
    elif fault.action == "slow":
        await supervisor.slow(node, 0)
    elif fault.action == "disk":
        await supervisor.fill_disk(node, False)
        return
    elif fault.action == "abort":
        await supervisor.abort(node, fault.path, 0)
        return
    elif fault.action == "partition":
        await supervisor.partition(fault.nodes[0], fault.nodes[1], one_way=fault.one_way, on=False)
        return
    if node and wait_ready:
        await asyncio.to_thread(supervisor.wait_ready, [node])


class Nemesis:
    """Breaks one random catalog or order replica at a time, keeps it broken for a random
    while, heals it, rests, and goes again until ``until`` (monotonic time)."""

    def __init__(self, supervisor: Supervisor, seed: int, *, actions: tuple[str, ...] = ACTIONS,
                 broken_s: tuple[float, float] = (0.5, 2.5), rest_s: tuple[float, float] = (0.3, 1.5)) -> None:
        unknown = [a for a in actions if a not in ACTIONS]
        if unknown:
            raise ClusterError(f"unknown fault {', '.join(unknown)}; choose from {', '.join(ACTIONS)}")
        self.supervisor = supervisor
        self.rng = random.Random(seed)
        self.actions = actions
        self.broken_s = broken_s
        self.rest_s = rest_s
        self.faults: list[Fault] = []

    def _victims(self) -> list[str]:
        return [n.name for n in self.supervisor.nodes.values() if n.role in ("catalog", "order") and not n.attached]

    async def run(self, until: float) -> list[Fault]:
        while self.actions and time.monotonic() < until:
            action = self.rng.choice(self.actions)
            if action == "partition":
                # A link between two nodes, the front-end's included, cut both ways or one way.
                broken = fault(action, *self.rng.sample(self._victims() + ["frontend"], 2),
                               one_way=self.rng.random() < 0.5)
            elif action == "disk":  # only a catalog replica's database takes the fault
                broken = fault(action, self.rng.choice([n for n in self._victims() if n.startswith("catalog")]))
            elif action == "abort":
                victim = self.rng.choice(self._victims())
                broken = fault(action, victim, path=self.rng.choice(ABORTED_PATHS[victim.rstrip("0123456789")]),
                               direction=self.rng.choice(("request", "response")))
            else:
                broken = fault(action, self.rng.choice(self._victims()))
            await apply(self.supervisor, broken)
            await asyncio.sleep(self.rng.uniform(*self.broken_s))  # how long the fault lasts
            await heal(self.supervisor, broken)
            self.faults.append(replace(broken, end=time.monotonic()))
            await asyncio.sleep(self.rng.uniform(*self.rest_s))  # quiet time between faults
        return self.faults

    async def heal_all(self) -> None:
        """Whatever is still broken, heal it (used when a run is cut short)."""
        await self.supervisor.heal_partitions()
        for node in self.supervisor.nodes.values():
            if node.attached or node.role == "frontend":
                continue
            try:
                if node.state == NodeState.HUNG:
                    self.supervisor.resume(node.name)
                if node.cut_off:
                    await self.supervisor.cut_off(node.name, False)
                if node.disk_full:
                    await self.supervisor.fill_disk(node.name, False)
                for path in list(node.aborts):
                    await self.supervisor.abort(node.name, path, 0)
                if node.state in (NodeState.DOWN, NodeState.EXITED):
                    self.supervisor.start(node.name)
            except ClusterError:
                continue
        await asyncio.to_thread(self.supervisor.wait_ready)

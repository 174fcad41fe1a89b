"""Runs a protocol core inside a real node: its effects become aiohttp calls, commits on the
node's store (one database thread), asyncio timers and waits. The simulator
(``nodes/sim``) is the other driver of the same cores."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from nodes.core.effects import Core, Disk, DiskFailed, Gather, Hedged, NoAnswer, Send, Sleep, Wait
from nodes.core.wire import GENERATION_HEADER, answer_of, request_of
from nodes.runtime.client import Timeouts
from nodes.runtime.node import Node

log = logging.getLogger("bazar")
#: Events that also go to the node's log, in plain words: what an operator must hear of.
LOGGED = {
    "damaged": "book {book}: the stored row cannot be trusted ({reason}); none of it is served or passed on "
               "until a peer's copy replaces it",
    "repaired": "book {book}: the damaged row was replaced by a peer's copy at seq {seq}",
}


class Driver:
    """``addresses``: node name (``catalog1``, ``frontend``…) to base URL. ``store``: the
    object ``Disk`` effects call, if the core has one."""

    def __init__(self, core: Core, node: Node, addresses: dict[str, str], store: Any = None) -> None:
        self.core = core
        self.node = node
        self.addresses = {name: address.rstrip("/") for name, address in addresses.items()}
        self.store = store
        self._disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{node.role}-db") if store else None
        self._background: set[asyncio.Future] = set()  # hedged sends left to end on their own
        def emit(kind: str, **fields: Any) -> None:
            if kind == "disk":
                log.warning("the database takes commits again" if fields["ok"] else
                            f"the database failed a commit ({fields['message']}): this replica says it is "
                            "degraded and stores no write until a commit succeeds")
            elif kind in LOGGED:
                log.warning(LOGGED[kind].format(**fields))
            node.telemetry.emit(kind, **fields)

        core.emit = emit  # type: ignore[method-assign]  # the driver gives the core its sink
        self.feed_time()

    def feed_time(self) -> None:
        self.core.now = time.monotonic()

    async def run(self, coroutine: Coroutine) -> Any:
        """Run one of the core's operations to its end, performing each effect it yields."""
        value: Any = None
        error: BaseException | None = None
        while True:
            self.feed_time()
            try:
                effect = coroutine.throw(error) if error is not None else coroutine.send(value)
            except StopIteration as done:
                return done.value
            value, error = None, None
            try:
                value = await self.perform(effect)
            except asyncio.CancelledError:
                coroutine.close()
                raise
            except Exception as exc:  # handed to the core, which may know what to do
                error = exc

    async def perform(self, effect: Any) -> Any:
        if isinstance(effect, Send):
            return await self.send(effect)
        if isinstance(effect, Gather):
            effect.arrived[:] = [None] * len(effect.sends)
            if effect.enough is None:
                return await asyncio.gather(*(self._timed(effect, index, send)
                                              for index, send in enumerate(effect.sends)))
            return await self._gather_enough(effect)
        if isinstance(effect, Hedged):
            return await self._hedged(effect)
        if isinstance(effect, Disk):
            return await self.on_disk(effect.method, *effect.args)
        if isinstance(effect, Sleep):
            # asyncio may wake a timer up to its clock's resolution early: the core is resumed
            # only once its clock reads the sleep's end, as the simulator does.
            while (left := effect.until - time.monotonic()) > 0:
                await asyncio.sleep(left)
            return None
        if isinstance(effect, Wait):
            return await self._wait(effect)
        raise TypeError(f"unknown effect {effect!r}")

    async def on_disk(self, method: str, *args: Any) -> Any:
        """Call a store method on the node's one database thread. A commit the database refuses
        (disk full, I/O error) reaches the core as ``DiskFailed``; loading at start fails as it
        is, naming the file (``database.py``)."""
        assert self._disk is not None, "this core has no store"
        try:
            return await asyncio.get_running_loop().run_in_executor(self._disk, getattr(self.store, method), *args)
        except (SQLAlchemyError, OSError) as exc:
            if method.startswith("load"):
                raise
            reason = getattr(getattr(exc, "orig", None), "args", None) or (str(exc),)
            raise DiskFailed(str(reason[0])) from exc

    async def send(self, send: Send) -> Any:
        method, path, body, label, headers = request_of(send.message)
        if send.generation is not None:
            headers = {**headers, GENERATION_HEADER: str(send.generation)}
        connect = send.connect_timeout if send.connect_timeout is not None else min(send.timeout, 0.2)
        # At teaching speed a traced call waits for held messages too (client.Pace).
        total = send.timeout + (self.node.pace.slack_s if send.trace else 0.0)
        reply = await self.node.client.call(
            method, self.addresses[send.to] + path, to=send.to, label=label, body=body,
            timeouts=Timeouts(connect=connect, total=total), headers=headers, record=send.trace,
        )
        if not reply.answered:
            return NoAnswer(refused=reply.failure == "refused")
        assert reply.status is not None  # answered
        return answer_of(send.message, reply.status, reply.data)

    def _send_in_background(self, send: Send) -> asyncio.Future:
        """``send`` as a task kept until it ends: one a request stopped waiting for still ends
        by its own time-out, so its hop is told as it ended."""
        task = asyncio.ensure_future(self.send(send))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _timed(self, effect: Gather, index: int, send: Send) -> Any:
        """One send of a gather, its answer's arrival noted on the core's clock."""
        answer = await self.send(send)
        effect.arrived[index] = time.monotonic()
        return answer

    async def _gather_enough(self, effect: Gather) -> list[Any]:
        """A gather that stops waiting ``patience`` after ``enough`` holds: those still out are
        not cancelled but end by their own time-out, so each hop is told as it ended."""
        assert effect.enough is not None
        answers: list[Any] = [None] * len(effect.sends)
        out: dict[asyncio.Future, int] = {}
        for index, send in enumerate(effect.sends):
            out[self._send_in_background(send)] = index
        loop = asyncio.get_running_loop()
        patient_until: float | None = None
        while out:
            timeout = None if patient_until is None else max(0.0, patient_until - loop.time())
            done, _ = await asyncio.wait(out, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                return answers  # out of patience
            for finished in done:
                index = out.pop(finished)
                answers[index] = finished.result()
                effect.arrived[index] = time.monotonic()
            if patient_until is None and effect.enough(answers):
                patient_until = loop.time() + effect.patience + self.node.pace.slack_s
        return answers

    async def _hedged(self, effect: Hedged) -> list[Any]:
        """The sends of a hedged request, each ``after`` the last or at once when one fails, until
        one is accepted (or one is final and the rest are in). Those still out are not cancelled:
        they end by their own time-out, so each one's hop is told as it ended, not as if it had
        never been sent."""
        answers: list[Any] = [None] * len(effect.sends)
        effect.sent_at[:] = [None] * len(effect.sends)
        out: dict[asyncio.Future, int] = {}
        sent = 0

        def send_next() -> None:
            nonlocal sent
            effect.sent_at[sent] = time.monotonic()
            out[self._send_in_background(effect.sends[sent])] = sent
            sent += 1

        # At teaching speed every traced message is held a while: the hedge waits that out too,
        # so a class sees one hop, not a second one sent because the first was held.
        after = effect.after + self.node.pace.slack_s
        closed = False  # a final answer came: no more sends, only the wait for those out
        loop = asyncio.get_running_loop()
        patient_until: float | None = None  # every send out and one refused: how long to wait on
        send_next()
        while out:
            more = sent < len(effect.sends) and not closed
            timeout = after if more else None
            # Patience starts once every send is out, as in the simulator; a final answer that
            # closed the sending before then leaves those out waited for to their time-outs.
            if sent == len(effect.sends) and effect.patience is not None and any(a is not None for a in answers):
                if patient_until is None:
                    patient_until = loop.time() + effect.patience + self.node.pace.slack_s
                timeout = max(0.0, patient_until - loop.time())
            done, _ = await asyncio.wait(out, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                if not more:
                    return answers  # out of patience: those still out end by their own time-out
                send_next()  # the hedge: no answer yet, ask the next one too
                continue
            for task in done:
                index = out.pop(task)
                answers[index] = task.result()
                if effect.accept(answers[index]):
                    return answers
                if effect.final is not None and effect.final(answers[index]):
                    closed = True
                elif sent < len(effect.sends) and not closed:
                    send_next()  # that one failed: the next at once
        return answers

    async def _wait(self, wait: Wait) -> bool:
        if wait.woken:
            return True
        future = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(True)

        wait.on_wake = wake
        left = wait.deadline - time.monotonic()
        try:
            return await asyncio.wait_for(future, None if left == float("inf") else max(0.0, left))
        except TimeoutError:
            return wait.woken

    def close(self) -> None:
        if self._disk is not None:
            self._disk.shutdown(wait=True)

"""Load a session puts on the cluster (a steady mix of requests at a set rate) and the lag of
the event loop it runs on (how long a callback waited to run)."""
from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter, deque
from dataclasses import dataclass

from nodes.control.supervisor import Supervisor
from nodes.runtime.tasks import cancel_and_wait
from nodes.verify.workload import Request, Runner, percentile


@dataclass
class LoadSettings:
    rate: float = 20.0  # requests per second: the Live and Charts tabs show and set this one value
    write_fraction: float = 0.1
    topics: tuple[str, ...] = ("distributed", "graduate", "t")


#: A search's first page under load, in a catalog of more books than this.
LOAD_SEARCH_PAGE = 20


class LoadGenerator:
    """An open-loop load: requests at a steady rate with a chosen read/write mix, so the
    charts move without anyone clicking. Stops by itself when the session ends."""

    MAX_IN_FLIGHT = 256

    def __init__(self, supervisor: Supervisor, seed: int = 11, book_ids: tuple[int, ...] = tuple(range(1, 8))) -> None:
        self.supervisor = supervisor
        self.book_ids = book_ids  # the catalog's books: the documents' seven unless a file named others
        # A large catalog's searches ask for a first page, as a shop's would: "t" alone holds
        # most of 100,000 books, megabytes an answer.
        self.search_query = f"?limit={LOAD_SEARCH_PAGE}" if len(book_ids) > LOAD_SEARCH_PAGE else ""
        self.settings = LoadSettings()
        self.rng = random.Random(seed)
        self.sent = 0
        #: Answers so far by (method, status); status 0: none came (a time-out, a dropped link).
        self.answers: Counter[tuple[str, int]] = Counter()
        self.in_flight = 0
        self._task: asyncio.Task | None = None
        #: Why the load stopped by itself, if it did (its task ended with an error): the load
        #: is shown as stopped, and this says why.
        self.failure: str | None = None
        self._draining = False
        self._idle = asyncio.Event()  # set whenever no request is under way
        self._idle.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self.failure = None
            self._task = asyncio.ensure_future(self._run())
            self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            self.failure = f"{type(error).__name__}: {error}"

    async def stop(self, drain_s: float = 0.0) -> None:
        """Stop sending. With ``drain_s``, first let the requests under way be answered (up to
        that long): a buy cancelled at the client may still be carried out after its caller
        moved on."""
        if drain_s and self.running:
            self._draining = True
            try:
                await asyncio.wait_for(self._idle.wait(), drain_s)
            except TimeoutError:
                pass  # cancelled below, as without draining
        # Stopped from this moment: nothing new is sent and the window says so at once, while
        # the requests under way are cancelled and their connections closed (awaited here).
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self._draining = False

    def _pick(self) -> Request:
        roll = self.rng.random()
        if roll < self.settings.write_fraction:
            return Request("PUT", f"/buy/{self.rng.choice(self.book_ids)}")
        if roll < self.settings.write_fraction + (1 - self.settings.write_fraction) * 0.2:
            return Request("GET", f"/search/{self.rng.choice(self.settings.topics)}{self.search_query}")
        return Request("GET", f"/lookup/{self.rng.choice(self.book_ids)}")

    async def _run(self) -> None:
        tasks: set[asyncio.Task] = set()
        async with Runner(self.supervisor.frontend.address, timeout=15) as runner:
            next_at = time.perf_counter()
            try:
                while True:
                    rate = max(0.1, self.settings.rate)
                    next_at += 1 / rate
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)  # the load's own pacing
                    elif delay < -1:
                        next_at = time.perf_counter()  # fell behind: do not burst to catch up
                    if self.in_flight >= self.MAX_IN_FLIGHT or self._draining:
                        continue
                    task = asyncio.create_task(self._one(runner, self._pick()))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            finally:
                await cancel_and_wait(*tasks)

    async def _one(self, runner: Runner, request: Request) -> None:
        self.in_flight += 1
        self.sent += 1
        self._idle.clear()
        try:
            result = await runner.send(request)
            self.answers[request.method, result.status] += 1
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()


class LagMonitor:
    """How late the event loop wakes up: the window's "never frozen" measure."""

    def __init__(self, interval: float = 0.02, keep: int = 5000) -> None:
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=keep)  # ms late
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start measuring, unless it already is."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="lag-monitor")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(self.interval)  # what is measured is how late this wakes up
            self.samples.append(max(0.0, (time.perf_counter() - t0 - self.interval) * 1000))

    def clear(self) -> None:
        self.samples.clear()

    def summary(self) -> dict[str, float]:
        values = sorted(self.samples)
        if not values:
            return {"count": 0}
        return {"count": len(values), "mean": statistics.fmean(values), "p50": percentile(values, 50),
                "p99": percentile(values, 99), "max": values[-1]}

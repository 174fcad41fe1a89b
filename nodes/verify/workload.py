"""What a user does, as data (the "client" of Jepsen's client/nemesis/checker split): seeded
request sequences, a runner that sends them to the front-end, and their statistics.
No Qt; the window, the command line and the tests all use it."""
from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

DEFAULT_COUNT = 200
TOPICS = ("distributed", "graduate", "systems", "school", "t", "Distributed Systems", "GRADUATE", "cooking")


@dataclass(frozen=True)
class Request:
    method: str
    path: str

    @property
    def operation(self) -> str:
        """``lookup``, ``search`` or ``buy``: the path's first segment."""
        return self.path.split("/")[1]


@dataclass(frozen=True)
class Workload:
    """A named, seeded request sequence: the same seed gives every system the same requests."""

    name: str
    title: str
    make: Callable[[random.Random, int], list[Request]]
    needs_stock: bool = False

    def requests(self, count: int = DEFAULT_COUNT, seed: int = 2024) -> list[Request]:
        return self.make(random.Random(f"{self.name}:{seed}"), count)


WORKLOADS = {
    w.name: w
    for w in (
        Workload("lookups", "Look-ups, all valid IDs (1–7)",
                 lambda rng, n: [Request("GET", f"/lookup/{rng.randint(1, 7)}") for _ in range(n)]),
        Workload("lookups-unknown", "Look-ups, some invalid IDs (1–10)",
                 lambda rng, n: [Request("GET", f"/lookup/{rng.randint(1, 10)}") for _ in range(n)]),
        Workload("searches", "Searches by topic",
                 lambda rng, n: [Request("GET", f"/search/{rng.choice(TOPICS)}") for _ in range(n)]),
        Workload("buys", "Buys of random books (stock raised first)",
                 lambda rng, n: [Request("PUT", f"/buy/{rng.randint(1, 7)}") for _ in range(n)], needs_stock=True),
    )
}


@dataclass(frozen=True)
class Result:
    request: Request
    status: int  # 0 when no answer came
    ms: float
    started: float


@dataclass
class Stats:
    count: int = 0
    mean: float = float("nan")
    p50: float = float("nan")
    p95: float = float("nan")
    p99: float = float("nan")
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, results: list[Result]) -> Stats:
        times = sorted(r.ms for r in results)
        if not times:
            return cls()
        return cls(
            count=len(times),
            mean=statistics.fmean(times),
            p50=percentile(times, 50),
            p95=percentile(times, 95),
            p99=percentile(times, 99),
            errors=sum(1 for r in results if r.status == 0 or r.status >= 500),
        )

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean_ms": self.mean, "p50_ms": self.p50, "p95_ms": self.p95,
                "p99_ms": self.p99, "errors": self.errors, **self.extra}


def percentile(sorted_values: list[float], p: float) -> float:
    """The p-th percentile by linear interpolation between closest ranks."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100
    lower = int(k)
    upper = min(lower + 1, len(sorted_values) - 1)
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * (k - lower)


class Runner:
    """Sends requests to one front-end over a pooled session and times each answer."""

    def __init__(self, frontend: str, *, timeout: float = 10.0) -> None:
        self.frontend = frontend.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Runner:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def send(self, request: Request) -> Result:
        assert self.session is not None
        started = time.time()
        t0 = time.perf_counter()
        try:
            async with self.session.request(request.method, self.frontend + request.path,
                                            timeout=self.timeout) as resp:
                await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError):
            status = 0
        return Result(request, status, (time.perf_counter() - t0) * 1000, started)

    async def sequence(self, requests: list[Request],
                       progress: Callable[[int], None] | None = None) -> list[Result]:
        """One request after another, as the documents measured them."""
        results = []
        for request in requests:
            results.append(await self.send(request))
            if progress is not None:
                progress(1)
        return results

    async def closed_loop(self, clients: int, seconds: float, pick: Callable[[random.Random], Request],
                          seed: int = 7) -> list[Result]:
        """``clients`` users, each sending its next request as soon as the last is answered."""
        deadline = time.perf_counter() + seconds
        results: list[Result] = []

        async def client(number: int) -> None:
            rng = random.Random(f"{seed}:{number}")
            while time.perf_counter() < deadline:
                results.append(await self.send(pick(rng)))

        await asyncio.gather(*(client(i) for i in range(clients)))
        return results

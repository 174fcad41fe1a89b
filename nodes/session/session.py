"""One running cluster and everything a person does with it, without Qt: the supervisor,
the live model, the shopper's client, the load generator and the event loop's lag.
The window is a view of a ``ClusterSession``; the tests drive the same object."""
from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

from nodes.control.clusterfile import Cluster
from nodes.control.supervisor import ClusterError, Supervisor
from nodes.observe.model import ClusterModel
from nodes.runtime.tasks import cancel_and_wait
from nodes.session.actions import Controller
from nodes.verify.workload import Request, Runner, percentile

BUY_ID_HEADER = "X-Bazar-Buy-Id"
#: How long the shop waits for the front-end's answer to a buy before it says "unknown".
BUY_TIMEOUT_S = 12.0


@dataclass(frozen=True)
class BuyOutcome:
    kind: str  # bought, out of stock, book unknown, unreachable, refused, unknown, invalid
    message: str
    tried: tuple[str, ...] = ()
    #: The buy's id, sent with it: the way to learn an unknown outcome later (W7).
    buy_id: str = ""

    @property
    def sentence(self) -> str:
        """The answer in plain words, for a shopper."""
        if self.kind == "bought":
            return "Bought. Enjoy your book!"
        if self.kind == "out of stock":
            return "Sorry, that book is out of stock."
        if self.kind == "book unknown":
            return "There is no book with that number."
        if self.kind == "unreachable":
            tried = f" (tried {', '.join(self.tried)})" if self.tried else ""
            return f"No order server could be reached{tried}. Nothing was bought."
        if self.kind == "refused":
            return f"{self.message}. The cluster refused rather than risk selling a copy twice."
        if self.kind == "unknown":
            return (f"Outcome unknown: no answer confirmed the purchase in time, so it may or may not have gone "
                    f"through. Buy id {self.buy_id}: press “Look it up” to learn what happened.")
        return self.message


@dataclass(frozen=True)
class ShopError:
    """What went wrong between the shop and the front-end, in plain words."""

    message: str
    #: True when the request may have reached the front-end (a time-out, a dropped
    #: connection): whatever it asked for may have happened.
    maybe_done: bool


class Shop:
    """What a shopper can do, through the front-end only."""

    def __init__(self, frontend: str) -> None:
        self.frontend = frontend.rstrip("/")
        self.session: aiohttp.ClientSession | None = None
        self.buy_timeout = BUY_TIMEOUT_S
        #: Added to every wait at teaching speed, when every message is held (client.Pace).
        self.slack_s = 0.0

    async def _call(self, method: str, path: str, timeout: float = 10.0,
                    headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """(status, JSON body); status 0 and a ``ShopError`` when nothing came back."""
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession()
        timeout += self.slack_s
        try:
            async with self.session.request(method, self.frontend + path, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                return resp.status, await resp.json(content_type=None)
        except aiohttp.ClientConnectorError:
            return 0, ShopError("The front-end could not be reached: it is down or cut off.", maybe_done=False)
        except TimeoutError:
            return 0, ShopError(f"The front-end did not answer within {timeout:.0f} s: it may be hung or "
                                "overloaded.", maybe_done=True)
        except (aiohttp.ClientError, ValueError):
            return 0, ShopError("The connection to the front-end broke before it answered.", maybe_done=True)

    @staticmethod
    def _failure(status: int, body: Any) -> str:
        if isinstance(body, ShopError):
            return body.message
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
        return f"The front-end answered with an error (status {status})."

    async def search(self, topic: str) -> tuple[bool, list[dict[str, Any]] | str]:
        if not topic.strip():
            return False, "Type a topic to search for, e.g. distributed"
        status, body = await self._call("GET", f"/search/{quote(topic.strip(), safe='')}")
        return (True, body) if status == 200 else (False, self._failure(status, body))

    async def lookup(self, book: int) -> tuple[bool, dict[str, Any] | str]:
        status, body = await self._call("GET", f"/lookup/{book}")
        return (True, body) if status == 200 else (False, self._failure(status, body))

    async def buy(self, book: int, buy_id: str | None = None) -> BuyOutcome:
        buy_id = buy_id or uuid.uuid4().hex[:12]
        status, body = await self._call("PUT", f"/buy/{book}", timeout=self.buy_timeout,
                                        headers={BUY_ID_HEADER: buy_id})
        if isinstance(body, ShopError):
            # A buy that may have reached the front-end may have been carried out (W7).
            return BuyOutcome("unknown" if body.maybe_done else "unreachable", body.message, (), buy_id)
        message = body.get("message", "") if isinstance(body, dict) else ""
        tried = tuple(t["replica"] for t in body.get("tried", [])) if isinstance(body, dict) else ()
        if status == 200:
            return BuyOutcome("bought" if body.get("success") else "out of stock", message, (), buy_id)
        if status == 202:
            return BuyOutcome("unknown", message, tried, buy_id)
        if status == 404:
            return BuyOutcome("book unknown", message, (), buy_id)
        if status == 422:
            return BuyOutcome("invalid", message, (), buy_id)
        if status == 503 and isinstance(body, dict) and body.get("outcome") == "not done":
            return BuyOutcome("refused", message, tried, buy_id)  # W8: no majority; nothing changed
        return BuyOutcome("unreachable", message, tried, buy_id)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


@dataclass
class LoadSettings:
    rate: float = 50.0  # requests per second
    write_fraction: float = 0.1
    topics: tuple[str, ...] = ("distributed", "graduate", "t")


class LoadGenerator:
    """An open-loop load: requests at a steady rate with a chosen read/write mix, so the
    charts move without anyone clicking. Stops by itself when the session ends."""

    MAX_IN_FLIGHT = 256

    def __init__(self, supervisor: Supervisor, seed: int = 11) -> None:
        self.supervisor = supervisor
        self.settings = LoadSettings()
        self.rng = random.Random(seed)
        self.sent = 0
        self.in_flight = 0
        self._task: asyncio.Task | None = None
        self._draining = False
        self._idle = asyncio.Event()  # set whenever no request is under way
        self._idle.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.ensure_future(self._run())

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
        await cancel_and_wait(self._task)
        self._task = None
        self._draining = False

    def _pick(self) -> Request:
        roll = self.rng.random()
        if roll < self.settings.write_fraction:
            return Request("PUT", f"/buy/{self.rng.randint(1, 7)}")
        if roll < self.settings.write_fraction + (1 - self.settings.write_fraction) * 0.2:
            return Request("GET", f"/search/{self.rng.choice(self.settings.topics)}")
        return Request("GET", f"/lookup/{self.rng.randint(1, 7)}")

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
            await runner.send(request)
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


@dataclass
class ClusterSession:
    cluster: Cluster
    supervisor: Supervisor = field(init=False)
    model: ClusterModel = field(init=False)
    shop: Shop = field(init=False)
    load: LoadGenerator = field(init=False)
    lag: LagMonitor = field(default_factory=LagMonitor)

    controller: Controller = field(init=False)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(self.cluster)
        self.model = ClusterModel.for_supervisor(self.supervisor)
        self.shop = Shop(self.supervisor.frontend.address)
        self.load = LoadGenerator(self.supervisor)
        self.controller = Controller(self)

    async def start(self, progress: Callable[[str], None] = lambda message: None) -> None:
        """Start every node (in a worker thread: process control never waits on the GUI's
        loop), then follow them."""
        self.lag.start()
        self.model.watch(self.supervisor)
        if not self.cluster.attached:
            total = len(self.supervisor.nodes)

            def report(node: Any) -> None:
                up = sum(1 for n in self.supervisor.nodes.values() if n.state == "up")
                progress(f"{node.name} is {node.status} ({up}/{total} up)")

            self.supervisor.listeners.append(report)
            try:
                await asyncio.to_thread(self._start_blocking)
            finally:
                self.supervisor.listeners.remove(report)
        progress("waiting for the replicas to see each other")
        await self.supervisor.wait_settled(timeout=20)
        await self.model.start()
        progress("ready")

    def _start_blocking(self) -> None:
        self.supervisor.start_all()
        self.supervisor.wait_ready(timeout=60)

    async def stop(self) -> None:
        await self.load.stop()
        await self.model.stop()
        await self.shop.close()
        await self.lag.stop()
        await self.supervisor.aclose()
        await asyncio.to_thread(self.supervisor.close)

    async def orders(self, limit: int = 200) -> list[dict[str, Any]]:
        """Every order replica's history, newest first, each record naming its replica."""
        records = []
        for node in self.supervisor.of_role("order"):
            if node.state != "up" or node.cut_off:
                continue
            try:
                history = await self.supervisor.admin(node.name, "GET", f"/orders?limit={limit}")
            except ClusterError:
                continue
            records += [{**record, "replica": node.name} for record in history]
        return sorted(records, key=lambda r: r["time"], reverse=True)

    async def restock(self, book: int, quantity: int) -> str:
        """Set a book's stock, written through a running catalog replica as any write is (its
        peers take it, the front-end drops its cached copy). Plain words back."""
        refused = ""
        for node in self.supervisor.of_role("catalog"):
            if node.state != "up" or node.cut_off:
                continue
            for _attempt in range(2):  # 409: its copy was outdated and is now refreshed; again
                try:
                    await self.supervisor.admin(node.name, "PUT", f"/update/{book}", {"quantity": quantity},
                                                timeout=10 + self.shop.slack_s)
                    return f"Book {book} restocked to {quantity} through {node.name}."
                except ClusterError as error:
                    refused = str(error)
        return f"Book {book} could not be restocked: {refused or 'no catalog replica is running'}."

    async def find_buy(self, buy_id: str) -> BuyLookup:
        """What became of the buy with this id, from every order replica that can answer."""
        asked, silent = [], []
        for node in self.supervisor.of_role("order"):
            if node.state != "up" or node.cut_off:
                silent.append(node.name)
                continue
            try:
                history = await self.supervisor.admin(node.name, "GET", "/orders?limit=10000")
            except ClusterError:
                silent.append(node.name)
                continue
            asked.append(node.name)
            for record in history:
                if record.get("buy_id") == buy_id:
                    return BuyLookup(buy_id, {**record, "replica": node.name}, tuple(asked), tuple(silent))
        return BuyLookup(buy_id, None, tuple(asked), tuple(silent))


@dataclass(frozen=True)
class BuyLookup:
    buy_id: str
    record: dict[str, Any] | None
    asked: tuple[str, ...]
    silent: tuple[str, ...]

    @property
    def sentence(self) -> str:
        if self.record is not None:
            return (f"Buy {self.buy_id} went through: {self.record['replica']} recorded order "
                    f"{self.record['order_id']} for “{self.record['title']}”.")
        if self.silent:
            return (f"Buy {self.buy_id} is in no history that could be read ({', '.join(self.asked) or 'none'}); "
                    f"{', '.join(self.silent)} could not be asked, so it is still unknown. Try again later.")
        return f"Buy {self.buy_id} is in no order replica's history: it was not carried out."

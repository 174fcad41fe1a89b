"""One running cluster and everything a person does with it, without Qt: the supervisor,
the live model and the follower that feeds it, the shopper's client, the load generator and the
event loop's lag.
The window is a view of a ``ClusterSession``; the tests drive the same object."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.control.clusterfile import Cluster
from nodes.control.supervisor import ClusterError, Supervisor
from nodes.core.books import Book, seed_books
from nodes.core.vocabulary import NodeState
from nodes.observe.follower import Follower
from nodes.observe.model import ClusterModel
from nodes.runs.recorder import Recorder
from nodes.runs.runfile import Header
from nodes.runtime.tasks import cancel_and_wait
from nodes.session.actions import Controller
from nodes.session.load import LagMonitor, LoadGenerator
from nodes.session.shop import SEARCH_PAGE, BuyLookup, OrderHistory, Shop


@dataclass
class ClusterSession:
    cluster: Cluster
    supervisor: Supervisor = field(init=False)
    model: ClusterModel = field(init=False)
    follower: Follower = field(init=False)
    shop: Shop = field(init=False)
    load: LoadGenerator = field(init=False)
    books: list[Book] = field(init=False)
    lag: LagMonitor = field(default_factory=LagMonitor)
    #: Where the front-end's address goes once the cluster is ready (the terminal: README's
    #: curl lesson needs it, and the window's ports change every run).
    announce: Callable[[str], None] = field(default=lambda line: print(line, flush=True))

    controller: Controller = field(init=False)
    #: Whether ``start`` records the session (off only to measure what recording costs).
    record: bool = True
    #: The session's recording (nodes/runs/recorder.py): from ``start`` until ``stop``.
    recorder: Recorder | None = field(init=False, default=None)
    _recording: asyncio.Task | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(self.cluster)
        self.model = ClusterModel.for_supervisor(self.supervisor)
        self.follower = Follower(self.model, self.supervisor.secret)
        self.shop = Shop(self.supervisor.frontend.address)
        #: The books the cluster started from (its catalog file), as the window lists them.
        self.books = seed_books(self.cluster.books)
        if len(self.books) > SEARCH_PAGE:
            self.shop.page = SEARCH_PAGE
        self.load = LoadGenerator(self.supervisor, book_ids=tuple(book.id for book in self.books))
        self.controller = Controller(self)

    async def start(self, progress: Callable[[str], None] = lambda message: None) -> None:
        """Start every node (in a worker thread: process control never waits on the GUI's
        loop), then follow them."""
        self.lag.start()
        if self.record:
            self.start_recording()
        self.follower.watch(self.supervisor)
        if not self.cluster.attached:
            total = len(self.supervisor.nodes)
            loop = asyncio.get_running_loop()

            def report(node: Any) -> None:
                # Called on the supervisor's starting and process-reading threads: the words go
                # to ``progress`` on this loop, where the window may draw them (a widget touched
                # from another thread can crash Qt).
                up = sum(1 for n in self.supervisor.nodes.values() if n.state == NodeState.UP)
                words = f"{node.name} is {node.status} ({up}/{total} up)"
                if not loop.is_closed():
                    loop.call_soon_threadsafe(progress, words)

            self.supervisor.listeners.append(report)
            try:
                await asyncio.to_thread(self._start_blocking)
            finally:
                self.supervisor.listeners.remove(report)
        elif self.supervisor.engine is not None:  # a Compose cluster: find every node's container first
            progress(f"finding the containers of the Compose project '{self.supervisor.engine.project}'")
            await asyncio.to_thread(self.supervisor.engine.check, list(self.supervisor.nodes))
        progress("waiting for the replicas to see each other")
        await self.supervisor.wait_settled(timeout=20)
        await self.follower.start()
        address = self.supervisor.frontend.address
        self.announce(f"front-end: {address}   (try: curl {address}/search/t)")
        progress("ready")

    def start_recording(self) -> None:
        """Record every input the model takes from now on: to a run file in the data folder
        (unless the cluster file says ``record = false``) and into the rewind buffer."""
        if self.recorder is not None:
            return
        cluster = self.cluster
        folder = Path(self.supervisor.data_dir) / "runs" if cluster.record else None
        header = Header("window", {name: view.address for name, view in self.model.nodes.items()},
                        self.model.catalog_of,
                        tuple((b.id, b.title, b.topic, b.price, b.quantity) for b in self.books))
        try:
            self.recorder = Recorder(self.model, header, folder, limit_bytes=cluster.runs_limit_mb * 1024 * 1024,
                                     keep_s=cluster.rewind_minutes * 60.0)
        except OSError as error:  # a data folder that cannot be written: rewind still works
            self.announce(f"not recording this session to {folder}: {error.strerror or error}")
            self.recorder = Recorder(self.model, header, None, keep_s=cluster.rewind_minutes * 60.0)
        self._recording = asyncio.ensure_future(self._keep_recording())

    async def _keep_recording(self) -> None:
        assert self.recorder is not None
        while True:
            await asyncio.sleep(1.0)  # the recording's own pacing: keyframes and the buffer, once a second
            self.recorder.tick()

    def _start_blocking(self) -> None:
        self.supervisor.start_all()
        self.supervisor.wait_ready(timeout=60)

    async def stop(self) -> None:
        await self.load.stop()
        await self.follower.stop()
        await cancel_and_wait(self._recording)
        if self.recorder is not None:
            self.recorder.close()
        await self.shop.close()
        await self.lag.stop()
        await self.supervisor.aclose()
        await asyncio.to_thread(self.supervisor.close)

    async def orders(self, limit: int = 200) -> list[dict[str, Any]]:
        """Every order replica's history, newest first, each record naming its replica."""
        return (await self.order_history(limit)).records

    async def order_history(self, limit: int = 200) -> OrderHistory:
        """Every order replica's history, newest first, and the replicas that could not be
        read with why: an empty history says whether nothing was bought or nobody answered."""
        records: list[dict[str, Any]] = []
        unread: list[tuple[str, str]] = []
        for node in self.supervisor.of_role("order"):
            if node.state != NodeState.UP or node.cut_off:
                unread.append((node.name, "cut off" if node.cut_off and node.state == NodeState.UP else
                               str(node.state)))
                continue
            try:
                history = await self.supervisor.admin(node.name, "GET", f"/orders?limit={limit}")
            except ClusterError:
                unread.append((node.name, "not answering"))
                continue
            records += [{**record, "replica": node.name} for record in history]
        return OrderHistory(sorted(records, key=lambda r: r["time"], reverse=True), tuple(unread),
                            len(self.supervisor.of_role("order")))

    async def restock(self, book: int, quantity: int) -> str:
        """Set a book's stock, written through a running catalog replica as any write is (its
        peers take it, the front-end drops its cached copy). Plain words back."""
        refused = ""
        for node in self.supervisor.of_role("catalog"):
            if node.state != NodeState.UP or node.cut_off:
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
            if node.state != NodeState.UP or node.cut_off:
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

"""A short scripted demonstration on the real cluster, for screenshots and for a first look:
load on, a search, a few buys, and one catalog replica crashed and left down, so that the
pictures show the cluster living with an outage (or, with ``heal``, started again: the Live
screen's picture shows the fault and the heal marked on its chart; always so on an attached
cluster, which the window did not start and must leave whole)."""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gui.main_window import MainWindow


async def wait_ready(window: MainWindow, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not window.ready:
        if time.monotonic() > deadline:
            raise RuntimeError("the cluster did not become ready for the demo")
        await asyncio.sleep(0.1)


async def run_demo(window: MainWindow, seconds: float, heal: bool = False) -> None:
    await wait_ready(window)
    session = window.session
    heal = heal or session.cluster.attached  # a cluster the window did not start is left whole
    session.load.settings.rate = 60
    session.load.settings.write_fraction = 0.1
    session.load.start()
    window.shop.query.setText("distributed")
    window.shop.search()
    await asyncio.sleep(0.6)  # demo pacing: let the shopper's view fill in
    for _ in range(2):
        window.shop.buy()
        await asyncio.sleep(0.6)
    await session.shop.lookup(3)  # a lookup whose path the Flow tab can show
    third = max(0.5, seconds / 3)
    await asyncio.sleep(third)
    victim = window.model.catalog_names()[-1]
    await window.controller.crash(victim)
    await asyncio.sleep(third)
    await session.shop.lookup(2)
    if heal:
        await window.controller.start(victim)
        window.session.load.settings.rate = 25  # fewer at once: each message can be read
    await asyncio.sleep(third)
    window.shop.refresh_history()
    await session.shop.lookup(3)
    await asyncio.sleep(0.3)


async def measure_lag(window: MainWindow, seconds: float, rate: float = 200.0) -> dict[str, float]:
    """Load at ``rate`` requests a second with one catalog replica hung, the Live tab drawing
    (messages animated, the chart and caches redrawn), and report how late the window's event
    loop woke up (its "never frozen" figure). Books 1-7 are restocked first so that every buy
    is a purchase with its write round (a sold-out book answers at a fraction of the cost),
    and given back their stock after."""
    await wait_ready(window)
    session = window.session
    # A large catalog's replicas vouch again only once they have exchanged their tables.
    await session.supervisor.wait_settled(120)
    session.lag.start()  # measuring already, unless a loop that stopped (a test's) ended it
    catalog = window.model.catalog_names()[0]
    books = range(1, 8)
    stock = {book: await _stock(window, catalog, book) for book in books}
    hung = window.model.catalog_names()[-1]
    try:
        for book in books:
            await _set_stock(window, catalog, book, LAG_STOCK)
        window.tabs.setCurrentWidget(window.live)
        session.load.settings.rate = rate
        session.load.settings.write_fraction = 0.1
        session.load.start()
        await asyncio.sleep(2)  # warm-up: sockets opened, caches filled
        await window.controller.hang(hung)
        session.lag.clear()
        sent_before, answers_before = session.load.sent, session.load.answers.copy()
        started = time.monotonic()
        await asyncio.sleep(seconds)  # the measurement window itself
        elapsed = time.monotonic() - started
        summary = session.lag.summary()
        summary["offered_rate"] = rate
        summary["achieved_rate"] = (session.load.sent - sent_before) / elapsed
        answers = session.load.answers - answers_before
        summary["buys"] = sum(count for (method, _status), count in answers.items() if method == "PUT")
        summary["buys_ok"] = answers["PUT", 200]
        summary["bought"] = LAG_STOCK * len(books) - sum([await _stock(window, catalog, book) for book in books])
    finally:
        await window.controller.resume(hung)
        await session.load.stop(drain_s=20)  # every buy sent is answered before the stock goes back
        await session.supervisor.wait_settled()  # a write needs the majority it left out
        for book, quantity in stock.items():
            await _set_stock(window, catalog, book, quantity)
    return summary


async def _stock(window: MainWindow, catalog: str, book: int, timeout: float = 15.0) -> int:
    """``book``'s stock as ``catalog`` holds it. A large catalog's replicas serve before their
    first exchange of whole tables is over, and until then may answer "try again" (503) for a
    book none of them vouches for yet: asked again until ``timeout``."""
    from nodes.control.supervisor import ClusterError

    deadline = time.monotonic() + timeout
    while True:
        try:
            return (await window.session.supervisor.admin(catalog, "GET", f"/query/item/{book}"))["quantity"]
        except ClusterError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)  # a pause between tries, not a wait for something


async def _set_stock(window: MainWindow, catalog: str, book: int, quantity: int, timeout: float = 15.0) -> None:
    """Restock ``book`` to ``quantity`` and see it at ``catalog``; a write refused while the
    replicas settle (a resumed one catching up) is tried again until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        said = await window.controller.restock(book, quantity)
        if await _stock(window, catalog, book) == quantity:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"book {book}'s stock could not be set to {quantity}: {said}")
        await asyncio.sleep(0.2)  # a pause between tries, not a wait for something


#: Stock for --measure-lag: far more than its buys can take.
LAG_STOCK = 100_000


#: The tabs ``measure_scrub`` drags the slider on: those that draw the most of an instant.
SCRUB_TABS = ("live", "charts", "cluster", "replicas", "flow")


async def measure_scrub(window: MainWindow, moves: int = 60, seed: int = 24) -> list[dict[str, float | str]]:
    """Drag a replay window's slider as a person does, a second of the run a move, back over
    ``moves`` seconds and on again, on each of ``SCRUB_TABS``: each move timed from the seek to
    the window painted (the events the seek posted handled, the repaint among them, as a frame
    on screen does it). Waits for the run to be read through first, as the slider's marks do."""
    import random

    from PySide6.QtWidgets import QApplication

    from nodes.runs.sources import RunSource

    bar = window.time.bar
    if bar is None or not isinstance(bar.source, RunSource):
        raise RuntimeError("--measure-scrub needs a run to replay (--open RUN)")
    source = bar.source
    deadline = time.monotonic() + 300
    while source.indexed < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the run was not read through in 5 minutes")
        await asyncio.sleep(0.05)
    rng = random.Random(seed)
    room = source.end - source.start
    results: list[dict[str, float | str]] = []
    for tab in SCRUB_TABS:
        window.tabs.setCurrentWidget(window.view(tab))
        took: list[float] = []
        for direction in (-1, 1):
            start = source.start + (moves + (room - 2 * moves) * rng.random() if room > 2 * moves else room / 2)
            bar.seek(start)  # a jump, not a drag's move: untimed, and settled before the drag
            for _ in range(3):
                QApplication.processEvents()
                await asyncio.sleep(0.05)
            for _ in range(moves):
                began = time.perf_counter()
                bar.seek(min(max(source.time + direction, source.start), source.end))
                QApplication.processEvents()
                took.append(1000 * (time.perf_counter() - began))
                await asyncio.sleep(0)  # the window's own timers run between moves, as they would
        took.sort()
        results.append({"tab": tab, "moves": len(took), "p50": took[len(took) // 2],
                        "p99": took[int(0.99 * (len(took) - 1))], "max": took[-1]})
    return results

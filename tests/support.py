"""What the tests share, in one place: a real cluster in a temporary folder, an HTTP helper, the
real window over a real cluster, a scripted driver that steps a protocol core by hand (no
process, no network: the test answers each message the core sends), and waiting for a condition
with a deadline (never a bare sleep)."""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from nodes.control.clusterfile import Cluster, Timeouts
from nodes.control.supervisor import Supervisor
from nodes.core.effects import Core, Effect, Gather, Hedged, Send, Sleep
from nodes.runtime.signing import SECRET_HEADER


def make_cluster(tmp: Path, catalogs: int = 2, orders: int = 2, **changes: Any) -> Cluster:
    return replace(Cluster(), catalogs=catalogs, orders=orders, data_dir=tmp, **changes)


def fast_timeouts() -> dict[str, Timeouts]:
    """Shorter than docs/api.md's, so tests that wait out a hung node stay quick."""
    return {"frontend": Timeouts.from_ms(200, 1000), "order": Timeouts.from_ms(150, 800),
            "catalog": Timeouts.from_ms(100, 500)}


def start(cluster: Cluster) -> Supervisor:
    supervisor = Supervisor(cluster)
    try:
        supervisor.start_all()
        supervisor.wait_ready(timeout=60)
    except BaseException:
        supervisor.close()
        raise
    return supervisor


@contextlib.asynccontextmanager
async def live(cluster: Cluster, started: list[Supervisor]) -> AsyncIterator[tuple[Supervisor, Http]]:
    """A started, settled cluster and a client for it; both closed however the block ends
    (``started`` is the ``supervisors`` fixture, which stops the processes)."""
    supervisor = start(cluster)
    started.append(supervisor)
    http = Http(supervisor)
    try:
        await supervisor.wait_settled()
        yield supervisor, http
    finally:
        await http.close()
        await supervisor.aclose()


class Http:
    """A tiny client for tests: JSON in, (status, JSON) out, the cluster secret on request."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.session.close()

    def url(self, node: str, path: str) -> str:
        return self.supervisor.node(node).address + path

    async def request(self, method: str, node: str, path: str, body: Any = None, *, secret: bool = False,
                      headers: dict[str, str] | None = None, data: bytes | None = None,
                      timeout: float = 15.0) -> tuple[int, Any, dict[str, str]]:
        headers = dict(headers or {})
        if secret:
            headers[SECRET_HEADER] = self.supervisor.secret
        async with self.session.request(method, self.url(node, path), json=body if data is None else None,
                                        data=data, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            raw = await resp.read()
            parsed = json.loads(raw) if raw else None
            return resp.status, parsed, dict(resp.headers)

    async def get(self, path: str, node: str = "frontend", **kw: Any) -> tuple[int, Any]:
        status, body, _ = await self.request("GET", node, path, **kw)
        return status, body

    async def put(self, path: str, body: Any = None, node: str = "frontend", **kw: Any) -> tuple[int, Any]:
        status, body, _ = await self.request("PUT", node, path, body, **kw)
        return status, body

    async def state(self, node: str) -> dict[str, Any]:
        return await self.supervisor.state(node)

    async def book_state(self, node: str, book: int) -> dict[str, Any]:
        state = await self.state(node)
        return next(b for b in state["books"] if b["id"] == book)

    async def set_stock(self, book: int, quantity: int, via: str = "catalog0") -> None:
        status, body = await self.put(f"/update/{book}", {"quantity": quantity}, node=via, secret=True)
        assert status == 200, body


async def wait_until(check: Callable[[], bool | Awaitable[bool]], timeout: float = 15.0, what: str = "condition",
                     *, every: float = 0.05) -> None:
    """Poll ``check`` (plain or async) until it is true; fail with ``what`` once ``timeout`` has
    passed. On the window's qasync loop Qt keeps drawing meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(every)


def wait_until_sync(check: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def cpu_wait_ms() -> float:
    """How long the calling thread has been ready to run but waiting for a CPU (Linux's
    schedstat), in ms: what a lateness owes to the other processes on the machine."""
    import threading

    with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as schedstat:
        return int(schedstat.read().split()[1]) / 1e6


def popen_as_from_a_terminal(args: list[str], **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen``, with Ctrl-C (SIGINT) at its default in the command, as a terminal
    starts one. A suite started in the background (``cmd &`` in a script, with no job control)
    ignores SIGINT, a command inherits that, Python then installs no KeyboardInterrupt, and a
    test's Ctrl-C is lost: the two Ctrl-C tests failed so, and only when the suite ran that way.
    Caught signals go back to their default at exec, so a handler here for the instant of the
    start is all it takes."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(args, **kwargs)
    finally:
        signal.signal(signal.SIGINT, previous)


def communicate_or_show_where(process: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """``process.communicate(timeout)``; when it does not end in time, fail with where every
    thread of it (and of its children) is, as py-spy reads them, if it is installed: a command
    that ignores a Ctrl-C only now and then says why at once, not in a rerun."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        where = "(install py-spy to see where it waits)"
        if shutil.which("py-spy"):
            dump = subprocess.run(["py-spy", "dump", "--subprocesses", "--pid", str(process.pid)],
                                  capture_output=True, text=True, timeout=60)
            where = (dump.stdout + dump.stderr)[:8000]  # the command itself first, then its children
        raise AssertionError(f"{process.args!r} still running {timeout} s later; {_signals(process.pid)}; "
                             f"its threads:\n{where}") from None


def _signals(pid: int) -> str:
    """How a process holds its signals (``/proc``'s masks, in hex): a Ctrl-C test that found
    the command still running once (a simulate run, its main thread waiting on its pool)
    could not say whether SIGINT, bit 2, was blocked or ignored there."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "its signal masks unknown"
    kinds = ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    masks = [line.replace("\t", " ") for line in lines if line.startswith(kinds)]
    return "signals: " + ", ".join(masks)


async def hops_of(supervisor: Supervisor, trace: str, *, among: str | None = None) -> list[dict[str, Any]]:
    """Every hop of one trace, from every running node, in the order they were sent.
    ``among="catalog"`` keeps only hops from one catalog replica to another."""
    hops = []
    for node in supervisor.nodes.values():
        if node.state != "up":
            continue
        events = await supervisor.admin(node.name, "GET", f"/admin/events?trace={trace}")
        hops += [e for e in events if e["kind"] == "hop"]
    hops.sort(key=lambda e: e["t0"])
    if among is not None:
        hops = [h for h in hops if h["node"].startswith(among) and h["to"].startswith(among)]
    return hops


def window_loop(qapp: Any) -> asyncio.AbstractEventLoop:
    """The window's loop as a test drives it. In the app the loop runs for the window's whole
    life; a test runs it only inside ``window.run``, and Qt still processes events in between
    (qasync's last pass at the end of ``run_until_complete``, pytest-qt's before and after each
    test). A task stepped then found no running loop: the load's task died of it
    (``asyncio.sleep``: "no running event loop"), and the lesson's click on *Stop load* started
    the load again. So between runs asyncio is told this loop still runs."""
    import qasync

    class AlwaysRunning(qasync.QEventLoop):
        def run_forever(self) -> None:
            try:
                super().run_forever()
            finally:
                asyncio.events._set_running_loop(self)

    return AlwaysRunning(qapp)


def close_window_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what still runs on ``loop``, wait for it, and close it."""
    leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in leftovers:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
    asyncio.events._set_running_loop(None)
    loop.close()
    asyncio.set_event_loop(None)


def open_window(qapp, folder, size: tuple[int, int] = (1400, 900), *, fast: bool = True):
    """What the ``window`` fixture yields, for fixtures of other scopes too. ``fast``: the
    shorter time-outs of ``fast_timeouts``; without, the ones a person gets (docs/api.md)."""
    from gui.main_window import MainWindow, WindowOptions

    qapp.setQuitOnLastWindowClosed(False)  # as gui/app.py does: closing stops the cluster first
    loop = window_loop(qapp)
    asyncio.set_event_loop(loop)
    timeouts = {"timeouts": fast_timeouts()} if fast else {}
    main = MainWindow(make_cluster(folder, catalogs=3, orders=3, **timeouts), WindowOptions(*size))
    session = main.session
    main.show()

    def run(coro, timeout: float = 60.0):
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))

    main.run = run
    try:
        main.start()
        run(wait_until(lambda: main.ready, 90, "the cluster to start"))
        yield main
    finally:
        if not main.stopped.is_set():
            main.close()
            run(main.stopped.wait(), 30)
        session.supervisor.close()
        main.deleteLater()
        qapp.processEvents()
        close_window_loop(loop)


def click_at(widget: Any, at: Any) -> None:
    """A left click on ``widget`` at the point ``at``, as a person makes it."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)


def menu_action(live: Any, name: str, starts: str) -> Any:
    """Click node ``name`` on the Live canvas, as a teacher does, and find the menu entry whose
    words start with ``starts``."""
    from PySide6.QtCore import QPoint
    canvas = live.canvas
    center = canvas.centers[name]
    click_at(canvas, QPoint(int(center.x()), int(center.y())))
    assert canvas.menu is not None and canvas.menu.title() == name
    return next(a for a in canvas.menu.actions() if a.text().startswith(starts))


# ---- a scripted driver: one operation of a protocol core, stepped by hand ------------------------
class Scripted:
    """One coroutine of ``core``, stepped by hand. ``asks`` is the effect it waits on now;
    ``answer(value)`` resumes it with that outcome; ``result`` is its return value once done.

    A ``Hedged`` request is stepped one send at a time, as its driver sends them: ``sends()``
    lists those out, ``answer(value)`` answers the oldest of them (``to=`` another) and the
    next goes out when one fails (not after a ``final`` one); ``hedge()`` sends the next while
    those before are still out, as the driver does once ``after`` has passed. The core resumes
    when an answer is accepted, or when every send made has answered. Answered with a list (one
    entry per send), it resumes at once with that list, as its driver hands it back."""

    def __init__(self, core: Core, operation: Coroutine[Any, Any, Any], *, now: float = 0.0) -> None:
        self.core = core
        self.core.now = now
        self.events: list[tuple[str, dict[str, Any]]] = []
        core.emit = lambda kind, **fields: self.events.append((kind, fields))  # type: ignore[method-assign]
        self._operation = operation
        self.done = False
        self.result: Any = None
        self.asks: Effect | None = None
        self._resume(None)

    def _resume(self, value: Any) -> None:
        try:
            self.asks = self._operation.send(value)
        except StopIteration as stop:
            self.done, self.result, self.asks = True, stop.value, None
        if isinstance(self.asks, Hedged):
            self.asks.sent_at[:] = [None] * len(self.asks.sends)
            self._hedged: list[Any] = [None] * len(self.asks.sends)
            self._out: list[int] = []
            self._closed = False  # a final answer came: no more sends
            self.hedge()

    def hedge(self) -> None:
        """A hedged request's next send goes out (its ``after`` passed with no answer)."""
        asks = self.asks
        assert isinstance(asks, Hedged), f"no hedged request; the core asks {asks!r}"
        sent = sum(1 for at in asks.sent_at if at is not None)
        assert sent < len(asks.sends), "every send of the hedged request is out already"
        assert not self._closed, "a final answer came: the hedged request sends no more"
        asks.sent_at[sent] = self.core.now
        self._out.append(sent)

    def answer(self, value: Any = None, *, at: float | None = None, to: str | None = None) -> None:
        assert not self.done, f"the operation already returned {self.result!r}"
        if at is not None:
            self.core.now = at
        asks = self.asks
        if not isinstance(asks, Hedged) or (isinstance(value, list) and len(value) == len(asks.sends)):
            self._resume(value)  # a hedged request may be answered whole, as its driver resumes it
            return
        out = [i for i in self._out if to is None or asks.sends[i].to == to]
        assert out, f"no send to {to} is out; out: {[asks.sends[i].to for i in self._out]}"
        self._out.remove(out[0])
        self._hedged[out[0]] = value
        if asks.accept(value):
            self._resume(list(self._hedged))
            return
        if asks.final is not None and asks.final(value):
            self._closed = True  # no more sends; those out are waited for
        elif None in asks.sent_at and not self._closed:
            self.hedge()  # that one failed: the next at once
            return
        if not self._out:
            self._resume(list(self._hedged))

    def fail(self, error: BaseException) -> None:
        """Resume the operation by raising ``error`` where it waits (a disk that refuses, say)."""
        assert not self.done, f"the operation already returned {self.result!r}"
        try:
            self.asks = self._operation.throw(error)
        except StopIteration as stop:
            self.done, self.result, self.asks = True, stop.value, None

    def sends(self) -> list[tuple[str, Any]]:
        """(to, message) of what the core asks now: one Send, or each of a Gather's."""
        if isinstance(self.asks, Send):
            return [(self.asks.to, self.asks.message)]
        if isinstance(self.asks, Hedged):
            return [(self.asks.sends[i].to, self.asks.sends[i].message) for i in self._out]
        assert isinstance(self.asks, Gather), f"expected a send, the core asks {self.asks!r}"
        return [(send.to, send.message) for send in self.asks.sends]

    def until_done(self, answers: dict[str, Any] | None = None, *, limit: int = 50) -> Any:
        """Answer every Disk with None and every send from ``answers`` (by kind of message,
        e.g. ``{"Get": Found(...)}``) until the operation returns; its result."""
        answers = answers or {}
        for _ in range(limit):
            if self.done:
                return self.result
            if isinstance(self.asks, Hedged):
                to, message = self.sends()[0]
                self.answer(answers[type(message).__name__], to=to)
            elif isinstance(self.asks, Send | Gather):
                replies = [answers[type(message).__name__] for _to, message in self.sends()]
                self.answer(replies[0] if isinstance(self.asks, Send) else replies)
            else:
                self.answer(None)
        raise AssertionError(f"still running after {limit} steps; it asks {self.asks!r}")


def drive(step: Scripted, answer: Any, *, limit: int = 60) -> list[tuple[str, Any]]:
    """Run ``step`` to its end: every disk write stored, every sleep slept, and every message
    answered by ``answer(to, message)``. The messages it sent, in order."""
    sent: list[tuple[str, Any]] = []
    for _ in range(limit):
        if step.done:
            return sent
        sent += drive_one(step, answer)
    raise AssertionError(f"still running after {limit} steps; it asks {step.asks!r}")


def drive_one(step: Scripted, answer: Any) -> list[tuple[str, Any]]:
    """One step of ``step``, answered as ``drive`` answers it; the messages it sent."""
    asks = step.asks
    if isinstance(asks, Hedged):
        to, message = step.sends()[0]
        step.answer(answer(to, message), to=to)
        return [(to, message)]
    if isinstance(asks, Send | Gather):
        pairs = step.sends()
        replies = [answer(to, message) for to, message in pairs]
        step.answer(replies[0] if isinstance(asks, Send) else replies)
        return pairs
    if isinstance(asks, Sleep):
        step.answer(None, at=max(step.core.now, asks.until))
    else:
        step.answer(None)
    return []


def run(core: Core, operation: Coroutine[Any, Any, Any], answers: dict[str, Any] | None = None,
        *, now: float = 0.0) -> Any:
    return Scripted(core, operation, now=now).until_done(answers)


def compared(core: Any, pongs: list[Any]) -> None:
    """One heartbeat round's comparison of rows (``catch_up._compare_rows``): ``pongs[i]`` is
    what catalog core.peers[i] answered, each a whole answer; the other peers did not answer."""
    answered, changed = [], set()
    for peer, pong in zip(core.peers, pongs, strict=False):
        seen = core._take_view(peer, pong)
        assert seen is not None
        answered.append(peer)
        changed |= seen
    core._compare_rows(answered, changed)


def confirmed_by_peers(core: Any) -> Any:
    """A catalog core just started, after a heartbeat round in which every peer answered with
    the very rows it holds: its rows are confirmed, as on a live cluster."""
    from nodes.core.messages import Pong
    seqs = {book.id: book.seq for book in core.books.values()}
    sums = {book.id: book.checksum() for book in core.books.values()}
    compared(core, [Pong(dict(seqs), (), {}, sums=dict(sums)) for _peer in core.peers])
    assert not core.unverified
    return core

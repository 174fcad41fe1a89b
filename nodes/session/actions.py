"""Every action a person takes on the cluster from the window — crash, start, restart, hang,
resume, slow, cut off, heal, cut or restore a link, reset, buy — in one place, each a
coroutine that never blocks the event loop: process control (which waits on processes) runs
in a worker thread. The model hears of every change from the supervisor and the nodes;
nothing here draws."""
from __future__ import annotations

import asyncio
from typing import Any, Protocol

from nodes.control import nemesis
from nodes.control.supervisor import ClusterError, Supervisor
from nodes.core.vocabulary import BuyResult, HealthState
from nodes.observe.model import ClusterModel
from nodes.observe.observations import LogNote
from nodes.runtime.client import Pace
from nodes.session.shop import BuyLookup, BuyOutcome, OrderHistory, Shop
from nodes.verify.history import Fault


class Session(Protocol):
    """What the actions need of a session (``session.ClusterSession`` is one): named here so that
    this module does not import the session that owns it."""

    supervisor: Supervisor
    model: ClusterModel
    shop: Shop

    async def orders(self, limit: int = 200) -> list[dict[str, Any]]: ...

    async def order_history(self, limit: int = 200) -> OrderHistory: ...

    async def find_buy(self, buy_id: str) -> BuyLookup: ...

    async def restock(self, book: int, quantity: int) -> str: ...

#: How long a start or restart may take before the window says it failed.
START_TIMEOUT_S = 30.0


class Controller:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.supervisor = session.supervisor
        self.model = session.model
        self._busy: set[str] = set()
        #: Why nothing may be done to the cluster now, if so: the window shows a replay, or the
        #: live cluster rewound (what the buttons would act on is not what is drawn).
        self.held: str | None = None

    def busy(self, name: str) -> bool:
        """True while an action on ``name`` is under way, or while the window shows the past
        (its buttons wait)."""
        return name in self._busy or self.held is not None

    async def _process(self, name: str, change, broken: Fault, *, wait_ready: bool = False) -> None:
        """Apply or heal ``broken`` (nemesis.py, the one interface every caller uses); process
        control there runs in a worker thread."""
        if self.held is not None:
            raise ClusterError(self.held)
        if name in self._busy:
            raise ClusterError(f"{name} is still busy with the last action; try again in a moment")
        self._busy.add(name)
        try:
            await change(self.supervisor, broken, wait_ready=False)
            if wait_ready:
                await asyncio.to_thread(self.supervisor.wait_ready, [name], START_TIMEOUT_S)
        finally:
            self._busy.discard(name)

    async def crash(self, name: str) -> None:
        await self._process(name, nemesis.apply, nemesis.fault("crash", name))

    async def start(self, name: str) -> None:
        await self._process(name, nemesis.heal, nemesis.fault("crash", name), wait_ready=True)

    async def restart(self, name: str) -> None:
        """A clean stop (SIGTERM; the node closes its telemetry streams and exits 0), then a
        start, waited for in a worker thread."""
        await self._process(name, nemesis.apply, nemesis.fault("restart", name), wait_ready=True)

    async def crash_or_start(self, name: str) -> None:
        if self.model.health(name).gone:
            await self.start(name)
        else:
            await self.crash(name)

    async def hang(self, name: str) -> None:
        await self._process(name, nemesis.apply, nemesis.fault("hang", name))

    async def resume(self, name: str) -> None:
        await self._process(name, nemesis.heal, nemesis.fault("hang", name))

    async def hang_or_resume(self, name: str) -> None:
        if self.model.health(name).state == HealthState.HUNG:
            await self.resume(name)
        else:
            await self.hang(name)

    async def slow(self, name: str, ms: int) -> None:
        await (nemesis.apply if ms else nemesis.heal)(self.supervisor, nemesis.fault("slow", name, ms=ms))

    async def cut_off(self, name: str, on: bool) -> None:
        await (nemesis.apply if on else nemesis.heal)(self.supervisor, nemesis.fault("cut", name), wait_ready=False)

    async def fill_disk(self, name: str, full: bool) -> None:
        """The disk-full fault on a catalog replica's real database, or freeing it."""
        await (nemesis.apply if full else nemesis.heal)(self.supervisor, nemesis.fault("disk", name))

    async def abort(self, name: str, path: str, *, on: bool, direction: str = "response") -> None:
        """HTTP aborts on ``name``: a share of the requests to ``path`` answered by nobody, or
        handled and their answers dropped (``direction``); ``on=False`` stops them."""
        broken = nemesis.fault("abort", name, path=path, direction=direction)
        await (nemesis.apply if on else nemesis.heal)(self.supervisor, broken)

    async def cut_link(self, sender: str, receiver: str, *, one_way: bool, on: bool = True) -> None:
        """Cut (or restore) the link from ``sender`` to ``receiver``, and back unless
        ``one_way``: messages on it are lost and calls time out, as on a real network (W8)."""
        if sender == receiver:
            raise ClusterError("choose two different nodes: a node always reaches itself")
        broken = nemesis.fault("partition", sender, receiver, one_way=one_way)
        await (nemesis.apply if on else nemesis.heal)(self.supervisor, broken)

    async def restore_links(self) -> None:
        """Restore every link a partition cut."""
        await self.supervisor.heal_partitions()

    async def heal(self, name: str) -> None:
        """Undo whatever is wrong with ``name``: start it, resume it, reconnect it, or bring it
        back to full speed."""
        match self.model.health(name).state:
            case HealthState.DOWN | HealthState.EXITED:
                await self.start(name)
            case HealthState.HUNG:
                await self.resume(name)
            case HealthState.CUT_OFF:
                await self.cut_off(name, False)
            case HealthState.SLOW:
                await self.slow(name, 0)

    async def reset(self) -> str:
        """Reset every running replica; the answer says which were not (down ones adopt the
        reset when they come back, catalogs by its generation)."""
        done = await self.supervisor.reset()
        for name in done:
            self.model.apply(LogNote(name, "reset: back to the seven books, caches and history emptied"))
        try:  # said once the reset replicas answer each other again, not while they still refuse
            await self.supervisor.wait_settled(10)
        except ClusterError as error:
            return f"Every running node was reset, but the cluster has not settled yet: {error}."
        missed = [name for name in self.model.nodes if name not in done]
        if not missed:
            return f"Every node was reset ({len(done)})."
        return (f"{len(done)} nodes were reset; {', '.join(missed)} not (not running): a catalog replica "
                "adopts the reset when it is back.")

    def log_tail(self, name: str, lines: int = 300) -> str:
        """The node's own log file, last lines (read from disk: small, never waits on a node)."""
        return self.supervisor.log_tail(name, lines)

    async def search(self, topic: str):
        return await self.session.shop.search(topic)

    async def lookup(self, book: int):
        return await self.session.shop.lookup(book)

    async def orders(self) -> list[dict]:
        return await self.session.orders()

    async def order_history(self) -> OrderHistory:
        """The orders, and which order replicas could not be read (an empty history says why)."""
        return await self.session.order_history()

    async def buy(self, book: int, buy_id: str | None = None) -> BuyOutcome:
        outcome = await self.session.shop.buy(book, buy_id)
        if outcome.kind == BuyResult.UNKNOWN:
            self.model.apply(LogNote("frontend", f"buy {outcome.buy_id} of book {book}: outcome unknown to the shop"))
        return outcome

    async def find_buy(self, buy_id: str) -> BuyLookup:
        return await self.session.find_buy(buy_id)

    async def restock(self, book: int, quantity: int) -> str:
        return await self.session.restock(book, quantity)

    async def pace(self, ms: int) -> str:
        """Teaching speed: every node holds each message it sends for ``ms`` (0: full speed);
        the shop waits longer by as much as held messages may cost."""
        missed = await self.supervisor.pace(ms)
        self.session.shop.slack_s = 3 * Pace(ms).slack_s
        said = f"Every message is now held {ms} ms on its way." if ms else "Full speed again."
        return said + (f" Not told (not answering): {', '.join(missed)}; they are told when restarted." if missed
                       else "")

"""A deterministic world for Bazar's protocol cores, as FoundationDB and TigerBeetle test
theirs: one seeded scheduler, a virtual clock, a simulated network that delays, drops,
duplicates and reorders messages, and processes that crash (memory lost, committed rows
kept), restart, pause (time passes, nothing is handled, then the backlog at once) and are
cut off. Every node reads a clock of its own, with an offset, a rate and steps within the
bounds ``nodes/core/clocks.py`` states (or beyond them, to show they matter). The cores are
the very objects the real nodes run (``nodes/core/``); only their effects are performed
differently. Same seed, same run, byte for byte.
"""
from __future__ import annotations

import heapq
import itertools
import json
import random
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from nodes.core.books import Book, generate_catalog, seed_books
from nodes.core.catalog import BAZAR, BookUnknown, CatalogReplica, Rule
from nodes.core.clocks import NEVER
from nodes.core.effects import Core, Disk, DiskFailed, Gather, Hedged, NoAnswer, Send, Sleep, Wait
from nodes.core.frontend.protocol import Frontend
from nodes.core.messages import Buy, Degraded, Health, Healthy, NotFound, Read
from nodes.core.order.protocol import OrderReplica
from nodes.core.wire import answer_of, response_of
from nodes.sim.stores import CatalogDisk, OrderDisk, Purchase

__all__ = ["CatalogDisk", "OrderDisk", "Purchase", "World"]

# ---- the network ---------------------------------------------------------------------------


@dataclass
class Network:
    """Delays are drawn per message; ``loss`` and ``duplicate`` are probabilities per message.
    ``blocked`` holds cut links (sender, receiver): a message on one is never delivered."""

    delay_s: tuple[float, float] = (0.0002, 0.002)
    spike_s: float = 0.05  # a rare slow message, so that messages overtake each other
    spike_p: float = 0.02
    loss: float = 0.0
    duplicate: float = 0.0
    blocked: set[tuple[str, str]] = field(default_factory=set)

    def delay(self, rng: random.Random) -> float:
        base = rng.uniform(*self.delay_s)
        return base + (rng.uniform(0, self.spike_s) if rng.random() < self.spike_p else 0.0)


# ---- clocks ------------------------------------------------------------------------------------


@dataclass
class Clock:
    """A node's clock at true time t: ``offset + rate * t``, give or take ``step`` (it steps
    back and forth, as a clock corrected by NTP does). A core reads it as ``core.now``, and
    every length it asks for (a sleep, a time-out) is counted on it."""

    offset: float = 0.0
    rate: float = 1.0
    step: float = 0.0

    def read(self, t: float) -> float:
        return self.offset + self.rate * t + self.step

    def lasts(self, seconds: float) -> float:
        """How much true time ``seconds`` on this clock take (a step meanwhile aside)."""
        return max(0.0, seconds) / self.rate


# ---- processes --------------------------------------------------------------------------------


class Process:
    """One node: its core (rebuilt at every start), its disk (kept), its state of health."""

    def __init__(self, world: World, name: str, make_core: Callable[[], Core], disk: Any,
                 background: Callable[[Core], list[Coroutine]]) -> None:
        self.world = world
        self.name = name
        self.make_core = make_core
        self.disk = disk
        self.background = background
        self.core: Core | None = None
        self.incarnation = 0
        self.alive = False
        self.ready = False
        self.paused = False
        self.backlog: list[Callable[[], None]] = []
        #: The machine's clock: it runs on through crashes and restarts.
        self.clock = Clock()

    def now(self) -> float:
        """The time on this node's clock."""
        return self.clock.read(self.world.now)

    def start(self) -> None:
        self.incarnation += 1
        self.alive, self.ready, self.paused, self.backlog = True, False, False, []
        core = self.core = self.make_core()
        core.now = self.now()
        self.world.changed()

        def started(_result: Any, _error: BaseException | None) -> None:
            self.ready = True
            self.world.changed()
            for job in self.background(core):
                Fiber(self, job, lambda _r, _e: None).step()

        Fiber(self, core.start(), started).step()

    def crash(self) -> None:
        self.alive = self.ready = self.paused = False
        self.backlog = []
        self.incarnation += 1
        self.core = None

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        backlog, self.backlog = self.backlog, []
        for job in backlog:
            self.world.at(self.world.now, job)

    def run(self, job: Callable[[], None], incarnation: int) -> None:
        """Do ``job`` as this process, now: deferred while paused, dropped once it crashed."""
        if incarnation != self.incarnation:
            return
        if self.paused:
            self.backlog.append(lambda: self.run(job, incarnation))
            return
        job()


class Fiber:
    """One core coroutine in a process: each effect it yields is performed on the world's
    clock and it is resumed with the outcome, unless its process crashed meanwhile."""

    def __init__(self, process: Process, coroutine: Coroutine,
                 done: Callable[[Any, BaseException | None], None], context: Any = None) -> None:
        self.process = process
        self.coroutine = coroutine
        self.done = done
        #: What an observer knows it by (the request it serves); None without one.
        self.context = context
        self.incarnation = process.incarnation
        self.turn = 0  # which suspension a resumption belongs to (a Wait is resumed once)
        self.wakes_at = NEVER  # the end of the Sleep it is in, on its node's clock

    def resume_later(self, delay: float, value: Any = None, error: BaseException | None = None,
                     turn: int | None = None, *, clock_at: float = NEVER) -> None:
        """Resume in ``delay`` seconds with ``value``, if still suspended where ``turn`` (by
        default: now) names; a later resumption of the same suspension is ignored.
        ``clock_at``: the time on the node's clock it is resumed for (a sleep's or a wait's
        end): the core's clock reads at least that then, as a timer's would."""
        turn = self.turn if turn is None else turn
        world = self.process.world

        def job() -> None:
            if turn == self.turn:
                self.wakes_at = clock_at
                self.step(value, error)

        world.at(world.now + delay, lambda: self.process.run(job, self.incarnation))

    def step(self, value: Any = None, error: BaseException | None = None) -> None:
        if self.incarnation != self.process.incarnation:
            self.coroutine.close()
            return
        self.turn += 1
        world = self.process.world
        assert self.process.core is not None  # a fiber runs only on a started process
        if world.observer is not None:
            world.observer.stepping(self.context)
        # A sleep or a wait's time-out ends when the node's clock reads its end, as a timer does:
        # the clock, a float far from zero, cannot always tell that instant from the one before
        # (simulator seed 2027312787 waited forever for a deadline its clock never reached).
        self.process.core.now = max(self.process.now(), self.wakes_at)
        self.wakes_at = NEVER
        try:
            effect = self.coroutine.throw(error) if error is not None else self.coroutine.send(value)
        except StopIteration as finished:
            self.done(finished.value, None)
            return
        except BookUnknown as exc:
            self.done(None, exc)
            return
        except Exception as exc:  # a core that raises what it should have handled: the seed fails
            world.stop("exception", f"{self.process.name}: {type(exc).__name__}: {exc}")
            return
        if isinstance(effect, Send):
            world.send(self.process.name, effect, lambda answer: self.resume_later(0.0, answer), self.context)
        elif isinstance(effect, Gather):
            self._gather(effect)
        elif isinstance(effect, Hedged):
            self._hedged(effect)
        elif isinstance(effect, Disk):
            try:
                result = getattr(self.process.disk, effect.method)(*effect.args)
            except DiskFailed as failed:
                self.resume_later(world.rng.uniform(0.0002, 0.001), error=failed)
            else:
                self.resume_later(world.rng.uniform(0.0002, 0.001), result)
        elif isinstance(effect, Sleep):
            self.resume_later(self.process.clock.lasts(effect.until - self.process.now()), clock_at=effect.until)
        elif isinstance(effect, Wait):
            if effect.woken:
                self.resume_later(0.0, True)
            else:
                turn = self.turn
                effect.on_wake = lambda: self.resume_later(0.0, True, turn=turn)
                if effect.deadline != float("inf"):
                    self.resume_later(self.process.clock.lasts(effect.deadline - self.process.now()), False,
                                      clock_at=effect.deadline)
        else:
            raise TypeError(f"unknown effect {effect!r}")

    def _hedged(self, effect: Hedged) -> None:
        """As the node's driver does: the next send ``after`` the last or at once when one
        failed, resumed at the first accepted answer (the others are left to run out), or once
        every send made has answered after a final one."""
        world = self.process.world
        sends = effect.sends
        answers: list[Any] = [None] * len(sends)
        effect.sent_at[:] = [None] * len(sends)
        state = {"sent": 0, "out": 0, "over": False, "closed": False, "patient": False}

        def finish() -> None:
            state["over"] = True
            self.resume_later(0.0, list(answers))

        def be_patient() -> None:
            """Every send out and one refused: those still out are waited for ``patience``."""
            if (effect.patience is None or state["patient"] or state["sent"] < len(sends)
                    or all(a is None for a in answers)):
                return
            state["patient"] = True
            self._finish_after(effect.patience, state, finish)

        def send_next() -> None:
            index = state["sent"]
            # On the core's clock: the first goes as the core asks, at its ``now`` (which may read
            # a hair past the process's clock, ``wakes_at``); a hedge later, at the clock's reading.
            assert self.process.core is not None
            effect.sent_at[index] = self.process.core.now if index == 0 else self.process.now()
            state["sent"] += 1
            state["out"] += 1
            world.send(self.process.name, sends[index], partial(one, index), self.context)
            be_patient()
            if state["sent"] < len(sends):
                expected = state["sent"]
                world.at(world.now + self.process.clock.lasts(effect.after),
                         lambda: self.process.run(lambda: hedge(expected), self.incarnation))

        def hedge(expected: int) -> None:
            if not state["over"] and not state["closed"] and state["sent"] == expected:
                send_next()

        def one(index: int, answer: Any) -> None:
            if state["over"]:
                return
            answers[index] = answer
            state["out"] -= 1
            if effect.accept(answer):
                finish()
                return
            if effect.final is not None and effect.final(answer):
                state["closed"] = True  # no more sends; those out are waited for
            elif state["sent"] < len(sends) and not state["closed"]:
                send_next()
                return
            if state["out"] == 0:
                finish()
                return
            be_patient()

        send_next()

    def _finish_after(self, seconds: float, state: dict[str, Any], finish: Callable[[], None]) -> None:
        """Out of patience ``seconds`` from now on this node's clock: ``finish`` then, unless
        the effect is over already (or the node restarted meanwhile)."""
        world = self.process.world
        world.at(world.now + self.process.clock.lasts(seconds),
                 lambda: self.process.run(lambda: None if state["over"] else finish(), self.incarnation))

    def _gather(self, effect: Gather) -> None:
        """As the node's driver does: resumed once every send has answered, or ``patience``
        after ``enough`` held of the answers so far (None for those still out, left to run out)."""
        sends = effect.sends
        answers: list[Any] = [None] * len(sends)
        effect.arrived[:] = [None] * len(sends)
        state = {"left": len(sends), "over": False, "patient": False}
        if not sends:
            self.resume_later(0.0, [])
            return

        def finish() -> None:
            state["over"] = True
            self.resume_later(0.0, list(answers))

        def one(i: int, answer: Any) -> None:
            if state["over"]:
                return
            answers[i] = answer
            effect.arrived[i] = self.process.now()
            state["left"] -= 1
            if state["left"] == 0:
                finish()
                return
            if effect.enough is not None and not state["patient"] and effect.enough(answers):
                state["patient"] = True
                self._finish_after(effect.patience, state, finish)

        for i, send in enumerate(sends):
            self.process.world.send(self.process.name, send, partial(one, i), self.context)


def _over_the_wire(message: Any, back: Callable[[Any], None], answer: Any) -> None:
    if isinstance(answer, NoAnswer):
        back(answer)
        return
    status, body = response_of(message, answer)
    back(answer_of(message, status, None if body is None else json.loads(json.dumps(body))))


# ---- the world -------------------------------------------------------------------------------


class Observer(Protocol):
    """Told what a run does where a real node's telemetry would tell it (``nodes/runs/from_sim.py``
    records a run so). It only watches: it draws no random number and schedules nothing, so a
    seed runs the same with one or without. ``sending`` and ``handling`` return the callback to
    use instead of the one given; ``handling`` also the context of the fiber serving the message,
    which ``stepping`` hears each time that fiber runs and ``sending`` with each of its sends."""

    def attach(self, world: World) -> None: ...
    def changed(self) -> None: ...  # a process, a link or a disk changed (``World.changed``)
    def sending(self, sender: str, send: Send, reply: Callable[[Any], None],
                context: Any) -> Callable[[Any], None]: ...
    def handling(self, target: str, sender: str, send: Send,
                 back: Callable[[Any], None]) -> tuple[Callable[[Any], None], Any]: ...
    def stepping(self, context: Any) -> None: ...


#: W7's retry window here: past a client's wait for a buy (run.py), within which its retries
#: are made, and short enough that buys are forgotten while the run goes on and settles.
SIM_BUY_WINDOW_S = 12.0
DELTA_PAGE = 40  # books a ping tells of: a generated catalog's whole table travels in pages
#: Far more events than any run of the default shape needs (about 10,000 to 500,000).
MAX_EVENTS = 5_000_000


class World:
    def __init__(self, seed: int, *, catalogs: int = 3, orders: int = 2, guard_writes: bool = True,
                 catalog_rules: frozenset[Rule] = BAZAR, network: Network | None = None,
                 stock: int | None = None, catalog_size: int | None = None) -> None:
        self.rng = random.Random(seed)
        #: Why the run was stopped early (kind, message): a runaway, or a core's exception.
        self.stopped: tuple[str, str] | None = None
        #: Called with a node's name just before a crashed node starts again (a disk fault, say).
        self.restarting: Callable[[str], None] = lambda name: None
        #: Told what the nodes do, when set (``observe``); None: nobody is, at no cost.
        self.observer: Observer | None = None
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._n = 0
        self.network = network or Network()
        self.events = 0
        #: Messages sent, by kind (``Check``, ``Get`` ...): what a run cost, for tests and reports.
        self.sent: Counter[str] = Counter()
        books = seed_books() if catalog_size is None else generate_catalog(catalog_size, seed=7)
        if stock is not None:
            books = [Book(b.id, b.title, b.topic, b.price, stock, 0) for b in books]
        self.books = books
        self.processes: dict[str, Process] = {}
        def catalog(i: int) -> CatalogReplica:
            return CatalogReplica(i, catalogs, has_frontend=True, rules=catalog_rules,
                                  seed=self.rng.randrange(2**32), nonce=f"s{self.rng.randrange(10**6)}",
                                  buy_window_s=SIM_BUY_WINDOW_S, delta_most=DELTA_PAGE)

        def order(i: int) -> OrderReplica:
            return OrderReplica(i, i % catalogs, guard_writes=guard_writes, seed=self.rng.randrange(2**32),
                                write_first={Rule.RESERVED_WRITES, Rule.MAJORITY} <= catalog_rules)

        def heartbeat(core: Any) -> list[Coroutine[Any, Any, Any]]:
            return [core.heartbeat()] if core.peers else []

        for i in range(catalogs):
            self._add(f"catalog{i}", partial(catalog, i), CatalogDisk(books, lambda: self.now), heartbeat)
        for i in range(orders):
            self._add(f"order{i}", partial(order, i), OrderDisk(), lambda core: [])
        starts = itertools.count()  # each start's attempt ids differ, and draw nothing from the seed's rng
        self._add("frontend", lambda: Frontend(catalogs, orders, nonce=f"s{next(starts)}"), None,
                  lambda core: [core.probe()])

    def _add(self, name: str, make: Callable[[], Core], disk: Any, background: Callable) -> None:
        self.processes[name] = Process(self, name, make, disk, background)

    # ---- an observer ------------------------------------------------------------------------
    def observe(self, observer: Observer) -> None:
        self.observer = observer
        observer.attach(self)

    def changed(self) -> None:
        """A process started, became ready, crashed or paused, or a link or a disk changed."""
        if self.observer is not None:
            self.observer.changed()

    # ---- scheduling ------------------------------------------------------------------------
    def at(self, when: float, job: Callable[[], None]) -> None:
        self._n += 1
        heapq.heappush(self._queue, (when, self._n, job))

    def stop(self, kind: str, message: str) -> None:
        """End the run now, as a failure of the seed (``kind``: "runaway" or "exception")."""
        if self.stopped is None:
            self.stopped = (kind, message)
        self._queue.clear()

    def run_until(self, until: float) -> None:
        queue = self._queue
        while queue and queue[0][0] <= until:
            when, _, job = heapq.heappop(queue)
            if when > self.now:
                self.now = when
            self.events += 1
            if self.events > MAX_EVENTS:
                # A run that stops making progress (a loop of zero-length waits, say) ends here,
                # reported as a failure of its own rather than left to eat the machine's memory.
                self.stop("runaway", f"more than {MAX_EVENTS:,} events by {self.now:.3f} s: "
                          "the run stopped making progress")
                break
            job()
        self.now = max(self.now, until)

    # ---- messages -------------------------------------------------------------------------------
    def send(self, sender: str, send: Send, reply: Callable[[Any], None], context: Any = None) -> None:
        """Deliver ``send`` from ``sender``; ``reply`` gets the answer or a NoAnswer, once.
        ``context``: the sending fiber's, for an observer."""
        self.sent[type(send.message).__name__] += 1
        if self.observer is not None:
            reply = self.observer.sending(sender, send, reply, context)
        answered = [False]
        source = self.processes.get(sender)
        source_incarnation = source.incarnation if source else 0

        def answer(value: Any) -> None:
            if answered[0]:
                return
            answered[0] = True
            if source is None:
                reply(value)
            else:
                source.run(lambda: reply(value), source_incarnation)

        timeout = source.clock.lasts(send.timeout) if source else send.timeout
        self.at(self.now + timeout, lambda: answer(NoAnswer(refused=False)))
        copies = 2 if self.rng.random() < self.network.duplicate else 1
        for _ in range(copies):
            self._deliver(sender, send, answer)

    def _deliver(self, sender: str, send: Send, answer: Callable[[Any], None]) -> None:
        to = send.to
        if (sender, to) in self.network.blocked or self.rng.random() < self.network.loss:
            return  # lost: the sender's time-out will say so
        target = self.processes[to]
        arrive = self.now + self.network.delay(self.rng)

        def back(value: Any) -> None:
            if (to, sender) in self.network.blocked or self.rng.random() < self.network.loss:
                return
            self.at(self.now + self.network.delay(self.rng), lambda: answer(value))

        def arrived() -> None:
            if not target.alive:
                # Nobody listens there: the connection is refused at once.
                self.at(self.now + self.network.delay(self.rng), lambda: answer(NoAnswer(refused=True)))
                return
            incarnation = target.incarnation
            target.run(lambda: self._handle(target, sender, send, back), incarnation)

        self.at(arrive, arrived)

    def _handle(self, target: Process, sender: str, send: Send, back: Callable[[Any], None]) -> None:
        core = target.core
        if sender != "client":
            # Between nodes an answer crosses the wire as status and JSON, and is read back by
            # the caller as the real nodes read it (nodes/core/wire.py): the simulator's nodes
            # act on what the real ones would, not on objects no wire carries.
            back = partial(_over_the_wire, send.message, back)
        if not target.ready or core is None:
            back(NoAnswer(refused=True))  # still starting: not listening yet
            return
        context = None
        if self.observer is not None:
            back, context = self.observer.handling(target.name, sender, send, back)
        core.now = target.now()
        message = send.message
        if isinstance(message, Health):
            if isinstance(core, OrderReplica):
                Fiber(target, core.health(), lambda r, e: back(r)).step()
            elif isinstance(core, CatalogReplica):
                back(core.on_health(message.sender))
            else:
                back(Healthy())
            return
        if isinstance(core, CatalogReplica):
            core.contact()
            if send.generation is not None and not core.same_generation(send.generation):
                back(Degraded("other generation"))
                return
            operation = core.handle(message)
        elif isinstance(core, OrderReplica):
            operation = core.buy(message)
        else:
            assert isinstance(core, Frontend)
            operation = core.handle(message)
        Fiber(target, operation, lambda r, e: back(NotFound() if isinstance(e, BookUnknown) else r), context).step()

    # ---- a client's request to the front-end ----------------------------------------------------
    def request(self, message: Read | Buy, timeout: float, done: Callable[[Any], None]) -> None:
        self.send("client", Send("frontend", message, timeout), done)

    # ---- faults ----------------------------------------------------------------------------------
    def start_all(self) -> None:
        for process in self.processes.values():
            process.start()

    def cut(self, name: str, on: bool) -> None:
        """Cut ``name`` off from every other node (both ways), or heal that."""
        links = {(name, other) for other in self.processes if other != name}
        links |= {(b, a) for a, b in links}
        if on:
            self.network.blocked |= links
        else:
            self.network.blocked -= links

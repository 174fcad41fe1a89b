"""The effects a protocol core asks for, and the one way a core runs.

Bazar's protocol cores (``nodes/core/catalog/``, ``nodes/core/order/protocol.py``,
``nodes/core/frontend/protocol.py``) never open a socket, read a clock, touch a disk or start a
task, as h11's connection never does. Each of their operations is a coroutine that *yields
effects* — send this message and give me its answer, write these rows, wake me at this
time, wait until this key is notified — and is resumed with the outcome. The time is fed
in too: a driver sets ``core.now`` before every step.

Two drivers run the very same cores: ``nodes/runtime/driver.py`` performs effects with
aiohttp, SQLite and asyncio timers inside a real node process; ``nodes/sim`` performs
them on a seeded scheduler with a virtual clock and a simulated network, so a run replays
exactly from its seed. A flow reads the way the figures draw it (ask, await the answer,
decide), while everything that can go wrong between two lines is the driver's to choose.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator, Hashable
from dataclasses import dataclass, field
from typing import Any


class Effect:
    """Awaitable from inside a core: ``answer = await Send(...)``. The driver sees the effect
    itself (``coroutine.send`` returns it) and resumes the coroutine with the outcome."""

    def __await__(self) -> Generator[Effect, Any, Any]:
        return (yield self)


@dataclass(frozen=True)
class NoAnswer:
    """Nothing came back from a message. ``refused``: nobody was listening there, so the
    receiver holds nothing in memory (no valid set, no reservation) and did nothing.
    Otherwise (a time-out, a lost connection) the receiver may or may not have acted."""

    refused: bool = False

    @property
    def maybe_processed(self) -> bool:
        return not self.refused


@dataclass(eq=False)
class Send(Effect):
    """Send ``message`` to node ``to`` (``catalog1``, ``order0``, ``frontend``) and be resumed
    with its answer (a reply dataclass of the message's protocol) or a ``NoAnswer`` once
    ``timeout`` seconds passed. ``generation`` names the core's data generation; a receiver
    holding another answers ``OtherGeneration``. ``trace``: record it as a hop (telemetry)."""

    to: str
    message: Any
    timeout: float
    connect_timeout: float | None = None
    generation: int | None = None
    trace: bool = True


@dataclass(eq=False)
class Gather(Effect):
    """Send several messages at once; resumed with their answers in the same order.
    ``enough`` (a write's majority): once it holds of the answers so far (None for a send
    still out), those still out are waited for ``patience`` seconds more at most; resumed
    then with None for them, left to end by their own time-outs ("The Tail at Scale": a
    replica that fell silent holds up no round that a majority has answered).

    ``arrived``: filled in by the driver, the core's clock when each answer came (None for one
    still out). A time a peer's answer counts from (the seconds left of a lease it granted)
    starts then, not when the gather resumed, up to ``patience`` later."""

    sends: list[Send]
    enough: Callable[[list[Any]], bool] | None = None
    patience: float = 0.0
    arrived: list[float | None] = field(default_factory=list, init=False, repr=False)


@dataclass(eq=False)
class Hedged(Effect):
    """A request that may be asked of several replicas ("The Tail at Scale"'s hedged request):
    ``sends[0]`` goes at once, and the next one ``after`` seconds later — or at once when the
    last one sent failed — until an answer comes that ``accept`` takes, or all have answered.
    An answer ``final`` takes stops the sending (no more hedges) but not the waiting: those
    still out are waited for, so that their answers are known too (a buy's outcome depends on
    every attempt's). Resumed with one entry per send, in order: its answer, or None for one
    not sent or still out when an answer was accepted (the driver stops waiting for those).
    Only for reads, and for writes that carry an id making a second attempt a copy (a buy).
    ``patience`` (reads): once every send is out and one has answered without being accepted,
    those still out are waited for no longer than this; resumed then, None for them (they are
    left to run out), so the caller can ask again those that answered."""

    sends: list[Send]
    after: float
    accept: Callable[[Any], bool]
    final: Callable[[Any], bool] | None = None
    patience: float | None = None
    #: Filled in by the driver: the core's clock when each send went (None for one not sent).
    #: News of a peer (its refusal, say) is weighed against when the message went to it.
    sent_at: list[float | None] = field(default_factory=list, init=False, repr=False)


class DiskFailed(Exception):
    """The node's store could not commit (its disk is full, or failed the write): nothing of
    that call was stored. The driver raises it where ``Disk`` was awaited."""


class Disk(Effect):
    """Call ``method(*args)`` on the node's store (a durable commit); resumed with its result,
    or ``DiskFailed`` raised where it was awaited. A crash before it is resumed may or may not
    have committed it; after, it is committed."""

    def __init__(self, method: str, *args: Any) -> None:
        self.method = method
        self.args = args

    def __repr__(self) -> str:
        return f"Disk({self.method!r}, ...)"


@dataclass(eq=False)
class Sleep(Effect):
    """Resume at ``until`` (the core's clock)."""

    until: float


@dataclass(eq=False)
class Wait(Effect):
    """Park until ``notify(key)`` wakes it (resumed with True) or ``deadline`` passes (False).
    The driver sets ``on_wake`` before parking; the core's ``Waiters.notify`` calls it."""

    key: Hashable
    deadline: float
    woken: bool = False
    on_wake: Callable[[], None] | None = field(default=None, repr=False)

    def wake(self) -> None:
        if not self.woken:
            self.woken = True
            if self.on_wake is not None:
                self.on_wake()


class Waiters:
    """Keys a core's coroutines wait on (a book's lock, a reservation handed back)."""

    def __init__(self) -> None:
        self._parked: dict[Hashable, list[Wait]] = {}

    def wait(self, key: Hashable, deadline: float) -> Wait:
        waiter = Wait(key, deadline)
        self._parked.setdefault(key, []).append(waiter)
        return waiter

    def drop(self, waiter: Wait) -> None:
        """Forget a wait that timed out: its key may not be notified for a long while."""
        parked = self._parked.get(waiter.key, [])
        if waiter in parked:
            parked.remove(waiter)
            if not parked:
                del self._parked[waiter.key]

    def notify(self, key: Hashable) -> None:
        for waiter in self._parked.pop(key, []):
            waiter.wake()

    def clear(self) -> None:
        for key in list(self._parked):
            self.notify(key)


#: How many attempts a node remembers the answers of at most, to answer copies of them (W7):
#: a catalog replica its buys' writes, an order replica the front-end's buys.
ATTEMPTS_KEPT = 10_000
#: And for how long (s). A copy of a message comes within the network's delays of its twin (in
#: the simulator 0.05 s at most; HTTP between the nodes delivers none), or, when its replica was
#: paused between the two, once it resumes (the simulator pauses one 5 s at most). Kept by count
#: alone, a day of buys held its last 10,000 attempts' answers, rows and all, ~10 MB a replica.
ATTEMPTS_KEPT_S = 10.0


class SingleFlight:
    """One run per key at a time: a copy of a request that arrives while the first is under
    way (a message delivered twice, a retry that overtook its first attempt) waits for it and
    gets the same answer. Answered on its own, a copy of a buy could say "out of stock" just
    because the first took the last copy (W7).

    Answers are kept for copies that come after them (``again=False``): the newest ``keep``,
    and of those only the ones answered within ``keep_s`` of ``clock()`` (the core's time), so
    that what a busy day holds is its last seconds' answers, not its last ``keep``."""

    def __init__(self, keep: int = 10_000, keep_s: float = float("inf"),
                 clock: Callable[[], float] = lambda: 0.0) -> None:
        self.waiters = Waiters()
        self.keep = keep
        self.keep_s = keep_s
        self.clock = clock
        self._running: set[Hashable] = set()
        self._answers: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()  # key -> (when, answer)

    async def run(self, key: Hashable, operation: Callable[[], Awaitable[Any]], *,
                  again: bool | Callable[[Any], bool] = True) -> Any:
        """``operation``'s answer, run once for copies that overlap it. ``again``: a copy that
        comes once the first has been answered runs it anew (a retry); otherwise it gets the
        first's answer too (a message delivered twice, while its answer is kept). A callable
        decides from the kept answer."""
        if key in self._answers and key not in self._running:
            kept = self._answers[key][1]
            if not (again(kept) if callable(again) else again):
                return kept
        if key in self._running:
            await self.waiters.wait(key, float("inf"))
            if key in self._answers:
                return self._answers[key][1]
        self._running.add(key)
        try:
            answer = await operation()
        finally:
            self._running.discard(key)
        self._keep(key, answer)
        self.waiters.notify(key)
        return answer

    def _keep(self, key: Hashable, answer: Any) -> None:
        now = self.clock()
        self._answers[key] = (now, answer)
        self._answers.move_to_end(key)
        # Oldest first: a clock stepped back may leave a younger one behind an older; it goes
        # at the next answer that finds it first.
        while self._answers and (len(self._answers) > self.keep
                                 or next(iter(self._answers.values()))[0] < now - self.keep_s):
            self._answers.popitem(last=False)

    def __len__(self) -> int:
        """How many answers are kept."""
        return len(self._answers)


class Core:
    """What every protocol core has: the time it was last fed, and a telemetry sink the
    driver may replace (the simulator keeps it silent or records it)."""

    now: float = 0.0

    async def start(self) -> None:
        """Load what the node keeps on disk; a core without a store has nothing to load."""

    def emit(self, kind: str, **fields: Any) -> None:  # replaced by the driver
        pass

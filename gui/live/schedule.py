"""When each message is drawn on its way: the timing of the Live picture's flights, apart
from any drawing. Held messages (teaching speed) fly for as long as they were held; full-speed
ones settle for a moment and fly one after another per request, a few requests at a time; a
pause freezes the picture and a step shows one message that then stays. Plain Python: the
canvas owns the timer and asks this schedule what to draw at a given moment."""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from nodes.observe.arrows import Arrow

#: How long a message is drawn on its way at full speed (it really takes a millisecond).
FLIGHT_S = 0.7
#: Full-speed messages wait this long for the rest of their request before they are drawn,
#: so that a request's hops are drawn in the order they were sent (they are reported after).
SETTLE_S = 0.15
#: Requests drawn at once at full speed; the others are counted, not drawn.
MAX_TRACES = 8
MAX_FLIGHTS = 60
#: A held message is drawn at least this long, however late it was heard of.
MIN_HELD_S = 0.25
#: A stepped message moves along its link for at least this long before it stays.
MIN_STEP_S = 0.6


@dataclass
class Flight:
    """A message on its way across the picture: from ``start`` (monotonic) for ``duration``."""

    message: Arrow
    start: float
    duration: float
    stays: bool = False  # a stepped message stays where it arrived

    def progress(self, now: float) -> float:
        return min(1.0, max(0.0, (now - self.start) / self.duration))

    def ends(self) -> float:
        return self.start + self.duration


class Schedule:
    """The flights drawn now, the full-speed messages still settling, and what was skipped."""

    def __init__(self) -> None:
        self.flights: list[Flight] = []
        self.pending: list[tuple[float, Arrow]] = []
        #: When each request's last scheduled hop lands: its next hop starts no earlier.
        self.trace_free: dict[str | None, float] = {}
        self.skipped = 0
        #: Numbers of the messages lately drawn on their way (neither at their start nor end).
        self.moving: deque[int] = deque(maxlen=2000)
        self.frozen_at: float | None = None

    def take(self, messages: Iterable[Arrow], now: float, wall: float) -> None:
        """Messages the model just heard of (only those the picture has a link for), at
        monotonic ``now`` and wall-clock ``wall``. Held ones (teaching speed) are drawn at once
        for the time they are held; full-speed ones are ordered per request first."""
        for message in messages:
            if message.held_ms:
                late = max(0.0, wall - message.t)
                self._fly(Flight(message, now, max(MIN_HELD_S, message.held_ms / 1000 - late)))
            else:
                self.pending.append((now, message))

    def _fly(self, flight: Flight) -> None:
        if len(self.flights) >= MAX_FLIGHTS:
            self.skipped += 1
            return
        self.flights.append(flight)

    def release(self, now: float) -> None:
        """Full-speed messages that have settled, drawn one after another per request."""
        ready = [(seen, m) for seen, m in self.pending if now - seen >= SETTLE_S]
        if not ready:
            return
        self.pending = [(seen, m) for seen, m in self.pending if now - seen < SETTLE_S]
        active = {f.message.trace for f in self.flights if f.ends() > now}
        for _seen, message in sorted(ready, key=lambda item: (item[1].trace or "", item[1].t, item[1].number)):
            trace = message.trace
            if trace not in active and len(active) >= MAX_TRACES:
                self.skipped += 1
                continue
            active.add(trace)
            start = max(now, self.trace_free.get(trace, 0.0))
            self.trace_free[trace] = start + FLIGHT_S
            self._fly(Flight(message, start, FLIGHT_S))
        self.trace_free = {t: free for t, free in self.trace_free.items() if free > now}

    def advance(self, now: float) -> bool:
        """One animation frame: release what settled, forget what landed; True while anything
        is still settling or on its way (the timer keeps running)."""
        self.release(now)
        self.flights = [f for f in self.flights if f.ends() > now or f.stays]
        return bool(self.pending) or any(f.ends() > now for f in self.flights)

    def freeze(self, now: float) -> None:
        """Pause: the picture stops where it is."""
        self.frozen_at = now

    def step(self, message: Arrow, now: float) -> None:
        """While paused: the one message stepped to, moving along its link and then staying."""
        self.frozen_at = None
        self.pending.clear()
        self.flights = [Flight(message, now, max(MIN_STEP_S, message.held_ms / 1000), stays=True)]

    def thaw(self) -> None:
        """Back to live: nothing of the paused picture is kept."""
        self.frozen_at = None
        self.flights.clear()
        self.pending.clear()
        self.trace_free.clear()
        self.skipped = 0

    def shown(self, now: float) -> list[Flight]:
        """The flights that have started by ``now``."""
        return [f for f in self.flights if f.start <= now]

    def on(self, source: str, target: str) -> list[Flight]:
        """The messages drawn on the link from ``source`` to ``target``."""
        return [f for f in self.flights if (f.message.source, f.message.target) == (source, target)]

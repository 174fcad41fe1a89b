"""How the model is fed and timed: live (``apply``, stamped now, heard first by a recording)
or from a recording (``replay``, stamped as it was); its clock; and its whole state at one
instant and back (a keyframe), what a replay seeks back to (nodes/runs).

A keyframe is the model's state without its links to the world (its signals, clock and tap)
and with only the newest ``KEYFRAME_ARROWS`` messages of the Live picture: a replay steps over
those and every message after; older ones are in the run, not in the picture restored. It is
pickled, and only ever read back by the process that made it: a run file holds inputs, never a
pickle, as a shared file must not be able to run code."""
from __future__ import annotations

import itertools
import pickle
import time
from collections import deque
from collections.abc import Callable
from typing import Any

KEYFRAME_ARROWS = 2000
#: Inputs taken within the clock's resolution are stamped this far apart, so that each has an
#: instant of its own to seek to (a websocket message brings dozens at once).
STAMP_STEP = 1e-6
#: What a keyframe leaves out: how the model is linked to its listeners and its clock.
LINKS = frozenset({"node_changed", "replicas_changed", "cache_changed", "latency_added", "trace_changed",
                   "event_seen", "logged", "ticked", "arrow_added", "marked", "clock", "tap", "following",
                   "_stamped"})
# (``take`` and ``restore`` work on any ``Fed`` model's attributes, ``ClusterModel``'s below.)


def take(model: Any, arrows: int = KEYFRAME_ARROWS) -> bytes:
    """A ``ClusterModel``'s state now, as ``restore`` takes it back."""
    state = {key: value for key, value in vars(model).items() if key not in LINKS}
    log = state["arrows"]
    kept = list(itertools.islice(log.arrows, max(0, len(log.arrows) - arrows), None))
    state["arrows"] = (kept, log.count)
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def restore(model: Any, keyframe: bytes) -> None:
    """The model back to a keyframe's state. Its signals stay connected and say nothing:
    whoever restores tells the views to draw everything again."""
    state = pickle.loads(keyframe)  # noqa: S301 - our own bytes, made by ``take`` above
    arrows, count = state.pop("arrows")
    log = model.arrows
    vars(model).update(state)
    log.arrows = deque(arrows, maxlen=log.arrows.maxlen)
    log.count, log.buys = count, model._buys  # noqa: SLF001 - the log shares the model's pending buys
    model.arrows = log


class Fed:
    """The part of ``ClusterModel`` that takes its inputs and keeps its time."""

    def __init__(self) -> None:
        #: What time it is for the model: the wall clock while it follows a cluster, the
        #: recording's while a run is replayed. Views measure ages and rates against ``now``.
        self.clock: Callable[[], float] = time.time
        #: Called with (at, input) for every input ``apply`` takes (a recording listens here).
        self.tap: Callable[[float, Any], None] | None = None
        #: Whether ``apply`` applies what it takes (off while the views are rewound).
        self.following = True
        #: When the input being applied happened: whatever the model stamps itself (a mark, a
        #: log line) gets it, so that a replay stamps what the live model did.
        self._at = time.time()
        self._stamped = 0.0  # the last stamp ``apply`` gave

    def apply(self, event: Any) -> None:
        """Take one input as it happens (stamped now): a node's telemetry event (its ``node``
        says whose) or an observation. A recording hears it first (``tap``); while the views are
        rewound (``following`` off) it is only recorded, and applied when they come back."""
        at = max(time.time(), self._stamped + STAMP_STEP)  # every input its own instant, in order
        self._stamped = at
        if self.tap is not None:
            self.tap(at, event)
        if self.following:
            self.replay(at, event)

    def replay(self, at: float, event: Any) -> None:
        """Take one input stamped ``at``: what ``apply`` does now, and a replay does with what
        was recorded."""
        raise NotImplementedError

    def now(self) -> float:
        return self.clock()

    def keyframe(self, arrows: int = KEYFRAME_ARROWS) -> bytes:
        return take(self, arrows)

    def restore(self, keyframe: bytes) -> None:
        restore(self, keyframe)

"""What the model learns besides the nodes' own telemetry, as events of its own: a node's stream
opening or closing, its process changing (the supervisor's word), the clock ticking, and a
line someone adds to a node's Log. ``ClusterModel.apply`` takes these and telemetry events alike,
so whatever feeds it (the follower, a test, a saved run) feeds it the one way."""
from __future__ import annotations

from dataclasses import dataclass

from nodes.observe.views import ProcessState


@dataclass(frozen=True)
class StreamState:
    """The window's telemetry stream from ``node`` opened (``connected``) or closed."""

    node: str
    connected: bool


@dataclass(frozen=True)
class ProcessChanged:
    """The supervisor's view of ``node``'s process, copied when it changed."""

    node: str
    process: ProcessState


@dataclass(frozen=True)
class Tick:
    """Once a second: what time alone changes (rates, uptimes, buys whose outcome never came)."""

    t: float


@dataclass(frozen=True)
class LogNote:
    """A line for ``node``'s Log from outside the node (a reset the window asked for, say)."""

    node: str
    text: str
    t: float | None = None


@dataclass(frozen=True)
class Anomaly:
    """What a checker found wrong at ``t`` (a recorded check or simulation), marked on ``node``
    (the one it concerns most) with the traces of the operations it blames."""

    t: float
    node: str
    text: str
    traces: tuple[str, ...] = ()


Observation = StreamState | ProcessChanged | Tick | LogNote | Anomaly

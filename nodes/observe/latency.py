"""What the charts draw, measured: each answer's latency by series, kept as samples and read as
numpy arrays in time order, and what the front-end did each second."""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np

#: Front-end routes whose latency the dashboard charts, by operation name.
OPERATIONS = {"/lookup/{id}": "lookup", "/search/{topic}": "search", "/buy/{id}": "buy"}


class Series(StrEnum):
    """Latency series the charts draw: buys that bought and "out of stock" answers apart."""

    LOOKUP = "lookup"
    SEARCH = "search"
    BUY = "buy"
    OUT_OF_STOCK = "out of stock"
    FAILED_BUY = "failed buy"


SERIES = tuple(Series)


class Sample(NamedTuple):
    """One answer's latency. A tuple of plain values, which the garbage collector stops
    tracking: the model keeps thousands, and each one tracked made the window's full
    collections (100 ms at a time) longer."""

    t: float
    ms: float
    status: int


@dataclass
class Second:
    """What the front-end did in one wall-clock second."""

    t: int
    answers: int = 0
    hits: int = 0
    misses: int = 0


class Latency:
    """The samples of every series (``latency["buy"]`` is a deque, oldest filed first) and the
    same as arrays for the charts."""

    def __init__(self, keep: int) -> None:
        self.samples: dict[str, deque[Sample]] = {series: deque(maxlen=keep) for series in SERIES}
        #: Each series as (times, ms) arrays in time order, built when first read after a change:
        #: a chart reads each series four times a redraw, thousands of samples each. They are
        #: extended by the samples that came since (counted in ``_fresh``), not built again.
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        #: The same, in the deque's order (the very same arrays while that order is the time order;
        #: never written in place, only sliced and joined into new ones).
        self._raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._fresh: dict[str, int] = dict.fromkeys(SERIES, 0)

    def __getstate__(self) -> dict[str, Any]:
        """The samples without their arrays (a keyframe's copy: the arrays are built again
        from the samples when a chart first reads them; they were half a keyframe's size)."""
        state = dict(vars(self))
        state["_arrays"], state["_raw"] = {}, {}
        state["_fresh"] = {series: len(samples) for series, samples in self.samples.items()}
        return state

    def __getitem__(self, series: str) -> deque[Sample]:
        return self.samples[series]

    def values(self):
        return self.samples.values()

    def __repr__(self) -> str:
        return f"Latency({ {series: len(samples) for series, samples in self.samples.items()} })"

    def add(self, series: str, sample: Sample) -> None:
        self.samples[series].append(sample)
        self._fresh[series] += 1

    def clear(self) -> None:
        for samples in self.samples.values():
            samples.clear()
        self._arrays.clear()
        self._raw.clear()

    def since(self, op: str, since: float) -> tuple[np.ndarray, np.ndarray]:
        """(times, milliseconds) of ``op``'s answers at or after ``since``, in time order."""
        arrays = self._arrays.get(op) if not self._fresh[op] else None
        if arrays is None:
            arrays = self._arrays[op] = self._build(op)
        times, ms = arrays
        first = int(np.searchsorted(times, since, side="left"))
        return times[first:], ms[first:]

    def _build(self, op: str) -> tuple[np.ndarray, np.ndarray]:
        """``op``'s samples as time-ordered, read-only arrays: the last ones built, with the
        samples added since appended (and as many of the oldest dropped as the deque dropped)."""
        samples, fresh = self.samples[op], self._fresh[op]
        self._fresh[op] = 0
        raw = self._raw.get(op)
        if raw is None or fresh >= len(samples):
            times = np.fromiter((s.t for s in samples), float, len(samples))
            ms = np.fromiter((s.ms for s in samples), float, len(samples))
        else:
            new = [samples[-k] for k in range(fresh, 0, -1)]  # a deque is indexed fast near its ends
            keep = len(samples) - fresh
            times = np.concatenate((raw[0][len(raw[0]) - keep:], np.fromiter((s.t for s in new), float, fresh)))
            ms = np.concatenate((raw[1][len(raw[1]) - keep:], np.fromiter((s.ms for s in new), float, fresh)))
        self._raw[op] = times, ms
        if len(times) > 1 and not bool(np.all(times[1:] >= times[:-1])):
            order = np.argsort(times, kind="stable")  # a buy is filed when its outcome is heard
            times, ms = times[order], ms[order]
        times.setflags(write=False)  # shared by every caller until the next sample
        ms.setflags(write=False)
        return times, ms

    def rolling(self, op: str, p: float | tuple[float, ...], since: float, window: int = 30,
                points: int = 150) -> tuple[np.ndarray, np.ndarray]:
        """The p-th percentile of the last ``window`` answers, at (at most ``points``) answers
        since ``since``; for several p at once, one row of values for each."""
        times, ms = self.since(op, since)
        many = np.ndim(p) > 0
        if len(ms) < window:
            return times[:0], (np.empty((np.size(p), 0)) if many else ms[:0])
        windows = np.lib.stride_tricks.sliding_window_view(ms, window)
        stride = max(1, len(windows) // points)
        ranked = np.sort(windows[::stride], axis=1)  # np.percentile's linear rule, without its overhead
        rows = []
        for q in np.atleast_1d(p):
            at = (window - 1) * q / 100
            low = int(math.floor(at))
            high = min(low + 1, window - 1)
            rows.append(ranked[:, low] + (ranked[:, high] - ranked[:, low]) * (at - low))
        return times[window - 1::stride], (np.array(rows) if many else rows[0])


def second_of(seconds: deque[Second], t: float) -> Second:
    """The bucket of wall-clock second ``t``, a new one at the end when time moved on."""
    whole = int(t)
    if not seconds or seconds[-1].t < whole:
        seconds.append(Second(whole))
    for bucket in reversed(seconds):
        if bucket.t == whole:
            return bucket
        if bucket.t < whole:
            break
    return seconds[-1]  # a late event from an older second counts in the latest

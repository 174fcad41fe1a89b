"""What the charts draw, measured: each answer's latency by series, kept as samples and read as
numpy arrays in time order, and what the front-end did each second."""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
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


class Samples:
    """One series' samples, oldest filed first, at most ``keep``: a ring of numpy columns, so
    that a keyframe holds three arrays rather than thousands of tuples (restoring one was most
    of a scrub step) and the charts read the columns without building them from objects.
    Read like the deque it replaced: ``len``, ``[-1]``, iteration give ``Sample`` tuples."""

    __slots__ = ("t", "ms", "status", "first", "count", "added")

    def __init__(self, keep: int) -> None:
        self.t = np.zeros(keep)
        self.ms = np.zeros(keep)
        self.status = np.zeros(keep, np.int32)
        self.first = 0  # where the oldest is
        self.count = 0
        self.added = 0  # every sample ever filed: a version the charts' arrays are keyed by

    def append(self, sample: Sample) -> None:
        keep = len(self.t)
        at = (self.first + self.count) % keep
        self.t[at], self.ms[at], self.status[at] = sample
        if self.count < keep:
            self.count += 1
        else:
            self.first = (self.first + 1) % keep
        self.added += 1

    def clear(self) -> None:
        self.first = self.count = 0
        self.added += 1

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> Sample:
        if not -self.count <= i < self.count:
            raise IndexError("no such sample")
        at = (self.first + i % self.count) % len(self.t)
        return Sample(float(self.t[at]), float(self.ms[at]), int(self.status[at]))

    def __iter__(self) -> Iterator[Sample]:
        t, ms, status = self.columns()
        return map(Sample._make, zip(t.tolist(), ms.tolist(), status.tolist(), strict=True))

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, milliseconds, statuses) in the order filed, as new arrays."""
        keep, end = len(self.t), self.first + self.count
        if end <= keep:
            return self.t[self.first:end].copy(), self.ms[self.first:end].copy(), self.status[self.first:end].copy()
        parts = (slice(self.first, keep), slice(0, end - keep))
        return tuple(np.concatenate([column[part] for part in parts])  # type: ignore[return-value]
                     for column in (self.t, self.ms, self.status))

    def __getstate__(self) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, int]:
        return (len(self.t), *self.columns(), self.added)

    def __setstate__(self, state: tuple[int, np.ndarray, np.ndarray, np.ndarray, int]) -> None:
        keep, t, ms, status, added = state
        self.__init__(keep)  # type: ignore[misc]
        self.count, self.added = len(t), added
        self.t[:self.count], self.ms[:self.count], self.status[:self.count] = t, ms, status


class Latency:
    """The samples of every series (``latency["buy"]``, oldest filed first) and the same as
    time-ordered arrays for the charts."""

    def __init__(self, keep: int) -> None:
        self.samples: dict[str, Samples] = {series: Samples(keep) for series in SERIES}
        #: Each series as (times, ms) arrays in time order, with the ``added`` they were built
        #: at: a chart reads each series four times a redraw.
        self._arrays: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """The samples without the charts' arrays (built again when first read)."""
        return {"samples": self.samples, "_arrays": {}}

    def __getitem__(self, series: str) -> Samples:
        return self.samples[series]

    def values(self):
        return self.samples.values()

    def __repr__(self) -> str:
        return f"Latency({ {series: len(samples) for series, samples in self.samples.items()} })"

    def add(self, series: str, sample: Sample) -> None:
        self.samples[series].append(sample)

    def clear(self) -> None:
        for samples in self.samples.values():
            samples.clear()
        self._arrays.clear()

    def since(self, op: str, since: float) -> tuple[np.ndarray, np.ndarray]:
        """(times, milliseconds) of ``op``'s answers at or after ``since``, in time order."""
        samples = self.samples[op]
        built = self._arrays.get(op)
        if built is None or built[0] != samples.added:
            times, ms, _status = samples.columns()
            if len(times) > 1 and not bool(np.all(times[1:] >= times[:-1])):
                order = np.argsort(times, kind="stable")  # a buy is filed when its outcome is heard
                times, ms = times[order], ms[order]
            times.setflags(write=False)  # shared by every caller until the next sample
            ms.setflags(write=False)
            built = self._arrays[op] = (samples.added, times, ms)
        _added, times, ms = built
        first = int(np.searchsorted(times, since, side="left"))
        return times[first:], ms[first:]

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

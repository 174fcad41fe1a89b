"""The player: a model fed from recorded inputs, to any instant of them.

Forwards it applies the inputs in order (``ClusterModel.replay``, the way the live model took
them); backwards it goes back to the nearest keyframe (the model's whole state, taken every
``KEYFRAME_S`` of the run as it passes) and applies forwards from there. So every instant shows
what the live window showed then, however it was reached (tests/unit/test_runs.py compares).

The inputs are a list that may grow (the live window's buffer): ``Recording`` keeps the last
minutes of a live session, dropping the oldest, and the player keeps its keyframes in step."""
from __future__ import annotations

import bisect
import contextlib
import gc
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from nodes.core.events import Event
from nodes.observe.model import ClusterModel
from nodes.observe.views import Mark, MarkKind
from nodes.runs.runfile import Chunk, Input, Run, input_of_text

#: A keyframe is taken when the run has moved on this long since the last one.
KEYFRAME_S = 2.0
#: Going forwards, a keyframe is restored when it saves applying more than this many inputs.
JUMP_INPUTS = 1000
#: How many chunks are kept decoded (a chunk is half a second of a live run).
DECODED_CHUNKS = 16
#: How long an arrow of the Live picture is looked for ahead of the present, when stepping.
STEP_LOOKAHEAD_S = 5.0


#: The marks a jump stops at: faults and anomalies (heals are on the slider too).
JUMP_TO = (MarkKind.FAULT, MarkKind.ANOMALY)


def mark_near(marks: Iterable[Mark], now: float, direction: int,
              kinds: tuple[MarkKind, ...] = JUMP_TO) -> Mark | None:
    """The first of ``marks`` (oldest first) of ``kinds`` after ``now`` (``direction`` 1), or
    the last one more than half a second before it (-1: a jump back from just after a mark goes
    to the one before, not to it again)."""
    chosen = [m for m in marks if m.kind in kinds]
    if direction > 0:
        return next((m for m in chosen if m.t > now + 1e-6), None)
    return next((m for m in reversed(chosen) if m.t < now - 0.5), None)


@dataclass(frozen=True)
class Keyframe:
    index: int  # absolute number of inputs applied when it was taken
    at: float
    state: bytes  # the model's keyframe, compressed (a third of the size, 4 ms to make)


@contextlib.contextmanager
def no_collection() -> Iterator[None]:
    """No garbage collection while a seek restores a keyframe and applies inputs: a restore
    makes ten thousand objects at once, and the full collections they set off were the slowest
    step of scrubbing (p99 90 ms against 25 ms without; the objects are freed by their counts as
    ever, and the collector runs again right after)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _freeze(model: ClusterModel) -> bytes:
    return zlib.compress(model.keyframe(), 1)


class Lines:
    """One chunk's inputs, each line decoded when first asked for: a seek applies from a
    keyframe to its target, which seldom begin and end on a chunk's bounds, and decoding was
    most of a scrub step (a whole chunk's half-second at 200 requests/s is about 5 ms)."""

    __slots__ = ("items", "texts")

    def __init__(self, chunk: Chunk) -> None:
        self.texts = chunk.lines()
        self.items: list[tuple[float, Input | None] | None] = [None] * len(self.texts)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, k: int) -> tuple[float, Input | None]:
        item = self.items[k]
        if item is None:
            item = self.items[k] = input_of_text(self.texts[k])
        return item

    def at(self, k: int) -> float:
        """Line ``k``'s stamp, read without decoding the line: it is the first number of it."""
        item = self.items[k]
        if item is not None:
            return item[0]
        text = self.texts[k]
        return float(text[1:text.index(b",")])


class Recording:
    """Recorded inputs in the chunks they were written in, oldest first, numbered on from 0
    however many were dropped (``base``): a run read from a file, or the live window's last
    ``keep_s`` seconds. A chunk is decoded when it is needed; the last few decoded are kept."""

    def __init__(self, chunks: Iterable[Chunk] = (), keep_s: float | None = None) -> None:
        self.chunks: list[Chunk] = []
        self.starts: list[int] = []  # absolute index of each chunk's first input
        self.firsts: list[float] = []
        self.base = 0
        self.end_index = 0
        self.keep_s = keep_s
        self._decoded: OrderedDict[int, Lines] = OrderedDict()
        for chunk in chunks:
            self.add(chunk)

    def add(self, chunk: Chunk) -> None:
        self.chunks.append(chunk)
        self.starts.append(self.end_index)
        self.firsts.append(chunk.first)
        self.end_index += chunk.count
        if self.keep_s is not None:
            drop = 0
            while drop < len(self.chunks) - 1 and chunk.last - self.chunks[drop].last > self.keep_s:
                drop += 1
            if drop:
                del self.chunks[:drop], self.starts[:drop], self.firsts[:drop]
                self.base = self.starts[0]

    def _inputs(self, i: int) -> Lines:
        key = self.starts[i]
        inputs = self._decoded.get(key)
        if inputs is None:
            inputs = self._decoded[key] = Lines(self.chunks[i])
            if len(self._decoded) > DECODED_CHUNKS:
                self._decoded.popitem(last=False)
        else:
            self._decoded.move_to_end(key)
        return inputs

    def get(self, index: int) -> tuple[float, Input | None]:
        i = bisect.bisect_right(self.starts, index) - 1
        return self._inputs(i)[index - self.starts[i]]

    @property
    def start(self) -> float:
        return self.chunks[0].first if self.chunks else 0.0

    @property
    def end(self) -> float:
        return self.chunks[-1].last if self.chunks else 0.0

    def events_of(self, trace: str, around: float, within_s: float = 30.0) -> list[Event]:
        """Every event of request ``trace`` recorded within ``within_s`` of ``around``: its hops
        put back together when the model no longer keeps them (it keeps the last few dozen)."""
        found: list[Event] = []
        for i, chunk in enumerate(self.chunks):
            if chunk.last < around - within_s or chunk.first > around + within_s:
                continue
            if trace.encode() not in chunk.lines_text():
                continue
            lines = self._inputs(i)
            found += [item for _at, item in map(lines.__getitem__, range(len(lines)))
                      if isinstance(item, Event) and item.trace == trace]
        return found

    def index_after(self, t: float) -> int:
        """The absolute index of the first input later than ``t``."""
        i = bisect.bisect_right(self.firsts, t) - 1
        if i < 0:
            return self.base
        inputs = self._inputs(i)
        return self.starts[i] + bisect.bisect_right(range(len(inputs)), t, key=inputs.at)


class Player:
    """Feeds ``model`` from ``recording`` to any instant (``seek``), and steps."""

    def __init__(self, model: ClusterModel, recording: Recording, *, keyframe_s: float = KEYFRAME_S) -> None:
        self.model = model
        self.recording = recording
        self.keyframe_s = keyframe_s
        self.index = recording.base  # inputs applied so far (absolute)
        self.time = recording.start
        self.keyframes: list[Keyframe] = [Keyframe(self.index, self.time, _freeze(model))]
        #: Faults, heals and anomalies seen so far in the run, oldest first: the slider's marks.
        self.marks: list[Mark] = []
        self._marks_to = self.index  # inputs read once so far: their marks are known
        self._fresh = False
        #: Whether this player notes the marks it passes first (not when an indexer does).
        self.collect_marks = True
        model.marked.connect(self._marked)

    @classmethod
    def of_run(cls, run: Run, model: ClusterModel | None = None) -> Player:
        """A player of a run read from a file, over a fresh model of its cluster."""
        model = model or ClusterModel(run.header.nodes, catalog_of=run.header.catalog_of)
        return cls(model, Recording(run.chunks))

    # ---- where it is --------------------------------------------------------------------------
    @property
    def start(self) -> float:
        return self.recording.start

    @property
    def end(self) -> float:
        return self.recording.end

    # ---- moving -------------------------------------------------------------------------------
    def seek(self, t: float) -> bool:
        """The model as it was at ``t`` (every input up to it applied). True when it went from
        a keyframe rather than on from where it was (the views draw everything again)."""
        target = self.recording.index_after(t)
        keyframe = self._keyframe_before(target)
        jump = target < self.index or self.index < self.recording.base or (
            keyframe is not None and keyframe.index - self.index > JUMP_INPUTS)
        with no_collection():
            if jump and keyframe is not None:
                self.model.restore(zlib.decompress(keyframe.state))
                self.index = keyframe.index
            self._forward(target)
        self.time = t
        return jump

    def forward(self, t: float) -> None:
        """On to ``t``, applying what comes before it (play)."""
        self._forward(self.recording.index_after(t))
        self.time = max(self.time, t)

    def to_end(self) -> bool:
        """Everything applied: the present of a live buffer. True when it went back first."""
        return self.seek(self.recording.end)

    def next_arrow(self, limit_s: float = STEP_LOOKAHEAD_S) -> bool:
        """Apply inputs until the Live picture has one more message (or ``limit_s`` passed);
        True when one came."""
        count = self.model.arrows.count
        deadline = self.time + limit_s
        while self.index < self.recording.end_index:
            at, _item = self.recording.get(self.index)
            if at > deadline:
                break
            self._forward(self.index + 1)
            self.time = max(self.time, at)
            if self.model.arrows.count > count:
                return True
        return False

    def next_mark(self, kinds: tuple[MarkKind, ...] = JUMP_TO) -> Mark | None:
        """The first fault (or anomaly) after now, as far as the run has been read."""
        return mark_near(self.marks, self.time, 1, kinds)

    def previous_mark(self, kinds: tuple[MarkKind, ...] = JUMP_TO) -> Mark | None:
        return mark_near(self.marks, self.time, -1, kinds)

    def take_keyframe(self) -> None:
        """Keep the model's state now as a keyframe at ``index``: the live window does this
        every ``keyframe_s``, with every input the model took already in the recording."""
        at = self.recording.get(self.index - 1)[0] if self.index > self.recording.base else self.recording.start
        self.keyframes.append(Keyframe(self.index, at, _freeze(self.model)))
        self.time = at

    # ---- inside -------------------------------------------------------------------------------
    def _marked(self, mark: Mark) -> None:
        if self._fresh and self.collect_marks:
            self.marks.append(mark)

    def _keyframe_before(self, target: int) -> Keyframe | None:
        """The last keyframe at or before input ``target`` still inside the recording."""
        base = self.recording.base
        if self.keyframes and self.keyframes[0].index < base:
            self.keyframes = [k for k in self.keyframes if k.index >= base] or self.keyframes[-1:]
        i = bisect.bisect_right(self.keyframes, target, key=lambda k: k.index) - 1
        return self.keyframes[i] if i >= 0 else None

    def _forward(self, target: int) -> None:
        """Apply inputs up to ``target``, keeping a keyframe wherever the last one before is
        ``keyframe_s`` behind and none follows soon (so a second pass finds them)."""
        target = min(target, self.recording.end_index)
        model, get = self.model, self.recording.get
        before = self._keyframe_before(self.index)
        i = bisect.bisect_right(self.keyframes, self.index, key=lambda k: k.index)
        upcoming = self.keyframes[i].index if i < len(self.keyframes) else None
        last_at = before.at if before is not None else -float("inf")
        while self.index < target:
            at, item = get(self.index)
            self._fresh = self.index >= self._marks_to  # first time through: its marks are new
            if item is not None:
                model.replay(at, item)
            self.index += 1
            self._marks_to = max(self._marks_to, self.index)
            if upcoming is not None and self.index >= upcoming:
                last_at = self.keyframes[i].at
                i += 1
                upcoming = self.keyframes[i].index if i < len(self.keyframes) else None
            elif at - last_at >= self.keyframe_s and (upcoming is None or upcoming - self.index > JUMP_INPUTS):
                self.keyframes.insert(i, Keyframe(self.index, at, _freeze(model)))
                i += 1
                last_at = at
        self._fresh = False

    def index_all(self, budget_s: float | None = None) -> bool:
        """Read on through the run (marks and keyframes for the slider); with ``budget_s``, for
        about that long only: True once all is read. An indexer does this in the background."""
        started = time.perf_counter()
        while self.index < self.recording.end_index:
            self._forward(self.index + 2000)
            self.time = max(self.time, self.recording.get(self.index - 1)[0])
            if budget_s is not None and time.perf_counter() - started > budget_s:
                break
        return self.index >= self.recording.end_index

    def indexer(self, model: ClusterModel) -> Player:
        """A player over the same recording with a model of its own (no views on it), that
        reads the run ahead: its keyframes and marks are this player's."""
        other = Player(model, self.recording, keyframe_s=self.keyframe_s)
        other.keyframes = self.keyframes
        other.marks = self.marks
        return other

    @property
    def indexed(self) -> float:
        """How much of the run this player has read (0–1)."""
        total = self.recording.end_index - self.recording.base
        return 1.0 if total <= 0 else (self._marks_to - self.recording.base) / total


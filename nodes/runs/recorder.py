"""The live window's recording: every input its model takes goes to a run file in the data
folder (old runs pruned to a size limit) and into the last minutes' buffer the window can rewind
over while the cluster keeps running.

Rewinding turns the model's ``following`` off: what the cluster does meanwhile is still
recorded, not applied, and the model is fed from the buffer by a player instead (a keyframe of
the model is kept every ``LIVE_KEYFRAME_S``, so that any instant of the buffer is a restore and
a few seconds of inputs away). Back to live, the player applies everything recorded since and
the model follows the cluster again."""
from __future__ import annotations

import queue
import time
from pathlib import Path

from nodes.observe.model import ClusterModel
from nodes.observe.views import Mark
from nodes.runs.player import Player, Recording
from nodes.runs.runfile import Chunk, Header, Input, RunWriter, new_run_path, prune

#: How far back the live window can rewind, at least (the issue asks for 10 minutes).
REWIND_S = 600.0
#: How often a keyframe of the live model is kept for rewinding.
LIVE_KEYFRAME_S = 10.0
#: Runs kept in the data folder, at most (bytes, compressed): the oldest go first.
RUNS_LIMIT_BYTES = 500 * 1024 * 1024


class Recorder:
    """Records ``model``'s inputs (``model.tap``) to ``folder`` (None: to memory only) and keeps
    the last ``keep_s`` seconds to rewind over. ``tick`` once a second on the model's loop."""

    def __init__(self, model: ClusterModel, header: Header, folder: Path | None, *,
                 limit_bytes: int = RUNS_LIMIT_BYTES, keep_s: float = REWIND_S) -> None:
        self.model = model
        self.folder = folder
        self.limit_bytes = limit_bytes
        self.pruned: list[Path] = []
        path = None
        if folder is not None:
            path = new_run_path(folder)
        self._chunks: queue.SimpleQueue[Chunk] = queue.SimpleQueue()
        self.writer = RunWriter(path, header, on_chunk=self._chunks.put)
        if folder is not None:
            self.pruned = prune(folder, limit_bytes, keep=[path] if path else [])
        self.recording = Recording(keep_s=keep_s)
        self.player = Player(model, self.recording)
        self.player.keyframes.clear()  # the empty model's: the buffer starts later
        self._last_keyframe = 0.0
        #: While rewound: the marks the live model had, for the slider.
        self.live_marks: list[Mark] = []
        model.tap = self._tap

    @property
    def path(self) -> Path | None:
        return self.writer.path

    @property
    def rewound(self) -> bool:
        return not self.model.following

    def _tap(self, at: float, item: Input) -> None:
        self.writer.add(item, at)

    def _drain(self) -> None:
        """Take the chunks the writer's thread wrote into the buffer (on the model's loop)."""
        while True:
            try:
                self.recording.add(self._chunks.get_nowait())
            except queue.Empty:
                return

    def _catch_up(self) -> None:
        """Everything the model took is in the buffer: write it now and take it in."""
        self.writer.flush()
        self._drain()

    def tick(self, now: float | None = None) -> None:
        """Take in what was written; keep a keyframe of the live model every LIVE_KEYFRAME_S."""
        now = time.time() if now is None else now
        base = self.recording.base
        if self.player.keyframes and self.player.keyframes[0].index < base:
            self.player.keyframes = [k for k in self.player.keyframes if k.index >= base]
        if self.rewound:
            self._drain()
            return
        if now - self._last_keyframe >= LIVE_KEYFRAME_S:
            self._catch_up()
            self.player.index = self.recording.end_index  # the live model is at the present
            if self.recording.end_index > self.recording.base:
                self.player.take_keyframe()
                self._last_keyframe = now
        else:
            self._drain()

    # ---- rewinding ----------------------------------------------------------------------------
    @property
    def start(self) -> float:
        """The earliest instant the window can rewind to: now, before anything was recorded
        (a cluster ready before its first input arrived; its nodes are forked in milliseconds)."""
        keyframes = [k for k in self.player.keyframes if k.index >= self.recording.base]
        if keyframes:
            return keyframes[0].at
        return self.recording.end if self.recording.chunks else time.time()

    def rewind(self, t: float) -> bool:
        """Show the cluster as it was at ``t`` (the cluster goes on; it is recorded meanwhile).
        False when the buffer does not reach back that far yet."""
        if not self.rewound:
            self._catch_up()
            self.player.index = self.recording.end_index
            self.player.take_keyframe()  # the present, to come back to quickly
            self.live_marks = list(self.model.marks)
            self.model.following = False
            self.model.clock = lambda: self.player.time
        self._drain()
        self.player.seek(max(t, self.start))
        return t >= self.start

    def back_to_live(self) -> None:
        """Everything recorded meanwhile applied; the model follows the cluster again."""
        if not self.rewound:
            return
        self._catch_up()
        self.player.seek(self.recording.end)
        self.model.clock = time.time
        self.model.following = True
        # Every keyframe the buffer still reaches stays (those taken while rewound too): the
        # window can rewind as far as before, at once.

    # ---- keeping it ---------------------------------------------------------------------------
    def save(self, target: str | Path) -> Path:
        """A copy of the session's run so far at ``target``."""
        return self.writer.save_copy(target)

    def close(self) -> None:
        self.writer.close()
        self.model.tap = None

    def memory(self) -> int:
        """Bytes the rewind buffer holds: its chunks and keyframes."""
        return sum(len(c.data or b"") + len(c.text or b"") for c in self.recording.chunks) + sum(
            len(k.state) for k in self.player.keyframes)

"""What the window's time slider moves over: a run opened from a file (``RunSource``), or the
live cluster's last minutes (``LiveSource``). Both feed the window's one model through a player,
so every view draws the instant chosen the way it drew it live; the slider asks a source where
it can go, what is marked on the way, and to go there."""
from __future__ import annotations

import gc
import time
from dataclasses import replace
from datetime import datetime

from nodes.core.vocabulary import NodeState
from nodes.observe.model import ClusterModel
from nodes.observe.observations import Anomaly, ProcessChanged
from nodes.observe.views import Mark
from nodes.runs.player import Player, Recording
from nodes.runs.recorder import Recorder
from nodes.runs.runfile import Run

#: A run's keyframes are this far apart (a scrub step is a restore and at most this much of the
#: run applied), or further on a long run, so that there are at most MAX_KEYFRAMES of them
#: (each about 200 KB at 200 requests/s: at most 120 MB in all). 1.5 s apart with answer times
#: kept one by one (280 KB each), a drag step took 56 ms at p99; now 26 ms (docs/runs.md).
KEYFRAME_S = 1.0
MAX_KEYFRAMES = 600


class RunSource:
    """A run read from a file, played into ``model``. Another player with a model of its own
    reads the run once in the background (``index``): the slider's marks, and keyframes the
    shown player seeks back to."""

    live = False

    def __init__(self, run: Run, model: ClusterModel) -> None:
        self.run = run
        self.model = model
        every = max(KEYFRAME_S, (run.end - run.start) / MAX_KEYFRAMES)
        self.player = Player(model, Recording(run.chunks), keyframe_s=every)
        self.player.collect_marks = False  # the indexer's job
        self.indexer = self.player.indexer(ClusterModel(run.header.nodes, catalog_of=run.header.catalog_of))
        model.clock = lambda: self.player.time
        self._read = False

    @property
    def start(self) -> float:
        return self.run.start

    @property
    def end(self) -> float:
        return self.run.end

    @property
    def time(self) -> float:
        return self.player.time

    def banner(self) -> str:
        return f"Replay of {self.run.path.name}, recorded {self.run.header.when} · {self.run.header.source}"

    def marks(self) -> list[Mark]:
        return self.player.marks

    def index(self, budget_s: float) -> bool:
        """Read on in the background for about ``budget_s``; True once all is read. Then what
        lives on (the players, their models, the decoded chunks) is set apart from the garbage
        collector's full passes, as the window's start-up objects are (gui/app.py)."""
        if self._read:
            return True
        self._read = self.indexer.index_all(budget_s)
        if self._read:
            gc.freeze()
        return self._read

    @property
    def indexed(self) -> float:
        return self.indexer.indexed

    def seek(self, t: float) -> bool:
        return self.player.seek(min(max(t, self.start), self.end))

    def forward(self, t: float) -> None:
        self.player.forward(min(t, self.end))

    def next_arrow(self) -> bool:
        return self.player.next_arrow()

    def first_up(self, within_s: float = 60.0) -> float:
        """When every node of the run was first up (a window's run starts while its cluster
        starts: opened at its very start, every node would be drawn down), or the start."""
        states: dict[str, NodeState] = {}
        for chunk in self.run.chunks:
            if chunk.first > self.run.start + within_s:
                break
            for at, item in chunk.inputs():
                if isinstance(item, ProcessChanged):
                    states[item.node] = item.process.state
                    if len(states) == len(self.run.header.nodes) and all(
                            state == NodeState.UP for state in states.values()):
                        return at
        return self.start

    def first_anomaly(self) -> Anomaly | None:
        """The first anomaly a checker recorded (None: the run has none); its ``t`` is its
        input's stamp, the run's clock."""
        for chunk in self.run.chunks:
            if b',"a",' not in chunk.lines_text():
                continue
            for at, item in chunk.inputs():
                if isinstance(item, Anomaly):
                    return replace(item, t=at)
        return None


class LiveSource:
    """The live cluster's last minutes, from the session's recorder: rewinding shows an instant
    of them while the cluster runs on; ``back_to_live`` follows it again."""

    live = True

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.model = recorder.model

    @property
    def rewound(self) -> bool:
        return self.recorder.rewound

    @property
    def start(self) -> float:
        return self.recorder.start

    @property
    def end(self) -> float:
        return time.time() if not self.rewound else max(self.recorder.recording.end, self.time)

    @property
    def time(self) -> float:
        return self.recorder.player.time if self.rewound else time.time()

    def banner(self) -> str:
        if not self.rewound:
            return "Live"
        behind = time.time() - self.time
        return (f"Rewound to {datetime.fromtimestamp(self.time).strftime('%H:%M:%S')} ({behind:.0f} s ago) · "
                "the cluster keeps running")

    def marks(self) -> list[Mark]:
        return self.recorder.live_marks if self.rewound else list(self.model.marks)

    def seek(self, t: float) -> bool:
        self.recorder.rewind(t)
        return True

    def forward(self, t: float) -> None:
        if self.rewound:
            self.recorder.player.forward(min(t, self.recorder.recording.end))

    def next_arrow(self) -> bool:
        return self.recorder.player.next_arrow() if self.rewound else False

    def back_to_live(self) -> None:
        self.recorder.back_to_live()

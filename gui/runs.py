"""The window's runs (docs/runs.md): its Runs menu (save the session's run, open one, open the
folder they are kept in), dropping a run file on the window, and the time slider — what a jump
back in time or a step through messages does to every view. A part of ``MainWindow``, kept
apart so that the window's layout and its time travel can each be read alone."""
from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QMenu, QToolButton, QWidget

from gui.common import header_menu_button, spawn
from gui.replay import ReplayBar, RewindSlider, set_acting
from nodes.control.clusterfile import Cluster
from nodes.core.books import Book
from nodes.observe.traces import Trace
from nodes.runs.runfile import SUFFIX, Header, Run, RunFileError, read_run
from nodes.runs.sources import LiveSource, RunSource

HELD_REPLAY = "This is a replay of a recorded run: nothing here acts on a cluster."
HELD_REWOUND = "The window shows the past: press Back to live to act on the cluster."
#: How many inputs a step may apply while it looks for the next message in causal order.
STEP_TRIES = 400


def replay_cluster(header: Header) -> Cluster:
    """The shape of a recorded cluster, as the window's views need it (its nodes, attached:
    nothing is started for a replay)."""
    nodes = header.nodes
    catalogs = sorted((n for n in nodes if n.startswith("catalog")), key=lambda n: int(n.removeprefix("catalog")))
    orders = sorted((n for n in nodes if n.startswith("order")), key=lambda n: int(n.removeprefix("order")))
    if "frontend" not in nodes or not catalogs or not orders:
        raise RunFileError(f"this run's cluster ({', '.join(nodes)}) has no front-end, catalog or order "
                           "replica: the window cannot draw it")
    of = [int(header.catalog_of.get(o, "catalog0").removeprefix("catalog")) for o in orders]
    return Cluster(catalogs=len(catalogs), orders=len(orders), order_catalogs=tuple(of),
                   attach_frontend=nodes["frontend"], attach_catalogs=tuple(nodes[n] for n in catalogs),
                   attach_orders=tuple(nodes[n] for n in orders), record=False)


def header_books(header: Header) -> list[Book]:
    return [Book(i, title, topic, price, quantity) for i, title, topic, price, quantity in header.books]


class TimeControl:
    """The time slider of ``window`` (a ``MainWindow``) over a run (``run``) or, once the cluster
    is up, its live last minutes; and the Runs menu. ``replay_window`` makes the window that
    replays a run opened from here."""

    def __init__(self, window: Any, run: Run | None, replay_window: Callable[[Run], QWidget]) -> None:
        self.window = window
        self.run = run
        self.replay_window = replay_window
        self.bar: ReplayBar | None = None
        self.rewinder: RewindSlider | None = None  # live: the status bar's slider
        self.opened: list[QWidget] = []  # replay windows opened from this one

    # ---- the slider ------------------------------------------------------------------------------
    def start_replay(self) -> None:
        """Show the run from its first anomaly, if it has one, or its start."""
        assert self.run is not None
        window = self.window
        source = RunSource(self.run, window.model)
        self._install(ReplayBar(source, self.step_message))
        window.controller.held = HELD_REPLAY
        window.live.reads_on = self.step_from_live
        window.live.showing = "replay"
        window.flow.origin = source.start  # the diagram counts seconds as the strip does
        self.save_action.setEnabled(False)  # a replay records nothing
        self.folder_action.setEnabled(False)
        set_acting(self.acting_widgets(), False, HELD_REPLAY)
        first = source.first_anomaly()
        source.seek(first.t if first is not None else source.first_up())
        named = re.search(r"\bbook (\d+)\b", first.text) if first is not None else None
        if named is not None:
            window.live.book.choose(int(named[1]))  # the book it is about
        self.after_jump()
        if self.run.problem:
            window.report(f"The run is damaged: {self.run.problem}")
        elif first is not None:
            window.say(f"Opened at the first anomaly, {first.t - source.start:.1f} s into the run: {first.text}")

    def start_live(self) -> None:
        """Live: a small rewind slider in the status bar; the strip comes up once rewound."""
        recorder = self.window.session.recorder
        if recorder is None or self.bar is not None:
            return
        source = LiveSource(recorder)
        bar = ReplayBar(source, self.step_message)
        bar.live_changed.connect(self._live_changed)
        self._install(bar)
        bar.setVisible(False)
        self.rewinder = RewindSlider(source)
        self.rewinder.rewind.connect(self.rewind)
        self.rewinder.back.connect(bar.back_to_live)
        self.window.statusBar().addPermanentWidget(self.rewinder)

    def rewind(self, t: float) -> None:
        """The live window back to ``t``: the strip says so; Back to live hides it again."""
        if self.bar is None:
            return
        self.bar.setVisible(True)
        self.bar.seek(t)
        if self.rewinder is not None and not self.rewinder.slider.isSliderDown():
            self.rewinder.setVisible(False)  # the strip has the slider now (kept while it is dragged)

    def _install(self, bar: ReplayBar) -> None:
        self.bar = bar
        self.window.flow.find_trace = self.find_trace
        bar.quiet = self.window.events.held
        bar.jumped.connect(self.after_jump)
        bar.played.connect(self._played)
        self.window.bar_slot.addWidget(bar)

    def _live_changed(self, live: bool) -> None:
        window = self.window
        if self.bar is not None:
            self.bar.setVisible(not live)
        if self.rewinder is not None:  # the strip has the slider while rewound, once let go
            self.rewinder.setVisible(live or self.rewinder.slider.isSliderDown())
            self.rewinder.refresh()
        window.live.reads_on = None if live else self.step_from_live
        window.live.showing = None if live else "rewound"
        window.live._controls()  # noqa: SLF001 - its status line says what it shows
        window.controller.held = None if live else HELD_REWOUND
        set_acting(self.acting_widgets(), live, HELD_REWOUND)
        for card in window.cluster_view.cards.values():
            card.refresh()
        window.cluster_view.network.refresh()

    def find_trace(self, trace_id: str) -> Trace | None:
        """A request's hops put back together from the recording (the run, or the live buffer)."""
        if self.bar is None:
            return None
        source = self.bar.source
        recording = source.recorder.recording if isinstance(source, LiveSource) else source.player.recording
        events = recording.events_of(trace_id, source.time)
        return Trace.from_events(trace_id, events) if events else None

    def _played(self) -> None:
        """Playing on: the Live picture moves again (a pause there was for stepping)."""
        live = self.window.live
        if live.paused_at is not None:
            live.resume()

    def acting_widgets(self) -> list[QWidget]:
        """Every control that acts on the cluster and is not already held by the controller."""
        window = self.window
        live, charts = window.live, window.charts
        return [live.load_button, live.rate, live.pace, live.lookup_button, live.buy_button, live.two_button,
                live.copies, live.restock_button, charts.load_button, charts.rate, charts.writes,
                window.cluster_view.reset_button, window.shop]

    def after_jump(self) -> None:
        """The model was put back to a keyframe: every view draws everything again."""
        window = self.window
        live = window.live
        if live.paused_at is not None:
            live.resume()
        live.seen = window.model.arrows.count
        live.canvas.thaw()
        window.events.everything()
        for view in window.views.values():
            if view.isVisible():
                for name in ("redraw", "refresh"):
                    draw: Callable[[], None] | None = getattr(view, name, None)
                    if draw is not None:
                        draw()
                        break

    def step_from_live(self, by: int) -> None:
        """The Live tab's own Step, while the window shows a recording: the strip's."""
        if self.bar is not None:
            self.bar.step(by)

    def step_message(self, by: int) -> None:
        """The previous or next message on the Live picture, in causal order: the run is read on
        until the next one's cause has been heard of."""
        window = self.window
        live = window.live
        window.tabs.setCurrentWidget(live)
        if live.paused_at is None:
            live.pause()
        if by < 0:
            live.step(-1)
            return
        before = len(live.told), live.position
        live.step(1)
        source = self.bar.source if self.bar is not None else None
        tries = 0
        while (len(live.told), live.position) == before and source is not None and tries < STEP_TRIES:
            tries += 1
            if not source.next_arrow():
                break
            live.step(1)
        if (len(live.told), live.position) == before:
            window.say("No message after this one in the run." if source is not None else "")

    # ---- the Runs menu ---------------------------------------------------------------------------
    def menu_button(self) -> QToolButton:
        button = header_menu_button("Runs")
        menu = QMenu(button)
        self.save_action = menu.addAction("Save this session's run…\tCtrl+S", self.save_dialog)
        menu.addAction("Open a run…\tCtrl+O", self.open_dialog)
        self.folder_action = menu.addAction("Open the folder of recorded runs", self.open_folder)
        button.setMenu(menu)
        return button

    def runs_folder(self) -> Path | None:
        recorder = self.window.session.recorder
        return None if recorder is None or recorder.path is None else recorder.path.parent

    def save_dialog(self) -> None:
        window = self.window
        recorder = window.session.recorder
        if recorder is None or recorder.path is None:
            window.report("This session is not recorded to a file (a replay, or record = false in the cluster file).")
            return
        suggested = str(Path.home() / recorder.path.name)
        target, _ = QFileDialog.getSaveFileName(window, "Save this session's run", suggested, f"Bazar runs (*{SUFFIX})")
        if target:
            self.save(Path(target))

    def save(self, target: Path) -> Path | None:
        recorder = self.window.session.recorder
        if recorder is None or recorder.path is None:
            return None
        if not target.name.endswith(SUFFIX):
            target = target.with_name(target.name + SUFFIX)
        try:
            saved = recorder.save(target)
        except (OSError, RunFileError) as error:
            self.window.report(f"The run could not be saved to {target}: {getattr(error, 'strerror', None) or error}")
            return None
        self.window.say(f"Saved the run so far to {saved} ({saved.stat().st_size / 1e6:.1f} MB).")
        return saved

    def open_dialog(self) -> None:
        start = self.runs_folder() or Path.home()
        path, _ = QFileDialog.getOpenFileName(self.window, "Open a Bazar run", str(start),
                                              f"Bazar runs (*{SUFFIX});;All files (*)")
        if path:
            self.open_soon(Path(path))

    def open_folder(self) -> None:
        folder = self.runs_folder()
        if folder is None or not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.window.report(f"The runs are kept in {folder}" if folder else "This session is not recorded.")

    def open(self, path: Path) -> QWidget | None:
        """A replay window of the run at ``path`` (this window goes on as it was), read here."""
        result = read_checked(path)
        if isinstance(result, str):
            self.window.report(result)
            return None
        return self._show(result)

    def open_soon(self, path: Path) -> None:
        """The same, the run read off the window's thread: a 10-minute run takes seconds to read
        and check, and the window goes on meanwhile (the status bar says what it is opening)."""
        window = self.window
        size = path.stat().st_size / 1e6 if path.is_file() else 0.0
        window.say(f"Opening {path.name} ({size:.1f} MB) …", keep=True)

        def done(result: Run | str) -> None:
            if isinstance(result, str):
                window.report(result)
            else:
                self._show(result)
                window.say(f"Opened {path.name} in a replay window of its own.")

        spawn(asyncio.to_thread(read_checked, path), window.report, done)

    def _show(self, run: Run) -> QWidget:
        other = self.replay_window(run)
        other.show()
        other.start()  # type: ignore[attr-defined]
        self.opened.append(other)
        return other

    # ---- dropping a file -----------------------------------------------------------------------------
    @staticmethod
    def drag_enter(event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls() if event.mimeData() is not None else []
        if any(url.isLocalFile() for url in urls):
            event.acceptProposedAction()

    def drop(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_soon(Path(url.toLocalFile()))
                event.acceptProposedAction()
                return


def read_checked(path: Path) -> Run | str:
    """The run at ``path``, checked; or what is wrong with it, in words."""
    try:
        run = read_run(path)
        replay_cluster(run.header)
    except RunFileError as error:
        return str(error)
    return run

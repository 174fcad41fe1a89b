"""Starting the window: a Qt application whose event loop is also asyncio's (qasync), over a
freshly started cluster. Without a display, or when Qt's display plugin cannot load, it says
so in plain words (and which system packages to install) instead of Qt's abort."""
from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from nodes.control.clusterfile import Cluster

if TYPE_CHECKING:
    from gui.main_window import MainWindow
    from gui.scenarios import ScenariosView

#: What Qt's xcb display plugin needs on Debian/Ubuntu beyond what pip installs (README).
QT_SYSTEM_PACKAGES = ("libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 "
                      "libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 libxkbcommon-x11-0 "
                      "libx11-xcb1 libegl1 libgl1 libfontconfig1 libdbus-1-3")
OFFSCREEN = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb")


@dataclass(frozen=True)
class RunOptions:
    """How the launcher wants the window run."""

    screenshot: str | None = None
    demo: float = 6.0
    tab: str = "charts"
    measure_lag: float | None = None
    width: int = 1440
    height: int = 920
    scale: float = 1.0  # the presenter scale (Ctrl + / Ctrl −) to open at
    open_run: str | None = None  # a recorded run to replay instead of starting a cluster
    at: float | None = None  # with open_run and screenshot: the instant pictured (s from the run's start)
    measure_scrub: int | None = None  # with open_run: slider drags of this many moves each way, timed


def display_available() -> bool:
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.split(":")[0] in OFFSCREEN:
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def display_problem() -> str | None:
    """Whether Qt can open the display, asked of a child process: when the display plugin
    cannot load, Qt aborts the whole process, too late to say anything useful. None when it
    can; otherwise what to tell the person."""
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0]
    if platform in OFFSCREEN:
        return None
    probe = "from PySide6.QtWidgets import QApplication; QApplication(['bazar-probe'])"
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None  # slow, not broken: let the window try
    if done.returncode == 0:
        return None
    said = [line for line in done.stderr.splitlines() if line.strip() and "Aborted" not in line][-4:]
    return ("launcher.py: Qt could not open the display"
            + (":\n  " + "\n  ".join(said) if said else ".") +
            "\nOn a fresh Debian or Ubuntu machine Qt's display plugin needs these system packages:\n"
            f"  sudo apt-get install {QT_SYSTEM_PACKAGES}\n"
            "Then run it again; or run `python3 launcher.py --headless` for the cluster without a window.")


def run_window(cluster: Cluster, options: RunOptions = RunOptions()) -> int:
    if options.screenshot or options.measure_lag or options.measure_scrub is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")  # offscreen's size-hint chatter
    elif not display_available():
        print("launcher.py: no display found (DISPLAY is not set). Run `python3 launcher.py --headless` for the "
              "cluster without a window, or start the window under Xvfb.", file=sys.stderr)
        return 2
    else:
        problem = display_problem()
        if problem is not None:
            print(problem, file=sys.stderr)
            return 2

    import qasync
    from PySide6.QtWidgets import QApplication

    from gui.common import stylesheet
    from gui.main_window import MainWindow, WindowOptions

    run = None
    if options.open_run:
        from gui.runs import read_checked

        read = read_checked(Path(options.open_run))
        if isinstance(read, str):
            print(f"launcher.py: {read}", file=sys.stderr)
            return 2
        run = read
        if run.problem:
            print(f"launcher.py: {run.problem}", file=sys.stderr)

    app = cast(QApplication, QApplication.instance() or QApplication(sys.argv[:1]))
    app.setApplicationName("Bazar")
    app.setStyle("Fusion")
    app.setStyleSheet(stylesheet())
    app.setQuitOnLastWindowClosed(False)
    window = MainWindow(cluster, WindowOptions(options.width, options.height, options.scale), run=run)

    async def main() -> None:
        window.show()
        window.start()
        # What exists now (Qt, pyqtgraph, numpy, the window) lives as long as the window: out of
        # the garbage collector's sight, a full collection under load takes a few ms, not 100.
        gc.freeze()
        if options.screenshot and run is not None:
            await replay_screenshot(window, Path(options.screenshot), options.at, options.tab,
                                    (options.width, options.height))
            window.close()
        elif options.screenshot:
            await screenshot(window, Path(options.screenshot), options.demo, options.tab,
                             (options.width, options.height))
            window.close()
        elif options.measure_scrub is not None:
            import json

            from gui.demo import measure_scrub

            for row in await measure_scrub(window, max(1, options.measure_scrub)):
                print(json.dumps(row), flush=True)
            window.close()
        elif options.measure_lag:
            from gui.demo import measure_lag

            lag = await measure_lag(window, options.measure_lag)
            print(f"event-loop lag over {options.measure_lag:.0f} s at {lag['achieved_rate']:.0f} req/s "
                  f"(offered {lag['offered_rate']:.0f}) with one catalog replica hung: "
                  f"p50 {lag['p50']:.1f} ms, p99 {lag['p99']:.1f} ms, max {lag['max']:.1f} ms "
                  f"({lag['count']} samples; {lag['buys_ok']} of the run's {lag['buys']} buys answered 200, "
                  f"{lag['bought']} copies of books 1-7 bought, stock given back after)",
                  flush=True)
            window.close()
        await window.stopped.wait()

    try:
        qasync.run(main())
    finally:
        window.session.supervisor.close()  # whatever happened above, no node outlives the window
        for other in window.time.opened:  # replays opened from it: nothing to stop, but their timers
            other.close()
    window.deleteLater()
    app.processEvents()
    # PySide6 can crash while the interpreter tears its wrappers down (PYSIDE-2254 and kin);
    # every node is stopped and every file closed by now, so leave without that teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


async def screenshot(window: MainWindow, path: Path, seconds: float, tab: str,
                     size: tuple[int, int] | None = None) -> None:
    """A short scripted demo, then the window saved as a picture (one per tab with ``all``),
    exactly ``size`` (the window's size, at whatever presenter scale it was given)."""
    from gui.demo import run_demo
    from gui.main_window import TABS

    await run_demo(window, seconds, heal=tab == "live")
    names = [name for name, _title in TABS] if tab == "all" else [tab]
    for name in names:
        window.tabs.setCurrentWidget(window.view(name))
        if name == "scenarios":
            await play_for_screenshot(window.scenarios, "S3")
        window.charts.redraw()
        window.live.redraw()
        await save_picture(window, path if len(names) == 1 else path.with_name(f"{path.stem}-{name}{path.suffix}"),
                           size)


async def save_picture(window: MainWindow, target: Path, size: tuple[int, int] | None, said: str = "") -> None:
    """The window as it is drawn, saved at ``target`` once the tab has laid out and painted;
    a warning when it is not the ``size`` asked."""
    await asyncio.sleep(0.4)  # let the tab lay out and paint before it is grabbed
    target.parent.mkdir(parents=True, exist_ok=True)
    picture = window.grab()
    if size is not None and (picture.width(), picture.height()) != size:
        print(f"warning: the window is {picture.width()}x{picture.height()}, not the {size[0]}x{size[1]} asked: "
              "its contents need more room at this scale", file=sys.stderr, flush=True)
    picture.save(str(target))
    print(f"saved {target}{said}", flush=True)


async def replay_screenshot(window: MainWindow, path: Path, at: float | None, tab: str,
                            size: tuple[int, int] | None = None) -> None:
    """One instant of a replayed run (``at`` seconds from its start; where it opened when None),
    pictured as the window draws it."""
    from gui.main_window import TABS

    bar = window.time.bar
    assert bar is not None
    if at is not None:
        length = bar.source.end - bar.source.start
        if not 0 <= at <= length:
            print(f"warning: --at {at:g} is outside the run (0 to {length:.1f} s); pictured at the nearest end",
                  file=sys.stderr, flush=True)
        bar.seek(bar.source.start + at)
    names = [name for name, _title in TABS] if tab == "all" else [tab]
    for name in names:
        window.tabs.setCurrentWidget(window.view(name))
        window.time.after_jump()
        bar.refresh()
        await save_picture(window, path if len(names) == 1 else path.with_name(f"{path.stem}-{name}{path.suffix}"),
                           size, f" ({bar.source.time - bar.source.start:.1f} s into the run)")


async def play_for_screenshot(view: ScenariosView, scenario_id: str, timeout: float = 90.0) -> None:
    """Play one scenario in the Scenarios tab to its end, quickly, for the picture."""
    import time

    row = next(i for i, s in enumerate(view.scenarios) if s.id == scenario_id)
    view.list.setCurrentRow(row)
    view.speed.setCurrentText("4×")
    view.play()
    deadline = time.monotonic() + timeout
    while not view.verdict.isVisible():
        if time.monotonic() > deadline:
            raise RuntimeError(f"scenario {scenario_id} did not finish playing")
        await asyncio.sleep(0.2)  # polling the view for the picture, with a deadline

"""Starting the window: a Qt application whose event loop is also asyncio's (qasync), over a
freshly started cluster. Without a display it says so in one line instead of Qt's abort."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

TABS = ("shop", "cluster", "charts", "cache", "replicas", "flow", "scenarios", "experiments")


def display_available() -> bool:
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_window(args: argparse.Namespace) -> int:
    if args.screenshot or args.measure_lag:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")  # offscreen's size-hint chatter
    elif not display_available():
        print("launcher.py: no display found (DISPLAY is not set). Run `python3 launcher.py --headless` for the "
              "cluster without a window, or start the window under Xvfb.", file=sys.stderr)
        return 2

    import qasync
    from PySide6.QtWidgets import QApplication

    from launcher import load_cluster
    from nodes.control.session import ClusterSession

    from .common import stylesheet
    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Bazar")
    app.setStyle("Fusion")
    app.setStyleSheet(stylesheet())
    app.setQuitOnLastWindowClosed(False)
    session = ClusterSession(load_cluster(args))
    window = MainWindow(session)
    window.resize(1440, 920)

    async def main() -> None:
        window.show()
        window.start()
        if args.screenshot:
            await screenshot(window, Path(args.screenshot), args.demo, args.tab)
            window.close()
        elif args.measure_lag:
            from .demo import measure_lag

            lag = await measure_lag(window, args.measure_lag)
            print(f"event-loop lag over {args.measure_lag:.0f} s at {lag['achieved_rate']:.0f} req/s "
                  f"(offered {lag['offered_rate']:.0f}) with one catalog replica hung: "
                  f"p50 {lag['p50']:.1f} ms, p99 {lag['p99']:.1f} ms, max {lag['max']:.1f} ms "
                  f"({lag['count']} samples)", flush=True)
            window.close()
        await window.stopped.wait()

    try:
        qasync.run(main())
    finally:
        session.supervisor.close()  # whatever happened above, no node outlives the window
    window.deleteLater()
    app.processEvents()
    # PySide6 can crash while the interpreter tears its wrappers down (PYSIDE-2254 and kin);
    # every node is stopped and every file closed by now, so leave without that teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


async def screenshot(window, path: Path, seconds: float, tab: str) -> None:
    """A short scripted demo, then the window saved as a picture (one per tab with ``all``)."""
    from .demo import run_demo

    await run_demo(window, seconds)
    tabs = TABS if tab == "all" else (tab,)
    for name in tabs:
        window.tabs.setCurrentIndex(TABS.index(name))
        if name == "scenarios":
            await play_for_screenshot(window.scenarios, "S3")
        window.refresh()
        window.charts.refresh(force=True)  # every plot, not just this tick's turn
        await asyncio.sleep(0.4)  # let the tab lay out and paint before it is grabbed
        target = path if len(tabs) == 1 else path.with_name(f"{path.stem}-{name}{path.suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(target))
        print(f"saved {target}", flush=True)


async def play_for_screenshot(view, scenario_id: str, timeout: float = 90.0) -> None:
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
        await asyncio.sleep(0.2)

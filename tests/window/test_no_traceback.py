"""Issue 23: no traceback ever reaches the terminal from the window. With load on, every tab is
shown in turn by its shortcut (Alt+1 … Alt+9) for a few seconds, and the test fails on any
exception that reached sys.excepthook (where Qt slots' exceptions go), any error logged (the
asyncio loop logs its callbacks' exceptions), any critical Qt message, and any "Traceback" on
the terminal; then the window closes cleanly. What the terminal does get: the front-end's
address (item 19). And the Cluster tab's cards show current numbers the moment it shows (item
17)."""
from __future__ import annotations

import asyncio
import logging
import re
import sys
import time

import pytest
from PySide6.QtCore import Qt, QtMsgType
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from gui.main_window import TABS
from tests.support import open_window

pytestmark = pytest.mark.timeout(300)
SECONDS_PER_TAB = 1.5  # every view refreshes in it (the slowest, the space-time view, once a second)


class Caught(logging.Handler):
    """Every record at ERROR or above, or with an exception attached."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture
def caught(monkeypatch):
    exceptions: list[BaseException] = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, error, tb: exceptions.append(error))
    handler = Caught()
    logging.getLogger().addHandler(handler)
    yield exceptions, handler.records
    logging.getLogger().removeHandler(handler)


@pytest.fixture
def window(capfd, caught, qapp, tmp_path):
    """Started after the terminal's capture and the hooks, so both see everything it does."""
    yield from open_window(qapp, tmp_path, (1280, 720))


async def pause(seconds: float) -> None:
    await asyncio.sleep(seconds)  # the window draws meanwhile, as for a person watching it


def test_every_tab_under_load_logs_no_exception_and_prints_no_traceback(window, caught, capfd, qtlog):
    exceptions, records = caught
    window.activateWindow()
    load = window.session.load
    # Load, a pause a class might make (a few seconds with no answer: the charts draw them as
    # zeros), then load again for the whole tour.
    window.charts.toggle_load()
    window.run(pause(2))
    window.run(load.stop())
    window.run(pause(2.5))
    window.charts.toggle_load()
    assert load.running
    try:
        for number, (name, _title) in enumerate(TABS, start=1):
            QTest.keyClick(window, getattr(Qt.Key, f"Key_{number}"), Qt.KeyboardModifier.AltModifier)
            assert window.tabs.currentWidget() is window.view(name), f"Alt+{number} did not show {name}"
            window.run(pause(SECONDS_PER_TAB))
            assert not exceptions, f"on the {name} tab: {exceptions!r}"
            assert not records, f"on the {name} tab: {[r.getMessage() for r in records]}"
    finally:
        window.run(window.session.load.stop())
    critical = [m for m in qtlog.records if m.type in (QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg)]
    assert not critical, [m.message for m in critical]
    window.close()
    window.run(window.stopped.wait(), 30)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err, err[-3000:]
    assert not exceptions and not records
    address = window.session.supervisor.frontend.address
    assert re.search(rf"^front-end: {re.escape(address)}\b", out, re.MULTILINE), \
        f"the front-end's address was not printed at start: {out!r}"


def test_cluster_cards_show_current_numbers_the_moment_their_tab_shows(window, caught):
    view = window.cluster_view
    window.tabs.setCurrentWidget(window.charts)
    window.charts.toggle_load()
    try:
        window.run(pause(3.5))  # the Cluster tab hidden meanwhile: its cards were not redrawn
        window.tabs.setCurrentWidget(view)  # no turn of the loop after this: only what showing it drew
        started = window.session.supervisor.node("frontend").started_at
        minutes, seconds = divmod(int(time.time() - started), 60)
        details = view.cards["frontend"].details.text()
        shown = re.search(r"up (\d+):(\d\d)", details)
        assert shown, details
        assert abs(int(shown[1]) * 60 + int(shown[2]) - (minutes * 60 + seconds)) <= 1, \
            f"{details!r}, but it has been up {minutes}:{seconds:02d}"
        rate = view.cards["frontend"].rate.text()
        assert not rate.startswith("0 requests/s"), f"{rate!r} under load"
    finally:
        window.run(window.session.load.stop())
    window.run(asyncio.sleep(0))  # one turn of the loop: callbacks already due run
    QApplication.processEvents()
    assert not caught[0] and not caught[1]

"""Issue 23: the window fits a projector. At 1280×720, at 100 % and at 150 %, the window is the
size asked, the Live screen shows no scrollbar and no cut words, and the Live picture's boxes,
words and message labels overlap nothing (items 3 and 7: checked as geometry, not pixels);
Ctrl 0 restores the size as well as the text; the window never opens larger than the screen;
``--scale F`` opens at a presenter scale and the screenshot is exactly the size asked.

Most of it needs no cluster: a window that is not started lays itself out all the same."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QImage, QTextDocumentFragment
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QScrollBar, QTabBar, QToolButton, QWidget

from gui.common import stylesheet
from gui.live.arrows import label_rects
from gui.live.layout import lay_out, place_labels
from gui.live.painter import FontMeasure
from gui.live.schedule import Flight
from gui.main_window import MainWindow, WindowOptions, opening_size
from nodes.observe.arrows import AnswerOutcome, Arrow, ArrowKind
from nodes.observe.traces import Hop, Trace
from tests.support import make_cluster

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
CATALOGS = ["catalog0", "catalog1", "catalog2"]
ORDERS = ["order0", "order1", "order2"]
CATALOG_OF = {"order0": "catalog0", "order1": "catalog1", "order2": "catalog2"}


@pytest.fixture
def unstarted(qapp, tmp_path):
    """Make windows over a cluster that is never started (the layout is all that is looked at),
    styled as ``gui/app.py`` styles the real one; the style is put back afterwards."""
    style, sheet = qapp.style().name(), qapp.styleSheet()
    qapp.setStyle("Fusion")
    qapp.setStyleSheet(stylesheet())
    made = []

    def make(width: int, height: int, scale: float = 1.0) -> MainWindow:
        window = MainWindow(make_cluster(tmp_path / str(len(made)), catalogs=3, orders=3),
                            WindowOptions(width, height, scale))
        made.append(window)
        window.show()
        settle(qapp)
        return window

    yield make
    for window in made:
        window.session.supervisor.close()
        window.hide()
        window.deleteLater()
    qapp.setStyle(style)
    qapp.setStyleSheet(sheet)
    # Deleted now, not whenever a loop next runs: a window still alive counts as open, and with
    # two open a window's shortcuts reach only it once active (a later test's Ctrl++ did nothing).
    qapp.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    qapp.processEvents()


def settle(qapp) -> None:
    for _ in range(6):
        qapp.processEvents()


def cut_words(root) -> list[str]:
    """Every visible one-line label and button under ``root`` whose words are wider than it."""
    cut = []
    for widget in root.findChildren(QLabel) + root.findChildren(QAbstractButton):
        if not widget.isVisible() or not widget.text() or isinstance(widget, QToolButton):
            continue
        if isinstance(widget, QLabel):
            if widget.wordWrap():
                continue
            text = widget.text()
            if widget.textFormat() == Qt.TextFormat.RichText or "<" in text:
                text = QTextDocumentFragment.fromHtml(text).toPlainText()
            need = max(widget.fontMetrics().horizontalAdvance(line) for line in text.splitlines() or [""])
            room = widget.contentsRect().width()
        else:
            need, room = widget.fontMetrics().horizontalAdvance(widget.text()), widget.width()
        if need > room:
            cut.append(f"{type(widget).__name__} {widget.text()[:40]!r}: {need} > {room}")
    return cut


def tabs_cut(bar: QTabBar) -> list[str]:
    return [bar.tabText(i) for i in range(bar.count())
            if bar.fontMetrics().horizontalAdvance(bar.tabText(i)) > bar.tabRect(i).width()
            or not bar.rect().contains(bar.tabRect(i))]


@pytest.mark.parametrize("scale", [1.0, 1.5])
def test_1280x720_fits_at_100_and_150_percent_without_scrollbars_or_cut_words(unstarted, qapp, scale):
    window = unstarted(1280, 720, scale)
    assert window.scale == scale
    assert (window.width(), window.height()) == (1280, 720), "the window is the size asked, not grown"
    min_hint = window.minimumSizeHint()
    assert min_hint.width() <= 1280 and min_hint.height() <= 720
    live = window.live
    assert live.isVisible(), "the window opens on Live"
    assert not [bar for bar in live.findChildren(QScrollBar) if bar.isVisible()]
    assert not cut_words(live), cut_words(live)
    header = window.findChild(QWidget, "Header")
    assert not cut_words(header), cut_words(header)
    assert not tabs_cut(window.tabs.tabBar()), tabs_cut(window.tabs.tabBar())
    layout = live.canvas.layout_now
    assert layout.fits(), "every box and word of the Live picture inside it, none over another"
    assert layout.text_scale >= scale, "the picture's words at the presenter scale at least"
    for button in (live.pause_button, live.step_button, live.buy_button, live.restock_button):
        assert button.isVisible() and window.rect().contains(button.mapTo(window, button.rect().bottomRight()))


def test_ctrl_0_restores_the_size_as_well_as_the_text(unstarted, qapp, qtbot):
    window = unstarted(1280, 720)
    for _ in range(4):  # to 200 %: the contents need more room than 1280×720 there
        qtbot.keyClick(window, Qt.Key.Key_Plus, Qt.KeyboardModifier.ControlModifier)
        settle(qapp)
    assert window.scale == 2.0
    assert window.width() <= 1280 + 40, "scaling up does not throw the window off a 1280 px screen"
    window.resize(1400, 800)  # whatever happened to the window meanwhile
    qtbot.keyClick(window, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    settle(qapp)
    assert window.scale == 1.0 and (window.width(), window.height()) == (1280, 720), "the size it had at 100 %"
    assert "font-size: 11.0pt" in QApplication.instance().styleSheet()


def test_the_window_never_opens_larger_than_the_screen(unstarted, monkeypatch):
    assert opening_size(1440, 920, QRect(0, 0, 1280, 680)) == QSize(1280, 680)
    assert opening_size(1024, 600, QRect(0, 0, 1280, 680)) == QSize(1024, 600)
    assert opening_size(1440, 920, None) == QSize(1440, 920), "no real screen (offscreen): as asked"
    monkeypatch.setattr(MainWindow, "_available", lambda self: QRect(0, 0, 1366, 700))
    window = unstarted(1440, 920)
    assert window.width() <= 1366 and window.height() <= 700


def test_the_live_pictures_words_never_overlap_and_grow_with_the_picture(qapp):
    """Item 7 as geometry: at every size and scale (and with the teaching-speed banner on) no
    box or word overlaps another; the banner leaves the caption alone; words grow with scale
    and with a large picture."""
    measure = FontMeasure(qapp.font())
    sizes = {}
    for width, height in ((740, 445), (739, 362), (900, 560), (1000, 640)):
        for scale in (1.0, 1.25, 1.5):
            for banner in (None, "Teaching speed: each message held 500 ms"):
                layout = lay_out(width, height, scale, CATALOGS, ORDERS, CATALOG_OF, measure, banner=banner)
                assert layout.fits(), (width, height, scale, banner)
                if banner:
                    assert not layout.words["banner"].intersects(layout.words["caption"])
                sizes[(width, height, scale)] = layout.text_scale
    assert sizes[(740, 445, 1.5)] > sizes[(740, 445, 1.0)]
    assert sizes[(1000, 640, 1.0)] > sizes[(740, 445, 1.0)], "node words grow in a large picture"


def test_message_labels_cover_no_node_words_no_caption_and_no_other_label(qapp):
    measure = FontMeasure(qapp.font())
    layout = lay_out(740, 445, 1.5, CATALOGS, ORDERS, CATALOG_OF, measure,
                     banner="Teaching speed: each message held 500 ms")
    links = list(layout.paths)
    flights = []
    for number in range(40):  # many messages on every link, at many places along it
        a, b = links[number % len(links)]
        text = "/rep/update/2 seq_n: 7 quantity: 4" if number % 3 else "/query/item/1"
        arrow = Arrow(number + 1, 0.0, a, b, ArrowKind.REQUEST, text, AnswerOutcome.NONE)
        flight = Flight(arrow, start=0.0, duration=1.0)
        flights.append((flight, (number * 0.137) % 1.0))
    bounds = QRectF(0, 0, 740, 445)
    placed = []
    for flight, progress in flights:
        placed += label_rects([flight], progress, layout, bounds, qapp.font())
    every = label_rects([f for f, _p in flights], 0.5, layout, bounds, qapp.font())
    assert every, "some labels are drawn"
    for i, rect in enumerate(every):
        assert bounds.contains(rect)
        assert not any(rect.intersects(o) for o in layout.obstacles()), "a label over a node's words or a caption"
        assert not any(rect.intersects(other) for other in every[i + 1:]), "two labels over each other"
    spots = place_labels([(QPointF(100, 100), rect.size()) for rect in every[:3]], [], bounds)
    assert all(s is not None for s in spots) and not spots[0].intersects(spots[1])


def test_scale_from_the_command_line_and_the_screenshot_is_exactly_the_size_asked(tmp_path):
    """``launcher.py --screenshot FILE --tab live --size 1280x720 --scale 1.5``: a real cluster,
    a short demo, and a picture exactly 1280×720 of the window at 150 %."""
    from launcher import build_parser

    assert build_parser().parse_args(["--scale", "1.5"]).scale == 1.5
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--scale", "9"])
    picture = tmp_path / "live.png"
    done = subprocess.run([sys.executable, str(ROOT / "launcher.py"), "--screenshot", str(picture), "--tab", "live",
                           "--size", "1280x720", "--scale", "1.5", "--demo", "1", "--data-dir", str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=100, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "warning" not in done.stderr, done.stderr[-2000:]
    image = QImage(str(picture))
    assert (image.width(), image.height()) == (1280, 720)


@pytest.mark.parametrize("scale", [1.0, 1.5])
def test_a_scenarios_diagram_keeps_the_current_step_in_view_at_720(unstarted, qapp, scale):
    """Item 18: at 1280×720 a figure's diagram is taller than its pane; every step scrolls it so
    that the step's arrow and its words are in view."""
    window = unstarted(1280, 720, scale)
    window.tabs.setCurrentWidget(window.scenarios)
    settle(qapp)
    hops = [Hop(i + 2, "catalog0" if i % 2 else "frontend", "catalog1" if i % 2 else "catalog0", f"GET /x/{i}",
                "200 OK", 200, 1.0, 1.0 + i * 0.01) for i in range(12)]
    stepper = window.scenarios.stepper
    stepper.show(Trace("t", "frontend", "GET", "/lookup/2", 200, 20.0, hops), 0)
    viewport = stepper.scroll_area.viewport()
    assert viewport.height() >= 100, "the diagram has room at 720 px"
    for step in (3, 9, 17, stepper.canvas.steps, 4):
        stepper.go(step)
        settle(qapp)
        top = stepper.scroll_area.verticalScrollBar().value()
        row = stepper.canvas.row_y(step)
        assert top <= row - 18 and row + 6 <= top + viewport.height(), f"step {step} out of view"


def test_a_played_scenarios_diagram_keeps_its_room_at_720(unstarted, qapp):
    """A new user's walk (2026-12-08): once S3 was played, its description, the status line,
    the tables and the verdict left the diagram 59 px at 1280×720, two messages. Played, the
    description moves to the title's tooltip and the verdict takes the sentence's place."""
    from nodes.session.scenarios import Outcome
    window = unstarted(1280, 720, 1.0)
    window.tabs.setCurrentWidget(window.scenarios)
    view = window.scenarios
    view.list.setCurrentRow(next(i for i, s in enumerate(view.scenarios) if s.id == "S3"))
    hops = [Hop(i + 2, "catalog0", "catalog1", "/rep/get/2 req: [] seq_n: 0", "200 OK", 200, 1.0, 1.0 + i * 0.01)
            for i in range(4)]
    scenario = view.scenarios[view.list.currentRow()]
    ends = [(0, False, 4)] * 5
    outcome = Outcome(scenario, Trace("t", "catalog0", "GET", "/query/item/2", 200, 23.8, hops), hops, [], 0.03,
                      ends, ends)
    view._played(outcome)
    view.stepper.go(view.canvas.steps)
    settle(qapp)
    assert not view.about.isVisible() and view.title.toolTip() == scenario.about
    assert view.verdict.isVisible() and not view.sentence.isVisible()
    assert view.verdict.text().startswith(f"Step {view.canvas.steps} of {view.canvas.steps}. ")
    assert "after 23.8 ms there (30 ms at the client)" in view.verdict.text()
    row = view.canvas.row_y(3) - view.canvas.row_y(2)
    assert view.stepper.scroll_area.viewport().height() >= 3.5 * row, "four messages in view (59 px before)"


class _Recorder:
    """A painter that keeps the words drawn."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def setFont(self, font: object) -> None:  # noqa: N802 (QPainter's names)
        pass

    def setPen(self, pen: object) -> None:  # noqa: N802
        pass

    def drawText(self, rect: object, flags: object, text: str) -> None:  # noqa: N802
        self.texts.append(text)


def test_a_nodes_facts_are_drawn_whole_or_not_at_all(qapp) -> None:
    """At 150 % an order card's "its catalog is out" was drawn as "its catalog is": the lines
    ran out mid-fact, and half a sentence says something else."""
    from PySide6.QtGui import QFont

    from gui.live.layout import FACT_PX, Layout, wrap
    from gui.live.painter import StillPainter

    still = object.__new__(StillPainter)
    recorder = _Recorder()
    still.painter, still.layout, still.base, still.scale = recorder, Layout(text_scale=1.5), QFont(), 1.5
    still.measure = FontMeasure(still.base)
    px = still.layout.px(FACT_PX)
    pairs = ("alpha beta", "gamma delta", "epsilon zeta", "eta theta")
    width = max(still.measure.width(pair, px) for pair in pairs) + 2
    first, second = "alpha beta gamma delta", "epsilon zeta eta theta"
    assert len(wrap(first, still.measure, px, False, width)) == 2 == len(wrap(second, still.measure, px, False, width))
    still.facts_lines([(first, "#000"), (second, "#000")], QRectF(0, 0, width, 200), 0, 3)
    assert recorder.texts == wrap(first, still.measure, px, False, width), recorder.texts
    recorder.texts.clear()
    still.facts_lines([(first, "#000")], QRectF(0, 0, width, 200), 0, 1)
    assert recorder.texts == [wrap(first, still.measure, px, False, width)[0] + " …"], recorder.texts

"""Issue 24 item 4, in the window: the space-time view draws a range of what the model holds,
the layout's own shapes; a click on a message says which request it belongs to; it zooms, fits
and exports the picture as SVG, at 1280×720 and at presenter scale 150 %."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from PySide6.QtCore import QPoint, Qt

from gui.spacetime import ShapesItem, SpaceTimeView
from nodes.observe.arrows import ArrowKind
from tests.unit.test_spacetime import CRASH, START, fed, session

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def view(qtbot):
    inputs, _blamed = session()
    widget = SpaceTimeView(fed(inputs))
    qtbot.addWidget(widget)
    widget.resize(1280, 720)
    widget.show()
    qtbot.waitExposed(widget)
    widget.show_range(START + 1.5, START + 5.0, origin=START, title="a check run")
    return widget


def _on_screen(view: SpaceTimeView, x: float, y: float) -> QPoint:
    """Scroll (x, y) of the picture into view, and where it is on the view's viewport."""
    view.view.centerOn(x, y)
    return view.view.mapFromScene(x, y)


def test_the_view_draws_the_ranges_messages_as_the_layout_places_them(view) -> None:
    layout = view.layout_now
    assert layout is not None and view.picture is not None
    assert len(layout.messages) == len(view.picture.messages) > 100
    drawn = [item for item in view.scene.items() if isinstance(item, ShapesItem)]
    assert len(drawn) == len(layout.items), "every item of the layout, once"
    assert layout.width <= view.view.viewport().width(), "no sideways scrolling at 1280 px"
    assert any(band.node == "catalog2" for band in layout.bands)
    assert "messages" in view.caption.text()


def test_clicking_a_message_chooses_its_trace(view, qtbot) -> None:
    layout = view.layout_now
    drawn = next(d for d in layout.messages[40:] if d.arrow.kind == ArrowKind.REQUEST and d.arrow.source == "frontend"
                 and abs(d.x2 - d.x1) > 200)
    x, y = drawn.x1 + (drawn.x2 - drawn.x1) * 0.4, drawn.y1 + (drawn.y2 - drawn.y1) * 0.4
    point = _on_screen(view, x, y)
    with qtbot.waitSignal(view.trace_chosen, timeout=2000) as chosen:
        qtbot.mouseClick(view.view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert chosen.args == [drawn.arrow.trace]
    assert view.view.trace_at(point.x(), point.y()) == drawn.arrow.trace
    tip = next(item.item.tip for item in view.view.items(point) if isinstance(item, ShapesItem) and item.item.trace)
    assert drawn.arrow.text in tip


def test_zoom_keeps_the_moment_in_the_middle_and_fit_shows_the_whole_range(view) -> None:
    before = view.layout_now
    middle = view.view.viewport().height() / 2
    view.view.verticalScrollBar().setValue(600)
    moment = before.time_at(view.view.mapToScene(0, int(middle)).y())
    view.zoom_in.click()
    after = view.layout_now
    assert view.zoom == pytest.approx(1.25) and after.bottom - after.top > before.bottom - before.top
    assert after.time_at(view.view.mapToScene(0, int(middle)).y()) == pytest.approx(moment, abs=0.05)
    view.fit_button.click()
    fitted = view.layout_now
    shown = view.view.mapToScene(view.view.viewport().rect()).boundingRect()
    assert shown.top() <= fitted.names_y and fitted.bottom <= shown.bottom() + 1, "the whole range in view"
    assert view.zoom < 1


def test_export_writes_the_svg_of_what_is_shown(view, tmp_path) -> None:
    path = view.export_svg(tmp_path / "range.svg")
    root = ET.parse(path).getroot()
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "a check run" in texts and "catalog2 down" in texts and "stale read" in texts
    traces = {g.get("data-trace") for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("data-trace")}
    assert traces == {d.arrow.trace for d in view.layout_now.messages}


def test_at_presenter_scale_the_words_grow_and_still_fit_the_width(view) -> None:
    small = view.layout_now
    view.set_scale(1.5)
    large = view.layout_now
    assert large.scale == 1.5 and large.names_h == pytest.approx(small.names_h * 1.5)
    assert large.width <= view.view.viewport().width()
    band = next(b for b in large.bands if b.node == "catalog2")
    assert band.fault.t == START + CRASH[0]


def test_in_a_small_view_a_new_range_opens_at_the_nodes_names(view) -> None:
    assert view.view.verticalScrollBar().value() == 0  # 1280×720: the title and key fit above
    view.resize(853, 300)  # 1280×720 at 150 %, less the window's own rows
    view.set_scale(1.5)
    view.view.verticalScrollBar().setValue(0)
    view.show_range(START + 1.5, START + 5.0, origin=START, title="a check run")
    layout = view.layout_now
    assert layout.names_y > view.view.viewport().height() / 3
    assert view.view.verticalScrollBar().value() == int(layout.names_y)

"""Issue 23 item 18: at 1280×720 the Scenarios and Flow diagrams get little height, so the
diagram scrolls to the step shown: its arrow and words are in view whatever the step."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QVBoxLayout, QWidget

from gui.flow import TraceStepper
from nodes.observe.traces import Hop, Trace

pytestmark = pytest.mark.timeout(60)


def long_trace(hops: int) -> Trace:
    names = ["frontend", "catalog0", "catalog1", "catalog2"]
    return Trace("t", "frontend", "GET", "/lookup/2", 200, 12.0, hops=[
        Hop(n + 2, names[n % 3], names[n % 3 + 1], f"/rep/get/2 req: [] seq_n: {n}", "200 OK", 200, 1.0, float(n))
        for n in range(hops)])


def test_stepping_keeps_the_current_step_in_view_of_a_low_pane(qtbot):
    stepper = TraceStepper(first_last=True)
    host = QWidget()  # as the Scenarios and Flow tabs hold it: the diagram area in a layout
    QVBoxLayout(host).addWidget(stepper.area)
    qtbot.addWidget(host)
    qtbot.addWidget(stepper)
    host.resize(900, 220)  # about the diagram's share of a 720-px window
    host.show()
    qtbot.waitExposed(host)
    stepper.show(long_trace(14), 0)
    viewport = stepper.scroll_area.viewport()
    bar = stepper.scroll_area.verticalScrollBar()
    seen_bottom = []
    for step in range(1, stepper.canvas.steps + 1):
        stepper.go(step)
        qtbot.wait_until(lambda: True)  # let Qt lay the diagram out, as the singleShot asks
        y = stepper.canvas.row_y(step)
        assert bar.value() <= y - 6 and y + 12 <= bar.value() + viewport.height(), \
            f"step {step} at y {y:.0f} is out of view ({bar.value()}–{bar.value() + viewport.height()})"
        seen_bottom.append(bar.value())
    assert seen_bottom[-1] > 0, "a long trace's last step needs the diagram scrolled"
    stepper.go(1)
    assert bar.value() <= stepper.canvas.row_y(1)

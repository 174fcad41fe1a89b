"""Issue 23: a class can follow a buy step by step. On a real 3 + 3 cluster, a buy made while
the Live screen is paused is stepped through in causal order — the shopper's request, then the
front-end's call to an order replica, then that replica's calls to its catalog replica (and
theirs to their peers), each answer after every call it waited for, the shopper's answer last —
and the Flow tab draws it in the same order. The order comes from the spans the nodes record
(every hop names the span it was sent for), not from when the window heard of each message.
The window also opens on Live with empty caches (item 20), and Ctrl+Q, F1 and Help work."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut

from nodes.observe.arrows import ArrowKind, told
from nodes.observe.traces import StepKind
from tests.support import open_window, wait_until

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    """One real window over a real 3 + 3 cluster for the module (its last test quits it)."""
    yield from open_window(qapp, tmp_path_factory.mktemp("causal"), size=(1280, 720))


def latest_trace(model, path: str):
    for trace_id in reversed(model.trace_ids()):
        trace = model.trace(trace_id)
        if trace.path == path and trace.status is not None:
            return trace
    return None


def assert_causal(messages) -> None:
    """Each call after the message that caused it; each answer after its call and, if it came,
    after every call made while serving it; the shopper's answer after everything before it."""
    seen: set[str | None] = set()
    request_span = None
    for index, message in enumerate(messages):
        item = told(message)
        if item.kind == StepKind.REQUEST:
            request_span = item.span
        elif item.kind == StepKind.CALL:
            assert item.parent in seen or item.parent == request_span, f"step {index + 1} before its cause: {message}"
        elif item.kind == StepKind.ANSWER:
            assert item.span in seen, f"step {index + 1}, an answer before its call: {message}"
            callees = [m for m in messages if told(m).kind == StepKind.CALL and m.parent == item.span]
            if item.answered:
                later = [m for m in callees if messages.index(m) > index]
                assert not later, f"step {index + 1} answers before the calls it waited for: {later}"
        if item.kind in (StepKind.REQUEST, StepKind.CALL):
            seen.add(item.span)
    assert told(messages[-1]).kind == StepKind.REPLY, "the shopper's answer comes last"


def test_the_window_opened_on_live_and_its_caches_start_empty(window):
    """Item 20: no other tab was shown while the cluster started, and the front-end's caches
    hold nothing a person did not ask for (the shop no longer searches on its own at start)."""
    assert window.tabs.currentWidget() is window.live
    assert window.model.caches["lookup"].keys == [] and window.model.caches["search"].keys == []


def test_a_buy_is_stepped_client_frontend_order_catalog_in_causal_order(window, qtbot):
    model, live, supervisor = window.model, window.live, window.session.supervisor
    window.tabs.setCurrentWidget(live)
    window.run(supervisor.wait_settled(30))
    window.run(window.controller.restock(2, 5))  # a buy that buys: the order replica writes
    window.run(wait_until(lambda: not live.canvas.flights and not live.canvas.pending, 10, "a quiet picture"))
    qtbot.mouseClick(live.pause_button, Qt.MouseButton.LeftButton)
    outcome = window.run(window.controller.buy(2))
    assert outcome.kind == "bought", outcome
    window.run(wait_until(lambda: latest_trace(model, "/buy/2") is not None, 10, "the buy's trace"))
    trace = latest_trace(model, "/buy/2")
    mine = lambda: [m for m in model.arrows.after(live.paused_at) if m.trace == trace.id]  # noqa: E731
    window.run(wait_until(lambda: any(m.target == "client" for m in mine()), 10, "the shopper's answer heard of"))
    assert all(hop.span and hop.parent is not None or hop.source == "frontend" for hop in trace.hops), trace.hops

    # The buttons are brought up to date on the window's next turn, not the moment a message lands.
    window.run(wait_until(lambda: live.step_button.isEnabled(), 5, "Step enabled for the buy's messages"))
    stepped = []
    for _ in range(2000):
        if not live.step_button.isEnabled():
            break
        qtbot.mouseClick(live.step_button, Qt.MouseButton.LeftButton)
        if live.stepped_message() not in stepped:
            stepped.append(live.stepped_message())
    ours = [m for m in stepped if m.trace == trace.id]
    assert sorted(m.number for m in ours) == sorted(m.number for m in mine()), "every message of the buy, once"
    route = [(m.source, m.target) for m in ours if m.kind == ArrowKind.REQUEST]
    order = route[1][1]
    assert route[0] == ("client", "frontend")
    assert route[1] == ("frontend", order) and order.startswith("order"), route
    assert route[2] == (order, model.catalog_of[order]), route
    assert_causal(ours)
    # Back and Step again show the same messages.
    qtbot.mouseClick(live.back_button, Qt.MouseButton.LeftButton)
    assert live.stepped_message() == stepped[-2]
    qtbot.mouseClick(live.pause_button, Qt.MouseButton.LeftButton)

    # The Flow tab tells the same buy in the same order.
    window.tabs.setCurrentWidget(window.flow)
    window.flow.follow.setChecked(False)
    window.flow.show(trace.id)
    rows = window.flow.canvas.rows
    assert (rows[0].kind, rows[0].source, rows[0].target) == (StepKind.REQUEST, "client", "frontend")
    assert (rows[1].kind, rows[1].source, rows[1].target) == (StepKind.CALL, "frontend", order)
    assert (rows[2].kind, rows[2].source) == (StepKind.CALL, order)
    assert rows[-1].kind == StepKind.REPLY
    calls = [r for r in rows if r.kind == StepKind.CALL]
    assert [r.hop.number for r in calls] == list(range(2, len(calls) + 2)), "hops numbered as they are told"
    answer_to_order = next(i for i, r in enumerate(rows) if r.kind == StepKind.ANSWER and r.source == order)
    assert all(i < answer_to_order for i, r in enumerate(rows) if r.kind == StepKind.CALL and r.source == order), \
        "the order replica answers after its own calls"


def test_help_lists_the_shortcuts_and_the_lesson_and_ctrl_q_quits(window, qtbot):
    """Item 20: Ctrl+Q quits (stopping every node) and Help lists the shortcuts and opens the
    lesson. (Last in the module: it closes the window.)"""
    menu = window.help_button.menu()
    texts = [a.text() for a in menu.actions()]
    assert any(t.startswith("Keyboard shortcuts") for t in texts) and any("teaching.md" in t for t in texts)
    lesson = next(a for a in menu.actions() if "teaching.md" in a.text())
    teaching = ROOT / "docs" / "teaching.md"
    assert Path(lesson.data().toLocalFile()) == teaching and teaching.exists()
    box = window.show_shortcuts()
    assert "Ctrl+Q" in box.text() and "Ctrl 0" in box.text()
    box.close()
    quit_keys = [s for s in window.findChildren(QShortcut) if s.key() == QKeySequence("Ctrl+Q")]
    assert quit_keys, "Ctrl+Q is a shortcut"
    quit_keys[0].activated.emit()
    window.run(window.stopped.wait(), 60)
    assert all(node.proc is None or node.proc.poll() is not None for node in window.session.supervisor.nodes.values())

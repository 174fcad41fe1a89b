"""The real window over a real cluster, driven with pytest-qt on a qasync loop."""
from __future__ import annotations

import asyncio
import os
import time

import pytest
from PySide6.QtCore import Qt

from tests.support import wait_until

pytestmark = pytest.mark.timeout(180)


def test_a_buy_updates_the_stock_shown_and_the_order_history(window, qtbot):
    shop = window.shop
    window.tabs.setCurrentWidget(shop)
    shop.query.setText("rpc")
    qtbot.keyClick(shop.query, Qt.Key.Key_Return)
    window.run(wait_until(lambda: shop.results.rowCount() == 0 or shop.book_id is not None, what="search results"))
    shop.query.setText("distributed")
    qtbot.mouseClick(shop.search_button, Qt.MouseButton.LeftButton)
    window.run(wait_until(lambda: shop.results.rowCount() == 2, what="two books about distributed systems"))
    shop.results.selectRow(1)
    window.run(wait_until(lambda: shop.title.text() == "RPCs for Dummies" and shop.stock.text() == "5",
                     what="book 2's details"))
    qtbot.mouseClick(shop.buy_button, Qt.MouseButton.LeftButton)
    window.run(wait_until(lambda: shop.stock.text() == "4", what="the stock shown to drop to 4"))
    assert shop.answer.text() == "Bought. Enjoy your book!"
    window.run(wait_until(lambda: shop.history.rowCount() == 1, what="one order in the history"))
    assert shop.history.item(0, 4).text() == "RPCs for Dummies"
    qtbot.keyClick(shop.results, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)  # Ctrl+B buys again
    window.run(wait_until(lambda: shop.stock.text() == "3", what="a keyboard buy"))


def test_a_search_answered_after_the_next_one_never_stands_under_it(window, qtbot):
    """A full-suite run (2026-12-07) saw "distributed" typed and searched and no results for
    15 s: the "rpc" search before it, answered later, had put its own (none) on show. Here the
    first search's answer is held back, by the real cluster's answer, until the second is in."""
    shop, controller = window.shop, window.session.controller
    window.tabs.setCurrentWidget(shop)
    asked = controller.search
    second_in, first_over = asyncio.Event(), asyncio.Event()
    first_asked, first_answered = [], []  # dropped before it ran, the first asks nothing

    async def search(topic: str):
        if topic == "rpc":
            first_asked.append(topic)
        try:
            answer = await asked(topic)
            if topic == "rpc":
                await second_in.wait()
                first_answered.append(answer)
            return answer
        finally:  # answered or dropped; the shop's own step after it runs before any waiter wakes
            if topic == "rpc":
                first_over.set()

    controller.search = search
    try:
        shop.query.setText("rpc")
        qtbot.keyClick(shop.query, Qt.Key.Key_Return)
        shop.query.setText("distributed")
        qtbot.mouseClick(shop.search_button, Qt.MouseButton.LeftButton)
        window.run(wait_until(lambda: shop.results.rowCount() == 2, what="two books about distributed systems"))
        second_in.set()
        if first_asked:
            window.run(first_over.wait(), 15)
        assert shop.results.rowCount() == 2 and "No book" not in shop.answer.text()
        assert not first_answered, "the first search was not dropped"
    finally:
        controller.search = asked


def test_a_crash_shows_the_node_down_and_the_next_lookup_still_succeeds(window, qtbot):
    window.tabs.setCurrentWidget(window.cluster_view)
    card = window.cluster_view.cards["catalog1"]
    qtbot.mouseClick(card.crash_button, Qt.MouseButton.LeftButton)
    window.run(wait_until(lambda: "down" in card.status.text(), what="catalog1's card to say down"))
    assert card.crash_button.text() == "Start"
    ok, book = window.run(window.session.shop.lookup(3))
    assert ok and book["title"] == "Xen and the Art of Surviving Graduate School"
    qtbot.mouseClick(card.crash_button, Qt.MouseButton.LeftButton)  # Start: the undo
    window.run(wait_until(lambda: window.session.supervisor.node("catalog1").state == "up", what="catalog1 up again"))


def test_after_a_read_the_replica_grid_shows_the_book_bold_where_it_is_valid(window):
    window.tabs.setCurrentWidget(window.replicas)
    ok, _ = window.run(window.session.shop.lookup(5))
    assert ok
    supervisor = window.session.supervisor

    async def valid_marks() -> list[bool]:
        states = [await supervisor.state(n.name) for n in supervisor.of_role("catalog")]
        return [next(b for b in s["books"] if b["id"] == 5)["valid"] for s in states]

    marks = window.run(valid_marks())
    assert any(marks)  # the read marked the replicas on its path valid

    def grid_bold() -> list[bool]:
        grid = window.replicas.grid
        return [grid.data(grid.index(4, column), Qt.ItemDataRole.FontRole).bold() for column in range(3)]

    window.run(wait_until(lambda: grid_bold() == marks, what="the grid to show book 5 bold where it is valid"))
    assert window.replicas.row.servers[0].known


def test_the_latency_chart_receives_points_from_the_load_generator(window):
    window.tabs.setCurrentWidget(window.charts)
    window.charts.rate.setValue(100)
    window.charts.toggle_load()
    assert window.session.load.running

    def points() -> int:
        return len(window.charts.points["lookup"].data)

    window.run(wait_until(lambda: points() > 20, what="lookup points on the latency chart"))
    window.charts.toggle_load()
    window.run(wait_until(lambda: not window.session.load.running, what="the load to stop"))


def test_closing_the_window_leaves_no_node_process(window):
    pids = [n.pid for n in window.session.supervisor.nodes.values()]
    assert all(pids)
    window.close()
    window.run(window.stopped.wait(), 30)

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"

    assert all(gone(pid) for pid in pids)


def test_the_scenarios_tab_plays_a_figure_to_its_verdict(window):
    view = window.scenarios
    window.tabs.setCurrentWidget(view)
    view.list.setCurrentRow(next(i for i, s in enumerate(view.scenarios) if s.id == "S2"))
    view.speed.setCurrentText("4×")
    view.play_button.click()
    window.run(wait_until(lambda: view.verdict.isVisible(), 90, "the scenario to play to its end"), 120)
    assert "Matches read_some_outdated.png: hops 0 → 1 → 2" in view.verdict.text()
    # The request, two hops and their answers, the answer; said in the verdict's place.
    assert view.verdict.text().startswith("Step 6 of 6. The answer goes back to the client: 200 after ")
    assert not view.sentence.isVisible()
    assert [(c.replica, c.seq, c.valid) for c in view.after.servers] == [
        (0, 2, True), (1, 2, True), (2, 2, True), (3, 2, False), (4, 2, False)]


def test_a_chart_drawn_in_steps_ends_as_a_full_draw_and_paints_once(qtbot):
    """The periodic redraw sets one series per turn of the loop with painting held until the
    last; it must end exactly where a full draw ends, and a full draw in between wins."""
    import random

    from gui.charts import LatencyChart
    from nodes.observe.latency import Sample
    from nodes.observe.model import ClusterModel
    from nodes.observe.views import Mark, MarkKind

    model = ClusterModel({"frontend": "http://127.0.0.1:1"})
    rng = random.Random(3)
    now = time.time()
    for series, count in (("lookup", 900), ("buy", 120), ("out of stock", 40), ("search", 200)):
        for i in range(count):
            model.latency.add(series, Sample(now - 50 + 50 * i / count, rng.expovariate(1 / 5), 200))
    model.marks.append(Mark(now - 20, "catalog2", MarkKind.FAULT, "catalog2 hung"))
    stepped, full = LatencyChart(model, "stepped"), LatencyChart(model, "full")
    for chart in (stepped, full):
        qtbot.addWidget(chart)
        chart.resize(500, 300)
        chart.show()
    texts = []
    stepped.draw_in_steps(texts.append)
    assert not stepped.updatesEnabled()  # painting held while the series are set
    qtbot.waitUntil(lambda: len(texts) == 1, timeout=5000)
    assert stepped.updatesEnabled()
    full.draw()
    assert texts == [full.text] and "lookup: 900" in full.text
    for series in stepped.points:
        got, want = stepped.points[series].getData(), full.points[series].getData()
        assert len(got[0]) == len(want[0]) > 0 or series == "failed buy"
        assert abs(got[1].sum() - want[1].sum()) < 1e-6  # the same latencies; times differ by "now" only
    assert [m.text for m in (line.mark for line in stepped.marks)] == ["catalog2 hung"]

    stepped.draw_in_steps(texts.append)
    stepped.draw()  # a full draw while one is under way: the steps stop, painting is back on
    assert stepped.updatesEnabled()
    qtbot.wait(50)
    assert len(texts) == 1

    def broken(*args, **kwargs):
        raise RuntimeError("a series that cannot be drawn")

    model.latency.rolling = broken
    with qtbot.captureExceptions() as raised:
        stepped.draw_in_steps(texts.append)
        qtbot.waitUntil(lambda: len(raised) == 1, timeout=5000)
    assert stepped.updatesEnabled() and stepped._stepping is None, "a failed redraw leaves painting on"
    del model.latency.rolling
    stepped.draw_in_steps(texts.append)  # and the next one runs
    qtbot.waitUntil(lambda: len(texts) == 2, timeout=5000)

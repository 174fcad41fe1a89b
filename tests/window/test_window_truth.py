"""Issue 13: the window tells one truth. Every view draws the model; actions go through the
controller and never stall the window. Real node processes, conditions waited on with
deadlines (``until`` runs the window's own loop meanwhile)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from gui.cluster import LogDialog
from gui.scenarios import ScenariosView
from nodes.bench.common import Table
from nodes.observe.traces import Hop, Trace, causal_steps
from tests.support import cpu_wait_ms, wait_until

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[2]


def health_texts(window, name: str) -> dict[str, str]:
    """What each view says about one node."""
    card = window.cluster_view.cards[name]
    texts = {"header": window.health.text(), "card": card.status.text(),
             "cluster summary": window.cluster_view.summary.text()}
    if name.startswith("catalog"):
        column = window.replicas.catalogs.index(name)
        texts["replicas column"] = window.replicas.grid.headerData(column, Qt.Orientation.Horizontal)
    return texts


def test_every_view_agrees_on_each_node_state_and_the_log_tells_it(window, qtbot):
    controller, model = window.controller, window.model
    order_of_catalog0 = next(o for o, c in model.catalog_of.items() if c == "catalog0")
    steps = [
        ("hung", controller.hang("catalog0"), controller.resume("catalog0")),
        ("slow", controller.slow("catalog0", 300), controller.slow("catalog0", 0)),
        ("cut off", controller.cut_off("catalog0", True), controller.cut_off("catalog0", False)),
        ("down", controller.crash("catalog0"), controller.start("catalog0")),
    ]
    for state, do, undo in steps:
        window.run(do)
        window.run(wait_until(lambda s=state: model.health("catalog0").state == s, 10, f"catalog0 {state}"))
        health = model.health("catalog0")
        up, total, _ = model.summary()
        # Issue 23: a slowed or cut-off node is up (degraded); a hung or crashed one is not.
        assert up == total - 1 if state in ("hung", "down") else up == total

        def agreed(health=health, up=up, total=total) -> bool:
            texts = health_texts(window, "catalog0")
            counts = f"{up} of {total} nodes up"
            return (counts in texts["header"] and counts in texts["cluster summary"]
                    and health.label in texts["card"] and health.label in texts["replicas column"]
                    and "Ready: 7 nodes up" not in window.message.text())

        window.run(wait_until(agreed, 5, f"every view to say catalog0 is {state}: {health_texts(window, 'catalog0')}"))
        if state == "cut off":
            # W2 stays visible: a cut-off replica's marks are drawn, not hidden as "down".
            assert "down" not in window.replicas.grid.text(1, 0)
        if state in ("hung", "down"):
            card = window.cluster_view.cards[order_of_catalog0]
            window.run(wait_until(lambda c=card: "catalog0" in c.note.text() and not c.note.isHidden(), 5,
                             "the order card to say its catalog is out"))
        window.run(undo)
        window.run(wait_until(lambda: model.health("catalog0").state == "up" and model.nodes["catalog0"].connected, 30,
                         "catalog0 up again"))

    window.run(wait_until(lambda: "1 of 7" not in window.health.text() and "7 of 7 nodes up" in window.health.text(), 5,
                     "the header to say all up"))
    dialog = LogDialog(model, controller, "catalog0", window)
    told = dialog.events.toPlainText()
    for words in ("hung (SIGSTOP)", "resumed", "slowed by 300 ms", "back to normal speed", "cut off", "healed",
                  "crashed or stopped", "up and answering"):
        assert words in told, words
    assert "hung (SIGSTOP)" in controller.log_tail("catalog0")  # the file tells it too (headless `log`)
    message = window.run(controller.reset())
    assert "reset" in message
    window.run(wait_until(lambda: any("reset" in line.text for line in model.logs["catalog0"]), 5, "a reset line"))


def test_the_network_bar_cuts_a_link_on_the_real_nodes_and_every_view_says_so(window, qtbot):
    """Issue 16: a partition from the window. Cutting catalog0 -> catalog1 one way reaches the
    two processes (catalog1 no longer hears catalog0; catalog0 still hears catalog1), the
    cards and the bar tell it from the model, and Restore brings every link back."""
    model, supervisor, bar = window.model, window.session.supervisor, window.cluster_view.network
    window.tabs.setCurrentWidget(window.cluster_view)
    bar.sender.setCurrentText("catalog0")
    bar.receiver.setCurrentText("catalog1")
    bar.one_way.setChecked(True)
    assert bar.cut_button.text() == "Cut link" and not bar.restore_button.isEnabled()
    qtbot.mouseClick(bar.cut_button, Qt.MouseButton.LeftButton)
    window.run(wait_until(lambda: model.cut_links() == [("catalog0", "catalog1")] and not bar.busy, 10, "the cut"))
    assert any(m.kind == "fault" and m.text == "link catalog0 → catalog1 cut" for m in model.marks)  # on the charts
    sender, receiver = (window.run(supervisor.state(name)) for name in ("catalog0", "catalog1"))
    assert sender["mute_to"] == ["catalog1"] and sender["deaf_to"] == []
    assert receiver["deaf_to"] == ["catalog0"] and receiver["mute_to"] == []
    assert "catalog0 → catalog1" in bar.links.text() and bar.cut_button.text() == "Restore link"
    window.run(wait_until(lambda: "links cut: catalog0 → catalog1" in window.health.text(), 5, "the header to say it"))
    cards = window.cluster_view.cards
    window.run(wait_until(lambda: "catalog1 no longer hears it" in cards["catalog0"].note.text()
                     and "it no longer hears catalog0" in cards["catalog1"].note.text(), 5, "the cards to say it"))
    assert "1 link cut" in cards["catalog0"].status.text()

    bar.one_way.setChecked(False)  # the other direction too: catalog0 <-> catalog1
    qtbot.mouseClick(bar.cut_button, Qt.MouseButton.LeftButton)
    window.run(wait_until(lambda: len(model.cut_links()) == 2 and not bar.busy, 10, "the two-way cut"))
    assert "catalog0 ↔ catalog1" in bar.links.text()
    qtbot.mouseClick(bar.restore_button, Qt.MouseButton.LeftButton)
    window.run(wait_until(lambda: model.cut_links() == [] and not bar.busy, 10, "every link restored"))
    assert any(m.kind == "heal" and m.text == "link catalog1 → catalog0 restored" for m in model.marks)
    for name in ("catalog0", "catalog1"):
        state = window.run(supervisor.state(name))
        assert state["deaf_to"] == [] and state["mute_to"] == []
    assert bar.links.text() == "Every link delivers." and not cards["catalog0"].note.isVisible()
    assert "links cut" not in window.health.text()


def test_a_restart_with_the_window_open_exits_0_is_back_within_4_s_and_never_stalls_the_window(window, qtbot):
    # The front-end: a node every view depends on, and one whose process starts without the
    # order and catalog replicas' database layer (whose import alone takes ~2 s on a busy
    # 2-core machine). Alone it is back in under 1 s (0.66 s here); the bound is generous because the other
    # test worker shares the two cores (2.13 s was seen under a 2 s bound).
    model, session = window.model, window.session
    window.tabs.setCurrentWidget(window.cluster_view)
    window.run(wait_until(lambda: model.nodes["frontend"].connected, 10, "the window to follow the front-end"))
    old = session.supervisor.node("frontend").proc
    late_ms: list[tuple[float, float]] = []  # (how late, of which waiting for a CPU), ms

    async def watch_the_loop() -> None:  # how late the window's loop wakes up, every 10 ms
        while True:
            t0, waited0 = time.perf_counter(), cpu_wait_ms()
            await asyncio.sleep(0.01)
            late_ms.append(((time.perf_counter() - t0 - 0.01) * 1000, cpu_wait_ms() - waited0))

    watcher = asyncio.ensure_future(watch_the_loop())
    clicked = time.monotonic()
    qtbot.mouseClick(window.cluster_view.cards["frontend"].restart_button, Qt.MouseButton.LeftButton)
    window.run(wait_until(lambda: old.returncode is not None and model.health("frontend").state == "up"
                     and model.nodes["frontend"].connected and session.supervisor.node("frontend").proc is not old,
                     10, "the front-end back"))
    back_after = time.monotonic() - clicked
    watcher.cancel()
    assert old.returncode == 0, "a clean stop, not SIGKILL after the grace period"
    assert back_after < 4.0, f"the front-end took {back_after:.2f} s to come back"
    # A stall is the window's own: its work or a wait it blocks on. The time its thread was
    # ready but the other test worker's processes had both cores is the machine's, not the window's.
    assert len(late_ms) > 10
    late, waited = max(late_ms, key=lambda lw: lw[0] - lw[1])
    assert late - waited < 100, f"the window's loop stalled {late - waited:.0f} ms ({late:.0f} ms late, " \
                                f"{waited:.0f} of them waiting for a CPU)"


def test_a_buy_whose_outcome_is_unknown_says_so_and_can_be_looked_up_by_its_id(window, qtbot):
    shop, controller = window.shop, window.controller
    window.tabs.setCurrentWidget(shop)
    shop.query.setText("distributed")
    qtbot.keyClick(shop.query, Qt.Key.Key_Return)
    window.run(wait_until(lambda: shop.book_id == 1 and shop.buy_button.isEnabled(), 10, "book 1 chosen"))
    window.session.shop.buy_timeout = 1.5
    window.run(controller.hang("frontend"))
    qtbot.mouseClick(shop.buy_button, Qt.MouseButton.LeftButton)
    window.run(wait_until(lambda: shop.answer.text().startswith("Outcome unknown"), 15, "the shop to say unknown"))
    assert "Nothing was bought" not in shop.answer.text()
    buy_id = shop.unknown_buy
    assert buy_id and buy_id in shop.answer.text() and shop.look_up_button.isVisible()
    window.run(controller.resume("frontend"))

    window.run(wait_until(lambda: window.model.health("frontend").state == "up", 10, "the front-end back"))
    qtbot.mouseClick(shop.look_up_button, Qt.MouseButton.LeftButton)
    window.run(wait_until(lambda: "went through" in shop.answer.text() or "not carried out" in shop.answer.text(), 15,
                     "the look-up to learn the outcome"))
    assert buy_id in shop.answer.text()


def test_buys_and_out_of_stock_answers_are_separate_series_and_the_shop_stays_truthful(window, qtbot):
    shop, model, charts = window.shop, window.model, window.charts
    window.tabs.setCurrentWidget(shop)
    shop.query.setText("cooking")
    qtbot.keyClick(shop.query, Qt.Key.Key_Return)
    window.run(wait_until(lambda: "No book's topic contains" in shop.answer.text(), 10, "nothing found"))
    assert "by topic" in shop.answer.text()
    shop.query.setText("distributed")
    qtbot.keyClick(shop.query, Qt.Key.Key_Return)
    window.run(wait_until(lambda: shop.results.rowCount() == 2 and not shop.answer.isVisible(), 10,
                     "a later search to clear the old answer"))
    shop.results.selectRow(1)
    window.run(wait_until(lambda: shop.book_id == 2 and shop.stock.text() == "5", 10, "book 2 with 5 in stock"))
    for _ in range(6):
        window.run(window.controller.buy(2))
    window.run(wait_until(lambda: len(model.latency["buy"]) == 5 and len(model.latency["out of stock"]) == 1, 10,
                     "five buys and one out-of-stock answer, apart"))
    window.tabs.setCurrentWidget(charts)
    window.run(wait_until(lambda: len(charts.points["buy"].data) == 5 and len(charts.points["out of stock"].data) == 1,
                     5, "the chart to draw them as two series"))
    legend = [label.text for _sample, label in charts.latency_plot.plotItem.legend.items]
    assert any("p95" in text for text in legend) and any("out of stock" in text for text in legend)
    window.tabs.setCurrentWidget(shop)
    shop.results.selectRow(0)
    shop.results.selectRow(1)
    window.run(wait_until(lambda: shop.stock.text().startswith("0") and not shop.buy_button.isEnabled(), 10,
                     "Buy disabled at stock 0"))
    # The front-end gone: the book's details go with it and the words are plain.
    window.run(window.controller.crash("frontend"))
    shop.results.selectRow(0)
    window.run(wait_until(lambda: "could not be loaded" in shop.title.text(), 10, "the lookup to fail"))
    assert shop.price.text() == "—" and shop.stock.text() == "—"
    assert "Error" not in shop.answer.text() and "could not be reached" in shop.answer.text()
    texts = [w.text() for w in window.cache.findChildren(type(shop.title))]
    assert not any("(and its topic)" in text for text in texts)


def test_sequence_diagrams_draw_each_answer_after_every_hop_it_waited_for(window, qtbot):
    flow = window.flow
    window.tabs.setCurrentWidget(flow)
    outcome = window.run(window.controller.buy(4))  # a cold buy: order → catalog → peers
    assert outcome.kind == "bought"
    window.run(wait_until(lambda: any(flow.model.trace(i).path == "/buy/4" and flow.model.trace(i).status
                                 for i in flow.listed), 10, "the buy in the Flow list"))
    trace_id = next(i for i in flow.listed if flow.model.trace(i).path == "/buy/4")
    window.run(wait_until(lambda: len(flow.model.trace(trace_id).hops) >= 3, 5, "the buy's hops"))
    flow.follow.setChecked(False)
    flow.show(trace_id)
    rows = flow.canvas.rows
    assert_causal(rows)
    assert rows[0].kind == "request" and rows[-1].kind == "reply"
    assert flow.stepper.header.names and flow.stepper.header.parent() is not flow.canvas


def assert_causal(rows) -> None:
    position = {(row.kind, row.hop.number): i for i, row in enumerate(rows) if row.hop is not None}
    hops = [row.hop for row in rows if row.kind == "call"]
    for parent in hops:
        assert position[("call", parent.number)] < position[("answer", parent.number)]
        for child in hops:
            if child.source == parent.target and parent.t0 <= child.t0 <= parent.t0 + parent.ms / 1000:
                assert position[("answer", child.number)] < position[("answer", parent.number)], (parent, child)


def test_causal_steps_put_an_answer_after_nested_hops_even_when_clocks_disagree():
    # catalog0's answer to the order is stamped 1 ms *before* catalog1 answers it (clock skew).
    hops = [Hop(2, "frontend", "order0", "/buy/2", "200 OK", 200, 10.0, 100.000),
            Hop(3, "order0", "catalog0", "/query/item/2", "200 OK", 200, 4.0, 100.001),
            Hop(4, "catalog0", "catalog1", "/rep/get/2", "200 OK", 200, 4.0, 100.002)]
    rows = causal_steps(hops, "frontend", "PUT /buy/2", 200, 11.0)
    assert_causal(rows)
    kinds = [(row.kind, row.hop.number if row.hop else None) for row in rows]
    assert kinds == [("request", None), ("call", 2), ("call", 3), ("call", 4), ("answer", 4), ("answer", 3),
                     ("answer", 2), ("reply", None)]


def test_experiment_results_never_widen_the_window_and_bars_are_named_in_full(window):
    view = window.experiments
    window.tabs.setCurrentWidget(view)
    window.run(wait_until(lambda: window.width() > 0, 1, "a laid-out window"))
    width = window.width()
    names = [f"reads, catalog replica {what}" for what in ("crashed", "hung")] + \
        [f"buys of random books with a long explanation of the outage number {i}" for i in range(8)]
    view._show([Table("Outages (2 catalog and 2 order replicas, 200 requests each, measured once the cluster "
                      "has noticed, with a long title that goes on and on)",
                      ["operation, outage", "mean ms", "p50 ms"], [[n, 1.5 + i, 1.0] for i, n in enumerate(names)],
                      ["The documented code: " + "reads 5.9 ms → 111.78 ms with a catalog out; " * 6])])
    QApplication.processEvents()  # the layout requests the new contents posted
    assert window.width() == width and window.minimumSizeHint().width() <= width
    ticks = [text for _y, text in view.plot.getAxis("left")._tickLevels[0]]
    assert "reads, catalog replica crashed" in ticks and "reads, catalog replica hung" in ticks


def test_the_scenarios_tab_keeps_its_controls_still_and_its_lanes_in_view(qtbot):
    view = ScenariosView(lambda _message: None)
    qtbot.addWidget(view)
    view.resize(1280, 640)
    view.show()
    qtbot.waitExposed(view)
    assert "Shop tab" not in view.canvas.empty_text and "Play" in view.canvas.empty_text
    positions = set()
    for row in range(view.list.count()):
        view.list.setCurrentRow(row)
        qtbot.waitUntil(lambda: view.title.text().startswith(view.scenarios[view.list.currentRow()].id), timeout=2000)
        positions.add(view.play_button.mapTo(view, view.play_button.rect().topLeft()).y())
    assert len(positions) == 1, "the Play button moved with the description"
    widest = max(view.list.fontMetrics().horizontalAdvance(view.list.item(i).text())
                 for i in range(view.list.count()))
    assert view.list.width() >= min(widest + 20, 400)
    hops = [Hop(n, "catalog0" if n == 2 else f"catalog{n - 2}", f"catalog{n - 1}", "/rep/get/2", "200 OK", 200,
                1.0, 100 + n / 1000) for n in range(2, 9)]
    view.stepper.show(Trace("t", "catalog0", "GET", "/query/item/2", 200, 9.0, hops), 0)
    view.stepper.replay()
    view.stepper.forward.click()
    assert not view.stepper.timer.isActive() and "paused" in view.stepper.note.text()
    view.stepper.go(view.canvas.steps)
    assert view.stepper.header.isVisible() and view.stepper.header.names  # lane names outside the scroll


def test_the_launcher_names_the_system_packages_when_qt_cannot_open_the_display(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "DISPLAY": ":97"}  # no X server there
    done = subprocess.run([sys.executable, "launcher.py", "--data-dir", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "apt-get install" in done.stderr and "libxcb-icccm4" in done.stderr and "libxcb-keysyms1" in done.stderr
    assert "--headless" in done.stderr


def test_fill_disk_on_a_catalog_card_reaches_its_real_database_and_the_card_says_so(window, qtbot):
    """Issue 25: the disk-full fault from the window. Fill disk caps catalog2's real SQLite
    file, the card says "disk full" and offers Free disk, which undoes it; order and front-end
    cards have no such button (only a catalog replica's database takes the fault)."""
    supervisor, cards = window.session.supervisor, window.cluster_view.cards
    window.tabs.setCurrentWidget(window.cluster_view)
    card = cards["catalog2"]
    assert card.disk_button.isVisible() and card.disk_button.text() == "Fill disk"
    assert not cards["order0"].disk_button.isVisible() and not cards["frontend"].disk_button.isVisible()
    qtbot.mouseClick(card.disk_button, Qt.MouseButton.LeftButton)
    window.run(wait_until(lambda: supervisor.node("catalog2").disk_full and card.disk_button.text() == "Free disk",
                          10, "the disk to fill"))
    window.run(wait_until(lambda: "disk full" in card.status.text() and "takes no new write" in card.note.text(),
                          5, "the card to say it"))
    qtbot.mouseClick(card.disk_button, Qt.MouseButton.LeftButton)
    window.run(wait_until(lambda: not supervisor.node("catalog2").disk_full and card.disk_button.text() == "Fill disk",
                          10, "the disk to be freed"))
    assert "disk full" not in card.status.text()

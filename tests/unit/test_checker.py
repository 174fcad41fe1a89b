"""The pure checker (nodes/verify/checker.py) on hand-written histories: each anomaly in a
history that has it, and its twin that does not. No processes, no simulator."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from nodes.verify.checker import check
from nodes.verify.history import Fault, Final, History, Operation


def _kinds(history: History) -> set[str]:
    return {anomaly.kind for anomaly in check(history)}


def _buy(book: int, start: float, end: float, outcome: str, buy_id: str) -> Operation:
    return Operation("buy", book, start, end, outcome, buy_id=buy_id)


def _read(book: int, start: float, end: float, quantity: int, where: str = "frontend") -> Operation:
    return Operation("read", book, start, end, "ok", quantity=quantity, where=where)


def _finals(quantity: int, seq: int, buys: dict[str, int] | None, replicas: int = 2) -> list[Final]:
    return [Final(f"catalog{i}", {1: (quantity, seq)}, buys) for i in range(replicas)]


# ---- the checker, one anomaly at a time: a history that has it, and its twin that does not ----


def test_a_clean_history_has_no_anomaly() -> None:
    history = History({1: 5}, [_buy(1, 0, 1, "bought", "a"), _read(1, 2, 3, 4)], [], _finals(4, 1, {"a": 1}))
    assert check(history) == []


def test_an_acknowledged_buy_that_took_no_copy_is_a_lost_buy() -> None:
    lost = History({1: 5}, [_buy(1, 0, 1, "bought", "a"), _buy(1, 0, 1, "bought", "b")], [], _finals(4, 1, None))
    kept = dataclasses.replace(lost, finals=_finals(3, 2, None))
    assert "lost buy" in _kinds(lost)
    assert _kinds(kept) == set()


def test_more_copies_taken_than_buys_known_is_a_buy_done_twice() -> None:
    twice = History({1: 5}, [_buy(1, 0, 1, "bought", "a")], [], _finals(3, 2, None))
    once = dataclasses.replace(twice, finals=_finals(4, 1, None))
    unknown = History({1: 5}, [_buy(1, 0, 1, "bought", "a"), _buy(1, 0, 1, "unknown", "b")], [], _finals(3, 2, None))
    assert "buy done twice" in _kinds(twice)
    assert _kinds(once) == set()
    assert _kinds(unknown) == set()  # an unknown outcome may have counted


def test_two_buyers_told_they_bought_one_copy_is_a_copy_sold_twice() -> None:
    """W8a's split brain: one copy, two acknowledged buys, both replicas at stock 0."""
    split = History({1: 1}, [_buy(1, 0, 1, "bought", "a"), _buy(1, 0, 1, "bought", "b")], [], _finals(0, 1, None))
    refused = History({1: 1}, [_buy(1, 0, 1, "bought", "a"), _buy(1, 0, 1, "failed", "b")], [], _finals(0, 1, None))
    assert "sold twice" in _kinds(split)
    assert _kinds(refused) == set()


def test_a_read_older_than_an_acknowledged_buy_is_a_stale_read() -> None:
    ops = [_buy(1, 0, 1, "bought", "a")]
    stale = History({1: 5}, ops + [_read(1, 2, 3, 5)], [Fault("cut", ("catalog1",), 1.5, 2.5)], _finals(4, 1, None))
    fresh = History({1: 5}, ops + [_read(1, 2, 3, 4)], [], _finals(4, 1, None))
    concurrent = History({1: 5}, ops + [_read(1, 0.5, 3, 5)], [], _finals(4, 1, None))
    [anomaly] = check(stale)
    assert anomaly.kind == "stale read" and anomaly.faults == ("cut catalog1",)
    assert check(fresh) == [] and check(concurrent) == []


def test_a_read_lower_than_begun_buys_explain_is_a_phantom_read() -> None:
    phantom = History({1: 5}, [_read(1, 0, 1, 3)], [], _finals(5, 0, None))
    assert "phantom read" in _kinds(phantom)
    assert _kinds(History({1: 5}, [_read(1, 0, 1, 5)], [], _finals(5, 0, None))) == set()


def test_out_of_stock_before_the_shelf_could_be_empty_is_flagged() -> None:
    early = History({1: 2}, [_buy(1, 0, 1, "bought", "a"), _buy(1, 2, 3, "out of stock", "b")], [], _finals(1, 1, None))
    right = History({1: 1}, [_buy(1, 0, 1, "bought", "a"), _buy(1, 2, 3, "out of stock", "b")], [], _finals(0, 1, None))
    assert "false out of stock" in _kinds(early)
    assert _kinds(right) == set()


def test_replicas_that_end_apart_are_divergent_and_unconverged() -> None:
    apart = History({1: 5}, [], [], [Final("catalog0", {1: (5, 0)}), Final("catalog1", {1: (4, 1)})],
                    convergence_s=None)
    assert {"divergence", "no convergence"} <= _kinds(apart)


def test_buy_ids_account_for_every_copy() -> None:
    answered_failed = History({1: 5}, [_buy(1, 0, 1, "failed", "a")], [], _finals(4, 1, {"a": 1}))
    never_sent = History({1: 5}, [], [], _finals(4, 1, {"x": 1}))
    assert "lost answer" in _kinds(answered_failed)
    assert "phantom buy" in _kinds(never_sent)


def test_a_history_survives_its_json_lines(tmp_path: Path) -> None:
    history = History({1: 5}, [_buy(1, 0, 1, "bought", "a"), _read(1, 2, 3, 5)],
                      [Fault("crash", ("catalog0",), 0.5, 1.5)], _finals(4, 1, {"a": 1}), convergence_s=0.2)
    history.save(tmp_path / "history.jsonl")
    again = History.load(tmp_path / "history.jsonl")
    assert again == history and [str(a) for a in check(again)] == [str(a) for a in check(history)]

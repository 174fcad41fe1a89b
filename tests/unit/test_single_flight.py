"""A write attempt's answer is kept for its copies by age as well as by count (W7, issue 26)."""
from __future__ import annotations

from typing import Any

import pytest

from nodes.core.effects import SingleFlight

pytestmark = pytest.mark.timeout(10)


def _run(flight: SingleFlight, key: str, answer: str, ran: list[str]) -> Any:
    async def operation() -> str:
        ran.append(key)
        return answer

    coroutine = flight.run(key, operation, again=False)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("an operation that yields nothing finished in one step")


def test_a_copy_within_the_time_gets_the_first_answer_and_runs_nothing() -> None:
    now = [100.0]
    flight = SingleFlight(keep=1_000, keep_s=10.0, clock=lambda: now[0])
    ran: list[str] = []
    assert _run(flight, "a", "bought", ran) == "bought"
    now[0] += 9.9
    assert _run(flight, "a", "refused", ran) == "bought"
    assert ran == ["a"]


def test_answers_older_than_the_time_are_forgotten_whatever_their_count() -> None:
    now = [100.0]
    flight = SingleFlight(keep=1_000, keep_s=10.0, clock=lambda: now[0])
    ran: list[str] = []
    for i in range(50):  # five a second for ten seconds
        _run(flight, f"k{i}", "bought", ran)
        now[0] += 0.2
    now[0] += 5.0
    _run(flight, "late", "bought", ran)
    assert len(flight) == 1 + sum(1 for i in range(50) if 100.0 + 0.2 * i >= now[0] - 10.0)
    assert _run(flight, "k0", "again", ran) == "again"  # forgotten: a copy this late runs anew


def test_the_count_still_bounds_what_is_kept() -> None:
    flight = SingleFlight(keep=3)
    ran: list[str] = []
    for i in range(5):
        _run(flight, f"k{i}", "bought", ran)
    assert len(flight) == 3
    assert _run(flight, "k4", "x", ran) == "bought"
    assert _run(flight, "k0", "x", ran) == "x"

"""The driver's hedged request (nodes/runtime/driver.py): an accepted answer ends it at once;
a final one stops the hedging but waits for the sends still out, whose answers the caller needs
(a buy's outcome: docs/weak-points.md, W4). And its gather that stops waiting, a patience
after enough has answered (a write's majority)."""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from nodes.core.effects import Gather, Hedged, Send
from nodes.runtime.driver import Driver

pytestmark = pytest.mark.timeout(30)


def driver_answering(answers: dict[str, tuple[float, Any]], sent: list[str]) -> Driver:
    """A driver whose sends to each name answer ``(after seconds, answer)``."""
    driver = Driver.__new__(Driver)
    driver._background = set()
    driver.node = SimpleNamespace(pace=SimpleNamespace(slack_s=0.0))

    async def send(message: Send) -> Any:
        sent.append(message.to)
        delay, answer = answers[message.to]
        await asyncio.sleep(delay)
        return answer

    driver.send = send  # type: ignore[method-assign]
    return driver


def hedged(final: bool) -> Hedged:
    sends = [Send(name, "buy", 5.0) for name in ("order1", "order2", "order0")]
    return Hedged(sends, 0.05, lambda a: a == "bought", final=(lambda a: a != "silent") if final else None)


async def test_an_accepted_answer_ends_it_and_leaves_the_first_send_out():
    sent: list[str] = []
    driver = driver_answering({"order1": (1.0, "unknown"), "order2": (0.01, "bought"), "order0": (0, "x")}, sent)
    started = time.monotonic()
    answers = await driver._hedged(hedged(final=True))
    assert answers == [None, "bought", None] and sent == ["order1", "order2"]
    assert time.monotonic() - started < 0.5


async def test_a_final_answer_stops_the_hedging_and_waits_for_the_send_still_out():
    sent: list[str] = []
    driver = driver_answering({"order1": (0.3, "unknown"), "order2": (0.01, "sold out"), "order0": (0, "x")}, sent)
    started = time.monotonic()
    answers = await driver._hedged(hedged(final=True))
    assert answers == ["unknown", "sold out", None]  # order1's answer is known: the outcome needs it
    assert sent == ["order1", "order2"]  # and no third send after the final answer
    assert time.monotonic() - started >= 0.3


async def test_without_final_every_answer_that_is_not_accepted_sends_the_next():
    sent: list[str] = []
    driver = driver_answering({"order1": (0.3, "unknown"), "order2": (0.01, "sold out"), "order0": (0.01, "y")},
                              sent)
    answers = await driver._hedged(hedged(final=False))
    assert sent == ["order1", "order2", "order0"] and answers == ["unknown", "sold out", "y"]


async def test_with_patience_a_silent_send_is_left_out_once_the_others_refused():
    """A read every replica has been asked, the others answering 'try again', waits for the
    silent one only ``patience`` more (issue 28: it held every lookup of its book 2 s)."""
    sent: list[str] = []
    driver = driver_answering({"catalog1": (5.0, "late"), "catalog2": (0.01, "conflict"),
                               "catalog0": (0.01, "conflict")}, sent)
    sends = [Send(name, "read", 5.0) for name in ("catalog1", "catalog2", "catalog0")]
    started = time.monotonic()
    answers = await driver._hedged(Hedged(sends, 0.05, lambda a: a == "found", patience=0.1))
    assert answers == [None, "conflict", "conflict"] and sent == ["catalog1", "catalog2", "catalog0"]
    assert time.monotonic() - started < 2.0, "it waited for the silent replica"


def majority(answers: list[Any]) -> bool:
    return sum(1 for answer in answers if answer == "granted") >= 1


async def test_a_gather_waits_for_a_silent_send_only_patience_once_enough_answered():
    """A write's check to catalog1, which had just hung, waited its whole time-out though
    catalog2 had granted: a majority with the writer (issue 28)."""
    sent: list[str] = []
    driver = driver_answering({"catalog1": (5.0, "late"), "catalog2": (0.01, "granted")}, sent)
    sends = [Send(name, "check", 5.0) for name in ("catalog1", "catalog2")]
    started = time.monotonic()
    gather = Gather(sends, enough=majority, patience=0.1)
    answers = await driver.perform(gather)
    assert answers == [None, "granted"] and sent == ["catalog1", "catalog2"]
    assert 0.1 <= time.monotonic() - started < 2.0
    came = gather.arrived[1]
    assert gather.arrived[0] is None and came is not None
    assert started < came < started + 0.1, "when catalog2's answer came, not when the gather ended"


async def test_a_plain_gather_says_when_each_answer_came():
    driver = driver_answering({"catalog1": (0.2, "busy"), "catalog2": (0.01, "granted")}, [])
    gather = Gather([Send(name, "check", 5.0) for name in ("catalog1", "catalog2")])
    started = time.monotonic()
    assert await driver.perform(gather) == ["busy", "granted"]
    first, second = gather.arrived
    assert first is not None and second is not None and started < second < first


async def test_a_gather_takes_every_answer_that_comes_within_its_patience():
    sent: list[str] = []
    driver = driver_answering({"catalog1": (0.05, "busy"), "catalog2": (0.01, "granted")}, sent)
    sends = [Send(name, "check", 5.0) for name in ("catalog1", "catalog2")]
    assert await driver.perform(Gather(sends, enough=majority, patience=0.5)) == ["busy", "granted"]


async def test_a_gather_that_never_has_enough_waits_for_every_send():
    sent: list[str] = []
    driver = driver_answering({"catalog1": (0.3, "busy"), "catalog2": (0.01, "busy")}, sent)
    sends = [Send(name, "check", 5.0) for name in ("catalog1", "catalog2")]
    started = time.monotonic()
    assert await driver.perform(Gather(sends, enough=majority, patience=0.01)) == ["busy", "busy"]
    assert time.monotonic() - started >= 0.3

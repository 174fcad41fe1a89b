"""The charts' samples and the cards' rates, kept as numbers a keyframe copies cheaply: what
they give back is what was filed, in the order and the window asked for."""
from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from nodes.observe.latency import Latency, Sample, Samples
from nodes.observe.views import NodeView

pytestmark = pytest.mark.timeout(30)


def test_samples_keep_the_last_ones_in_the_order_filed() -> None:
    samples = Samples(5)
    filed = [Sample(float(i), i * 1.5, 200 + i) for i in range(12)]
    for sample in filed:
        samples.append(sample)
    assert len(samples) == 5 and list(samples) == filed[-5:]
    assert samples[-1] == filed[-1] and samples[0] == filed[7] and samples[-5] == filed[7]
    with pytest.raises(IndexError):
        samples[5]
    copy = pickle.loads(pickle.dumps(samples))  # noqa: S301 - made here
    assert list(copy) == filed[-5:] and copy.added == 12
    copy.append(Sample(99.0, 1.0, 200))
    assert list(copy) == [*filed[-4:], Sample(99.0, 1.0, 200)]
    samples.clear()
    assert len(samples) == 0 and list(samples) == []


def test_the_charts_read_each_series_in_time_order_after_every_change() -> None:
    rng = random.Random(7)
    latency = Latency(keep=50)
    filed: list[Sample] = []
    for i in range(200):  # buys are filed when their outcome is heard: not in time order
        sample = Sample(i + rng.uniform(-3, 3), rng.uniform(1, 100), 200)
        latency.add("buy", sample)
        filed.append(sample)
        if i % 17 == 0:
            times, ms = latency.since("buy", -1e9)
            kept = sorted(filed[-50:], key=lambda s: s.t)
            assert times.tolist() == [s.t for s in kept] and ms.tolist() == [s.ms for s in kept]
    times, _ms = latency.since("buy", 150.0)
    assert bool(np.all(times >= 150.0)) and len(times) == sum(s.t >= 150.0 for s in filed[-50:])
    restored = pickle.loads(pickle.dumps(latency))  # noqa: S301 - made here
    assert restored.since("buy", 0.0)[0].tolist() == latency.since("buy", 0.0)[0].tolist()


def test_a_cards_rate_counts_the_answers_of_the_window_asked_for() -> None:
    view = NodeView("frontend", "127.0.0.1:1")
    for i in range(300):  # 100 answers a second from t=1000 to t=1003
        view.answer(1000.0 + i / 100)
    view.answer(1000.5)  # a late one counts in the latest tenth
    assert view.requests_per_second(now=1003.0, window=2.0) == pytest.approx(100.5, abs=5)
    assert view.requests_per_second(now=1003.0, window=60.0) == pytest.approx(301 / 60)
    assert view.requests_per_second(now=1100.0) == 0

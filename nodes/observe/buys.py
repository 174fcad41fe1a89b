"""A buy's answer, told apart. A bought copy and "out of stock" are both a 200 from the front-end;
only the order replica's ``order`` event, which may come a moment later, says which. Until it
comes the buy's latency sample and its answer on the Live screen wait here, a moment at most
(``PENDING_BUY_S``); a buy still unheard by then counts as bought."""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from nodes.core.events import DECISIVE, OrderResult
from nodes.observe.latency import Sample, Series

PENDING_BUY_S = 2.0
#: How many buys' outcomes are remembered (by trace), oldest forgotten first.
KEEP_OUTCOMES = 2000


class Answer(NamedTuple):
    """The front-end's answer to the shopper, waiting to be drawn."""

    t: float
    status: int
    held_ms: float
    trace: str | None


def series_of(outcome: OrderResult) -> Series:
    """The latency series of a buy answered 200 whose outcome was heard."""
    return {OrderResult.BOUGHT: Series.BUY, OrderResult.OUT_OF_STOCK: Series.OUT_OF_STOCK}.get(
        outcome, Series.FAILED_BUY)


class PendingBuys:
    """Buys answered 200 whose outcome is not heard yet, and every outcome heard lately."""

    def __init__(self) -> None:
        self._outcomes: OrderedDict[str, OrderResult] = OrderedDict()  # trace -> the order's outcome
        self._samples: OrderedDict[str, Sample] = OrderedDict()  # answered 200, outcome not yet heard
        self._answers: OrderedDict[str, Answer] = OrderedDict()  # the same, for the Live screen

    def outcome(self, trace: str | None) -> OrderResult | None:
        return self._outcomes.get(trace) if trace is not None else None

    def decided(self, trace: str | None) -> bool:
        return self.outcome(trace) in DECISIVE

    def file(self, op: str, sample: Sample, trace: str | None) -> Series | None:
        """The series ``op``'s sample goes into now, or None: it waits for its buy's outcome."""
        if op != Series.BUY:
            return Series(op)
        if sample.status != 200:
            return Series.FAILED_BUY
        if trace is not None and self.decided(trace):
            return series_of(self._outcomes[trace])
        if trace is not None:
            self._samples[trace] = sample  # its order replica's outcome is still on its way
            return None
        return Series.BUY

    def hold(self, answer: Answer) -> None:
        """Keep a 200 answer to a traced buy back until its outcome is heard."""
        assert answer.trace is not None
        self._answers[answer.trace] = answer

    def heard(self, trace: str, outcome: OrderResult) -> tuple[tuple[Series, Sample] | None, Answer | None]:
        """An order replica's outcome: the sample to file and the answer to draw that waited for it.
        One buy may meet several order replicas (one unreachable, the next one buying): what
        decides a 200's series is the one that bought or found it sold out."""
        if not self.decided(trace):
            self._outcomes[trace] = outcome
        while len(self._outcomes) > KEEP_OUTCOMES:
            self._outcomes.popitem(last=False)
        if outcome not in DECISIVE:
            return None, None
        sample = self._samples.pop(trace, None)
        return (None if sample is None else (series_of(outcome), sample)), self._answers.pop(trace, None)

    def due(self, now: float) -> tuple[list[Sample], list[Answer]]:
        """Samples and answers that waited ``PENDING_BUY_S`` and heard nothing: bought, as far
        as anyone can tell."""
        samples = []
        while self._samples:
            trace, sample = next(iter(self._samples.items()))
            if now - sample.t < PENDING_BUY_S:
                break
            del self._samples[trace]
            samples.append(sample)
        answers = [answer for answer in self._answers.values() if now - answer.t >= PENDING_BUY_S]
        for answer in answers:
            del self._answers[str(answer.trace)]
        return samples, answers

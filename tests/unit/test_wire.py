"""The wire forms of answers (nodes/core/wire.py): whatever a core hands the driver gets an HTTP
answer, never a crash in the node."""
from __future__ import annotations

import json

from nodes.core.books import Book
from nodes.core.messages import (
    Applied,
    Busy,
    Buy,
    Check,
    Degraded,
    Granted,
    Health,
    Healthy,
    KnownBuy,
    Newer,
    Ping,
    Pong,
    Update,
)
from nodes.core.wire import Failure, answer_of, response_of


def test_an_answer_outside_the_protocol_is_passed_on_as_unknown_not_a_crash() -> None:
    """An order replica that answers a status the front-end does not expect (a 400, a 500): the
    shopper is told the outcome is unknown (502), never handed the front-end's own 500."""
    status, body = response_of(Buy(1, "b"), Failure(400, {"message": "bad"}))
    assert status == 502 and body["outcome"] == "unknown" and "400" in body["message"]


def test_every_answer_a_replica_gives_reads_back_as_itself() -> None:
    """What a core answers crosses HTTP and is read back the same by the caller's core: a reply
    the wire does not know how to read becomes a Failure, and a caller that acts on the reply's
    type (a peer that could not store an update, say: the writer must wait out its lease)
    then acts on something else in a real cluster than in the simulator, where no wire is
    crossed. (A Degraded answer to an update read back as a Failure made real runs with full
    disks serve stale reads that 20,000 simulated seeds could not show.)"""
    book = Book(3, "Xen and the Art of Surviving Undergraduate School", "undergraduate school", 15, 9, seq=4)
    update = Update(book, 0, "t1", ("b1",))
    check = Check(3, 4, 0, "t1", "b1", 1.0)
    pairs = [
        (update, Applied(5, ((2, 0.75),))), (update, Busy(1)), (update, Newer(book)),
        (update, Degraded("catalog1 could not store the write: database or disk is full")),
        (check, Granted(4)), (check, Busy(2)), (check, Newer(book)), (check, KnownBuy(book, 0.5, "b1")),
        (Ping(0, {3: 4}), Pong({3: 4}, ((book, ("b1",)),), {3: 1}, 1.0)),
        (Health("frontend"), Healthy(1.5)), (Health("frontend"), Degraded("out of touch")),
        (Health("frontend"), Degraded("out of touch", 1.5)),
    ]
    for message, reply in pairs:
        status, body = response_of(message, reply)
        assert answer_of(message, status, json.loads(json.dumps(body))) == reply, (message, reply, status, body)

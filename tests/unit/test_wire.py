"""The wire forms of answers (nodes/core/wire.py): whatever a core hands the driver gets an HTTP
answer, never a crash in the node."""
from __future__ import annotations

from nodes.core.messages import Buy
from nodes.core.wire import Failure, response_of


def test_an_answer_outside_the_protocol_is_passed_on_as_unknown_not_a_crash() -> None:
    """An order replica that answers a status the front-end does not expect (a 400, a 500): the
    shopper is told the outcome is unknown (502), never handed the front-end's own 500."""
    status, body = response_of(Buy(1, "b"), Failure(400, {"message": "bad"}))
    assert status == 502 and body["outcome"] == "unknown" and "400" in body["message"]

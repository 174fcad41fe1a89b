"""Internal requests are signed (issue 27, item 3; nodes/runtime/signing.py): the secret never
crosses the wire, a node off loopback refuses the plain secret header, and a signature is
taken once, within a minute of the node's clock, compared in constant time.

A real order replica's application, told it is bound to 10.0.0.5 (so it behaves as off
loopback) but served on 127.0.0.1 by aiohttp's test server: no traffic leaves the machine."""
from __future__ import annotations

import json
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from nodes.runtime.config import parse
from nodes.runtime.order.app import init_app
from nodes.runtime.signing import REPLAY_WINDOW_S, SECRET_HEADER, SIGNATURE_HEADER, Verifier, signature, signed

pytestmark = pytest.mark.timeout(60)
SECRET = "s3cret-for-tests"


@pytest.fixture
async def off_loopback(tmp_path):
    config = parse(["order", "--catalog", "http://127.0.0.1:9", "--host", "10.0.0.5", "--db",
                    str(tmp_path / "order.db"), "--no-telemetry"], {"BAZAR_SECRET": SECRET})
    client = TestClient(TestServer(init_app(config), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


async def test_off_loopback_only_a_signed_request_passes_and_only_once(off_loopback):
    plain = await off_loopback.get("/admin/state", headers={SECRET_HEADER: SECRET})
    assert plain.status == 401 and "not on loopback" in (await plain.json())["message"]
    headers = signed(SECRET, "GET", "/admin/state")
    good = await off_loopback.get("/admin/state", headers=headers)
    assert good.status == 200 and (await good.json())["role"] == "order"
    replayed = await off_loopback.get("/admin/state", headers=headers)
    assert replayed.status == 401 and "used already" in (await replayed.json())["message"]
    body = json.dumps({"ms": 5}).encode()
    posted = await off_loopback.post("/admin/slow", data=body, headers={
        **signed(SECRET, "POST", "/admin/slow", body), "Content-Type": "application/json"})
    assert posted.status == 200 and (await posted.json())["slow_ms"] == 5
    changed = json.dumps({"ms": 9000}).encode()  # the body changed after signing
    tampered = await off_loopback.post("/admin/slow", data=changed, headers={
        **signed(SECRET, "POST", "/admin/slow", body), "Content-Type": "application/json"})
    assert tampered.status == 401 and "does not match" in (await tampered.json())["message"]
    other = await off_loopback.get("/admin/state", headers=signed("another secret", "GET", "/admin/state"))
    assert other.status == 401
    public = await off_loopback.get("/openapi.json")
    assert public.status == 200  # public routes need nothing


def test_a_signature_outside_the_window_or_for_another_request_is_refused():
    verifier = Verifier(SECRET, plain_ok=True)
    now = time.time()
    for skew in (REPLAY_WINDOW_S + 1, -REPLAY_WINDOW_S - 1):
        at = f"{now + skew:.3f}"
        header = {SIGNATURE_HEADER: f"t={at},n=abc,s={signature(SECRET, 'GET', '/admin/state', b'', at, 'abc')}"}
        assert "from this node's clock" in verifier.refusal("GET", "/admin/state", b"", header, now)
    header = signed(SECRET, "GET", "/admin/state")
    assert "does not match" in verifier.refusal("GET", "/admin/state?x=1", b"", header)  # another path
    assert "does not match" in verifier.refusal("POST", "/admin/state", b"", header)  # another method
    assert verifier.refusal("GET", "/admin/state", b"", header) is None
    assert verifier.refusal("GET", "/admin/state", b"", {SECRET_HEADER: SECRET}) is None  # loopback: plain ok
    assert "t=TIME" in verifier.refusal("GET", "/", b"", {SIGNATURE_HEADER: "nonsense"})
    assert "internal to the cluster" in verifier.refusal("GET", "/", b"", {SECRET_HEADER: "\udcff"})


def test_a_nonce_is_kept_while_its_signature_could_pass_and_then_forgotten():
    verifier = Verifier(SECRET, plain_ok=True)
    t0 = 1_000_000.0

    def header(at: float, nonce: str) -> dict[str, str]:
        stamp = f"{at:.3f}"
        return {SIGNATURE_HEADER: f"t={stamp},n={nonce},s={signature(SECRET, 'GET', '/', b'', stamp, nonce)}"}

    first = header(t0 + 30, "early")  # signed by a clock 30 s ahead of ours
    assert verifier.refusal("GET", "/", b"", first, t0) is None
    for i in range(12_000):  # enough to have the verifier forget what it may
        now = t0 + i * (REPLAY_WINDOW_S + 40) / 12_000
        assert verifier.refusal("GET", "/", b"", header(now, f"n{i}"), now) is None
        replay = verifier.refusal("GET", "/", b"", first, now)
        assert replay is not None, f"replayed {now - t0:.1f} s later and taken"
    assert "early" not in verifier._seen  # past its time and the window: forgotten
    assert len(verifier._seen) < 12_000

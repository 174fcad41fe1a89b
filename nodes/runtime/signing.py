"""Internal and admin requests are signed, so that the cluster secret never crosses the wire
(docs/api.md, 'Headers'; issue 27).

A signature is an HMAC-SHA256 keyed by the secret over the method, the path with its query,
a digest of the body, the sender's wall-clock time and a nonce, sent as one header::

    X-Bazar-Signature: t=1733390000.123,n=9f2c61d0a4b7e35c,s=<64 hex digits>

A node takes a signature only within ``REPLAY_WINDOW_S`` of its own wall clock and only once
(each nonce is remembered for the window), and compares it in constant time. So across
machines the nodes' wall clocks must agree within a minute (NTP does far better); the leases
do not use wall clocks at all (nodes/core/clocks.py).

Every client Bazar has signs: the nodes' calls to each other, the launcher's admin calls, the
window's telemetry streams. The plain ``X-Bazar-Secret`` header is still taken by a node bound
to loopback — the launcher's own cluster, where nothing leaves the machine, and where curl and
the tests use it — and refused by a node bound to any other address.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping

SECRET_HEADER = "X-Bazar-Secret"
SIGNATURE_HEADER = "X-Bazar-Signature"
#: How far a signature's time may be from the receiver's clock, either way (s).
REPLAY_WINDOW_S = 60.0


def signature(secret: str, method: str, path_qs: str, body: bytes, at: str, nonce: str) -> str:
    message = "\n".join((method.upper(), path_qs, hashlib.sha256(body).hexdigest(), at, nonce))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed(secret: str, method: str, path_qs: str, body: bytes = b"") -> dict[str, str]:
    """The header that signs one request (``path_qs``: the path and query as sent, encoded)."""
    at, nonce = f"{time.time():.3f}", secrets.token_hex(8)
    return {SIGNATURE_HEADER: f"t={at},n={nonce},s={signature(secret, method, path_qs, body, at, nonce)}"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Verifier:
    """A node's side: is this request signed with the secret (or, on loopback, does it carry
    the plain secret)? ``plain_ok``: the node is bound to loopback."""

    def __init__(self, secret: str, *, plain_ok: bool) -> None:
        self.secret = secret
        self.plain_ok = plain_ok
        self._seen: OrderedDict[str, float] = OrderedDict()  # nonce -> when it may be forgotten

    def refusal(self, method: str, path_qs: str, body: bytes, headers: Mapping[str, str],
                now: float | None = None) -> str | None:
        """None when the request may pass; otherwise why not, in plain words."""
        given = headers.get(SIGNATURE_HEADER)
        if given is None:
            plain = headers.get(SECRET_HEADER)
            if plain is not None and self.plain_ok:
                # Header bytes that are not UTF-8 arrive as surrogates: they never match.
                if hmac.compare_digest(plain.encode("utf-8", "surrogateescape"), self.secret.encode()):
                    return None
                return f"This endpoint is internal to the cluster: a valid {SECRET_HEADER} is required"
            if plain is not None:
                return (f"This node is not on loopback: the plain {SECRET_HEADER} is refused here; "
                        f"sign the request ({SIGNATURE_HEADER}, docs/api.md)")
            return (f"This endpoint is internal to the cluster: a valid {SIGNATURE_HEADER}"
                    + (f" or {SECRET_HEADER}" if self.plain_ok else "") + " is required")
        parts = dict(part.split("=", 1) for part in given.split(",") if "=" in part)
        at, nonce, mac = parts.get("t", ""), parts.get("n", ""), parts.get("s", "")
        try:
            when = float(at)
        except ValueError:
            return f"{SIGNATURE_HEADER} must be t=TIME,n=NONCE,s=HMAC"
        now = time.time() if now is None else now
        if not (nonce and mac) or len(nonce) > 64:
            return f"{SIGNATURE_HEADER} must be t=TIME,n=NONCE,s=HMAC"
        if abs(now - when) > REPLAY_WINDOW_S:
            return (f"The signature's time is {now - when:+.0f} s from this node's clock (at most "
                    f"{REPLAY_WINDOW_S:.0f} s): are the machines' clocks set?")
        expected = signature(self.secret, method, path_qs, body, at, nonce)
        if not hmac.compare_digest(mac.encode("utf-8", "surrogateescape"), expected.encode()):
            return "The request's signature does not match: another secret, or the request was changed"
        if nonce in self._seen:
            return "That signature was used already: a replayed request is refused"
        self._remember(nonce, when, now)
        return None

    def _remember(self, nonce: str, when: float, now: float) -> None:
        # Past its time plus the window the signature is refused for its time: the nonce can go.
        # Forgotten oldest first: a nonce signed by a clock ahead of ours is kept until its time
        # (120 s at most), and may keep the ones behind it that long too.
        self._seen[nonce] = when + REPLAY_WINDOW_S
        while self._seen:
            oldest, until = next(iter(self._seen.items()))
            if until >= now:  # at its time plus the window exactly it still passes
                break
            del self._seen[oldest]

"""A failed connection counts as "refused" — the peer has no process, holds no lease, takes no
write (W2) — only when the address answered that nobody listens there. A name that does not
resolve (a container taken off its network) or a host out of reach may hide a live replica:
counted as refused, a disconnected catalog replica was taken for a stopped one and served a
stale stock once reconnected (tests/e2e/test_containers.py, docs/containers.md)."""
from __future__ import annotations

import errno
import socket
from types import SimpleNamespace

import aiohttp
import pytest

from nodes.core.effects import NoAnswer
from nodes.core.telemetry import Telemetry
from nodes.runtime.client import PeerClient, Timeouts, refused

pytestmark = pytest.mark.timeout(20)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, never listened, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NoNames(aiohttp.abc.AbstractResolver):
    """A resolver that knows no name, as the engine's DNS after `docker network disconnect`."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list:
        raise OSError(socket.EAI_NONAME, f"{host}: Name or service not known")

    async def close(self) -> None:
        return None


async def failure_of(url: str, resolver: aiohttp.abc.AbstractResolver | None = None) -> str | None:
    client = PeerClient(Telemetry("catalog0"), timeouts=Timeouts(connect=1.0, total=2.0))
    client.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver) if resolver else None)
    try:
        reply = await client.call("GET", url, to="catalog1", label="ping", record=False)
    finally:
        await client.close()
    assert not reply.answered
    return reply.failure


async def test_a_port_nobody_listens_on_is_refused():
    assert await failure_of(f"http://127.0.0.1:{closed_port()}/health") == "refused"


async def test_a_name_that_no_longer_resolves_is_unreachable_not_refused():
    assert await failure_of("http://catalog1:8000/health", resolver=NoNames()) == "unreachable"


@pytest.mark.parametrize("code", [errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT])
def test_a_host_out_of_reach_is_not_refused(code: int):
    key = SimpleNamespace(host="catalog1", port=8000, ssl=None)
    assert not refused(aiohttp.ClientConnectorError(key, OSError(code, "out of reach")))
    assert refused(aiohttp.ClientConnectorError(key, ConnectionRefusedError(errno.ECONNREFUSED, "refused")))


def test_only_refused_means_the_receiver_did_nothing():
    """What the driver hands the protocol: an unreachable peer may be alive, so its NoAnswer
    is not ``refused`` (nodes/runtime/driver.py)."""
    assert NoAnswer(refused=False).maybe_processed and not NoAnswer(refused=True).maybe_processed

"""The node image and the Compose cluster on a real container engine (docs/containers.md): build
the image, start compose.yaml's cluster, buy through the published port while a catalog
container is killed and another is cut off the network, heal, and let the project's checker
judge the history, as the check on real processes does (nodes/control/fault_run.py).

Everything the test makes (containers, network, volumes, the image's tag) is removed, also on
failure; the build cache stays, so that the next run is quick. Where no engine answers, the test
is skipped saying how to get one.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from nodes.control.fault_run import read
from nodes.core.wire import BUY_ID_HEADER
from nodes.runtime.config import DEFAULT_HOST, parse
from nodes.verify.checker import check
from nodes.verify.history import Fault, Final, History, Operation
from tests.engine import ENGINE_SCRIPT, Prepared
from tests.engine import wait as background_job
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
HOW_TO_RUN = ("start a Docker engine with Compose (on a Bazar development machine, as root: "
              "`bash ../shared/tools/docker-engine.sh`), then `python3 -m pytest tests/e2e/test_containers.py`")
BOOKS = range(1, 8)
STOCK = 300
CATALOGS = ("catalog0", "catalog1", "catalog2")
NODES = (*CATALOGS, "order0", "order1", "order2")  # each published on loopback for the window
#: Between two requests of one shopper: enough load to matter, little enough to share 2 cores.
PAUSE_S = 0.02


def test_a_node_binds_loopback_unless_told_otherwise():
    """The image's BAZAR_HOST=0.0.0.0 is an explicit setting; without it nothing leaves loopback."""
    assert parse(["frontend", "--catalogs", "http://a", "--orders", "http://b"], {}).host == DEFAULT_HOST == "127.0.0.1"
    assert parse(["order", "--catalog", "http://a"], {"BAZAR_HOST": "0.0.0.0"}).host == "0.0.0.0"
    assert parse(["order", "--catalog", "http://a", "--host", "10.0.0.5"], {"BAZAR_HOST": "0.0.0.0"}).host == "10.0.0.5"


def sh(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
                          stdin=subprocess.DEVNULL)


def engine(prepared: Prepared | None) -> list[str]:
    """The Compose command of a working engine, made in the background since the session began
    (tests/engine.py) or here with ENGINE_SCRIPT where that can be done; skips the test when
    there is none."""
    if prepared is not None and prepared.stage == "engine" and prepared.returncode != 0:
        pytest.skip(f"{ENGINE_SCRIPT.name} could not make an engine ({prepared.output.strip()[-2000:]}); "
                    f"to run this test: {HOW_TO_RUN}")
    if prepared is None and ENGINE_SCRIPT.exists() and hasattr(os, "geteuid") and os.geteuid() == 0:
        made = sh("bash", str(ENGINE_SCRIPT), timeout=600)
        if made.returncode != 0:
            pytest.skip(f"{ENGINE_SCRIPT.name} could not make an engine ({(made.stdout + made.stderr).strip()}); "
                        f"to run this test: {HOW_TO_RUN}")
    if shutil.which("docker") is None or sh("docker", "info", timeout=30).returncode != 0:
        pytest.skip(f"no container engine answers; to run this test: {HOW_TO_RUN}")
    if sh("docker", "compose", "version", timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose") and sh("docker-compose", "version", timeout=30).returncode == 0:
        return ["docker-compose"]
    pytest.skip(f"the engine has no Compose (`docker compose` or `docker-compose`); to run this test: {HOW_TO_RUN}")


def built_image(prepared: Prepared | None) -> tuple[str, float]:
    """The node image's tag and how long its build took: the background job's, or built here."""
    if prepared is not None:
        assert prepared.returncode == 0, f"docker build failed:\n{prepared.output[-6000:]}"
        return prepared.image, prepared.build_s
    image = f"bazar-node:test-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    built = sh("docker", "build", "-t", image, ".", timeout=600)
    assert built.returncode == 0, f"docker build failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    return image, time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Run inside the front-end's container, the only place the nodes' network is reached from:
#: each (method, url, body) signed with the cluster secret the container was given (off
#: loopback a node refuses the plain secret: nodes/runtime/signing.py), answered as
#: [status, body] (status 0: no answer).
ADMIN_SCRIPT = """
import hashlib, hmac, json, secrets, sys, time, urllib.error, urllib.parse, urllib.request
secret = open('/run/secrets/bazar_secret').read().strip()
out = []
for method, url, body in json.loads(sys.argv[1]):
    data = None if body is None else json.dumps(body).encode()
    parts = urllib.parse.urlsplit(url)
    path_qs = parts.path + ('?' + parts.query if parts.query else '')
    at, nonce = f'{time.time():.3f}', secrets.token_hex(8)
    message = '\\n'.join((method, path_qs, hashlib.sha256(data or b'').hexdigest(), at, nonce)).encode()
    mac = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    request = urllib.request.Request(url, data=data, method=method, headers={
        'X-Bazar-Signature': f't={at},n={nonce},s={mac}', 'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            out.append([answer.status, json.loads(answer.read() or b'null')])
    except urllib.error.HTTPError as error:
        out.append([error.code, json.loads(error.read() or b'null')])
    except OSError as error:
        out.append([0, str(error)])
print(json.dumps(out))
"""


@dataclass
class ComposeCluster:
    """compose.yaml's cluster under a project name of its own, driven through the engine."""

    compose: list[str]
    project: str
    env: dict[str, str]
    port: int

    @property
    def shop(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return sh(*self.compose, "-p", self.project, "-f", str(ROOT / "compose.yaml"), *args,
                  timeout=timeout, env=self.env)

    ids: dict[str, str] = field(default_factory=dict)

    def container(self, service: str) -> str:
        """The service's container id (kept: a killed or cut-off container keeps its id)."""
        if service not in self.ids:
            self.ids[service] = self.run("ps", "-q", service).stdout.strip()
            assert self.ids[service], f"compose has no container for {service}"
        return self.ids[service]

    def network(self) -> str:
        """The cluster's network as the engine names it (Compose versions spell it differently)."""
        found = sh("docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", self.container("frontend"))
        return next(iter(json.loads(found.stdout)))

    async def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A ``docker`` command that must succeed, run off the event loop so the shoppers go on."""
        done = await asyncio.to_thread(sh, "docker", *args)
        assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr.strip()}"
        return done

    async def admin(self, calls: list[tuple[str, str, str, Any]]) -> list[tuple[int, Any]]:
        """(method, node, path, body) calls with the secret, from inside the front-end's container."""
        batch = [(method, f"http://{node}:8000{path}", body) for method, node, path, body in calls]
        done = await self.docker("exec", self.container("frontend"), "python", "-c", ADMIN_SCRIPT, json.dumps(batch))
        return [(status, body) for status, body in json.loads(done.stdout)]

    async def rows(self) -> dict[str, dict[int, tuple[int, int]]]:
        answers = await self.admin([("GET", node, "/admin/state", None) for node in CATALOGS])
        return {node: {b["id"]: (b["quantity"], b["seq"]) for b in body["books"]} if status == 200 else {}
                for node, (status, body) in zip(CATALOGS, answers, strict=True)}

    async def converged(self, bound: float = 15.0) -> float | None:
        """Seconds until every catalog replica holds the same (stock, seq) per book, or None."""
        started = time.monotonic()
        while time.monotonic() - started < bound:
            rows = list((await self.rows()).values())
            if rows[0] and all(row == rows[0] for row in rows):
                return time.monotonic() - started
            await asyncio.sleep(0.2)
        return None

    async def up(self, node: str) -> bool:
        [(status, _)] = await self.admin([("GET", node, "/health", None)])
        return status == 200


@dataclass
class Shoppers:
    """Buyers and a reader through the published port until stopped, every operation recorded
    on this process's monotonic clock, as fault_run's clients do."""

    shop: str
    rng: random.Random = field(default_factory=lambda: random.Random(27))
    operations: list[Operation] = field(default_factory=list)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def buyer(self, session: aiohttp.ClientSession) -> None:
        while not self.stopped.is_set():
            book, buy_id, start = self.rng.choice(BOOKS), uuid.uuid4().hex, time.monotonic()
            try:
                async with session.put(f"{self.shop}/buy/{book}", headers={BUY_ID_HEADER: buy_id},
                                       timeout=aiohttp.ClientTimeout(total=15)) as answer:
                    body = await answer.json(content_type=None)
                    outcome = {200: "bought" if body.get("success") else "out of stock", 202: "unknown"}.get(
                        answer.status, "failed")
            except (aiohttp.ClientError, TimeoutError):
                outcome = "unknown"  # it may have gone through
            self.operations.append(Operation("buy", book, start, time.monotonic(), outcome, buy_id=buy_id))
            await asyncio.sleep(PAUSE_S)

    async def reader(self, session: aiohttp.ClientSession) -> None:
        while not self.stopped.is_set():
            book = self.rng.choice(BOOKS)
            self.operations.append(await read(session, self.shop, f"/lookup/{book}", book, "frontend"))
            await asyncio.sleep(PAUSE_S)

    def bought_since(self, mark: int) -> int:
        return sum(1 for op in self.operations[mark:] if op.kind == "buy" and op.outcome == "bought")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    prepared = background_job()
    compose = engine(prepared)
    run_id = uuid.uuid4().hex[:8]
    image, build_s = built_image(prepared)
    size = int(sh("docker", "image", "inspect", "-f", "{{.Size}}", image).stdout)
    print(f"\nimage {image} built in {build_s:.1f} s, {size / 1e6:.0f} MB")
    secret = tmp_path_factory.mktemp("secret") / "bazar.secret"
    secret.write_text(uuid.uuid4().hex + "\n")
    secret.chmod(0o644)  # bind-mounted as it is: the node's user (uid 10001) must read it
    env = {**os.environ, "BAZAR_IMAGE": image, "BAZAR_SECRET_FILE": str(secret), "BAZAR_PORT": str(free_port()),
           "BAZAR_NETWORK": f"bazar-test-{run_id}",
           **{f"BAZAR_PORT_{node.upper()}": str(free_port()) for node in NODES}}
    made = ComposeCluster(compose, f"bazar-test-{run_id}", env, int(env["BAZAR_PORT"]))
    try:
        upped = made.run("up", "-d", "--no-build", timeout=180)
        assert upped.returncode == 0, f"compose up failed:\n{upped.stderr[-3000:]}"
        yield made
    finally:
        logs = made.run("logs", "--no-color", "--tail", "20", timeout=60).stdout
        down = made.run("down", "--volumes", "--remove-orphans", "--timeout", "5", timeout=180)
        sh("docker", "rmi", "--no-prune", image, timeout=60)  # the layers stay as build cache
        assert down.returncode == 0, f"compose down failed: {down.stderr[-2000:]}\nlogs:\n{logs[-4000:]}"
        left = sh("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={made.project}").stdout
        assert not left.strip(), f"containers left behind: {left}"


async def answers_as_documented(cluster: ComposeCluster) -> None:
    """docs/api.md's public routes, through the only published port."""
    async with aiohttp.ClientSession() as session:
        async def answered() -> bool:
            try:
                async with session.get(f"{cluster.shop}/lookup/2") as answer:
                    return answer.status == 200
            except aiohttp.ClientError:
                return False

        await wait_until(answered, timeout=60, what="the front-end to answer on the published port", every=0.5)
        async with session.get(f"{cluster.shop}/search/distributed") as answer:
            assert [book["id"] for book in await answer.json()] == [1, 2]
        async with session.get(f"{cluster.shop}/lookup/2") as answer:
            assert {"title", "quantity", "price"} <= set(await answer.json())
        async with session.put(f"{cluster.shop}/buy/2") as answer:
            assert answer.status == 200 and (await answer.json())["success"] is True
        async with session.get(f"{cluster.shop}/admin/state") as answer:
            assert answer.status == 401, "an admin route answered without the secret"


async def prepare(cluster: ComposeCluster) -> None:
    """Every replica reset (its remembered buys too) and every book at STOCK copies, as
    fault_run's prepare does through the supervisor."""
    generation = time.time_ns()  # one for all catalog replicas, as Supervisor.reset tells them
    resets: list[tuple[str, str, str, Any]] = [("POST", node, "/admin/reset", {"generation": generation})
                                               for node in CATALOGS]
    resets += [("POST", node, "/admin/reset", None) for node in ("order0", "order1", "order2", "frontend")]
    assert all(status == 200 for status, _ in await cluster.admin(resets))
    async def agreed() -> bool:
        return await cluster.converged(2.0) is not None

    await wait_until(agreed, timeout=60, what="the catalog replicas to agree", every=0.5)
    answers = await cluster.admin([("PUT", "catalog0", f"/update/{book}", {"quantity": STOCK}) for book in BOOKS])
    assert all(status == 200 for status, _ in answers), answers
    assert await cluster.converged() is not None, "the replicas did not agree on the starting stock"


async def kill_and_partition(cluster: ComposeCluster, shoppers: Shoppers, say: Callable[[str], None]) -> list[Fault]:
    """Kill catalog0's container and start it again, then take catalog1 off the network and
    put it back, the shoppers buying all along."""
    faults = []
    await asyncio.sleep(2)
    killed, mark, start = cluster.container("catalog0"), len(shoppers.operations), time.monotonic()
    await cluster.docker("kill", killed)
    await asyncio.sleep(3)
    bought = shoppers.bought_since(mark)
    await cluster.docker("start", killed)
    await wait_until(lambda: cluster.up("catalog0"), timeout=30, what="catalog0 to come back", every=0.5)
    faults.append(Fault("crash", ("catalog0",), start, time.monotonic(), "docker kill catalog0; docker start"))
    say(f"killed catalog0's container: {bought} buys bought while it was down; started again")
    assert bought > 0, "no buy went through with catalog0 killed"

    network, cut = cluster.network(), cluster.container("catalog1")
    mark, start = len(shoppers.operations), time.monotonic()
    await cluster.docker("network", "disconnect", network, cut)
    await asyncio.sleep(3)
    bought = shoppers.bought_since(mark)
    # Reconnecting must give back the service's name: without the alias no peer finds it again.
    await cluster.docker("network", "connect", "--alias", "catalog1", network, cut)
    await wait_until(lambda: cluster.up("catalog1"), timeout=30, what="catalog1 to be reachable again", every=0.5)
    faults.append(Fault("partition", ("catalog1",), start, time.monotonic(), "catalog1 disconnected from the network"))
    say(f"disconnected catalog1 from {network}: {bought} buys bought meanwhile; reconnected")
    assert bought > 0, "no buy went through with catalog1 cut off"
    await asyncio.sleep(2)
    return faults


async def checked_history(cluster: ComposeCluster, say: Callable[[str], None]) -> History:
    await answers_as_documented(cluster)
    await prepare(cluster)
    shoppers = Shoppers(cluster.shop)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        load = asyncio.gather(shoppers.buyer(session), shoppers.buyer(session), shoppers.reader(session))
        try:
            faults = await kill_and_partition(cluster, shoppers, say)
        finally:
            shoppers.stopped.set()
            await load
    healed = time.monotonic()
    # After healing, every book read at every replica (one exec, so each read's interval is the exec's).
    calls = [("GET", node, f"/query/item/{book}", None) for node in CATALOGS for book in BOOKS]
    start = time.monotonic()
    answers = await cluster.admin(calls)
    end = time.monotonic()
    post_heal = [Operation("read", int(path.rsplit("/", 1)[1]), start, end, "ok" if status == 200 else "failed",
                           quantity=body["quantity"] if status == 200 else None, where=node)
                 for (_, node, path, _), (status, body) in zip(calls, answers, strict=True)]
    agreed = await cluster.converged()
    rows = await cluster.rows()
    buys = await cluster.admin([("GET", node, "/admin/buys", None) for node in CATALOGS])
    finals = [Final(node, rows[node], {b["buy_id"]: b["book"] for b in body})
              for node, (_, body) in zip(CATALOGS, buys, strict=True)]
    return History({book: STOCK for book in BOOKS}, shoppers.operations + post_heal, faults, finals,
                   convergence_s=None if agreed is None else time.monotonic() - healed)


@pytest.mark.timeout(900)  # a cold engine (ENGINE_SCRIPT) and build; about 1 minute on a warm cache
async def test_the_compose_cluster_survives_a_killed_and_a_cut_off_catalog(cluster: ComposeCluster):
    history = await checked_history(cluster, say=print)
    anomalies = check(history)
    print(f"{history.summary()}\nanomalies found: {len(anomalies)}\nverdict: {'FAIL' if anomalies else 'PASS'}")
    assert not anomalies, "\n".join(str(a) for a in anomalies[:20])


async def test_a_node_stops_on_sigterm_and_comes_back_by_its_restart_policy(cluster: ComposeCluster):
    """`docker stop` is answered at once with exit 0; a node that exits on its own is started
    again by the engine (restart: unless-stopped)."""
    order1 = cluster.container("order1")
    await cluster.docker("exec", order1, "sh", "-c", "kill -TERM 1")

    async def restarted() -> bool:
        state = (await cluster.docker("inspect", "-f", "{{.RestartCount}} {{.State.Running}}", order1)).stdout.split()
        return int(state[0]) >= 1 and state[1] == "true"

    await wait_until(restarted, timeout=30, what="the engine to restart order1", every=0.5)
    order2, start = cluster.container("order2"), time.monotonic()
    await cluster.docker("stop", "--time", "10", order2)
    stopped_in = time.monotonic() - start
    code = (await cluster.docker("inspect", "-f", "{{.State.ExitCode}}", order2)).stdout.strip()
    print(f"\norder1 exited on its own and was restarted by its policy; docker stop order2: {stopped_in:.2f} s, "
          f"exit code {code}")
    assert code == "0" and stopped_in < 5, f"docker stop took {stopped_in:.1f} s, exit code {code}"
    await cluster.docker("start", order2)  # as the next test finds the cluster: whole
    await wait_until(lambda: cluster.up("order2"), timeout=30, what="order2 started again", every=0.5)


def attach_file(cluster: ComposeCluster, folder: Path) -> Path:
    """assets/compose-attach.toml, with this run's project, ports and secret."""
    text = (ROOT / "assets" / "compose-attach.toml").read_text(encoding="utf-8")
    text = text.replace('project = "bazar"', f'project = "{cluster.project}"')
    text = text.replace('secret_file = "~/.bazar.secret"', f'secret_file = "{cluster.env["BAZAR_SECRET_FILE"]}"')
    text = text.replace("http://127.0.0.1:8000", cluster.shop)
    for node in NODES:
        default = 8001 + NODES.index(node)
        text = text.replace(f"http://127.0.0.1:{default}", f"http://127.0.0.1:{cluster.env[f'BAZAR_PORT_{node.upper()}']}")
    file = folder / "attach.toml"
    file.write_text(text, encoding="utf-8")
    return file


@pytest.mark.timeout(300)
async def test_attached_to_the_compose_cluster_every_fault_goes_through_the_engine(cluster: ComposeCluster, tmp_path):
    """Issue 27 item 4: the window's session attached to a cluster it did not start: crash,
    start, hang, resume, cut off and reconnect are the engine's, every view's model says so,
    buys go on, and closing the session leaves the containers running."""
    from nodes.control.clusterfile import load
    from nodes.core.vocabulary import BuyResult, HealthState
    from nodes.session.session import ClusterSession

    await answers_as_documented(cluster)
    session = ClusterSession(load(attach_file(cluster, tmp_path)), announce=print)
    model, controller = session.model, session.controller

    async def container(node: str) -> dict[str, Any]:
        found = await cluster.docker("inspect", "-f", "{{json .}}", cluster.container(node))
        return json.loads(found.stdout)

    async def seen(node: str, state: HealthState, what: str) -> None:
        await wait_until(lambda: model.health(node).state == state, timeout=30, what=f"{node} {what}", every=0.1)

    await session.start()
    try:
        assert {n: str(model.health(n).state) for n in model.nodes} == dict.fromkeys(model.nodes, "up")
        assert not model.health("catalog2").process.attached, "the window would offer no crash or hang"

        await controller.crash("catalog2")
        assert (await container("catalog2"))["State"]["Running"] is False
        await seen("catalog2", HealthState.DOWN, "drawn down")
        assert (await session.shop.buy(3)).kind == BuyResult.BOUGHT, "a buy with catalog2 killed"
        await controller.start("catalog2")
        assert (await container("catalog2"))["State"]["Running"] is True
        await seen("catalog2", HealthState.UP, "drawn up again")

        await controller.hang("catalog0")
        assert (await container("catalog0"))["State"]["Paused"] is True
        await seen("catalog0", HealthState.HUNG, "drawn hung")
        await controller.resume("catalog0")
        assert (await container("catalog0"))["State"]["Paused"] is False
        await seen("catalog0", HealthState.UP, "drawn up after resuming")

        await controller.cut_off("catalog1", True)
        assert (await container("catalog1"))["NetworkSettings"]["Networks"] == {}, "still on a network"
        await seen("catalog1", HealthState.CUT_OFF, "drawn cut off")
        assert (await session.shop.buy(4)).kind == BuyResult.BOUGHT, "a buy with catalog1 off the network"
        await controller.cut_off("catalog1", False)
        assert list((await container("catalog1"))["NetworkSettings"]["Networks"]) == [cluster.network()]
        await seen("catalog1", HealthState.UP, "drawn reconnected")
        assert "BAZAR-READY" in session.supervisor.log_tail("catalog2", 200), "the Log button shows the container's"
        await wait_until(lambda: cluster.up("catalog1"), timeout=30, what="catalog1 reached by name again", every=0.5)
    finally:
        await session.stop()
    stopped = [node for node in NODES if not (await container(node))["State"]["Running"]]
    assert not stopped, f"closing the window stopped containers it did not start: {stopped}"
    print("attached: crash, start, hang, resume, cut off and reconnect done by the engine and drawn so; "
          "buys went through with catalog2 killed and catalog1 off the network; the containers outlived the session")

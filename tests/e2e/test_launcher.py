"""The control layer: cluster file, headless launcher, supervisor, outage toggles, no orphans."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from nodes.control import clusterfile, processes
from nodes.control.clusterfile import ClusterFileError
from nodes.control.supervisor import ClusterError, Supervisor, free_port
from nodes.core.telemetry import TRACE_HEADER, new_trace_id
from tests.support import Http, fast_timeouts, hops_of, make_cluster, start, wait_until_sync

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


# ---- cluster file -------------------------------------------------------------------------
def test_default_cluster_file_is_three_and_three():
    cluster = clusterfile.load()
    assert (cluster.catalogs, cluster.orders, cluster.lookup_cache, cluster.search_cache) == (3, 3, 3, 10)
    assert cluster.timeouts["frontend"] == clusterfile.Timeouts.from_ms(200, 2000)
    assert [cluster.catalog_of(i) for i in range(3)] == [0, 1, 2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[cluster]\ncatalogs = 0", "cluster.catalogs must be a whole number from 1 to 9"),
        ("[cluster]\norders = 'three'", "cluster.orders must be a whole number"),
        ("[cluster]\ncolour = 1", "unknown key(s) cluster.colour"),
        ("[cache]\nlookup = 3", "unknown section(s) ['cache']"),
        ("[caches]\nlookup = -1", "caches.lookup must be a whole number from 0"),
        ("[cluster]\norders = 2\norder_catalogs = [0, 5]",
         "cluster.order_catalogs must be a list of whole numbers from 0 to 2"),
        ("[cluster]\norders = 2\norder_catalogs = [0]", "cluster.order_catalogs must name one catalog replica"),
        ("[timeouts]\ncatalog = { connect_ms = 0 }", "timeouts.catalog.connect_ms must be"),
        ("[attach]\nfrontend = 'nope'", "attach.frontend must be the front-end's address"),
    ],
)
def test_wrong_cluster_file_values_name_the_key(text, message):
    with pytest.raises(ClusterFileError, match=re.escape(message)):
        clusterfile.parse(tomllib.loads(text))


def test_flags_override_the_file_and_are_checked():
    cluster = clusterfile.load().with_overrides(catalogs=5, orders=2, data_dir="/tmp/x")
    assert (cluster.catalogs, cluster.orders, str(cluster.data_dir)) == (5, 2, "/tmp/x")
    with pytest.raises(ClusterFileError, match="--catalogs must be a whole number from 1 to 9"):
        clusterfile.load().with_overrides(catalogs=12)


def test_free_ports_are_never_handed_out_twice_and_lie_below_the_ephemeral_range(tmp_path, monkeypatch):
    # A suite starts some 150 clusters in one process; two nodes given one port fail to start.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a cursor file of this test's own
    ports = [free_port() for _ in range(400)] + [free_port(count=5) + i for i in range(5)]
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert len(set(ports)) == len(ports)
    assert all(10_000 <= p < low for p in ports)
    (tmp_path / processes.CURSOR_FILE).write_text(str(low - 3))  # a block of five near the top wraps round
    first = free_port(count=5)
    assert first + 4 < low


TAKE_PORTS = "from nodes.control.processes import free_port; print(*[free_port() for _ in range(40)])"


def test_processes_starting_clusters_at_once_share_one_port_cursor(tmp_path):
    """The suite's two workers each walked the range from a cursor of their own, met, and handed
    one port to two nodes (CI, 2026-12-05): every process now walks one cursor, kept in a file."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    (tmp_path / processes.CURSOR_FILE).write_text("20000")  # far from the top: no wrapping round

    def take() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", TAKE_PORTS], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                text=True)

    first = take()
    before = [int(p) for p in first.communicate(timeout=60)[0].split()]
    together = [take() for _ in range(3)]
    after = [[int(p) for p in proc.communicate(timeout=60)[0].split()] for proc in together]
    taken = [p for ports in after for p in ports]
    assert len(set(before + taken)) == len(before) + len(taken) == 160
    # One cursor: the later processes went on from where the first one stopped.
    assert 20_000 <= min(before) and min(taken) > max(before)


def test_launcher_reports_a_bad_cluster_file_in_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[cluster]\ncatalogs = 42\n")
    result = subprocess.run([sys.executable, "launcher.py", "--headless", "--cluster", str(bad)], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == "launcher.py: cluster.catalogs must be a whole number from 1 to 9 (got 42)"


# ---- headless launcher and orphans --------------------------------------------------------
def launch_headless(tmp_path: Path) -> tuple[subprocess.Popen, dict[str, int], str]:
    """The headless launcher with its prompt open (stdin a pipe nobody writes to, as a terminal
    nobody types in): a signal must stop it without a line to read."""
    proc = subprocess.Popen(
        [sys.executable, "launcher.py", "--headless", "--catalogs", "2", "--orders", "1", "--data-dir", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.PIPE, text=True,
    )
    lines = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith("front-end:") or not line:
            break
    output = "".join(lines)
    pids = {f"{m[0]}{m[1]}": int(m[3]) for m in re.findall(r"^(front-end|catalog|order)\s+(-|\d)\s+(\S+)\s+(\d+)$",
                                                           output, re.M)}
    return proc, pids, output


def test_headless_prints_progress_and_a_node_table_then_stops_on_sigterm(tmp_path):
    proc, pids, output = launch_headless(tmp_path)
    try:
        assert "Starting 4 nodes" in output and "[4/4]" in output
        assert set(pids) == {"front-end-", "catalog0", "catalog1", "order0"}
        assert re.search(r"^front-end: http://127\.0\.0\.1:\d+", output, re.M)
        assert all(alive(pid) for pid in pids.values())
        assert (tmp_path / "logs" / "catalog0.log").exists() and (tmp_path / "catalog0.db").exists()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("help\n")  # a line typed is answered at once, not at the end of the input
        proc.stdin.flush()
        answered = []
        while not any(line.lstrip().startswith("quit") for line in answered):
            answered.append(proc.stdout.readline())
            assert answered[-1], "the prompt answered nothing"
        proc.send_signal(signal.SIGTERM)
        # Before: the nodes stopped only once a line was typed (the prompt's reading thread
        # held the asyncio runner's closing up), so `timeout` or Ctrl-C left them running.
        assert proc.wait(timeout=20) == 0
        assert not any(alive(pid) for pid in pids.values())
    finally:
        proc.kill()
        proc.wait()


def test_no_node_outlives_a_sigkilled_launcher_even_a_hung_one(tmp_path):
    proc, pids, output = launch_headless(tmp_path)
    try:
        assert len(pids) == 4, output
        # The nodes' parent: the fork server the launcher started (nodes/control/spawn.py).
        forkers = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "nodes.runtime.forkserver"],
                                 capture_output=True, text=True).stdout.split()
        assert len(forkers) == 1, forkers
        pids["fork server"] = int(forkers[0])
        os.kill(pids["catalog1"], signal.SIGSTOP)  # a hung node cannot clean up after itself
        proc.kill()
        proc.wait()
        wait_until_sync(lambda: not any(alive(pid) for pid in pids.values()), timeout=5,
                        what="every node and the fork server to end after the launcher was SIGKILLed")
    finally:
        proc.kill()
        proc.wait()
        for pid in pids.values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


# ---- supervisor toggles --------------------------------------------------------------------
@pytest.fixture
async def documented(tmp_path, supervisors):
    """Three catalog replicas, documented rules and failover, short timeouts: every effect
    of a toggle shows the way the documents describe it."""
    cluster = replace(make_cluster(tmp_path, catalogs=3, orders=1, timeouts=fast_timeouts()),
                      catalog_mode="documented")
    supervisor = start(cluster)
    supervisors.append(supervisor)
    http = Http(supervisor)
    await supervisor.wait_settled()
    await supervisor.admin("frontend", "POST", "/admin/failover", {"mode": "documented"})
    yield supervisor, http
    await http.close()
    await supervisor.aclose()


async def test_hung_catalog_makes_a_lookup_wait_for_the_timeout_then_the_next_answers(documented):
    supervisor, http = documented
    await http.set_stock(2, 5)  # valid on every replica: whoever answers, answers at once
    supervisor.hang("catalog1")
    assert supervisor.node("catalog1").status == "hung"
    await supervisor.admin("frontend", "POST", "/admin/failover", {"catalog_turn": 1})
    trace = new_trace_id()
    started = time.monotonic()
    status, book, _ = await http.request("GET", "frontend", "/lookup/2", headers={TRACE_HEADER: trace})
    waited = time.monotonic() - started
    assert status == 200 and book["title"] == "RPCs for Dummies"
    assert waited >= 1.0  # the front-end's total timeout in this cluster
    hops = [(h["to"], h["answer"]) for h in await hops_of(supervisor, trace) if h["node"] == "frontend"]
    assert hops == [("catalog1", "no answer (timeout)"), ("catalog2", "200 OK")]
    supervisor.resume("catalog1")
    assert supervisor.node("catalog1").status == "up"
    assert (await http.get("/query/item/2", node="catalog1"))[0] == 200


async def test_crash_and_restart_keeps_the_database_and_empties_the_valid_set(documented):
    supervisor, http = documented
    await http.set_stock(4, 20, via="catalog0")  # written everywhere, valid everywhere
    assert (await http.book_state("catalog2", 4))["valid"] is True
    old_pid = supervisor.node("catalog2").pid
    supervisor.crash("catalog2")
    assert supervisor.node("catalog2").status == "down" and supervisor.node("catalog2").pid is None
    supervisor.start("catalog2")
    supervisor.wait_ready(["catalog2"])
    assert supervisor.node("catalog2").pid != old_pid
    book = await http.book_state("catalog2", 4)
    assert (book["quantity"], book["seq"], book["valid"]) == (20, 1, False)
    assert not any(b["valid"] for b in (await http.state("catalog2"))["books"])


async def test_cut_off_replica_is_unreachable_to_peers_and_keeps_its_memory(documented):
    supervisor, http = documented
    assert (await http.get("/query/item/5", node="catalog2"))[0] == 200  # valid on the read path
    valid_before = {b["id"] for b in (await http.state("catalog2"))["books"] if b["valid"]}
    await supervisor.cut_off("catalog2", True)
    assert supervisor.node("catalog2").status == "up, cut off"
    trace = new_trace_id()
    status, _, _ = await http.request("PUT", "catalog0", "/update/6", {"price": 40}, secret=True,
                                      headers={TRACE_HEADER: trace})
    assert status == 200
    to_2 = [h["answer"] for h in await hops_of(supervisor, trace) if h["to"] == "catalog2"]
    assert to_2 == ["no answer (timeout)"]  # a cut link looks like a network that stopped delivering
    state = await http.state("catalog2")  # admin still answers while cut off
    assert {b["id"] for b in state["books"] if b["valid"]} == valid_before  # memory kept
    assert next(b for b in state["books"] if b["id"] == 6)["price"] == 35  # the write passed it by
    await supervisor.cut_off("catalog2", False)
    assert (await http.get("/query/item/1", node="catalog2"))[0] == 200


async def test_slow_adds_the_delay_to_every_answer(documented):
    supervisor, http = documented
    started = time.monotonic()
    await http.get("/query/item/3", node="catalog0")
    fast = time.monotonic() - started
    await supervisor.slow("catalog0", 400)
    assert supervisor.node("catalog0").status == "up, slowed 400 ms"
    started = time.monotonic()
    status, _ = await http.get("/query/item/3", node="catalog0")
    assert status == 200 and time.monotonic() - started >= 0.4 > fast
    await supervisor.slow("catalog0", 0)
    assert supervisor.node("catalog0").status == "up"


async def test_reset_puts_every_database_back_to_the_seven_books(documented):
    supervisor, http = documented
    await http.put("/buy/1")
    await http.set_stock(7, 1)
    await supervisor.reset()
    await supervisor.wait_settled()  # replicas reset one after another: until all are, they refuse each other
    for node in supervisor.of_role("catalog"):
        books = (await supervisor.state(node.name))["books"]
        assert [(b["id"], b["quantity"], b["seq"]) for b in books] == [
            (1, 10, 0), (2, 5, 0), (3, 10, 0), (4, 25, 0), (5, 11, 0), (6, 17, 0), (7, 18, 0)]
    assert (await http.get("/orders", node="order0", secret=True))[1] == []
    assert (await http.get("/lookup/1"))[1]["quantity"] == 10


async def test_log_tail_shows_a_nodes_own_log(documented):
    supervisor, _ = documented
    assert "BAZAR-READY" in supervisor.log_tail("catalog1")
    with pytest.raises(ClusterError, match="no node named 'catalog9'"):
        supervisor.log_tail("catalog9")


async def test_attach_controls_running_nodes_by_address(documented, tmp_path):
    supervisor, http = documented
    text = f"""
[cluster]
secret = "{supervisor.secret}"
[attach]
frontend = "{supervisor.frontend.address}"
catalogs = {[n.address for n in supervisor.of_role("catalog")]}
orders = {[n.address for n in supervisor.of_role("order")]}
""".replace("'", '"')
    attached = Supervisor(clusterfile.parse(tomllib.loads(text)))
    try:
        assert [n.status for n in attached.nodes.values()] == ["up"] * 5
        await attached.slow("catalog1", 50)
        assert (await supervisor.state("catalog1"))["slow_ms"] == 50
        await attached.slow("catalog1", 0)
        with pytest.raises(ClusterError, match="attached"):
            attached.crash("catalog1")
        with pytest.raises(ClusterError, match="attached"):
            attached.hang("catalog1")
    finally:
        await attached.aclose()
        attached.close()


def test_without_a_display_the_window_says_so_in_one_line_and_names_headless(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "launcher.py", "--data-dir", str(tmp_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "--headless" in lines[0]
    assert not (tmp_path / "logs").exists()  # nothing was started


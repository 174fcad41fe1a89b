"""Scenarios: each documented figure (S1–S12) and each weak point (W1–W7) as a data file a
teacher can copy and edit, and the player that replays one on a real cluster — building the
starting state through restarts, hangs, cut-offs and real writes, sending the request, and
comparing what happened with what the file expects. No Qt: ``launcher.py scenario``, the
tests and the window's Scenarios tab all use it.

A scenario file (TOML; see ``assets/scenarios/S2.toml``)::

    id, title, figure, about          what it is and which picture it replays
    [cluster]  catalogs, orders, catalog_mode, failover, book
    [[setup]]  do = crash | start | restart | hang | resume | cut | heal | slow | write |
               read | stock | peer_order | turn | settle | noticed   (+ their arguments)
    [start]    seq, valid             the starting state, checked before the request
    [request]  method, node, path, secret, times, concurrent, header
    [expect]   status(es), hops or phases (+ among), seq, valid, quantity, outcomes, max_ms
               (statuses and outcomes: a list of lists when racing requests may end either way)
    narration  one plain sentence per hop, in order (optional; made from the hops otherwise)
"""
from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from nodes.control import nemesis
from nodes.control.clusterfile import Cluster
from nodes.control.supervisor import Supervisor
from nodes.core.telemetry import TRACE_HEADER, new_trace_id
from nodes.core.vocabulary import NodeState
from nodes.observe.follower import fetch_trace
from nodes.observe.traces import Hop, Trace
from nodes.runs.follow import FollowedRun, Recorded
from nodes.runtime.signing import SECRET_HEADER

SCENARIO_DIR = Path(__file__).resolve().parent.parent.parent / "assets" / "scenarios"
STEPS = {"crash", "start", "restart", "hang", "resume", "cut", "heal", "slow", "write", "read", "stock",
         "peer_order", "turn", "settle", "noticed", "buy", "partition"}


class ScenarioError(ValueError):
    """A scenario file that cannot be played; the message says which key and why."""


@dataclass
class Scenario:
    id: str
    title: str
    path: Path
    figure: str = ""
    about: str = ""
    catalogs: int = 3
    orders: int = 1
    catalog_mode: str = "bazar"
    consistency: str | None = None
    failover: str = "adaptive"
    book: int = 2
    setup: list[dict[str, Any]] = field(default_factory=list)
    start: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)
    narration: list[str] = field(default_factory=list)

    def cluster(self, data_dir: Path) -> Cluster:
        return replace(Cluster(), catalogs=self.catalogs, orders=self.orders, catalog_mode=self.catalog_mode,
                       consistency=self.consistency,
                       data_dir=data_dir)


def load(path: str | Path) -> Scenario:
    path = Path(path)
    if not path.exists() and (SCENARIO_DIR / f"{path.name}.toml").exists():
        path = SCENARIO_DIR / f"{path.name}.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(s.stem for s in sorted(SCENARIO_DIR.glob("*.toml")))
        raise ScenarioError(f"no scenario {path} (known: {known})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path.name} is not valid TOML: {exc}") from None
    return parse(raw, path)


def parse(raw: dict[str, Any], path: Path) -> Scenario:
    name = path.name

    def need(table: dict, key: str, kind: type | tuple, where: str) -> Any:
        if key not in table:
            raise ScenarioError(f"{name}: {where}.{key} is missing")
        if not isinstance(table[key], kind):
            raise ScenarioError(f"{name}: {where}.{key} has the wrong type ({type(table[key]).__name__})")
        return table[key]

    for key in ("id", "title"):
        need(raw, key, str, "top level")
    cluster = raw.get("cluster", {})
    scenario = Scenario(
        id=raw["id"], title=raw["title"], path=path, figure=raw.get("figure", ""), about=raw.get("about", ""),
        catalogs=cluster.get("catalogs", 3), orders=cluster.get("orders", 1),
        catalog_mode=cluster.get("catalog_mode", "bazar"), consistency=cluster.get("consistency"),
        failover=cluster.get("failover", "adaptive"),
        book=cluster.get("book", 2), setup=raw.get("setup", []), start=raw.get("start", {}),
        request=raw.get("request", {}), expect=raw.get("expect", {}), narration=raw.get("narration", []),
    )
    if not (isinstance(scenario.catalogs, int) and 1 <= scenario.catalogs <= 9):
        raise ScenarioError(f"{name}: cluster.catalogs must be a whole number from 1 to 9")
    if not (isinstance(scenario.orders, int) and 1 <= scenario.orders <= 9):
        raise ScenarioError(f"{name}: cluster.orders must be a whole number from 1 to 9")
    if scenario.catalog_mode not in ("bazar", "documented"):
        raise ScenarioError(f"{name}: cluster.catalog_mode must be \"bazar\" or \"documented\"")
    if scenario.consistency not in (None, "majority", "available"):
        raise ScenarioError(f"{name}: cluster.consistency must be \"majority\" or \"available\"")
    if scenario.failover not in ("adaptive", "documented"):
        raise ScenarioError(f"{name}: cluster.failover must be \"adaptive\" or \"documented\"")
    nodes = {"frontend"} | {f"catalog{i}" for i in range(scenario.catalogs)} | \
        {f"order{i}" for i in range(scenario.orders)}
    for number, step in enumerate(scenario.setup, start=1):
        where = f"setup step {number}"
        if not isinstance(step, dict) or step.get("do") not in STEPS:
            raise ScenarioError(f"{name}: {where}: 'do' must be one of {', '.join(sorted(STEPS))}")
        for node in [step["node"]] if "node" in step else step.get("nodes", []):
            if node not in nodes:
                raise ScenarioError(f"{name}: {where} names {node!r}, but the cluster has {', '.join(sorted(nodes))}")
    if not scenario.request:
        raise ScenarioError(f"{name}: [request] is missing")
    if scenario.request.get("node", "frontend") not in nodes:
        raise ScenarioError(f"{name}: request.node {scenario.request.get('node')!r} is not in the cluster")
    for key in ("seq", "valid"):
        for table_name, table in (("start", scenario.start), ("expect", scenario.expect)):
            if key in table and len(table[key]) != scenario.catalogs:
                raise ScenarioError(f"{name}: {table_name}.{key} must list {scenario.catalogs} values, one per "
                                    "catalog replica")
    return scenario


def load_all() -> list[Scenario]:
    return [load(path) for path in sorted(SCENARIO_DIR.glob("*.toml"), key=_order)]


def _order(path: Path) -> tuple[str, int]:
    return path.stem[0], int(path.stem[1:]) if path.stem[1:].isdigit() else 0


# ---- playing --------------------------------------------------------------------------------
@dataclass
class Outcome:
    scenario: Scenario
    trace: Trace | None
    hops: list[Hop]
    answers: list[tuple[int, Any]]
    seconds: float
    end: list[tuple[int | None, bool | None, int | None]]  # (seq, valid, quantity) per catalog
    start: list[tuple[int | None, bool | None, int | None]] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    start_differences: list[str] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return not self.differences and not self.start_differences

    def verdict(self) -> str:
        s = self.scenario
        if self.matched:
            path = " → ".join(_path(self.hops)) if self.hops else "no hop"
            valid = [(str(i), seq) for i, (seq, v, _) in enumerate(self.end) if v]
            seqs = sorted({seq for _, seq in valid if seq is not None})
            what = f"matches {s.figure}" if s.figure else f"{s.id} behaves as expected"
            marks = (f"replicas {', '.join(i for i, _ in valid)} now valid at seq {', '.join(map(str, seqs))}"
                     if valid else "no replica holds the book as valid")
            return f"{what}: hops {path}; {marks}"
        return f"{s.id} differs from {s.figure or 'what it expects'}:\n  - " + "\n  - ".join(
            self.start_differences + self.differences)

    def sentences(self) -> list[str]:
        if self.scenario.narration and len(self.scenario.narration) == len(self.hops):
            return list(self.scenario.narration)
        return [describe(hop) for hop in self.hops]


def _path(hops: list[Hop]) -> list[str]:
    nodes = [hops[0].source.removeprefix("catalog")] if hops else []
    for hop in hops:
        target = hop.target.removeprefix("catalog")
        if target != nodes[-1]:
            nodes.append(target)
    return nodes


def describe(hop: Hop) -> str:
    """One plain sentence for a hop, for the teacher's caption."""
    words = hop.label.split()
    answer = hop.answer
    if words[0].startswith("/rep/get/"):
        asked = hop.label.split("req: ")[1].split(" seq_n")[0]
        seen = hop.label.split("seq_n: ")[1]
        return (f"{hop.source} does not hold the book as valid, so it asks {hop.target} (already asked: {asked}; "
                f"highest seq seen {seen}) → {answer}.")
    if words[0].startswith("/rep/check/"):
        return f"{hop.source} checks with {hop.target} that its seq {words[-1]} is not behind → {answer}."
    if words[0].startswith("/rep/update/"):
        return f"{hop.source} sends the new copy (seq {words[2]}) to {hop.target} → {answer}."
    if words[0].startswith("/rep/release/"):
        return f"{hop.source} hands back the reservation {hop.target} granted → {answer}."
    if words[0].startswith("/query/item/"):
        return f"{hop.source} reads the book from {hop.target} → {answer}."
    if words[0].startswith("/update/"):
        return f"{hop.source} writes the new stock to {hop.target} → {answer}."
    if words[0].startswith("/buy/"):
        return f"{hop.source} passes the buy to {hop.target} → {answer}."
    if words[0].startswith("/invalidate/"):
        return f"{hop.source} tells the front-end to drop {hop.label.removeprefix('/invalidate/')} from its cache " \
               f"→ {answer}."
    return f"{hop.source} → {hop.target}: {hop.label} → {answer}."


#: A temporary folder of scenario clusters is named so (``tempfile.mkdtemp(prefix=...)``).
TEMPORARY_PREFIX = "bazar-scenarios-"


def temporary(folder: Path) -> bool:
    """Whether ``folder`` is a temporary one for scenario clusters (made by the window or the
    launcher in the system's temporary folder), not one a person chose with --data-dir."""
    return folder.parent == Path(tempfile.gettempdir()) and folder.name.startswith(TEMPORARY_PREFIX)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


class Player:
    """Plays scenarios on a real cluster started for each one's shape. In a temporary folder
    (``data_dir`` None, or one named by ``temporary``), a cluster's files exist only while it
    plays: nothing is left in /tmp, however the play ends."""

    def __init__(self, data_dir: Path | None = None, *, say=lambda message: None,
                 record: Callable[[Scenario], Path] | None = None) -> None:
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix=TEMPORARY_PREFIX))
        self.temporary = temporary(self.data_dir)
        if self.temporary:
            _remove_if_empty(self.data_dir)  # made again by the first cluster that plays
        self.say = say
        self.supervisor: Supervisor | None = None
        #: Where to record each scenario's run (``launcher.py scenario --record``), and what the
        #: last recording says of itself.
        self.record = record
        self.recorded: Recorded | None = None

    async def play(self, scenario: Scenario) -> Outcome:
        folder = self.data_dir / scenario.id
        supervisor = Supervisor(scenario.cluster(folder))
        self.supervisor = supervisor
        # Started in a worker thread that a cancel does not stop: waited for below, so that no
        # process starts after the cluster was closed.
        starting = asyncio.ensure_future(asyncio.to_thread(supervisor.start_all))
        try:
            self.say(f"starting {scenario.catalogs} catalog and {scenario.orders} order replicas")
            await asyncio.shield(starting)
            await asyncio.to_thread(supervisor.wait_ready, None, 60)
            await supervisor.wait_settled()
            if self.record is None:
                return await play_on(supervisor, scenario, self.say)
            recording = await FollowedRun.start(supervisor, self.record(scenario), f"scenario {scenario.id}")
            try:
                return await play_on(supervisor, scenario, self.say, note=recording.note)
            finally:
                self.recorded = await recording.close()
        finally:
            await asyncio.gather(starting, return_exceptions=True)
            await supervisor.aclose()
            await asyncio.to_thread(supervisor.close)
            if self.temporary:
                await asyncio.to_thread(shutil.rmtree, folder, True)
                _remove_if_empty(self.data_dir)


async def play_on(supervisor: Supervisor, scenario: Scenario, say=lambda message: None,
                  note: Callable[[str, str], None] | None = None) -> Outcome:
    """Play ``scenario`` on a running cluster of its shape; ``note(node, text)`` hears each step
    and the request on the node it concerns (a recording puts them in that node's log)."""
    await supervisor.admin("frontend", "POST", "/admin/failover", {"mode": scenario.failover})
    for number, step in enumerate(scenario.setup, start=1):
        say(f"setting up: {_step_text(step)}")
        if note is not None:
            for node in _step_nodes(supervisor, step):
                note(node, f"step {number}: {_step_words(step)}")
        await _setup_step(supervisor, scenario, step)
    start = await _replica_table(supervisor, scenario.book)
    start_differences = _compare_marks("before the request", scenario.start, start)
    sending = f"{scenario.request.get('method', 'GET')} {scenario.request['path']}"
    say(f"sending {sending} to {scenario.request.get('node', 'frontend')}")
    if note is not None:
        note(scenario.request.get("node", "frontend"), f"{scenario.id}'s request: {sending}")
    started = time.monotonic()
    trace_id, answers = await _send(supervisor, scenario.request)
    seconds = time.monotonic() - started
    expect = scenario.expect
    if expect.get("converge"):
        await _wait_converged(supervisor, scenario.book, float(expect["converge"]))
    trace = await fetch_trace(supervisor, trace_id) if trace_id else None
    hops = _filtered(trace.hops if trace else [], expect.get("among"), expect.get("from"))
    end = await _replica_table(supervisor, scenario.book)
    outcome = Outcome(scenario, trace, hops, answers, seconds, end, start=start, start_differences=start_differences)
    outcome.differences = _differences(scenario, outcome)
    if note is not None:
        note(scenario.request.get("node", "frontend"), outcome.verdict().splitlines()[0])
    return outcome


def _step_text(step: dict[str, Any]) -> str:
    return step["do"] + " " + " ".join(f"{k}={v}" for k, v in step.items() if k != "do")


def _step_words(step: dict[str, Any]) -> str:
    """A step as a log line says it: "crash catalog2", "write catalog1 quantity=4"."""
    named = [step["node"]] if "node" in step else list(step.get("nodes", []))
    rest = [f"{k}={v}" for k, v in step.items() if k not in ("do", "node", "nodes")]
    return " ".join([step["do"], *named, *rest])


def _step_nodes(supervisor: Supervisor, step: dict[str, Any]) -> list[str]:
    """The nodes a step concerns: those it names, the one a write or read goes through, the
    front-end for what it is told, every catalog replica for what they all do."""
    what = step["do"]
    if "node" in step or "nodes" in step:
        named = [step["node"]] if "node" in step else list(step["nodes"])
    elif what == "partition":
        named = [step["from"], *step.get("to", [])]
    elif what in ("write", "stock", "read", "buy"):
        named = [step.get("via", "frontend" if what == "buy" else "catalog0")]
    elif what in ("peer_order", "settle"):
        named = [node.name for node in supervisor.of_role("catalog")]
    else:
        named = ["frontend"]
    return [name for name in named if name in supervisor.nodes]


async def _setup_step(supervisor: Supervisor, scenario: Scenario, step: dict[str, Any]) -> None:
    nodes = [step["node"]] if "node" in step else list(step.get("nodes", []))
    what = step["do"]
    # One fault record, applied or healed, as the injector, the prompt and the window do.
    if what in ("crash", "hang", "cut", "restart"):
        for node in nodes:
            await nemesis.apply(supervisor, nemesis.fault(what, node), wait_ready=False)
    elif what in ("start", "resume", "heal"):
        for node in nodes:
            broken = {"start": "crash", "resume": "hang", "heal": "cut"}[what]
            await nemesis.heal(supervisor, nemesis.fault(broken, node), wait_ready=False)
    elif what == "partition":
        # from = a node, to = the nodes it no longer reaches (and, unless one_way, back)
        for node in step.get("to", []):
            await nemesis.apply(supervisor, nemesis.fault("partition", step["from"], node,
                                                        one_way=bool(step.get("one_way", False))))
    elif what == "slow":
        for node in nodes:
            await nemesis.apply(supervisor, nemesis.fault("slow", node, ms=int(step.get("ms", 0))))
    if what in ("start", "restart"):
        await asyncio.to_thread(supervisor.wait_ready, nodes)
        await supervisor.wait_settled()
    elif what in ("write", "stock"):
        body = {"quantity": int(step["quantity"])}
        await supervisor.admin(step.get("via", "catalog0"), "PUT", f"/update/{step.get('book', scenario.book)}", body)
    elif what == "read":
        await supervisor.admin(step.get("via", "catalog0"), "GET", f"/query/item/{step.get('book', scenario.book)}")
    elif what == "buy":
        await supervisor.admin(step.get("via", "frontend"), "PUT", f"/buy/{step.get('book', scenario.book)}")
    elif what == "peer_order":
        await supervisor.wait_settled()
        for node in supervisor.of_role("catalog"):
            if node.state == NodeState.UP:
                await supervisor.admin(node.name, "POST", "/admin/peer-order", {"order": step["order"]})
    elif what == "turn":
        body = {k: v for k, v in step.items() if k in ("catalog_turn", "order_turn")}
        await supervisor.admin("frontend", "POST", "/admin/failover", body)
    elif what == "settle":
        await supervisor.wait_settled()
    elif what == "noticed":
        for node in nodes:
            await supervisor.wait_noticed(node)


async def _send(supervisor: Supervisor, request: dict[str, Any]) -> tuple[str | None, list[tuple[int, Any]]]:
    trace_id = new_trace_id()
    headers = {TRACE_HEADER: trace_id, **request.get("header", {})}
    if request.get("secret", False):
        headers[SECRET_HEADER] = supervisor.secret
    body = request.get("body")

    async def one(session: aiohttp.ClientSession, node: str, path: str, extra: dict[str, str]) -> tuple[int, Any]:
        async with session.request(request.get("method", "GET"), supervisor.node(node).address + path,
                                   json=body, headers={**headers, **extra},
                                   timeout=aiohttp.ClientTimeout(total=30)) as resp:
            return resp.status, await resp.json(content_type=None)

    async with aiohttp.ClientSession() as session:
        if "concurrent" in request:  # several at once, each its own trace (the first one is drawn)
            answers = await asyncio.gather(*(one(session, target["node"], target.get("path", request["path"]),
                                                 {TRACE_HEADER: trace_id if i == 0 else new_trace_id()})
                                             for i, target in enumerate(request["concurrent"])))
            return trace_id, list(answers)
        answers = []
        for _ in range(int(request.get("times", 1))):  # repeated: the last one's trace is drawn
            trace_id = new_trace_id()
            answers.append(await one(session, request.get("node", "frontend"), request["path"],
                                     {TRACE_HEADER: trace_id}))
        return trace_id, answers


async def _replica_table(supervisor: Supervisor, book: int) -> list[tuple[int | None, bool | None, int | None]]:
    table: list[tuple[int | None, bool | None, int | None]] = []
    for node in supervisor.of_role("catalog"):
        if node.state != NodeState.UP:
            table.append((None, None, None))
            continue
        entry = next(b for b in (await supervisor.state(node.name))["books"] if b["id"] == book)
        table.append((entry["seq"], entry["valid"], entry["quantity"]))
    return table


async def _wait_converged(supervisor: Supervisor, book: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = [r for r in await _replica_table(supervisor, book) if r[0] is not None]
        if len({(seq, quantity) for seq, _, quantity in rows}) == 1:
            return
        await asyncio.sleep(0.05)


def _filtered(hops: list[Hop], among: str | None, source: str | None) -> list[Hop]:
    """The hops a scenario compares: between replicas of one role, and/or sent by one node."""
    if among is not None:
        hops = [h for h in hops if h.source.startswith(among) and h.target.startswith(among)]
    if source is not None:
        hops = [h for h in hops if h.source == source]
    return hops


def _compare_marks(when: str, expected: dict[str, Any], table: list[tuple]) -> list[str]:
    differences = []
    if "seq" in expected and [row[0] for row in table] != expected["seq"]:
        differences.append(f"seqs {when}: expected {expected['seq']}, found {[row[0] for row in table]}")
    if "valid" in expected and [row[1] for row in table] != expected["valid"]:
        differences.append(f"valid marks {when}: expected {expected['valid']}, found {[row[1] for row in table]}")
    return differences


def _alternatives(expected: Any) -> list[list[Any]]:
    """An expected list of answers, or a list of such lists (any one may come)."""
    if not expected:
        return []
    return [list(one) for one in expected] if isinstance(expected[0], list) else [list(expected)]


def _differences(scenario: Scenario, outcome: Outcome) -> list[str]:
    expect = scenario.expect
    found: list[str] = []
    statuses = [status for status, _ in outcome.answers]
    if "status" in expect and statuses != [expect["status"]] * len(statuses):
        found.append(f"answer: expected {expect['status']}, got {statuses}")
    # statuses and outcomes: one list, or a list of lists when the requests race — any one
    # alternative, the same for both (W8: which of two buyers at the same moment reaches the
    # copy first is the machine's to decide).
    outcomes = sorted(str(body["success"]) for _, body in outcome.answers  # the answers that say
                      if isinstance(body, dict) and "success" in body)  # bought or not (a 503 does not)
    want_statuses, want_outcomes = _alternatives(expect.get("statuses")), _alternatives(expect.get("outcomes"))

    def fits(i: int) -> tuple[bool, bool]:
        ok_statuses = not want_statuses or sorted(statuses) == sorted(want_statuses[min(i, len(want_statuses) - 1)])
        ok_outcomes = not want_outcomes or outcomes == sorted(
            str(v) for v in want_outcomes[min(i, len(want_outcomes) - 1)])
        return ok_statuses, ok_outcomes

    fitting = [fits(i) for i in range(max(len(want_statuses), len(want_outcomes)))]
    if fitting and not any(all(pair) for pair in fitting):
        if not any(ok for ok, _ in fitting):
            found.append(f"answers: expected {' or '.join(str(sorted(w)) for w in want_statuses)}, "
                         f"got {sorted(statuses)}")
        else:
            found.append(f"buy outcomes: expected {' or '.join(str(sorted(w)) for w in want_outcomes)}, "
                         f"got {outcomes}")
    if "body" in expect:
        last = outcome.answers[-1][1] if outcome.answers else None
        wrong = {k: (v, last.get(k) if isinstance(last, dict) else None) for k, v in expect["body"].items()
                 if not isinstance(last, dict) or last.get(k) != v}
        if wrong:
            found.append("answer body: " + ", ".join(f"{k} expected {v!r}, got {g!r}" for k, (v, g) in wrong.items()))
    hops = [(h.source, h.target, h.label, h.answer) for h in outcome.hops]
    if "hops" in expect:
        wanted = [tuple(h) for h in expect["hops"]]
        if hops != wanted:
            found.append("hops differ:\n      expected " + "\n               ".join(map(str, wanted)) +
                         "\n      found    " + "\n               ".join(map(str, hops)))
    if "phases" in expect:
        position = 0
        for number, phase in enumerate(expect["phases"], start=1):
            chunk = hops[position:position + len(phase)]
            position += len(phase)
            if sorted(chunk) != sorted(tuple(h) for h in phase):
                expected = sorted(tuple(h) for h in phase)
                found.append(f"phase {number} differs: expected {expected}, found {sorted(chunk)}")
        if position != len(hops):
            found.append(f"{len(hops) - position} hops more than expected: {hops[position:]}")
    if "targets" in expect:
        targets = [(h.target, h.answer) for h in outcome.hops]
        if targets != [tuple(t) for t in expect["targets"]]:
            found.append(f"replicas tried: expected {expect['targets']}, found {targets}")
    found += _compare_marks("after the request", expect, outcome.end)
    if "quantity" in expect:
        quantities = [row[2] for row in outcome.end if row[2] is not None]
        if quantities != [expect["quantity"]] * len(quantities):
            found.append(f"stock on the replicas: expected {expect['quantity']} everywhere, found {quantities}")
    if "max_ms" in expect and outcome.seconds * 1000 > expect["max_ms"]:
        found.append(f"took {outcome.seconds * 1000:.0f} ms, more than {expect['max_ms']} ms")
    if "min_ms" in expect and outcome.seconds * 1000 < expect["min_ms"]:
        found.append(f"took {outcome.seconds * 1000:.0f} ms, less than {expect['min_ms']} ms")
    return found

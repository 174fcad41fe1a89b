"""One simulated run: buyers and readers go through the front-end while a nemesis applies a
seeded schedule of faults; then everything is healed, the replicas are read and the history
is checked (``nodes/verify/checker.py``). ``explore`` runs many seeds; ``shrink`` looks for
the smallest fault schedule and workload that still fail, so a failure is easy to read."""
from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from nodes.core.catalog import CatalogReplica, Mode, rules_for
from nodes.core.clocks import MAX_DRIFT, MAX_ERROR_S
from nodes.core.effects import NoAnswer, Send
from nodes.core.messages import Bought, Buy, Found, NoOrderServer, OutcomeUnknown, OutOfStock, Read
from nodes.sim.world import CatalogDisk, Network, Observer, Process, World
from nodes.verify.checker import Anomaly, check
from nodes.verify.history import Fault, Final, History, Operation

#: The nemesis's faults, one at a time. Three more ride along: "clock" steps nodes' clocks now
#: and then (``set_clocks``), "corrupt" changes a row on a crashed catalog replica's disk before
#: it starts again (``set_corruption``), "disk" fills a catalog replica's disk for a while
#: (``set_disk_faults``).
FAULT_KINDS = ("crash", "restart", "hang", "cut", "loss", "duplicate", "partition", "one-way", "clock", "corrupt",
               "disk")
RIDING_ALONG = ("clock", "corrupt", "disk")
CLIENT_TIMEOUT_S = 10.0
SETTLE_BOUND_S = 15.0


@dataclass(frozen=True)
class PlannedFault:
    kind: str
    node: str
    start: float
    end: float
    links: tuple[tuple[str, str], ...] = ()  # partitions: the (sender, receiver) links cut

    def describe(self) -> str:
        if self.kind == "partition":
            other = sorted({b for a, b in self.links if a == self.node})
            mine = sorted({a for a, b in self.links if b == other[0]}) if other else [self.node]
            return f"{' '.join(mine)} | {' '.join(other)}"
        if self.kind == "one-way":
            return ", ".join(f"{a}->{b}" for a, b in self.links)
        return self.node


@dataclass(frozen=True)
class Options:
    seed: int = 1
    mode: str = Mode.BAZAR
    faults: tuple[str, ...] = FAULT_KINDS
    catalogs: int = 3
    orders: int = 2
    seconds: float = 5.0
    buyers: int = 3
    readers: int = 2
    stock: int = 12
    #: None: the documents' seven books; else a generated catalog of that many.
    books: int | None = None
    #: Every node its own clock: an offset, a rate within ``drift`` of true time and (with the
    #: "clock" fault) steps within ``clock_error`` of that; False: one perfect clock for all,
    #: as every seed before clocks were simulated ran (the regression seeds replay that way).
    clocks: bool = True
    drift: float = MAX_DRIFT
    clock_error: float = MAX_ERROR_S


@dataclass
class Result:
    options: Options
    schedule: list[PlannedFault]
    history: History
    anomalies: list[Anomaly]
    events: int
    wall_s: float
    sim_s: float
    #: Messages sent in the run, by kind (``Check`` counts catalog write rounds' checks).
    sent: dict[str, int] = field(default_factory=dict)
    #: Lookups the front-end answered with another lookup's read of the same book.
    shared_reads: int = 0

    @property
    def passed(self) -> bool:
        return not self.anomalies


def plan_faults(options: Options, names: list[str]) -> list[PlannedFault]:
    """The nemesis's schedule, from its own random stream: one fault at a time on a catalog or
    order replica (a hang may hit the front-end too), each healed before a short rest."""
    rng = random.Random(options.seed * 7919 + 2)
    schedule: list[PlannedFault] = []
    kinds = tuple(kind for kind in options.faults if kind not in RIDING_ALONG)
    if not kinds:
        return schedule
    t = rng.uniform(0.2, 1.0)
    while t < options.seconds:
        kind = rng.choice(kinds)
        victims = [n for n in names if n != "frontend" or kind == "hang"]
        node = rng.choice(victims)
        length = 0.05 if kind == "restart" else rng.uniform(0.3, 5.0)
        links = _partition_links(rng, kind, names) if kind in ("partition", "one-way") else ()
        schedule.append(PlannedFault(kind, node if not links else links[0][0], t, min(t + length, options.seconds),
                                     links))
        t += length + rng.uniform(0.1, 1.0)
    return schedule


#: How often, on average, a node's clock steps under the "clock" fault (s).
CLOCK_STEP_EVERY_S = 1.0
#: Clock offsets are drawn from ± this (s): any offset is fine, as no time crosses the wire.
CLOCK_OFFSET_S = 3600.0


def set_clocks(world: World, options: Options, history: History) -> None:
    """Give every node its clock (from a random stream of its own, so that the fault schedule
    and the workload of a seed do not change with it) and, under the "clock" fault, step each
    one now and then to a random point within ``clock_error`` of its steady clock, in either
    direction: each step is a fault in the history, so a failure shows the steps around it."""
    if not options.clocks:
        return
    rng = random.Random(options.seed * 7919 + 3)
    for process in world.processes.values():
        process.clock.offset = rng.uniform(-CLOCK_OFFSET_S, CLOCK_OFFSET_S)
        process.clock.rate = 1.0 + rng.uniform(-options.drift, options.drift)
    if "clock" not in options.faults or options.clock_error <= 0:
        return
    for name, process in world.processes.items():
        t = rng.expovariate(1 / CLOCK_STEP_EVERY_S)
        while t < options.seconds:
            step = rng.uniform(-options.clock_error, options.clock_error)

            def stepped(clock: Any = process.clock, name: str = name, step: float = step) -> None:
                jump = step - clock.step
                clock.step = step
                history.faults.append(Fault("clock", (name,), world.now, world.now,
                                            detail=f"{name} {jump * 1000:+.0f} ms"))

            world.at(t, stepped)
            t += rng.expovariate(1 / CLOCK_STEP_EVERY_S)


#: How likely a crashed catalog replica's disk is to have a row changed before it starts again.
CORRUPT_P = 0.5
#: How likely such a change is to come with a checksum that matches it: then only comparing the
#: row with the peers' rows of its seq can find it.
CHECKSUMMED_P = 0.5


def set_corruption(world: World, options: Options, history: History) -> None:
    """Under the "corrupt" fault, a crashed catalog replica may find one row of its disk changed
    when it starts again — its stock set to an impossible 900-something, its seq kept, as a hand
    or a faulty disk would — which it must never serve or spread: it fails its checksum, or, half
    the time, its checksum was changed to match and it differs from the peers' rows of its seq."""
    if "corrupt" not in options.faults:
        return
    rng = random.Random(options.seed * 7919 + 4)
    # Its own generator, so that the seeds found before it replay their corruptions as found.
    checksums = random.Random(options.seed * 7919 + 5)

    def restarting(name: str) -> None:
        disk = world.processes[name].disk
        if isinstance(disk, CatalogDisk) and rng.random() < CORRUPT_P:
            book_id = rng.choice(sorted(disk.books))
            checksummed = checksums.random() < CHECKSUMMED_P
            disk.corrupt(book_id, 900 + book_id, checksummed=checksummed)
            how = ", checksum and all" if checksummed else ""
            history.faults.append(Fault("corrupt", (name,), world.now, world.now,
                                        detail=f"{name} book {book_id} stock set to {900 + book_id} on disk{how}"))

    world.restarting = restarting


#: How often, on average, some catalog replica's disk fills under the "disk" fault (s).
DISK_FULL_EVERY_S = 2.0


def set_disk_faults(world: World, options: Options, history: History) -> None:
    """Under the "disk" fault, now and then one catalog replica's disk refuses every commit for
    0.1 to 2 s, as a full disk does: nothing it cannot store may be acknowledged, and it must
    take writes again by itself once the disk is freed."""
    if "disk" not in options.faults:
        return
    rng = random.Random(options.seed * 7919 + 5)
    catalogs = [name for name in world.processes if name.startswith("catalog")]
    t = rng.expovariate(1 / DISK_FULL_EVERY_S)
    while t < options.seconds:
        name, length = rng.choice(catalogs), rng.uniform(0.1, 2.0)
        disk = world.processes[name].disk
        fault = Fault("disk", (name,), t, min(t + length, options.seconds), detail=f"{name} full")

        def fill(disk: Any = disk) -> None:
            disk.full = True
            world.changed()

        def free(disk: Any = disk, fault: Fault = fault) -> None:
            disk.full = False
            world.changed()
            history.faults.append(fault)

        end = min(t + length, options.seconds)
        world.at(t, fill)
        world.at(end, free)
        t = end + rng.expovariate(1 / DISK_FULL_EVERY_S)


def _partition_links(rng: random.Random, kind: str, names: list[str]) -> tuple[tuple[str, str], ...]:
    """A symmetric partition splits every node (front-end included) into two sides, no link
    between them; a one-way fault drops one node's messages to some others (they still reach
    it: it hears them, they do not hear it) or theirs to it."""
    if kind == "partition":
        shuffled = names[:]
        rng.shuffle(shuffled)
        cut = rng.randint(1, len(shuffled) - 1)
        left, right = shuffled[:cut], shuffled[cut:]
        return tuple((a, b) for a in left for b in right) + tuple((b, a) for a in left for b in right)
    node = rng.choice(names)
    others = [n for n in names if n != node]
    chosen = rng.sample(others, rng.randint(1, len(others)))
    if rng.random() < 0.5:
        return tuple((node, other) for other in chosen)
    return tuple((other, node) for other in chosen)


def simulate(options: Options, schedule: list[PlannedFault] | None = None, *,
             observer: Observer | None = None) -> Result:
    """One seed's run, checked. ``observer``: told everything the nodes do (a recording,
    ``nodes/runs/from_sim.py``); the run is the same with it or without."""
    started = time.perf_counter()
    guard = options.mode == Mode.BAZAR  # the simulator's documented mode is docs/protocol.md to the letter
    world = World(options.seed, catalogs=options.catalogs, orders=options.orders, guard_writes=guard,
                  catalog_rules=rules_for(options.mode, guard_writes=guard), network=Network(), stock=options.stock,
                  catalog_size=options.books)
    if observer is not None:
        world.observe(observer)
    names = [n for n in world.processes]
    if schedule is None:
        schedule = plan_faults(options, names)
    history = History({book.id: book.quantity for book in world.books})
    set_clocks(world, options, history)
    set_corruption(world, options, history)
    set_disk_faults(world, options, history)
    world.start_all()
    world.run_until(0.1)  # every node has loaded its disk
    workload = random.Random(options.seed * 7919 + 1)
    pending = [0]
    ending = options.seconds

    def record(op: Operation) -> None:
        history.operations.append(op)

    def buyer(n: int) -> None:
        counter = [0]

        def next_buy() -> None:
            if world.now >= ending:
                return
            counter[0] += 1
            book = workload.randint(1, len(world.books))
            buy_id = f"{options.seed}-b{n}-{counter[0]}"
            start = world.now
            pending[0] += 1

            def done(answer: Any) -> None:
                pending[0] -= 1
                record(Operation("buy", book, start, world.now, _buy_outcome(answer), buy_id=buy_id))
                world.at(world.now + workload.uniform(0.0, 0.1), next_buy)

            world.request(Buy(book, buy_id), CLIENT_TIMEOUT_S, done)

        world.at(world.now + workload.uniform(0.0, 0.1), next_buy)

    def reader() -> None:
        def next_read() -> None:
            if world.now >= ending:
                return
            book = workload.randint(1, len(world.books))
            start = world.now
            pending[0] += 1

            def done(answer: Any) -> None:
                pending[0] -= 1
                found = isinstance(answer, Found)
                record(Operation("read", book, start, world.now, "ok" if found else "failed",
                                 quantity=answer.book.quantity if found else None))
                world.at(world.now + workload.uniform(0.0, 0.1), next_read)

            world.request(Read(book), CLIENT_TIMEOUT_S, done)

        world.at(world.now + workload.uniform(0.0, 0.1), next_read)

    for n in range(options.buyers):
        buyer(n)
    for _ in range(options.readers):
        reader()
    active: list[Fault] = []
    for planned in schedule:
        world.at(planned.start, partial(_apply, world, planned, history, active))
        world.at(planned.end, partial(_heal, world, planned, history, active))
    world.run_until(ending)
    for fault in list(active):
        _heal_fault(world, fault, history, active)
    # Let every operation in flight end, then read every book at every replica at once.
    bound = world.now + CLIENT_TIMEOUT_S + 1
    while pending[0] and world.now < bound:
        world.run_until(world.now + 0.05)
    healed = world.now
    catalogs = [world.processes[f"catalog{i}"] for i in range(options.catalogs)]
    world.run_until(world.now + 0.5)  # the front-end's probes and the heartbeats notice the healing
    for process in catalogs:
        for book in world.books:
            start = world.now

            def done(answer: Any, where: str = process.name, book_id: int = book.id, start: float = start) -> None:
                found = isinstance(answer, Found)
                record(Operation("read", book_id, start, world.now, "ok" if found else "failed",
                                 quantity=answer.book.quantity if found else None, where=where))

            world.send("client", _send(process.name, Read(book.id)), done)
    world.run_until(world.now + 2.0)

    def agreed() -> bool:
        # Rows, and (where buys are remembered) the buys: a replica back from a crash with a
        # large catalog learns its peers' word in pages, and fetches the buys it lacks after.
        rows = [{b.id: (b.quantity, b.seq) for b in _catalog(p).books.values()} for p in catalogs]
        buys = [+_catalog(p).buy_count if guard else Counter() for p in catalogs]
        return all(r == rows[0] for r in rows) and all(b == buys[0] for b in buys)

    bound = world.now + SETTLE_BOUND_S
    while not agreed() and world.now < bound:
        world.run_until(world.now + 0.05)
    history.convergence_s = world.now - healed if agreed() else None
    for process in catalogs:
        core = _catalog(process)
        rows = {b.id: (b.quantity, b.seq) for b in core.books.values()}
        expired = process.disk.expired if guard else {}
        buys = {buy_id: book for buy_id, (book, _seq) in [*core.buys.items(), *expired.items()]} if guard else None
        history.finals.append(Final(process.name, rows, buys, frozenset(expired)))
    anomalies = check(history)
    if world.stopped:
        anomalies.insert(0, Anomaly(*world.stopped, at=world.now))
    frontend = world.processes["frontend"].core
    return Result(options, schedule, history, anomalies, world.events, time.perf_counter() - started, world.now,
                  dict(world.sent), getattr(frontend, "shared_reads", 0))


def _catalog(process: Process) -> CatalogReplica:
    assert isinstance(process.core, CatalogReplica), process.name
    return process.core


def _send(to: str, message: Any) -> Send:
    return Send(to, message, CLIENT_TIMEOUT_S)


def _buy_outcome(answer: Any) -> str:
    if isinstance(answer, Bought):
        return "bought"
    if isinstance(answer, OutOfStock):
        return "out of stock"
    if isinstance(answer, OutcomeUnknown) or (isinstance(answer, NoAnswer) and answer.maybe_processed):
        return "unknown"
    if isinstance(answer, NoOrderServer):
        return "failed"
    return "failed"


def _apply(world: World, planned: PlannedFault, history: History, active: list[Fault]) -> None:
    process = world.processes[planned.node]
    if planned.kind in ("crash", "restart"):
        process.crash()
    elif planned.kind == "hang":
        process.pause()
    elif planned.kind == "cut":
        world.cut(planned.node, True)
    elif planned.kind == "loss":
        world.network.loss = 0.05
    elif planned.kind == "duplicate":
        world.network.duplicate = 0.05
    elif planned.links:
        world.network.blocked |= set(planned.links)
    nodes = (planned.node,) if planned.kind not in ("loss", "duplicate") else ()
    active.append(Fault(planned.kind, nodes, world.now, detail=planned.describe() if planned.links else "",
                        links=planned.links))
    world.changed()


def _heal(world: World, planned: PlannedFault, history: History, active: list[Fault]) -> None:
    nodes = (planned.node,) if planned.kind not in ("loss", "duplicate") else ()
    for fault in active:
        if fault.action == planned.kind and fault.nodes == nodes:
            _heal_fault(world, fault, history, active)
            return


def _heal_fault(world: World, fault: Fault, history: History, active: list[Fault]) -> None:
    active.remove(fault)
    if fault.action in ("crash", "restart"):
        world.restarting(fault.nodes[0])
        world.processes[fault.nodes[0]].start()
    elif fault.action == "hang":
        world.processes[fault.nodes[0]].resume()
    elif fault.action == "cut":
        world.cut(fault.nodes[0], False)
    elif fault.action == "loss":
        world.network.loss = 0.0
    elif fault.action == "duplicate":
        world.network.duplicate = 0.0
    elif fault.links:
        world.network.blocked -= set(fault.links)
    world.changed()
    history.faults.append(replace(fault, end=world.now))


# ---- many seeds, and the smallest failing run -------------------------------------------------


def shrink(result: Result, budget: int = 40) -> Result:
    """Look for a smaller run that still fails: fewer faults (one by one, then halves), fewer
    clients, a shorter run. Returns the smallest failing result found."""
    best = result
    tries = 0

    def fails(options: Options, schedule: list[PlannedFault]) -> Result | None:
        nonlocal tries
        tries += 1
        candidate = simulate(options, schedule)
        return candidate if not candidate.passed else None

    changed = True
    while changed and tries < budget:
        changed = False
        schedule = best.schedule
        for i in range(len(schedule)):
            if tries >= budget:
                break
            smaller = fails(best.options, schedule[:i] + schedule[i + 1:])
            if smaller is not None:
                best, changed = smaller, True
                break
        if changed:
            continue
        for options in (replace(best.options, buyers=max(1, best.options.buyers - 1)),
                        replace(best.options, readers=max(0, best.options.readers - 1)),
                        replace(best.options, seconds=max(1.0, max((f.end for f in schedule), default=1.0)))):
            if tries >= budget or options == best.options:
                continue
            smaller = fails(options, [f for f in schedule if f.start < options.seconds])
            if smaller is not None:
                best, changed = smaller, True
                break
    return best


@dataclass
class Exploration:
    seeds: int = 0
    failures: list[Result] = field(default_factory=list)
    operations: int = 0
    faults: int = 0
    events: int = 0
    sim_s: float = 0.0
    wall_s: float = 0.0
    #: Buys by outcome: "failed" ones were refused (no majority, no order replica) and,
    #: the checker makes sure, changed nothing.
    buys: dict[str, int] = field(default_factory=dict)


def explore(options: Options, seeds: Iterable[int], *, stop_at_first: bool = True,
            progress: Callable[[Exploration], None] = lambda e: None) -> Exploration:
    found = Exploration()
    for seed in seeds:
        result = simulate(replace(options, seed=seed))
        found.seeds += 1
        found.operations += len(result.history.operations)
        found.faults += len(result.history.faults)
        found.events += result.events
        for op in result.history.operations:
            if op.kind == "buy":
                found.buys[op.outcome] = found.buys.get(op.outcome, 0) + 1
        found.sim_s += result.sim_s
        found.wall_s += result.wall_s
        if not result.passed:
            found.failures.append(result)
            if stop_at_first:
                break
        progress(found)
    return found


def _clock_flags(options: Options) -> str:
    if not options.clocks:
        return " --steady-clocks"
    return (f" --drift {options.drift:g}" if options.drift != MAX_DRIFT else "") + (
        f" --clock-error {options.clock_error:g}" if options.clock_error != MAX_ERROR_S else "")


def render_failure(result: Result) -> str:
    options = result.options
    lines = [
        f"FAIL  seed {options.seed}  (replay: python3 launcher.py simulate --seed {options.seed} "
        f"--mode {options.mode} --faults {','.join(options.faults) or 'none'} --catalogs {options.catalogs} "
        f"--orders {options.orders} --seconds {options.seconds:g} --buyers {options.buyers} "
        f"--readers {options.readers} --stock {options.stock}{_clock_flags(options)}"
        f"{f' --books {options.books}' if options.books else ''})",
        "faults: " + (", ".join(f"{f.kind} {f.describe()} {f.start:.2f}-{f.end:.2f}s" for f in result.schedule)
                      or "none"),
        "anomalies:",
        *[f"  - {a}" for a in result.anomalies[:10]],
    ]
    return "\n".join(lines)


def render_history(result: Result, around: float | None = None, limit: int = 60) -> str:
    """The history's entries in time order, or those nearest ``around``."""
    entries: list[tuple[float, str]] = []
    for op in result.history.operations:
        what = (f"buy book {op.book} -> {op.outcome}" if op.kind == "buy"
                else f"read book {op.book} at {op.where} -> {op.quantity if op.outcome == 'ok' else op.outcome}")
        entries.append((op.start, f"{op.start:8.3f}-{op.end:8.3f}  {what}"))
    for fault in result.history.faults:
        end = f"{fault.end:8.3f}" if fault.end is not None else "   never"
        entries.append((fault.start, f"{fault.start:8.3f}-{end}  FAULT {fault.describe()}"))
    entries.sort(key=lambda e: e[0])
    if around is not None and len(entries) > limit:
        entries.sort(key=lambda e: abs(e[0] - around))
        entries = sorted(entries[:limit], key=lambda e: e[0])
    return "\n".join(text for _, text in entries[:limit])

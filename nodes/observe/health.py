"""What the window says of a node, in plain words: its health from its process and its own
reports, how many nodes are up and how many of those degraded, the marks a fault and its heal
leave on the charts (a heal named for what it undoes), and the lines of its Log (what happened
to it, and what it told of itself)."""
from __future__ import annotations

from nodes.core.events import (
    CaughtUp,
    DiskTrouble,
    Dropped,
    Event,
    GenerationAdopted,
    LeaseChanged,
    LeaseWait,
    OrderOutcome,
    OrderResult,
    PeerSeen,
    ReplicaSeen,
    RowDamaged,
    RowRepaired,
)
from nodes.core.vocabulary import FAULTS, HealthState, NodeState
from nodes.observe.views import MarkKind, NodeHealth, NodeView, ProcessState, link_notes

_NOT_RUNNING = (NodeState.DOWN, NodeState.EXITED, NodeState.STARTING)


def derive_health(view: NodeView, process: ProcessState, catalog: str | None = None,
                  catalog_health: NodeHealth | None = None) -> NodeHealth:
    """One node's health: its process first (the supervisor knows best whether it runs), then
    the faults it reports, then why it may do less (cut links; ``catalog``, the catalog replica
    an order replica talks to, not serving)."""
    slow_ms = process.slow_ms or int(view.state.get("slow_ms", 0) or 0)
    cut_off = process.cut_off or bool(view.state.get("cut_off", False))
    if process.state == NodeState.EXITED:
        state, text = HealthState.EXITED, f"exited with code {process.exit_code}"
    elif process.state in (NodeState.DOWN, NodeState.STARTING, NodeState.HUNG):
        state = HealthState(process.state)
        text = str(state)
    elif cut_off:
        state, text = HealthState.CUT_OFF, str(HealthState.CUT_OFF)
    elif slow_ms:
        state, text = HealthState.SLOW, f"slowed {slow_ms} ms"
    else:
        state, text = HealthState.UP, str(HealthState.UP)
    notes = list(link_notes(process))
    if notes and state.serving:
        text += f", {len(notes)} link{'s' if len(notes) > 1 else ''} cut"
    disk = view.state.get("disk", "ok")
    if state.serving and (process.disk_full or (disk and disk != "ok")):
        text += ", disk full" if process.disk_full else ", cannot store writes"
        notes.append("its database takes no new write" + (f" ({disk})" if disk and disk != "ok" else " yet")
                     + ": it stores nothing it cannot keep, says it is degraded so that requests go to the other "
                     "replicas, and catches up by itself once the disk is freed")
    if state == HealthState.SLOW and view.role == "order":
        notes.append("the front-end sends buys to the next order replica when this one is slower than "
                     "its timeout, so few requests reach it")
    elif state == HealthState.SLOW:
        notes.append("callers wait longer for every answer; past their timeout they try another replica")
    if catalog is not None and state.serving and catalog_health is not None and not catalog_health.serving:
        notes.append(f"its catalog, {catalog}, is {catalog_health.label}: it cannot carry out buys, "
                     "so the front-end routes them to other order replicas")
    return NodeHealth(view.name, view.role, view.address, state, text, process, view.connected, tuple(notes))


#: States in which a node's process runs and answers at least its admin calls: it is up,
#: whatever faults slow it or cut its links. A hung process answers nothing, so it is not.
RUNNING = frozenset({HealthState.UP, HealthState.SLOW, HealthState.CUT_OFF})
#: What healing each fault is called, on the charts and in the header: named for what it undoes.
HEALED = {HealthState.DOWN: "up again", HealthState.EXITED: "up again", HealthState.HUNG: "resumed",
          HealthState.CUT_OFF: "reconnected", HealthState.SLOW: "full speed again"}


def is_up(health: NodeHealth) -> bool:
    """Up: its process runs and is not hung (a slowed, cut-off or partitioned node is up)."""
    return health.state in RUNNING


def is_degraded(health: NodeHealth) -> bool:
    """Up, but slowed, cut off or with links cut: it answers late, or not everyone."""
    return is_up(health) and (health.state != HealthState.UP or bool(health.process.mute_to | health.process.deaf_to))


def summarize(healths: list[NodeHealth]) -> tuple[int, int, int]:
    """(nodes up, of those degraded, nodes in all): what every "n of m nodes up" says, one way."""
    return (sum(1 for h in healths if is_up(h)), sum(1 for h in healths if is_degraded(h)), len(healths))


def mark_change(name: str, broken: HealthState | None, after: NodeHealth
                ) -> tuple[MarkKind, str, HealthState | None] | None:
    """The chart mark for node ``name`` (once seen up) now in ``after``, while ``broken`` is the
    fault it was last marked with (None: none): (kind, words, the fault it is marked with from
    now on), or None for no mark. Back up, or into a lesser fault, is a heal named for the fault
    it undoes ("resumed", "reconnected", "full speed again", "up again" after a crash); a fault as
    bad or worse is a fault mark; starting after a crash marks nothing yet."""
    state = after.state
    lesser = broken is not None and _badness(state) < _badness(broken)
    if (state == HealthState.UP or (state in FAULTS and lesser)) and broken is not None:
        return MarkKind.HEAL, f"{name} {HEALED.get(broken, 'healed')}", state if state in FAULTS else None
    if state in FAULTS and state != broken:
        return MarkKind.FAULT, f"{name} {after.label}", state
    return None


def _badness(state: HealthState) -> int:
    return list(HealthState).index(state)


def process_lines(before: ProcessState, after: ProcessState) -> list[str]:
    """What a change of process state means, in the words of a node's Log."""
    lines = []
    if before.state != after.state:
        text = {
            NodeState.STARTING: "starting (pid {pid})",
            NodeState.UP: "resumed (SIGCONT): answering again" if before.state == NodeState.HUNG
            else "up and answering",
            NodeState.HUNG: "hung (SIGSTOP): connections are accepted, nothing is answered",
            NodeState.DOWN: "crashed or stopped: the process is gone, its valid set with it",
            NodeState.EXITED: "exited with code {code}",
        }[after.state]
        lines.append(text.format(pid=after.pid, code=after.exit_code))
    if before.slow_ms != after.slow_ms and after.state not in _NOT_RUNNING:
        lines.append(f"slowed by {after.slow_ms} ms per answer" if after.slow_ms else "back to normal speed")
    if before.cut_off != after.cut_off and after.state not in _NOT_RUNNING:
        cut = ("cut off: the container engine took it off the network; the window cannot reach it either"
               if after.by_engine else "cut off: drops all traffic but admin and telemetry")
        lines.append(cut if after.cut_off else "healed: takes traffic again")
    return lines


def event_line(event: Event) -> str | None:
    """A node's own telemetry event worth a line in its Log, in plain words (None if not)."""
    match event:
        case LeaseChanged(held=held):
            return ("lease regained: heard from its peers again, vouches for its copies" if held
                    else "lease lapsed: out of touch with its peers, drops its valid set (W2)")
        case LeaseWait(peers=peers):
            return f"waits for the lease of catalog {', '.join(map(str, peers))} to lapse before writing"
        case CaughtUp(book=book, seq=seq):
            return f"caught up: book {book} to seq {seq}"
        case PeerSeen(peer=peer, up=up):
            return f"sees catalog{peer} {'back' if up else 'out'}"
        case ReplicaSeen(ring=ring, replica=replica, up=up):
            return f"marks {ring}{replica} {'back' if up else 'out'}"
        case DiskTrouble(ok=False, message=message):
            return f"cannot store writes ({message}): says it is degraded until its disk takes them again"
        case DiskTrouble(ok=True):
            return "stores writes again"
        case RowDamaged(book=book):
            return f"found its stored row of book {book} changed behind its back: serving none of it until repaired"
        case RowRepaired(book=book, seq=seq):
            return f"repaired book {book} from a peer's copy (seq {seq})"
        case GenerationAdopted():
            return "adopted a newer reset of the data from a peer (it missed the reset while away)"
        case OrderOutcome(outcome=OrderResult.UNKNOWN, buy_id=buy_id):
            return f"buy {buy_id or ''}: no order replica confirmed it in time (outcome unknown)"
        case Dropped(count=count):
            return f"the window fell behind its event stream and lost {count} events"
    return None

"""Telemetry events as types: every event a node emits, as a frozen dataclass.

A node's telemetry (``telemetry.py``) is a stream of flat JSON objects, each with ``kind``,
``node``, ``n`` (the node's event counter) and ``t`` (wall-clock seconds), and ``trace`` when it
happened for a traced request. Nodes keep emitting those dicts, and the JSON on the wire stays as
it is (docs/api.md); whoever reads the stream calls ``decode`` once and from there on matches on
types, as the protocol cores do on ``messages.py``'s dataclasses. ``encode`` gives the dict back.

``decode`` never raises: a kind it does not know, or an event it cannot read, is an ``Unknown``
that a reader ignores, so a newer node never breaks an older window. Standard library only."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar


class OrderResult(StrEnum):
    """What an order replica did with a buy (``order`` events), in the wire's words."""

    BOUGHT = "bought"
    OUT_OF_STOCK = "out_of_stock"
    UNREACHABLE = "unreachable"  # its catalog replica could not be reached
    REFUSED = "refused"  # its catalog replica refused the write (no majority, W8)
    UNKNOWN = "unknown"  # the front-end: no order replica confirmed the buy in time (W7)


#: Order outcomes that settle a buy answered 200: it bought, or the book was sold out.
DECISIVE = frozenset({OrderResult.BOUGHT, OrderResult.OUT_OF_STOCK})


class CacheOp(StrEnum):
    """What one of the front-end's caches did with a key."""

    HIT = "hit"
    MISS = "miss"
    INSERT = "insert"
    EVICT = "evict"  # pushed out by a newer entry (the cache is full)
    INVALIDATE = "invalidate"  # dropped because the book changed


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event carries: the node whose stream it came on, its number in that stream
    (``n``; absent from what the stream itself adds) and the trace of the request it happened
    for, if any, with the span of that request the node was serving (``telemetry.py``)."""

    KIND: ClassVar[str] = ""
    node: str
    n: int | None = None
    trace: str | None = None
    span: str | None = None


@dataclass(frozen=True, kw_only=True)
class Timed(Event):
    """An event a node emitted, stamped with its wall-clock time ``t`` (seconds): every event
    but the stream's own ``dropped``."""

    t: float


@dataclass(frozen=True)
class Snapshot(Timed):
    """The node's whole state (``/admin/state``'s body): first on every stream, and after a reset."""

    KIND = "snapshot"
    state: dict[str, Any]


@dataclass(frozen=True)
class RequestIn(Timed):
    """A request arrived. ``sender`` is the node that sent it; None for a client (the shopper,
    the window)."""

    KIND = "request_in"
    method: str
    path: str
    sender: str | None = None


@dataclass(frozen=True)
class RequestAnswered(Timed):
    """A request was answered: its route (``/buy/{id}``), status and time taken in ms."""

    KIND = "request"
    method: str
    path: str
    route: str
    status: int
    ms: float


@dataclass(frozen=True)
class Sending(Timed):
    """At teaching speed, a message leaves for ``to`` and is held ``held_ms`` on its way."""

    KIND = "send"
    to: str
    label: str
    held_ms: float
    parent: str | None = None  # the span the sender was serving; ``span`` is this message's own


@dataclass(frozen=True)
class Replying(Timed):
    """At teaching speed, an answer leaves for ``to`` ("client" for a client) and is held."""

    KIND = "reply"
    to: str
    status: int
    answer: str
    path: str
    held_ms: float


@dataclass(frozen=True)
class HopDone(Timed):
    """A message this node sent to ``to`` is over: answered (``status``) or not (None, and
    ``answer`` says why). ``t0`` is when it left; ``held_ms`` only at teaching speed. ``span``
    is the message's own span, ``parent`` the span of the request its sender was serving."""

    KIND = "hop"
    to: str
    label: str
    answer: str
    status: int | None
    ms: float
    t0: float
    held_ms: float | None = None
    parent: str | None = None


@dataclass(frozen=True)
class Fault(Timed):
    """A fault was set on the node through its admin API (``fault`` events)."""

    KIND = "fault"
    FAULT: ClassVar[str] = ""


@dataclass(frozen=True)
class SlowSet(Fault):
    """Every answer is held ``ms`` longer (0: normal speed again)."""

    FAULT = "slow"
    ms: int


@dataclass(frozen=True)
class CutOffSet(Fault):
    """The node drops all traffic but admin and telemetry (``on``), or takes it again."""

    FAULT = "cut_off"
    on: bool


@dataclass(frozen=True)
class AbortSet(Fault):
    """HTTP aborts on a path prefix: requests dropped before they are handled, or answers after
    (``direction``), with probability ``p`` (0: healed)."""

    FAULT = "abort"
    path: str
    p: float
    direction: str


@dataclass(frozen=True)
class DiskFullSet(Fault):
    """A catalog replica's database may not grow (``on``: the disk-full fault), or may again."""

    FAULT = "disk_full"
    on: bool


@dataclass(frozen=True)
class LinksSet(Fault):
    """A partition (W8): the nodes this one no longer hears, and those it no longer reaches."""

    FAULT = "partition"
    deaf_to: tuple[str, ...]
    mute_to: tuple[str, ...]


@dataclass(frozen=True)
class PaceSet(Timed):
    """Teaching speed: every message the node sends is held ``ms`` (0: full speed)."""

    KIND = "pace"
    ms: int


@dataclass(frozen=True)
class CacheChanged(Timed):
    """One of the front-end's caches (``lookup``, ``search``) did ``op`` with ``key``."""

    KIND = "cache"
    cache: str
    op: CacheOp
    key: Any


@dataclass(frozen=True)
class OrderOutcome(Timed):
    """What became of a buy at an order replica, or at the front-end when none confirmed it."""

    KIND = "order"
    outcome: OrderResult
    buy_id: str | None = None


@dataclass(frozen=True)
class ValidChanged(Timed):
    """A catalog replica's copy of ``book`` became valid (it vouches for it) or not."""

    KIND = "valid"
    book: int
    valid: bool
    seq: int


@dataclass(frozen=True)
class SeqChanged(Timed):
    """A catalog replica wrote a new version of ``book``."""

    KIND = "seq"
    book: int
    seq: int
    quantity: int
    price: float


@dataclass(frozen=True)
class LeaseChanged(Timed):
    """A catalog replica's lease was regained (``held``) or lapsed (W2)."""

    KIND = "lease"
    held: bool


@dataclass(frozen=True)
class LeaseWait(Timed):
    """A catalog replica waits for the leases of ``peers`` to lapse before it writes."""

    KIND = "lease_wait"
    peers: tuple[int, ...]
    ms: int


@dataclass(frozen=True)
class PeerSeen(Timed):
    """A catalog replica sees catalog ``peer`` back (``up``) or out."""

    KIND = "peer"
    peer: int
    up: bool


@dataclass(frozen=True)
class ReplicaSeen(Timed):
    """The front-end marks replica ``replica`` of a ring (``catalog``, ``order``) back or out."""

    KIND = "replica"
    ring: str
    replica: int
    up: bool


@dataclass(frozen=True)
class CaughtUp(Timed):
    """A catalog replica took a newer copy of ``book`` from a peer."""

    KIND = "catch_up"
    book: int
    seq: int


@dataclass(frozen=True)
class DiskTrouble(Timed):
    """A catalog replica's store failed a commit (``ok`` False: disk full, I/O error; it says
    it is degraded) or took one again (``ok`` True: it recovered by itself)."""

    KIND = "disk"
    ok: bool
    message: str


@dataclass(frozen=True)
class RowDamaged(Timed):
    """A catalog replica found its stored row of ``book`` changed behind its back (it fails its
    checksum, or differs from the peers' row of its seq): it serves and hands on nothing of it
    until a peer's copy replaces it."""

    KIND = "damaged"
    book: int
    reason: str


@dataclass(frozen=True)
class RowRepaired(Timed):
    """A damaged row was replaced by a peer's copy at ``seq``."""

    KIND = "repaired"
    book: int
    seq: int


@dataclass(frozen=True)
class GenerationAdopted(Timed):
    """A catalog replica adopted a newer reset of the data (it missed the reset while away)."""

    KIND = "generation"
    generation: int


@dataclass(frozen=True)
class Dropped(Event):
    """Added by the stream, not the node: the reader fell behind and lost ``count`` events."""

    KIND = "dropped"
    count: int


@dataclass(frozen=True)
class Unknown(Event):
    """An event of a kind this code does not know, or one it could not read: kept, not used.
    ``fields`` holds all it said but ``kind``, ``node``, ``n`` and ``trace`` (its ``t`` too)."""

    kind: str
    fields: dict[str, Any]


#: Every event class by its ``kind`` (faults by their ``fault``): what ``decode`` reads.
KINDS: dict[str, type[Event]] = {cls.KIND: cls for cls in (
    Snapshot, RequestIn, RequestAnswered, Sending, Replying, HopDone, Fault, PaceSet, CacheChanged,
    OrderOutcome, ValidChanged, SeqChanged, LeaseChanged, LeaseWait, PeerSeen, ReplicaSeen, CaughtUp,
    DiskTrouble, RowDamaged, RowRepaired, GenerationAdopted, Dropped)}
FAULTS: dict[str, type[Fault]] = {cls.FAULT: cls for cls in (SlowSet, CutOffSet, LinksSet, DiskFullSet, AbortSet)}

#: Where a field's JSON key is not its name (``from`` is a Python keyword).
_WIRE_KEY = {"sender": "from"}
#: How a field is read from JSON when its JSON type is not its Python type.
_READ = {"peers": tuple, "deaf_to": tuple, "mute_to": tuple, "outcome": OrderResult, "op": CacheOp}
_COMMON = ("node", "t", "n", "trace")


_FIELDS: dict[type[Event], tuple[dataclasses.Field[Any], ...]] = {}


def _own_fields(cls: type[Event]) -> tuple[dataclasses.Field[Any], ...]:
    """A class's fields but the common ones, worked out once per class (``decode`` is on the
    window's busiest path, once per event, and a replay's)."""
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = _FIELDS[cls] = tuple(f for f in dataclasses.fields(cls) if f.name not in _COMMON)
    return fields


def wire_keys(cls: type[Event]) -> frozenset[str]:
    """The JSON keys an event of ``cls`` may carry besides ``kind``, ``node``, ``n``, ``t`` and
    ``trace`` (a fault's ``fault`` among them)."""
    own = {_WIRE_KEY.get(f.name, f.name) for f in _own_fields(cls)}
    return frozenset(own | ({"fault"} if issubclass(cls, Fault) else set()))


def decode(node: str, raw: Any) -> Event:
    """The event ``raw`` (one JSON object of node ``node``'s stream) as its dataclass; an
    ``Unknown`` for a kind not known here or an event that cannot be read. Never raises."""
    try:
        kind = raw["kind"]
        cls = KINDS.get(kind)
        if cls is Fault:
            cls = FAULTS.get(raw.get("fault"))
        if cls is None:
            return _unknown(node, raw)
        values: dict[str, Any] = {}
        if issubclass(cls, Timed):
            values["t"] = raw["t"]
            if not isinstance(values["t"], int | float):
                return _unknown(node, raw)
        for f in _own_fields(cls):
            key = _WIRE_KEY.get(f.name, f.name)
            if key in raw:
                read = _READ.get(f.name)
                values[f.name] = raw[key] if read is None else read(raw[key])
            elif f.default is dataclasses.MISSING:
                return _unknown(node, raw)
        return cls(node=node, n=raw.get("n"), trace=raw.get("trace"), **values)
    except (KeyError, TypeError, ValueError, AttributeError):
        return _unknown(node, raw)


def _unknown(node: str, raw: Any) -> Unknown:
    if not isinstance(raw, dict):
        return Unknown(node=node, kind="", fields={"value": raw})
    n, trace = raw.get("n"), raw.get("trace")
    return Unknown(node=node, n=n if isinstance(n, int) else None, trace=trace if isinstance(trace, str) else None,
                   kind=str(raw.get("kind", "")),
                   fields={k: v for k, v in raw.items() if k not in ("kind", "node", "n", "trace")})


def encode(event: Event) -> dict[str, Any]:
    """The event as its node emits it: ``kind``, ``node``, ``n`` and ``t`` first (those it has),
    then its own fields by their JSON keys, then ``trace``. An optional field that is None is
    left out, as nodes leave it out."""
    if isinstance(event, Unknown):
        raw: dict[str, Any] = {"kind": event.kind, "node": event.node}
        fields = dict(event.fields)
    else:
        raw = {"kind": type(event).KIND, "node": event.node}
        fields = {"fault": type(event).FAULT} if isinstance(event, Fault) else {}
        for f in _own_fields(type(event)):
            value = getattr(event, f.name)
            if value is None and f.default is None:
                continue
            fields[_WIRE_KEY.get(f.name, f.name)] = list(value) if isinstance(value, tuple) else value
    if event.n is not None:
        raw["n"] = event.n
    if isinstance(event, Timed):
        raw["t"] = event.t
    elif "t" in fields:
        raw["t"] = fields.pop("t")
    raw.update(fields)
    if event.trace is not None:
        raw["trace"] = event.trace
    return raw

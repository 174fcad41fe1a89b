"""The cluster's vocabulary: every message one node sends another, and every answer, as
plain dataclasses. The protocol cores speak only these; ``nodes/core/wire.py`` is the one
place that turns them into HTTP (methods, paths, status codes, JSON) and back, keeping
docs/api.md's contract and docs/protocol.md's hop labels."""
from __future__ import annotations

from dataclasses import dataclass, field

from nodes.core.books import Book

# ---- requests --------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """Front-end or order replica to a catalog: ``/query/item/<id>``. An order replica names
    its buy (W7): a catalog that already applied it answers ``KnownBuy``, so a buy whose
    first attempt took the last copy is not told "out of stock"."""

    book: int
    buy_id: str | None = None


@dataclass(frozen=True)
class Search:
    """Front-end to a catalog: ``/query/topic/<topic>``; with ``limit``, one page of the hits
    (from the ``offset``-th, in the order of the ids), as a catalog of many books needs."""

    topic: str
    limit: int | None = None
    offset: int = 0

    @property
    def key(self) -> str:
        """What the front-end's search cache files the answer under: the topic, ignoring case
        (its ``%`` and ``?`` escaped, so that no topic reads as a page), and for a page the
        page (``t?limit=20``)."""
        topic = self.topic.casefold().replace("%", "%25").replace("?", "%3F")
        return topic if self.limit is None and not self.offset else f"{topic}{self.query}"

    @property
    def query(self) -> str:
        """The page as a query string ("" for every hit)."""
        pairs = [(name, value) for name, value in (("limit", self.limit), ("offset", self.offset)) if value]
        return "?" + "&".join(f"{name}={value}" for name, value in pairs) if pairs else ""


@dataclass(frozen=True)
class Write:
    """Order replica to its catalog: ``/update/<id>``. ``base_seq``: the seq the new values
    were computed from (W1); ``since``: when the buy first tried (the older one wins);
    ``take``: a buy's copies — when the copy moved on since ``base_seq`` (another buy landed
    first), the catalog takes them from its current copy instead of refusing the write.
    ``attempt``: names this one attempt of the buy's write, so a copy of it (a message delivered
    twice) is not carried out as if it were a new one (W7)."""

    book: int
    quantity: int | None = None
    price: float | None = None
    base_seq: int | None = None
    buy_id: str | None = None
    since: float | None = None
    take: int | None = None
    attempt: str | None = None


@dataclass(frozen=True)
class Get:
    """Catalog to catalog, a read's hop (S1–S3): ``req`` the replicas already in the chain,
    ``seq_n`` the highest seq seen so far."""

    book: int
    req: tuple[int, ...]
    sender: int
    seq_n: int


@dataclass(frozen=True)
class Check:
    """Catalog to catalog before a write (S4, S5), also a reservation (W1)."""

    book: int
    seq_n: int
    sender: int
    token: str
    buy_id: str | None = None
    since: float | None = None
    #: Other buys riding on the same write (a group commit): a peer that knows any of them
    #: as done says which.
    riders: tuple[str, ...] = ()


@dataclass(frozen=True)
class Update:
    """Catalog to catalog, the write's fan-out. ``late``: offered again to a peer the first
    fan-out missed."""

    copy: Book
    sender: int
    token: str
    buy_ids: tuple[str, ...] = ()
    late: bool = False
    #: The replicas this write leaves out (W2): a peer that takes it reports how long the
    #: leases it granted them still run, and the writer answers no sooner.
    excluded: tuple[int, ...] = ()
    #: How long the leases the writer granted may still run (seconds, as its clock counts when
    #: sending): to the replicas left out, and to those it sends to, which may never take it.
    #: A peer that takes the write vouches for its buys as done no sooner (it ``outwait``s
    #: them), for the writer's own answer may be lost (W2, W7).
    settles_in: float = 0.0
    #: Held by a majority of the catalog replicas (W8). With four or more, a writer and one
    #: peer are no majority: a peer takes an update not so marked as an unconfirmed write of
    #: its own (its row and buys handed on to no one) until the writer says so, or it finds a
    #: majority holding it, or gives way (``catch_up._settle_tentative``).
    confirmed: bool = False


@dataclass(frozen=True)
class Release:
    book: int
    token: str


@dataclass(frozen=True)
class Ping:
    """Catalog heartbeat (W3, W4): the sender's seqs of the books changed in its log since
    ``base`` (every book when ``base`` is 0), and what it holds of the receiver's log
    (``heard``); answered with the receiver's changes since then and every newer row
    (docs/protocol.md, "The heartbeat carries what changed")."""

    sender: int
    seqs: dict[int, int]
    #: The sender's log: its epoch and the position these seqs bring the receiver to.
    epoch: str = ""
    base: int = 0
    position: int = 0
    #: The epoch and position of the receiver's log the sender holds; ("", 0): nothing.
    heard: tuple[str, int] = ("", 0)
    #: The delta was cut short (at most DELTA_MOST books a message): more follow.
    more: bool = False
    #: The sender asks for a read lease (W2). Not while its disk refuses writes: it can take
    #: none, vouches for nothing, and no write should outwait a lease granted it.
    lease: bool = True


@dataclass(frozen=True)
class FetchBuys:
    """Catalog to catalog: the buy ids a peer remembers for a book (W7). ``digests``: the
    asker's digest of each bucket of the book's buys (a buy's bucket is its hash modulo
    BUY_BUCKETS); only the buys of the buckets whose digests differ are answered, so that
    a difference of a few buys costs a few buckets, not every buy of the retry window.
    None: every buy."""

    book: int
    digests: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Invalidate:
    """Catalog to front-end after a write: drop the book, cache nothing older than ``seq``."""

    book: int
    seq: int | None = None


@dataclass(frozen=True)
class Buy:
    """Front-end to an order replica: ``/buy/<id>`` with the buy's id (W7)."""

    book: int
    buy_id: str
    #: Names this one attempt of the front-end's (``X-Bazar-Attempt``): a copy of it (the
    #: network delivered it twice, late) is answered the attempt's outcome, never run anew.
    attempt: str | None = None


@dataclass(frozen=True)
class Health:
    """A probe: is the node (and what it depends on) able to serve? ``sender``: who asks (a
    catalog answers the front-end with a cache lease)."""

    sender: str = ""


# ---- answers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    book: Book


@dataclass(frozen=True)
class Hits:
    books: tuple[Book, ...]


@dataclass(frozen=True)
class NotFound:
    pass


#: A buy's read at a catalog holding that buy in a write no majority is known to hold yet: the
#: buy may yet be done or given up (W8), so nobody may answer it "not done" from here on.
UNCONFIRMED_BUY = "That buy is not confirmed yet; try again"


@dataclass(frozen=True)
class Conflict:
    """409: outdated or busy. ``book``: the answering replica's copy, when it gives one."""

    book: Book | None = None
    reason: str = ""
    seq: int | None = None


@dataclass(frozen=True)
class Written:
    book: Book
    duplicate: bool = False
    #: A duplicate's buy, when a write carried several (inside the catalog; not on the wire).
    of: str | None = None


@dataclass(frozen=True)
class NotWritten:
    """503 from a catalog: nothing was written, another path may succeed."""

    reason: str


@dataclass(frozen=True)
class Unconfirmed:
    """503 from a catalog: the write was withdrawn here, but a peer may have taken it before
    its answer was lost; replication settles it either way. The buy's outcome is unknown."""

    reason: str


@dataclass(frozen=True)
class Granted:
    seq: int


@dataclass(frozen=True)
class KnownBuy:
    book: Book
    #: Not to be answered as done for this many seconds more (as the sender's clock counts;
    #: the receiver ``outwait``s them): until then a replica the write left out may still
    #: hold a lease to read the old copy (W2).
    settles_in: float = 0.0
    #: Which buy (a check may name several).
    buy_id: str | None = None


@dataclass(frozen=True)
class ReusedBuyId:
    """A buy id already used for another book: refused, nothing changed. A buy id names one buy
    (the same id again is a retry and gets the first outcome); a new buy needs a new id."""

    buy_id: str
    book: int  # the book the id was first used for


@dataclass(frozen=True)
class Newer:
    book: Book


@dataclass(frozen=True)
class Busy:
    holder: int | None = None


@dataclass(frozen=True)
class Applied:
    seq: int
    #: (replica, seconds left): the leases this peer granted the other replicas (not the
    #: writer) that still run, whichever of them the write leaves out.
    holds: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Pong:
    """A ping's answer: what changed in the answerer's log since the position the ping said
    it holds (``base``; every book when 0), with every row newer than the pinger's."""

    seqs: dict[int, int]
    newer: tuple[tuple[Book, tuple[str, ...]], ...]
    buy_counts: dict[int, int]
    #: A read lease for the pinging replica (W2): its length, counted from the ping's sending.
    lease_s: float | None = None
    #: Per book, a digest of the buy ids remembered (``buy_digest``): two replicas lacking
    #: different buys of one book hold as many each, and only the digests tell them apart.
    buy_digests: dict[int, str] = field(default_factory=dict)
    #: Buys among ``newer``'s that the sender does not vouch for as done yet: buy id -> seconds
    #: left, as its clock counts (see ``KnownBuy.settles_in``); the taker outwaits them.
    settling: dict[str, float] = field(default_factory=dict)
    #: The checksum of each row, or None for one it does not compare (an unconfirmed write,
    #: one it is sending out, a damaged row): rows of one seq must be equal.
    sums: dict[int, str | None] = field(default_factory=dict)
    #: Books whose row the sender has not had confirmed since it started (``unverified``): its
    #: sum, if any, is one more claim, not a confirmed copy.
    unverified: tuple[int, ...] = ()
    #: Per book it is behind on, the seq and checksum of the newest confirmed row a peer
    #: handed it (``witnessed``), stored or not: a vote in a dispute over that seq between
    #: replicas whose own rows are unconfirmed.
    witnessed: dict[int, tuple[int, str]] = field(default_factory=dict)
    #: Buys among ``newer``'s with the seconds left of their retry window, as the sender's
    #: clock counts (``buys.py``): the taker forgets them no later, so a buy forgotten here
    #: is never brought back by a peer that learnt it later.
    expiring: dict[str, float] = field(default_factory=dict)
    #: The answerer's log: its epoch, the position the delta starts from and the one it brings
    #: the pinger to; and the position of the pinger's log it now holds (0: none, send all).
    epoch: str = ""
    base: int = 0
    position: int = 0
    heard: int = 0
    #: The delta was cut short (at most DELTA_MOST books a message): more follow.
    more: bool = False


@dataclass(frozen=True)
class BuysOf:
    buys: tuple[tuple[str, int], ...]
    #: As ``Pong.settling``: those of ``buys`` not to be vouched for as done yet.
    settling: dict[str, float] = field(default_factory=dict)
    #: As ``Pong.expiring``: the seconds left of each buy's retry window.
    expiring: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class OtherGeneration:
    generation: int


@dataclass(frozen=True)
class Healthy:
    #: A catalog's cache lease for the front-end: its length, counted from the probe's sending.
    lease_s: float | None = None


@dataclass(frozen=True)
class Degraded:
    message: str
    #: A catalog out of touch with its peers, or whose disk refuses writes, still grants the
    #: front-end its cache lease (its length, as ``Healthy``'s): every write of its own keeps
    #: the lease's promise, as a healthy one's does.
    lease_s: float | None = None


@dataclass(frozen=True)
class Bought:
    buy_id: str
    order_id: int | None = None


@dataclass(frozen=True)
class OutOfStock:
    buy_id: str


@dataclass(frozen=True)
class Unreachable:
    """An order replica could not carry the buy out (504; 503 when the book is too busy).
    ``outcome``: "not done" (nothing happened) or "unknown" (it may have)."""

    message: str
    outcome: str = "not done"
    busy: bool = False


@dataclass(frozen=True)
class OutcomeUnknown:
    """The front-end's 202: no order replica confirmed the buy, one may have done it."""

    buy_id: str
    tried: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NoOrderServer:
    """The front-end's answer when no order replica carried the buy out and none may have:
    nothing was done. ``refusal``: what a replica that answered said (503), else 504."""

    buy_id: str
    tried: tuple[tuple[str, str], ...] = field(default=())
    refusal: str | None = None

"""Each service's configuration: a dataclass, filled from flags and from the environment
variables docs/api.md names (a flag wins over the environment)."""
from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from nodes.core.books import CatalogFileError, seed_books
from nodes.core.catalog import BUY_WINDOW_S, Mode
from nodes.runtime import otel
from nodes.runtime.client import Timeouts

#: docs/api.md's timeouts per caller: (connect ms, total ms).
DEFAULT_TIMEOUTS_MS = {"frontend": (200, 2000), "order": (150, 1500), "catalog": (100, 1000)}
#: Where a node listens unless told otherwise: loopback, so that a node started by hand is
#: reachable from this machine only. Leaving it (BAZAR_HOST=0.0.0.0, as the container image
#: does) is always an explicit setting; docs/containers.md says what that exposes.
DEFAULT_HOST = "127.0.0.1"


@dataclass
class NodeConfig:
    role: str
    index: int = 0
    host: str = DEFAULT_HOST
    port: int = 0
    secret: str | None = None
    connect_timeout_ms: int = 0
    total_timeout_ms: int = 0
    parent_pid: int | None = None
    telemetry: bool = True
    #: Teaching speed: ms every message this node sends is held (0: full speed).
    pace_ms: int = 0
    #: Export spans through OpenTelemetry (nodes/runtime/otel.py): --otel or BAZAR_OTEL=on.
    otel: bool = False

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts.from_ms(self.connect_timeout_ms, self.total_timeout_ms)


@dataclass
class CatalogConfig(NodeConfig):
    db: str = "catalog.db"
    #: Every catalog replica's address, this one's included, in replica-number order.
    replicas: list[str] = field(default_factory=list)
    frontend: str | None = None
    mode: str = "bazar"
    consistency: str | None = None
    seed: int | None = None
    peer_order: list[int] | None = None
    #: The catalog file a fresh database starts from (None: the documents' seven books).
    books: str | None = None
    #: How long a buy id is remembered (W7's retry window; nodes/core/catalog/state.py).
    buy_window_s: float = BUY_WINDOW_S


@dataclass
class OrderConfig(NodeConfig):
    db: str = "order.db"
    catalog: str = ""
    catalog_index: int = 0
    #: Read before every buy, as the documents' figures draw it (nodes/core/order/protocol.py).
    read_first: bool = False


@dataclass
class FrontendConfig(NodeConfig):
    catalogs: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    lookup_cache: int = 3
    search_cache: int = 10


def split_addresses(value: str | None) -> list[str]:
    """``a|b|c`` (docs/api.md's separator) into a list, blanks dropped."""
    return [part.strip().rstrip("/") for part in (value or "").split("|") if part.strip()]


def _positive(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _window(text: str) -> float:
    value = float(text)
    if not 1 <= value <= 86_400:
        raise argparse.ArgumentTypeError("must be from 1 to 86400 seconds")
    return value


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m nodes", description="Run one Bazar node as its own process.")
    roles = main.add_subparsers(dest="role", required=True, metavar="catalog|order|frontend")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--id", dest="index", type=_positive, default=None, help="replica number (0, 1, ...)")
        sub.add_argument("--host", default=None,
                         help=f"address to bind (env BAZAR_HOST; default {DEFAULT_HOST}, this machine only)")
        sub.add_argument("--port", type=_positive, default=None, help="port; 0 takes a free one (env PORT)")
        sub.add_argument("--secret", default=None, help="cluster secret for internal endpoints (env BAZAR_SECRET)")
        sub.add_argument("--connect-timeout-ms", type=_positive, default=None)
        sub.add_argument("--total-timeout-ms", type=_positive, default=None)
        sub.add_argument("--parent-pid", type=int, default=None, help="exit when this process (the launcher) dies")
        sub.add_argument("--no-telemetry", action="store_true", help="record no events (for overhead benchmarks)")
        sub.add_argument("--otel", action="store_true",
                         help="export every request and hop as OpenTelemetry spans (env BAZAR_OTEL=on; needs "
                              "opentelemetry-sdk; OTEL_TRACES_EXPORTER=otlp or console)")
        sub.add_argument("--pace-ms", type=_positive, default=None,
                         help="teaching speed: hold every message sent this many ms (env BAZAR_PACE_MS; 0: full speed)")

    catalog = roles.add_parser("catalog", help="a catalog replica")
    common(catalog)
    catalog.add_argument("--db", default=None, help="SQLite file or SQLAlchemy URL (env BAZAR_DB)")
    catalog.add_argument("--books", default=None,
                         help="catalog file a fresh database starts from: JSON or CSV (id,title,topic,price,stock); "
                              "default the documents' seven books (env BAZAR_BOOKS)")
    catalog.add_argument(
        "--replicas", default=None, help="every catalog replica's address, this one's included, '|'-separated "
        "in replica order (env CATALOG_ADDRESSES)"
    )
    catalog.add_argument("--frontend", default=None, help="front-end address for invalidations (env FRONT_END_ADDRESS)")
    catalog.add_argument("--mode", choices=[str(mode) for mode in Mode], default=Mode.BAZAR)
    catalog.add_argument("--consistency", choices=("majority", "available"), default=None,
                         help="writes need a majority of replicas, or skip the unreachable (default: majority in "
                         "bazar mode, available in documented mode)")
    catalog.add_argument("--seed", type=int, default=None, help="seed for the random choice of peers")
    catalog.add_argument("--buy-window", type=_window, default=BUY_WINDOW_S, metavar="SECONDS",
                         help=f"how long a buy id is remembered: a retry within it is answered its first outcome "
                              f"(default {BUY_WINDOW_S:g})")
    catalog.add_argument("--peer-order", default=None, help="fixed order of peers to ask, e.g. 1,2,3,4")

    order = roles.add_parser("order", help="an order replica")
    common(order)
    order.add_argument("--db", default=None, help="SQLite file or SQLAlchemy URL (env BAZAR_DB)")
    order.add_argument("--catalog", default=None, help="its catalog replica's address (env CATALOG_ADDRESS)")
    order.add_argument("--catalog-id", type=_positive, default=None, help="that catalog replica's number")
    order.add_argument("--read-first", action="store_true",
                       help="read the book before every buy, as the documents' figures draw it; needed when its "
                            "catalog runs available consistency (default: a book last seen in stock is written "
                            "at once, and a refused write reads)")

    frontend = roles.add_parser("frontend", help="the front-end")
    common(frontend)
    frontend.add_argument("--catalogs", default=None, help="catalog addresses, '|'-separated (env CATALOG_ADDRESSES)")
    frontend.add_argument("--orders", default=None, help="order addresses, '|'-separated (env ORDER_ADDRESSES)")
    frontend.add_argument("--lookup-cache", type=_positive, default=3)
    frontend.add_argument("--search-cache", type=_positive, default=10)
    return main


def parse(argv: list[str], environ: Mapping[str, str] = os.environ) -> NodeConfig:
    args = parser().parse_args(argv)
    connect_ms, total_ms = DEFAULT_TIMEOUTS_MS[args.role]
    port = args.port if args.port is not None else int(environ.get("PORT", "0") or 0)
    common = dict(
        role=args.role,
        index=args.index if args.index is not None else int(environ.get("BAZAR_ID", "0") or 0),
        host=args.host or environ.get("BAZAR_HOST") or DEFAULT_HOST,
        port=port,
        secret=args.secret or environ.get("BAZAR_SECRET") or None,
        connect_timeout_ms=args.connect_timeout_ms if args.connect_timeout_ms is not None else connect_ms,
        total_timeout_ms=args.total_timeout_ms if args.total_timeout_ms is not None else total_ms,
        parent_pid=args.parent_pid,
        telemetry=not args.no_telemetry and environ.get("BAZAR_TELEMETRY", "on") != "off",
        pace_ms=args.pace_ms if args.pace_ms is not None else int(environ.get("BAZAR_PACE_MS", "0") or 0),
        otel=args.otel or otel.wanted(environ),
    )
    if common["otel"]:
        try:
            otel.check_installed()
        except otel.OtelUnavailable as missing:
            parser().error(str(missing))
    if args.role == "catalog":
        replicas = split_addresses(args.replicas or environ.get("CATALOG_ADDRESSES"))
        if replicas and common["index"] >= len(replicas):
            parser().error(f"--id {common['index']} is not a position in the {len(replicas)} replica addresses")
        order = [int(x) for x in args.peer_order.split(",")] if args.peer_order else None
        books = args.books or environ.get("BAZAR_BOOKS") or None
        if books is not None:
            try:
                seed_books(books)  # checked before anything starts: a bad file is named with its line
            except CatalogFileError as bad:
                parser().error(str(bad))
        return CatalogConfig(
            **common,
            db=args.db or environ.get("BAZAR_DB") or f"catalog{common['index']}.db",
            replicas=replicas,
            frontend=args.frontend or environ.get("FRONT_END_ADDRESS") or None,
            mode=args.mode,
            consistency=args.consistency,
            seed=args.seed,
            peer_order=order,
            books=books,
            buy_window_s=args.buy_window,
        )
    if args.role == "order":
        catalog = (args.catalog or environ.get("CATALOG_ADDRESS") or "").rstrip("/")
        if not catalog:
            parser().error("an order replica needs its catalog: --catalog URL or CATALOG_ADDRESS")
        return OrderConfig(
            **common,
            db=args.db or environ.get("BAZAR_DB") or f"order{common['index']}.db",
            catalog=catalog,
            catalog_index=args.catalog_id if args.catalog_id is not None else common["index"],
            read_first=args.read_first,
        )
    catalogs = split_addresses(args.catalogs or environ.get("CATALOG_ADDRESSES"))
    orders = split_addresses(args.orders or environ.get("ORDER_ADDRESSES"))
    if not catalogs or not orders:
        parser().error("the front-end needs --catalogs and --orders (or CATALOG_ADDRESSES and ORDER_ADDRESSES)")
    return FrontendConfig(
        **common, catalogs=catalogs, orders=orders, lookup_cache=args.lookup_cache, search_cache=args.search_cache
    )

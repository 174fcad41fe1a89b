"""The cluster file: a TOML description of a Bazar cluster (``assets/cluster.toml`` is the
default). Flags override it; a wrong value is reported naming its key and what is allowed."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nodes.core.books import CatalogFileError, seed_books
from nodes.core.catalog import BUY_WINDOW_S
from nodes.runtime.client import Timeouts
from nodes.runtime.config import DEFAULT_TIMEOUTS_MS

DEFAULT_CLUSTER_FILE = Path(__file__).resolve().parent.parent.parent / "assets" / "cluster.toml"
MAX_REPLICAS = 9


class ClusterFileError(ValueError):
    """A cluster file (or flag) value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Cluster:
    catalogs: int = 3
    orders: int = 3
    #: For each order replica, the catalog replica it talks to.
    order_catalogs: tuple[int, ...] = ()
    host: str = "127.0.0.1"
    frontend_port: int = 0
    catalog_ports: tuple[int, ...] = ()
    order_ports: tuple[int, ...] = ()
    lookup_cache: int = 3
    search_cache: int = 10
    timeouts: dict[str, Timeouts] = field(
        default_factory=lambda: {role: Timeouts.from_ms(*ms) for role, ms in DEFAULT_TIMEOUTS_MS.items()}
    )
    data_dir: Path = Path("data")
    catalog_mode: str = "bazar"
    #: "majority" (a write needs most catalog replicas) or "available" (docs/protocol.md: skip whoever
    #: cannot be reached). None: majority in Bazar mode, available in documented mode.
    consistency: str | None = None
    telemetry: bool = True
    #: The catalog file the catalog replicas start from (None: the documents' seven books).
    books: Path | None = None
    #: How long a catalog replica remembers a buy id (W7's retry window, in seconds).
    buy_window_s: float = BUY_WINDOW_S
    #: Attach mode: addresses of nodes already running elsewhere (no processes started).
    attach_frontend: str | None = None
    attach_catalogs: tuple[str, ...] = ()
    attach_orders: tuple[str, ...] = ()
    #: "compose": the attached nodes are containers of a Compose project, and crash, hang,
    #: restart and cut off go through the engine (nodes/control/engine.py); None: only slow
    #: and cut off, through the nodes' admin routes.
    attach_engine: str | None = None
    attach_project: str = "bazar"
    secret: str | None = None
    #: The window records every session into ``data_dir``/runs (docs/runs.md), keeping at most
    #: ``runs_limit_mb`` of them (the oldest go first); it can rewind ``rewind_minutes``.
    record: bool = True
    runs_limit_mb: int = 500
    rewind_minutes: int = 10

    @property
    def attached(self) -> bool:
        return self.attach_frontend is not None

    def catalog_of(self, order: int) -> int:
        return self.order_catalogs[order] if order < len(self.order_catalogs) else order % self.catalogs

    def with_overrides(
        self, *, catalogs: int | None = None, orders: int | None = None, data_dir: str | Path | None = None,
        books: str | Path | None = None,
    ) -> Cluster:
        changed = self
        if books is not None:
            changed = replace(changed, books=_catalog_file(books, "--books"))
        if catalogs is not None:
            _check_count("--catalogs", catalogs)
            changed = replace(changed, catalogs=catalogs, catalog_ports=(), order_catalogs=())
        if orders is not None:
            _check_count("--orders", orders)
            changed = replace(changed, orders=orders, order_ports=(), order_catalogs=())
        if data_dir is not None:
            changed = replace(changed, data_dir=Path(data_dir))
        _check_order_catalogs(changed)
        return changed


def load(path: str | Path | None = None) -> Cluster:
    """Read and check a cluster file (the default one when ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_CLUSTER_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClusterFileError(f"cluster file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ClusterFileError(f"cluster file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ClusterFileError(f"cluster file {path} is not UTF-8 text (byte {exc.start} cannot be read); "
                               "save it as UTF-8") from None
    except OSError as exc:
        raise ClusterFileError(f"cluster file {path} cannot be read: {exc.strerror}") from None
    return parse(raw)


_SECTIONS = {"cluster", "ports", "caches", "timeouts", "attach", "runs"}


def parse(raw: dict[str, Any]) -> Cluster:
    unknown = set(raw) - _SECTIONS
    if unknown:
        raise ClusterFileError(f"unknown section(s) {sorted(unknown)}; allowed: {sorted(_SECTIONS)}")
    cluster = _section(raw, "cluster", {"catalogs", "orders", "order_catalogs", "host", "data_dir", "catalog_mode",
                                        "consistency", "secret", "telemetry", "books", "buy_window_s"})
    ports = _section(raw, "ports", {"frontend", "catalogs", "orders"})
    caches = _section(raw, "caches", {"lookup", "search"})
    timeouts = _section(raw, "timeouts", set(DEFAULT_TIMEOUTS_MS))
    attach = _section(raw, "attach", {"frontend", "catalogs", "orders", "engine", "project", "secret_file"})
    runs = _section(raw, "runs", {"record", "limit_mb", "rewind_minutes"})

    catalogs = _int(cluster, "cluster.catalogs", 3, 1, MAX_REPLICAS)
    orders = _int(cluster, "cluster.orders", 3, 1, MAX_REPLICAS)
    order_catalogs = tuple(_int_list(cluster, "cluster.order_catalogs", 0, catalogs - 1))
    host = cluster.get("host", "127.0.0.1")
    if not isinstance(host, str) or not host:
        raise ClusterFileError("cluster.host must be an address such as \"127.0.0.1\"")
    data_dir = cluster.get("data_dir", "data")
    if not isinstance(data_dir, str) or not data_dir:
        raise ClusterFileError("cluster.data_dir must be a folder path (a string)")
    mode = cluster.get("catalog_mode", "bazar")
    if mode not in ("bazar", "documented"):
        raise ClusterFileError("cluster.catalog_mode must be \"bazar\" or \"documented\"")
    consistency = cluster.get("consistency")
    if consistency not in (None, "majority", "available"):
        raise ClusterFileError("cluster.consistency must be \"majority\" or \"available\"")
    telemetry = cluster.get("telemetry", True)
    if not isinstance(telemetry, bool):
        raise ClusterFileError("cluster.telemetry must be true or false")
    record = runs.get("record", True)
    if not isinstance(record, bool):
        raise ClusterFileError("runs.record must be true or false")
    secret = cluster.get("secret")
    if secret is not None and (not isinstance(secret, str) or len(secret) < 8):
        raise ClusterFileError("cluster.secret must be a string of at least 8 characters (or left out)")

    catalog_ports = tuple(_int_list(ports, "ports.catalogs", 0, 65535))
    order_ports = tuple(_int_list(ports, "ports.orders", 0, 65535))
    if catalog_ports and len(catalog_ports) != catalogs:
        raise ClusterFileError(f"ports.catalogs must list {catalogs} ports (one per catalog replica)")
    if order_ports and len(order_ports) != orders:
        raise ClusterFileError(f"ports.orders must list {orders} ports (one per order replica)")

    parsed_timeouts = {}
    for role, (connect, total) in DEFAULT_TIMEOUTS_MS.items():
        entry = timeouts.get(role, {})
        if not isinstance(entry, dict):
            raise ClusterFileError(f"timeouts.{role} must be a table with connect_ms and total_ms")
        connect_ms = _int(entry, f"timeouts.{role}.connect_ms", connect, 1, 60_000, key="connect_ms")
        total_ms = _int(entry, f"timeouts.{role}.total_ms", total, 1, 600_000, key="total_ms")
        if connect_ms > total_ms:
            raise ClusterFileError(f"timeouts.{role}.connect_ms ({connect_ms}) must not exceed "
                                   f"timeouts.{role}.total_ms ({total_ms}): connecting is part of the exchange")
        parsed_timeouts[role] = Timeouts.from_ms(connect_ms, total_ms)

    result = Cluster(
        catalogs=catalogs,
        orders=orders,
        order_catalogs=order_catalogs,
        host=host,
        frontend_port=_int(ports, "ports.frontend", 0, 0, 65535, key="frontend"),
        catalog_ports=catalog_ports,
        order_ports=order_ports,
        lookup_cache=_int(caches, "caches.lookup", 3, 0, 10_000, key="lookup"),
        search_cache=_int(caches, "caches.search", 10, 0, 10_000, key="search"),
        timeouts=parsed_timeouts,
        data_dir=Path(data_dir),  # a relative folder is taken from the current directory
        catalog_mode=mode,
        consistency=consistency,
        telemetry=telemetry,
        secret=secret,
        books=_catalog_file(cluster["books"], "cluster.books") if "books" in cluster else None,
        buy_window_s=_int(cluster, "cluster.buy_window_s", int(BUY_WINDOW_S), 1, 86_400, key="buy_window_s"),
        record=record,
        runs_limit_mb=_int(runs, "runs.limit_mb", 500, 1, 1_000_000, key="limit_mb"),
        rewind_minutes=_int(runs, "runs.rewind_minutes", 10, 1, 120, key="rewind_minutes"),
    )
    if attach:
        frontend = attach.get("frontend")
        if not isinstance(frontend, str) or not frontend.startswith("http"):
            raise ClusterFileError("attach.frontend must be the front-end's address, e.g. \"http://10.0.0.5:8000\"")
        attach_catalogs = tuple(_address_list(attach, "attach.catalogs", "catalogs"))
        attach_orders = tuple(_address_list(attach, "attach.orders", "orders"))
        engine, project = attach.get("engine"), attach.get("project", "bazar")
        if engine not in (None, "compose"):
            raise ClusterFileError("attach.engine must be \"compose\" (or left out: the nodes were started by hand)")
        if not isinstance(project, str) or not project:
            raise ClusterFileError("attach.project must be the Compose project's name, e.g. \"bazar\"")
        if "secret_file" in attach:
            result = replace(result, secret=_secret_from(attach["secret_file"]))
        result = replace(
            result,
            attach_frontend=frontend.rstrip("/"),
            attach_catalogs=attach_catalogs,
            attach_orders=attach_orders,
            attach_engine=engine,
            attach_project=project,
            catalogs=len(attach_catalogs),
            orders=len(attach_orders),
            order_catalogs=(),
        )
    _check_order_catalogs(result)
    return result


def _section(raw: dict[str, Any], name: str, allowed: set[str]) -> dict[str, Any]:
    section = raw.get(name, {})
    if not isinstance(section, dict):
        raise ClusterFileError(f"[{name}] must be a table")
    unknown = set(section) - allowed
    if unknown:
        raise ClusterFileError(f"unknown key(s) {', '.join(f'{name}.{k}' for k in sorted(unknown))}; "
                               f"allowed in [{name}]: {', '.join(sorted(allowed))}")
    return section


def _int(section: dict[str, Any], name: str, default: int, low: int, high: int, *, key: str | None = None) -> int:
    value = section.get(key or name.rsplit(".", 1)[-1], default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ClusterFileError(f"{name} must be a whole number from {low} to {high} (got {value!r})")
    return value


def _int_list(section: dict[str, Any], name: str, low: int, high: int) -> list[int]:
    value = section.get(name.rsplit(".", 1)[-1], [])
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in value
    ):
        raise ClusterFileError(f"{name} must be a list of whole numbers from {low} to {high} (got {value!r})")
    return value


def _address_list(section: dict[str, Any], name: str, key: str) -> list[str]:
    value = section.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.startswith("http") for v in value):
        raise ClusterFileError(f"{name} must be a non-empty list of addresses such as \"http://10.0.0.5:8001\"")
    return [v.rstrip("/") for v in value]


def _catalog_file(path: Any, name: str) -> Path:
    """A catalog file, read and checked now: a bad one is named with its line before anything starts."""
    if not isinstance(path, str | Path) or not str(path):
        raise ClusterFileError(f"{name} must be the path of a catalog file (JSON or CSV)")
    file = Path(path).expanduser().resolve()
    try:
        seed_books(file)
    except CatalogFileError as bad:
        raise ClusterFileError(f"{bad} (given as {name}; `launcher.py books --help` makes a valid one)") from None
    return file


def _secret_from(path: Any) -> str:
    """The cluster secret from the file a Compose cluster was given it in (BAZAR_SECRET_FILE)."""
    if not isinstance(path, str) or not path:
        raise ClusterFileError("attach.secret_file must be the path of the file holding the cluster's secret")
    file = Path(path).expanduser()
    try:
        secret = file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ClusterFileError(f"attach.secret_file: cannot read {file} ({exc.strerror}); it is the file the "
                               "cluster was started with (BAZAR_SECRET_FILE, docs/containers.md)") from None
    if len(secret) < 8:
        raise ClusterFileError(f"attach.secret_file: {file} holds no secret of at least 8 characters")
    return secret


def _check_count(name: str, value: int) -> None:
    if not 1 <= value <= MAX_REPLICAS:
        raise ClusterFileError(f"{name} must be a whole number from 1 to {MAX_REPLICAS} (got {value})")


def _check_order_catalogs(cluster: Cluster) -> None:
    if cluster.order_catalogs and len(cluster.order_catalogs) != cluster.orders:
        raise ClusterFileError(
            f"cluster.order_catalogs must name one catalog replica (0 to {cluster.catalogs - 1}) "
            f"for each of the {cluster.orders} order replicas"
        )
    if any(c >= cluster.catalogs for c in cluster.order_catalogs):
        raise ClusterFileError(f"cluster.order_catalogs may only name catalog replicas 0 to {cluster.catalogs - 1}")

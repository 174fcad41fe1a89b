"""Opening a node's own SQLite database: WAL, durable commits, and a claim on the file."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Engine


def database_url(path_or_url: str) -> str:
    return path_or_url if "://" in path_or_url else f"sqlite:///{Path(path_or_url).resolve()}"


def sqlite_engine(path_or_url: str) -> Engine:
    """An engine in WAL mode with durable commits; shared by the catalog and order stores."""
    engine = create_engine(database_url(path_or_url))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA schema_version")  # reads the file's header
        except exc.DatabaseError as error:
            engine.dispose()
            path = database_url(path_or_url).removeprefix("sqlite:///")
            reason = getattr(error.orig, "args", [str(error)])[0]
            raise SystemExit(
                f"cannot use the database file {path}: {reason}. If it is not a Bazar database, move it "
                "away (or delete it) and start the node again: a catalog replica then starts from the "
                "seven books and catches up from its peers. If its folder is read-only, choose another "
                "data folder (--data-dir).") from None
    return engine


class FileClaim:
    """An exclusive lock beside a database file, so two replicas never share one file."""

    def __init__(self, path_or_url: str) -> None:
        self._fd: int | None = None
        url = database_url(path_or_url)
        if url.startswith("sqlite:///") and not url.endswith(":memory:"):
            lock_path = url[len("sqlite:///"):] + ".lock"
            Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                path = url[len("sqlite:///"):]
                raise SystemExit(f"database {path} is already used by another running node") from None
            self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

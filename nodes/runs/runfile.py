"""A run file: everything the model was fed, in order, on one clock — so that a run can be kept,
shared and opened again, and every view draws it as it drew the live cluster.

The format (docs/runs.md) is gzip-compressed UTF-8 JSON lines:

* line 1, the header: ``{"format": "bazar-run", "version": 1, "bazar": VERSION, "recorded":
  ISO date, "source": what recorded it, "nodes": {name: address}, "catalog_of": {order: catalog},
  "books": [[id, title, topic, price, quantity], ...]}``;
* every other line, one input of the model, stamped ``at`` (wall-clock seconds when it was
  applied): ``[at, "e", EVENT]`` a node's telemetry event as the node sent it (docs/api.md);
  ``[at, "p", node, PROCESS]`` the supervisor's view of a process; ``[at, "s", node, connected]``
  a telemetry stream opened or closed; ``[at, "t", t]`` the clock ticked; ``[at, "l", node, text,
  t]`` a line for a node's Log; ``[at, "a", node, text, [trace, ...]]`` an anomaly a checker found.

Writing is cheap on the caller's thread (a list append); a thread encodes, compresses and
flushes every half second, so a run cut short by a crash is readable up to its last flush.
Reading stops at the first damaged line and says where; a file from a newer Bazar says so.
Read with orjson (a line at a time while the slider moves), written with the standard library."""
from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

import nodes
from nodes.core.events import Event, decode, encode
from nodes.core.vocabulary import NodeState
from nodes.observe.observations import Anomaly, LogNote, Observation, ProcessChanged, StreamState, Tick
from nodes.observe.views import ProcessState

FORMAT = "bazar-run"
VERSION = 1
#: How often the writer's thread writes what was recorded, and flushes it to the disk.
FLUSH_S = 0.5
#: What the name of a run file ends with.
SUFFIX = ".jsonl.gz"

Input = Event | Observation


class RunFileError(Exception):
    """A run file that cannot be opened at all (not a run, a newer format, unreadable)."""


@dataclass(frozen=True)
class Header:
    """What a run says of itself: where it came from and the cluster's shape."""

    source: str
    nodes: dict[str, str]
    catalog_of: dict[str, str] = field(default_factory=dict)
    #: The catalog the cluster started from: (id, title, topic, price, quantity) per book.
    books: tuple[tuple[int, str, str, float, int], ...] = ()
    recorded: str = ""
    bazar: str = ""
    version: int = VERSION

    @property
    def when(self) -> str:
        """When it was recorded, as people write it (2026-12-05 16:30), or as it came if it is
        not an ISO date."""
        try:
            return datetime.fromisoformat(self.recorded).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return self.recorded or "at an unknown date"

    def as_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": self.version, "bazar": self.bazar or nodes.__version__,
                "recorded": self.recorded or datetime.now().astimezone().isoformat(timespec="seconds"),
                "source": self.source, "nodes": self.nodes, "catalog_of": self.catalog_of,
                "books": [list(book) for book in self.books]}


@dataclass
class Run:
    """A run read back: its header, its inputs as the chunks they were written in (decoded when
    a player needs them), and, when the file was damaged or cut short, what was wrong and where
    (everything before it is here)."""

    path: Path
    header: Header
    chunks: list[Chunk]
    problem: str | None = None

    @property
    def start(self) -> float:
        return self.chunks[0].first if self.chunks else 0.0

    @property
    def end(self) -> float:
        return self.chunks[-1].last if self.chunks else 0.0

    @property
    def count(self) -> int:
        return sum(chunk.count for chunk in self.chunks)

    def records(self) -> list[tuple[float, Input]]:
        """Every input, decoded (tests and tools; the player decodes a chunk at a time)."""
        return [record for chunk in self.chunks for record in chunk.records()]


# ---- one input as one line ---------------------------------------------------------------------
def _process_json(process: ProcessState) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(process):
        value = getattr(process, f.name)
        out[f.name] = sorted(value) if isinstance(value, frozenset) else str(value) if f.name == "state" else value
    return out


def _process_of(raw: dict[str, Any]) -> ProcessState:
    known = {f.name for f in dataclasses.fields(ProcessState)}
    values = {k: v for k, v in raw.items() if k in known}
    values["state"] = NodeState(values.get("state", NodeState.DOWN))
    for name in ("deaf_to", "mute_to", "aborts"):
        values[name] = frozenset(values.get(name, ()))
    return ProcessState(**values)


def line_of(at: float, item: Input) -> list[Any]:
    """One input as its JSON line's list."""
    match item:
        case Event():
            return [at, "e", encode(item)]
        case ProcessChanged(node=node, process=process):
            return [at, "p", node, _process_json(process)]
        case StreamState(node=node, connected=connected):
            return [at, "s", node, connected]
        case Tick(t=t):
            return [at, "t", t]
        case LogNote(node=node, text=text, t=t):
            return [at, "l", node, text, t]
        case Anomaly(node=node, text=text, traces=traces):
            return [at, "a", node, text, list(traces)]
    raise TypeError(f"not a model input: {item!r}")


def input_of(line: list[Any]) -> tuple[float, Input | None]:
    """A JSON line's list back as (at, input); None for a kind this version does not know (a
    newer Bazar's, kept readable). Raises ValueError/KeyError/TypeError when it is malformed."""
    at, kind = float(line[0]), line[1]
    match kind:
        case "e":
            raw = line[2]
            return at, decode(raw["node"], raw)
        case "p":
            return at, ProcessChanged(str(line[2]), _process_of(line[3]))
        case "s":
            return at, StreamState(str(line[2]), bool(line[3]))
        case "t":
            return at, Tick(float(line[2]) if len(line) > 2 else at)
        case "l":
            return at, LogNote(str(line[2]), str(line[3]), None if line[4] is None else float(line[4]))
        case "a":
            return at, Anomaly(at, str(line[2]), str(line[3]), tuple(str(t) for t in line[4]))
    return at, None


def _parsed(text: bytes) -> Any:
    """One line's JSON: orjson, 4x the standard json on a line; NaN or Infinity, which Python's
    json writes, is read by json (raises ValueError for what neither reads)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def input_of_text(text: bytes) -> tuple[float, Input | None]:
    """One stored line (checked when the file was read) as ``Chunk.inputs`` gives it."""
    return _input_or_none(_parsed(text))


def _input_or_none(line: Any) -> tuple[float, Input | None]:
    """A checked line's list as (at, input), the input None when the line makes no sense."""
    try:
        return input_of(line)
    except (ValueError, KeyError, TypeError, IndexError):
        return _at_of(line), None


# ---- writing -------------------------------------------------------------------------------------
class RunWriter:
    """Records inputs to a run file: ``add`` on any thread; a thread of its own encodes what came
    every ``FLUSH_S`` and writes it as one gzip member (a gzip file may hold many, read as one
    stream). Every member is whole once written, so the file is a complete run after every
    write: a copy of it (``save_copy``) needs no ending, and a crash loses half a second.
    ``on_chunk`` hears of each member too (the window's rewind buffer keeps them)."""

    def __init__(self, path: str | Path | None, header: Header, *, level: int = 4,
                 on_chunk: Callable[[Chunk], None] | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("wb")
        self.level = level
        self.on_chunk = on_chunk
        self._pending: list[tuple[float, Input]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.count = 0
        self.size = 0  # compressed bytes written so far
        self.error: str | None = None  # why writing to the file stopped, if it did (a full disk, say)
        head = json.dumps(header.as_json(), separators=(",", ":")) + "\n"
        self._write(gzip.compress(head.encode(), level, mtime=0))
        self._thread = threading.Thread(target=self._run, name="run-writer", daemon=True)
        self._thread.start()

    def add(self, item: Input, at: float | None = None) -> None:
        """Record one input, stamped ``at`` (now when not given)."""
        self._pending.append((time.time() if at is None else at, item))  # list.append is atomic

    def _run(self) -> None:
        while not self._closed.wait(FLUSH_S):
            self.flush()
        self.flush()

    def _write(self, member: bytes) -> None:
        if self._file is None or self.error is not None:
            return
        try:
            self._file.write(member)
            self._file.flush()
            self.size += len(member)
        except OSError as error:
            self.error = f"recording to {self.path} stopped: {error.strerror or error}"

    def flush(self) -> None:
        """Write what was recorded so far (at once, on the caller's thread)."""
        with self._lock:
            pending, self._pending = self._pending, []
            if not pending:
                return
            text = "".join(json.dumps(line_of(at, item), separators=(",", ":")) + "\n" for at, item in pending)
            member = gzip.compress(text.encode(), self.level, mtime=0)
            self._write(member)
            self.count += len(pending)
            if self.on_chunk is not None:
                self.on_chunk(Chunk(pending[0][0], pending[-1][0], len(pending), member))

    def save_copy(self, target: str | Path) -> Path:
        """A run file of everything recorded so far, at ``target``; recording goes on."""
        if self.path is None:
            raise RunFileError("this session is not being recorded to a file")
        target = Path(target)
        self.flush()
        with self._lock:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            shutil.copyfile(self.path, partial)
            partial.replace(target)  # never a half-written run under the name asked for
        return target

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._thread.join()
        with self._lock:
            if self._file is not None:
                try:
                    self._file.close()
                except OSError as error:
                    self.error = self.error or f"recording to {self.path} stopped: {error.strerror or error}"


@dataclass(frozen=True)
class Chunk:
    """Inputs from ``first`` to ``last`` (their ``at``) as they are stored: one gzip member of a
    run file (``data``), or, read from a file, its checked lines (``text``, kept compressed too
    when the file's own member was not whole)."""

    first: float
    last: float
    count: int
    data: bytes | None
    text: bytes | None = None

    def lines_text(self) -> bytes:
        return self.text if self.text is not None else gzip.decompress(self.data or b"")

    def lines(self) -> list[bytes]:
        return self.lines_text().splitlines()

    def inputs(self) -> list[tuple[float, Input | None]]:
        """Every line as (at, input): None for a kind this version does not know, or a line
        that parses but makes no sense (the file's check took it; nothing is applied for it)."""
        text = self.lines_text()
        return [_input_or_none(line)  # one parse, not one a line
                for line in json.loads(b"[" + text.rstrip(b"\n").replace(b"\n", b",") + b"]")]

    def records(self) -> list[tuple[float, Input]]:
        return [(at, item) for at, item in self.inputs() if item is not None]


def write_run(path: str | Path, header: Header, records: Iterable[tuple[float, Input]], *,
              per_chunk: int = 2000) -> Path:
    """A whole run at once (a simulator's or a check's), in the writer's format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    with partial.open("wb") as out:
        out.write(gzip.compress((json.dumps(header.as_json(), separators=(",", ":")) + "\n").encode(), 6, mtime=0))
        lines: list[str] = []
        for at, item in records:
            lines.append(json.dumps(line_of(at, item), separators=(",", ":")) + "\n")
            if len(lines) >= per_chunk:
                out.write(gzip.compress("".join(lines).encode(), 6, mtime=0))
                lines = []
        if lines:
            out.write(gzip.compress("".join(lines).encode(), 6, mtime=0))
    partial.replace(path)
    return path


# ---- reading -------------------------------------------------------------------------------------
def read_header(raw: bytes, path: Path) -> Header:
    try:
        head = json.loads(raw)
    except ValueError:
        head = None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise RunFileError(f"{path} is not a Bazar run (its first line is not a run's header)")
    version = head.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise RunFileError(f"{path} was recorded by a newer Bazar ({head.get('bazar', '?')}, run format "
                           f"{version}); this Bazar ({nodes.__version__}) reads run format {VERSION}: update Bazar "
                           "to open it")
    try:
        return Header(source=str(head.get("source", "")), nodes=dict(head["nodes"]),
                      catalog_of=dict(head.get("catalog_of", {})),
                      books=tuple((int(b[0]), str(b[1]), str(b[2]), float(b[3]), int(b[4]))
                                  for b in head.get("books", [])),
                      recorded=str(head.get("recorded", "")), bazar=str(head.get("bazar", "")), version=version)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise RunFileError(f"{path}: its header cannot be read ({error})") from None


def _members(data: bytes) -> Iterator[tuple[bytes, bytes, str | None]]:
    """The gzip members of ``data``: each as stored and decompressed, and what was wrong with
    it if anything (a cut-off or damaged member is the last one read)."""
    while data:
        inflater = zlib.decompressobj(31)
        try:
            text = inflater.decompress(data)
        except zlib.error as error:
            yield b"", b"", f"damaged ({error})"
            return
        if not inflater.eof:
            yield b"", text, "cut off while it was written?"
            return
        stored = data[:len(data) - len(inflater.unused_data)]
        yield stored, text, None
        data = inflater.unused_data
        while data.startswith(b"\0"):  # padding some tools add after the last member
            data = data[1:]


def _at_of(line: Any) -> float:
    if not isinstance(line, list) or len(line) < 2 or not isinstance(line[1], str):
        raise TypeError("not a run's line")
    return float(line[0])


def read_run(path: str | Path) -> Run:
    """A run file read back, up to any damage (``Run.problem`` says what and where). Every line
    is checked here, so that a player never meets a bad one. Raises ``RunFileError`` only when
    nothing can be read: no such file, not a run, a newer format."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RunFileError(f"{path} cannot be read: {error.strerror or error}") from None
    if not data.startswith(b"\x1f\x8b"):
        raise RunFileError(f"{path} is not a Bazar run (not a gzip file)")
    header: Header | None = None
    chunks: list[Chunk] = []
    problem = None
    number = 0  # lines read
    for stored, text, trouble in _members(data):
        lines = text.split(b"\n")
        complete, rest = lines[:-1], lines[-1]
        if header is None:
            if not complete:
                raise RunFileError(f"{path} is not a Bazar run, or is cut off before its header ends")
            header = read_header(complete[0], path)
            complete = complete[1:]
            number = 1
            had_header = True
        else:
            had_header = False
        good, ats = [], []
        for raw in complete:
            number += 1
            try:  # a line that parses is taken; one that then makes no sense is skipped by ``inputs``
                ats.append(_at_of(_parsed(raw)))
            except (ValueError, TypeError, IndexError):
                problem = f"line {number} is damaged"
                break
            good.append(raw)
        if good:
            whole = not had_header and trouble is None and problem is None and not rest
            chunks.append(Chunk(ats[0], ats[-1], len(good), stored if whole else None,
                                None if whole else b"\n".join(good) + b"\n"))
        if problem is None and trouble is not None:
            problem = (f"the file ends early, in line {number + 1} ({trouble})" if "cut off" in trouble
                       else f"the file is {trouble} after line {number}")
        elif problem is None and rest:
            problem = f"line {number + 1} is cut off"
        if problem is not None:
            break
    if header is None:
        raise RunFileError(f"{path} is not a Bazar run (it holds nothing readable)")
    if problem is not None:
        seconds = chunks[-1].last - chunks[0].first if chunks else 0.0
        count = sum(c.count for c in chunks)
        problem = f"{path.name}: {problem}; the run is shown up to there ({count:,} records, {seconds:.1f} s)"
    return Run(path, header, chunks, problem)


# ---- the window's own recordings -----------------------------------------------------------------
def new_run_path(folder: Path, stem: str = "run") -> Path:
    """A fresh file name in ``folder``, by the time it starts."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"{stem}-{stamp}{SUFFIX}"
    number = 2
    while path.exists():
        path = folder / f"{stem}-{stamp}-{number}{SUFFIX}"
        number += 1
    return path


def prune(folder: Path, limit_bytes: int, keep: Iterable[Path] = ()) -> list[Path]:
    """Delete the oldest runs in ``folder`` until they take at most ``limit_bytes``; never one of
    ``keep`` (the run being recorded). The ones deleted, oldest first."""
    kept = {Path(p).resolve() for p in keep}
    runs = sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in runs)
    deleted = []
    for path in runs:
        if total <= limit_bytes:
            break
        if path.resolve() in kept:
            continue
        total -= path.stat().st_size
        path.unlink(missing_ok=True)
        deleted.append(path)
    return deleted

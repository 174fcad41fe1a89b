"""The container engine and the node image for tests/e2e/test_containers.py, made in the
background from the moment the session starts.

On a fresh development machine making the engine takes most of two minutes (Debian's docker.io
installed, a python:3.11-slim stand-in debootstrapped: ENGINE_SCRIPT) and the image's build half
a minute more, nearly all of it waiting for downloads. Done in the container tests' own fixture,
that held one of the suite's two workers idle near the end of the run, and a clean clone's suite
took 659 s in CI. Started here, in the process that deals the tests out, before its workers
exist, it overlaps with the rest of the suite; the fixture waits for it with a deadline.

Everything it makes is removed: the image's tag by the fixture (its layers stay as build cache)
or, when no container test ran, at the session's end, and so is a job still running then."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Makes an engine on Bazar's development machines, where no image can be pulled (it builds a
#: local python:3.11-slim); real users have an engine already.
ENGINE_SCRIPT = ROOT.parent / "shared" / "tools" / "docker-engine.sh"
CONTAINER_TESTS = ROOT / "tests" / "e2e" / "test_containers.py"
#: Where the job's folder is named, for the workers (they inherit the environment).
JOB_VARIABLE = "BAZAR_TEST_ENGINE_JOB"
#: The job's folder, in the process that started it (a pytest run inside a test inherits the
#: variable, and must neither start a job of its own nor end this one).
_started: Path | None = None


@dataclass
class Prepared:
    """What the background job left: its exit status (None: still running), the stage it
    reached ("engine" or "build"), everything it printed, the image's tag and how long the
    build took."""

    returncode: int | None
    stage: str
    output: str
    image: str
    build_s: float


def _wanted(args: list[str]) -> bool:
    """Whether the session's arguments (or, with none, the test paths) include the container
    tests: a path that is that file or a folder above it."""
    for arg in args or ["tests"]:
        path = (ROOT / arg.split("::")[0]).resolve()
        if path == CONTAINER_TESTS or path in CONTAINER_TESTS.parents:
            return True
    return False


def start_in_background(args: list[str]) -> None:
    """Make the engine and build the image in the background, if this machine can (root, the
    engine script present) and the session will run the container tests; otherwise the
    fixture makes them itself, or skips saying why."""
    global _started
    if (JOB_VARIABLE in os.environ or not ENGINE_SCRIPT.exists() or not hasattr(os, "geteuid")
            or os.geteuid() != 0 or not _wanted(args)):
        return
    folder = Path(tempfile.mkdtemp(prefix="bazar-engine-"))
    image = f"bazar-node:test-{uuid.uuid4().hex[:8]}"
    (folder / "image").write_text(image)
    script = (f'echo engine > "{folder}/stage"; bash "{ENGINE_SCRIPT}" || exit $?; '
              f'echo build > "{folder}/stage"; started=$(date +%s.%N); docker build -t "{image}" . || exit $?; '
              f'echo "$started $(date +%s.%N)" > "{folder}/built"')
    with open(folder / "output", "wb") as output:
        ended = f'echo $? > "{folder}/ended"; mv "{folder}/ended" "{folder}/returncode"'  # whole when seen
        job = subprocess.Popen(["bash", "-c", f"({script}); {ended}"], cwd=ROOT,
                               stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                               start_new_session=True)
    (folder / "pid").write_text(str(job.pid))
    os.environ[JOB_VARIABLE] = str(folder)
    _started = folder


def wait(timeout: float = 600.0) -> Prepared | None:
    """The background job's result once it ended (None: none was started); a job still running
    after ``timeout`` s is reported as such, its output so far with it."""
    folder = os.environ.get(JOB_VARIABLE)
    if not folder:
        return None
    job = Path(folder)
    deadline = time.monotonic() + timeout
    while not (job / "returncode").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    output = (job / "output").read_text(errors="replace")
    image = (job / "image").read_text()
    stage = (job / "stage").read_text().strip() if (job / "stage").exists() else "engine"
    if not (job / "returncode").exists():
        return Prepared(None, stage, output + f"\n(still running after {timeout:.0f} s)", image, 0.0)
    code = (job / "returncode").read_text().strip()
    built = (job / "built").read_text().split() if (job / "built").exists() else ["0", "0"]
    return Prepared(int(code) if code.lstrip("-").isdigit() else None, stage, output, image,
                    float(built[1]) - float(built[0]))


def finish() -> None:
    """At the session's end: stop a job still running and remove what it made and no test
    used (the image's tag; its layers stay as build cache), and its folder."""
    global _started
    job, _started = _started, None
    if job is None:
        return
    os.environ.pop(JOB_VARIABLE, None)
    if not (job / "returncode").exists():
        try:
            os.killpg(int((job / "pid").read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    if shutil.which("docker"):
        image = (job / "image").read_text()
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=60).returncode == 0:
            subprocess.run(["docker", "rmi", "--no-prune", image], capture_output=True, timeout=60)
    shutil.rmtree(job, ignore_errors=True)

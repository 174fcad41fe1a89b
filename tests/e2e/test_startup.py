"""Start-up problems name the file and the remedy, in one line, and touch nothing of a running
cluster (issue 25, items 11 and 12)."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nodes.control import clusterfile
from nodes.control.clusterfile import ClusterFileError
from nodes.control.supervisor import ClusterError, Supervisor
from tests.support import make_cluster, start

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)


def test_a_cluster_file_that_is_not_utf8_is_named_with_its_remedy(tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_bytes(b"[cluster]\ncatalogs = 3 # caf\xe9\n")
    with pytest.raises(ClusterFileError, match=r"is not UTF-8 text .*save it as UTF-8"):
        clusterfile.load(path)
    result = subprocess.run([sys.executable, "launcher.py", "--headless", "--cluster", str(path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and str(path) in result.stderr


def test_a_connect_timeout_longer_than_the_whole_exchange_is_refused():
    with pytest.raises(ClusterFileError, match=r"timeouts.catalog.connect_ms \(5000\) must not exceed"):
        clusterfile.parse({"timeouts": {"catalog": {"connect_ms": 5000, "total_ms": 10}}})


def test_a_data_folder_that_cannot_be_made_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ClusterError, match=r"cannot create the data folder .*a-file.*choose another with --data-dir"):
        Supervisor(make_cluster(blocker / "data", catalogs=1, orders=1))


def test_a_database_file_that_is_not_a_database_is_named_with_its_remedy(tmp_path, supervisors):
    (tmp_path / "catalog0.db").write_bytes(b"this is not SQLite\n" * 200)
    supervisor = Supervisor(make_cluster(tmp_path, catalogs=1, orders=1))
    supervisors.append(supervisor)
    supervisor.start_all()
    with pytest.raises(ClusterError) as raised:
        supervisor.wait_ready(timeout=60)
    message = str(raised.value)
    assert "cannot use the database file" in message and str(tmp_path / "catalog0.db") in message
    assert "move it away" in message and "Traceback" not in message


def test_a_second_launcher_on_a_data_folder_in_use_is_refused_before_writing_there(tmp_path, supervisors):
    first = start(make_cluster(tmp_path, catalogs=1, orders=1))
    supervisors.append(first)
    logs = {log: log.read_bytes() for log in (tmp_path / "logs").iterdir()}
    second = Supervisor(make_cluster(tmp_path, catalogs=1, orders=1))
    supervisors.append(second)
    with pytest.raises(ClusterError, match="in use by another running Bazar"):
        second.start_all()
    assert {log: log.read_bytes() for log in (tmp_path / "logs").iterdir()} == logs
    first.close()
    second.start_all()  # free again once the first has stopped
    second.wait_ready(timeout=60)


def attach_text(secret_file: Path) -> str:
    text = (ROOT / "assets" / "compose-attach.toml").read_text(encoding="utf-8")
    return text.replace('secret_file = "~/.bazar.secret"', f'secret_file = "{secret_file}"')


def test_the_compose_attach_file_names_the_engine_project_and_secret(tmp_path):
    import tomllib
    secret = tmp_path / "bazar.secret"
    secret.write_text("0123456789abcdef\n")
    cluster = clusterfile.parse(tomllib.loads(attach_text(secret)))
    assert (cluster.attached, cluster.attach_engine, cluster.attach_project) == (True, "compose", "bazar")
    assert cluster.secret == "0123456789abcdef" and cluster.catalogs == 3 and cluster.orders == 3
    with pytest.raises(ClusterFileError, match=r"attach.secret_file: cannot read .*missing.secret .*BAZAR_SECRET_FILE"):
        clusterfile.parse(tomllib.loads(attach_text(tmp_path / "missing.secret")))
    with pytest.raises(ClusterFileError, match=r'attach.engine must be "compose"'):
        clusterfile.parse(tomllib.loads(attach_text(secret).replace('engine = "compose"', 'engine = "podman"')))
    supervisor = Supervisor(cluster)
    assert supervisor.engine is not None and all(n.by_engine for n in supervisor.nodes.values())
    supervisor.engine.docker = "no-such-engine-command"
    with pytest.raises(ClusterError, match=r"no `no-such-engine-command` command here"):
        supervisor.crash("catalog1")
    supervisor.close()


def test_attach_needs_a_file_with_an_attach_section():
    result = subprocess.run([sys.executable, "launcher.py", "--headless", "--attach", "assets/cluster.toml"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "has no [attach] section" in result.stderr and "compose-attach.toml" in result.stderr, result.stderr


async def test_start_up_progress_is_told_on_the_session_loop_never_on_a_process_thread(tmp_path):
    """The window draws each progress line in its status bar: a widget touched from the
    supervisor's process-reading threads can crash Qt (a window test's worker died of a
    segmentation fault under the full suite, 2026-12-07)."""
    from nodes.session.session import ClusterSession

    session = ClusterSession(make_cluster(tmp_path, catalogs=2, orders=1), announce=lambda _line: None)
    told: list[tuple[str, bool]] = []
    try:
        await session.start(lambda words: told.append((words, threading.current_thread() is threading.main_thread())))
    finally:
        await session.stop()
    assert any("(4/4 up)" in words for words, _main in told), told
    assert all(main for _words, main in told), [words for words, main in told if not main]

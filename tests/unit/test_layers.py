"""Each folder of nodes/ is one layer (docs/architecture.md): a module imports only from its own
layer and the layers below, siblings never import each other, and no two modules import each other,
even only for type checking. import-linter checks the contracts written in pyproject.toml; the
cycle check and a broken-on-purpose graph show that the checks have teeth."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(60)


def _graph() -> grimp.ImportGraph:
    sys.path.insert(0, str(ROOT))
    try:
        return grimp.build_graph("nodes", "gui", cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))


def _cycles(graph: grimp.ImportGraph) -> list[set[str]]:
    """The strongly connected groups of more than one module (Tarjan, iteratively)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & graph.modules) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if position < len(edges[node]):
                work.append((node, position + 1))
                child = edges[node][position]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            for child in edges[node]:
                if child in on_stack:
                    low[node] = min(low[node], low[child])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    return groups


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    command = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    return subprocess.run([sys.executable, "-c", command], cwd=root, capture_output=True, text=True)


def test_the_layer_contracts_in_pyproject_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_two_modules_import_each_other() -> None:
    assert _cycles(_graph()) == []


def test_the_checks_catch_an_upward_import_and_a_cycle() -> None:
    """The same checks on a copy of the graph broken on purpose."""
    graph = _graph()
    graph.add_import(importer="nodes.core.books", imported="nodes.core.messages")  # messages imports books
    assert {"nodes.core.books", "nodes.core.messages"} in _cycles(graph)
    graph.add_import(importer="nodes.core.books", imported="nodes.session.session")
    illegal = graph.find_illegal_dependencies_for_layers(
        layers=("gui", "nodes.session", "nodes.core"), containers=set())
    assert any(d.importer == "nodes.core" and d.imported == "nodes.session" for d in illegal)


def test_the_contracts_in_pyproject_catch_an_upward_import_in_a_copy(tmp_path: Path) -> None:
    """The real contracts, on a copy of the tree with one upward import added (inside a
    function, where a reader would not look for it)."""
    for part in ("nodes", "gui", "pyproject.toml"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / part)
    books = tmp_path / "nodes" / "core" / "books.py"
    books.write_text(books.read_text() + "\n\ndef _upward() -> None:\n    import nodes.session.shop  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0 and "import only downwards BROKEN" in result.stdout, result.stdout[-2000:]


def test_the_protocol_cores_import_only_the_standard_library_and_themselves() -> None:
    """import-linter's contract names the packages nodes/core must not use; this checks the
    other way round: every import there is of the standard library or of nodes.core."""
    allowed = set(sys.stdlib_module_names)
    found = {}
    for path in sorted((ROOT / "nodes" / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                if top not in allowed and not name.startswith("nodes.core") and top != "__future__":
                    found[f"{path.relative_to(ROOT)}:{node.lineno}"] = name
    assert found == {}

"""Each folder of nodes/ is one layer (docs/architecture.md): a module imports only from its own
layer and the layers below, siblings never import each other, and no two modules import each other,
even only for type checking. import-linter checks the contracts written in pyproject.toml; the
cycle check and a broken-on-purpose graph show that the checks have teeth."""
from __future__ import annotations

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


def test_the_layer_contracts_in_pyproject_hold() -> None:
    command = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    result = subprocess.run([sys.executable, "-c", command], cwd=ROOT, capture_output=True, text=True)
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

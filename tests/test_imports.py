"""The package's import structure: every module imports on its own, and no two modules import
each other, directly or through others (imports inside functions count: they are how the
package defers heavy libraries, and a cycle there is still a cycle in the design)."""

from __future__ import annotations

import subprocess
import sys

from tests.code_graph import PACKAGE, ROOT, imported_modules

# Imports each module named on the command line with none of the package loaded before it (the
# third-party libraries stay loaded: they are not what is checked, and torch takes seconds).
IMPORT_EACH = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "benchmark" or m.startswith("benchmark.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=-1).strip().splitlines()[-1])
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def module_names() -> list[str]:
    names = []
    for file in sorted(PACKAGE.rglob("*.py")):
        parts = list(file.relative_to(ROOT).with_suffix("").parts)
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a package stands for its ``__init__``)."""
    names = set(module_names())
    graph = {}
    for name in names:
        file = ROOT.joinpath(*name.split("."))
        file = file / "__init__.py" if file.is_dir() else file.with_suffix(".py")
        graph[name] = {m for m in imported_modules(file) if m in names and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_imports_on_its_own() -> None:
    names = module_names()
    assert "benchmark.loop" in names and "benchmark.vlm.clip" in names
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself: a graph with a loop through three modules is reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_layers_point_down() -> None:
    """The simulator, the sample and the agents never import a VLM or the report; the VLMs never
    import the loop, the CLI or the report."""
    graph = import_graph()
    for low in ("benchmark.sim", "benchmark.samples", "benchmark.sampling", "benchmark.agents"):
        for name in [n for n in graph if n == low or n.startswith(low + ".")]:
            assert not {
                m for m in graph[name] if m.startswith(("benchmark.vlm", "benchmark.report"))
            }, name
    for name in [n for n in graph if n.startswith("benchmark.vlm")]:
        up = {"benchmark.loop", "benchmark.cli", "benchmark.report", "benchmark.bench"}
        assert not {m for m in graph[name] if m in up or m.startswith("benchmark.report.")}, name

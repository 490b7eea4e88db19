"""No import cycles between rftbench's modules, deferred (function-level) imports included; each module imports alone."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rftbench

ROOT = Path(rftbench.__file__).parent


def modules() -> dict[str, Path]:
    """Every module of the ``rftbench`` package, by dotted name (packages by their ``__init__``)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ["rftbench", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(child) for child in ast.walk(node))
    return skip


def import_graph(known: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module → the rftbench modules it imports anywhere in its code (not under ``if TYPE_CHECKING``)."""
    known = known or modules()

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_nodes(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.split(".")[0] == "rftbench")
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "rftbench":
                    continue
                for alias in node.names:  # `from . import masking` imports the module rftbench.evaluation.masking
                    targets.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
        graph[name] = {t for t in (owner(t) for t in targets) if t is not None and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_walk_sees_a_cycle_through_a_deferred_import(tmp_path):
    pkg = tmp_path / "rftbench"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "a.py").write_text("from .sub.b import f\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import g  # deferred\n\nfrom typing import TYPE_CHECKING\n"
                                      "if TYPE_CHECKING:\n    from rftbench import c\n")
    (pkg / "c.py").write_text("import rftbench.a\n")
    known = {"rftbench": pkg / "__init__.py", "rftbench.a": pkg / "a.py", "rftbench.sub": pkg / "sub" / "__init__.py",
             "rftbench.sub.b": pkg / "sub" / "b.py", "rftbench.c": pkg / "c.py"}
    graph = import_graph(known)
    assert graph["rftbench.sub"] == {"rftbench.sub.b"} and graph["rftbench.c"] == {"rftbench.a"}
    assert graph["rftbench.sub.b"] == {"rftbench.a"}  # the TYPE_CHECKING import is not an edge
    assert cycles(graph) == [["rftbench.a", "rftbench.sub.b"]]


def test_rftbench_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles (deferred imports count): " + "; ".join(" <-> ".join(c) for c in found)


@pytest.mark.slow
def test_every_module_imports_on_its_own():
    """Each module imported first, in one fresh interpreter with every rftbench module forgotten before each."""
    names = sorted(n for n in modules() if not n.endswith("__main__"))  # __main__ runs the CLI
    code = (
        "import importlib, sys\n"
        f"names = {names!r}\n"
        "bad = []\n"
        "for name in names:\n"
        "    for loaded in [m for m in sys.modules if m == 'rftbench' or m.startswith('rftbench.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as err:\n"
        "        bad.append(f'{name}: {type(err).__name__}: {err}')\n"
        "print('\\n'.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]

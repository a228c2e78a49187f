"""The structure of ``loop/``: no import cycle, no action at a distance.

Every module of ``loop/`` is parsed with :mod:`ast`; every import is an edge, including imports
inside functions (a function-level import is still a dependency). Left out: imports under
``if TYPE_CHECKING:`` (for mypy only, never run) and under ``if __name__ == "__main__":`` (a
``python -m`` entry point runs as ``__main__``, a module of its own, so nothing imports it).

Importing ``a.b.c`` first runs the packages ``a`` and ``a.b`` (their ``__init__``), so an edge to
a module is also an edge to each package above it: ``loop.scripts`` -> ``loop.store.commands``
once closed a cycle through ``loop/store/__init__.py`` (``import loop.scripts`` failed; the
commands now live in ``loop/redis_commands.py``). The subprocess test below checks the same thing
by running it: every module imported first, alone.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "loop"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _not_run_on_import(node: ast.If) -> bool:
    """``if TYPE_CHECKING:`` or ``if __name__ == "__main__":``: imports no importer runs."""
    test = node.test
    if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__":
        return any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, package: str, modules: set[str]) -> set[str]:
    """The ``loop`` modules ``tree`` imports (resolved to the closest existing module)."""
    found: set[str] = set()

    def resolve(name: str) -> None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _not_run_on_import(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                resolve(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            for alias in node.names:
                resolve(f"{prefix}.{alias.name}")  # ``from pkg import module`` imports the module
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = _imports(ast.parse(path.read_text(), str(path)), package, modules)
        graph[name] = _with_packages(name, deps)
    return graph


def _with_packages(name: str, deps: set[str]) -> set[str]:
    """``name``'s edges: ``deps`` and the packages above them, but ``name`` and its own packages."""
    return (deps | {p for d in deps for p in _packages_above(d) if not _is_ancestor(p, name)}) - {name}


def _packages_above(name: str) -> list[str]:
    """The packages importing ``name`` runs first: ``a.b.c`` -> ``["a.b", "a"]``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def _is_ancestor(package: str, name: str) -> bool:
    """``package`` is above ``name``: Python ran (or is running) its ``__init__`` before ``name``.

    So the implicit import of a module's own package, by importing a sibling, never fails: the
    package is in ``sys.modules`` already, whole or part-way through its ``__init__`` (which then
    imported this module), and nothing is read from it. Such edges are left out, else every
    package whose ``__init__`` imports a submodule would be a cycle. An explicit import of the
    package's own names (``from loop.store import RedisStore`` inside ``loop.store``) does read
    it and stays an edge: it fails when the ``__init__`` leads back here.
    """
    return name.startswith(package + ".")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = dfs(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = dfs(node)
            if cycle:
                return cycle
    return None


def test_the_import_graph_of_loop_has_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_reports_a_cycle_it_is_given() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_function_level_and_relative_imports_are_edges() -> None:
    tree = ast.parse("def f():\n    from . import x\n    import loop.y.z\n"
                     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import loop.w\n"
                     "if __name__ == '__main__':\n    import loop.w\n")
    assert _imports(tree, "loop", {"loop", "loop.x", "loop.y", "loop.w"}) == {"loop.x", "loop.y"}


def test_an_edge_to_a_module_is_an_edge_to_the_packages_above_it_but_its_own() -> None:
    assert _packages_above("loop.store.commands") == ["loop.store", "loop"]
    assert _is_ancestor("loop.store", "loop.store.base") and not _is_ancestor("loop.store", "loop.scripts")
    assert not _is_ancestor("loop.st", "loop.store.base")
    # The cycle the old graph missed: loop.scripts -> loop.store.commands runs loop/store/__init__.py.
    graph = {"loop": set(), "loop.scripts": {"loop.store.commands"}, "loop.store": {"loop.store.base"},
             "loop.store.base": {"loop.scripts"}, "loop.store.commands": set()}
    expanded = {name: _with_packages(name, deps) for name, deps in graph.items()}
    assert expanded["loop.store"] == {"loop.store.base"}  # not itself nor ``loop``
    assert find_cycle(expanded) == ["loop.scripts", "loop.store", "loop.store.base", "loop.scripts"]


def _import_alone(module: str) -> str | None:
    """``import module`` in a fresh interpreter: ``None``, or the last line of its error."""
    run = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    return None if run.returncode == 0 else f"{module}: {(run.stderr.strip().splitlines() or ['?'])[-1]}"


def test_every_module_of_loop_imports_first_and_alone() -> None:
    """The graph above is a model; this runs it. A fresh interpreter per module, since any earlier
    import in the same process could initialise a package and hide the failure (one at a time
    takes ~13 s, in parallel a few)."""
    modules = sorted(module_name(p) for p in PACKAGE.rglob("*.py"))
    with ThreadPoolExecutor(max_workers=8) as pool:
        failures = [f for f in pool.map(_import_alone, modules) if f]
    assert failures == []


#: Action at a distance the composition root replaced: context variables, and subsystems
#: attached to (or probed on) the store at run time.
FORBIDDEN = re.compile(r"ContextVar|setattr\(store\b|getattr\(store\b|getattr\(self\.s\b|hasattr\(store\b")


def test_no_context_variable_nor_subsystem_probed_on_the_store() -> None:
    offenders = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
                 for folder in ("loop", "api") for p in sorted((ROOT / folder).rglob("*.py"))
                 for n, line in enumerate(p.read_text().splitlines(), 1) if FORBIDDEN.search(line)]
    assert offenders == []

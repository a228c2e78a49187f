"""The structure of ``loop/``: no import cycle, no action at a distance.

Every module of ``loop/`` is parsed with :mod:`ast`; every import is an edge, including imports
inside functions (a function-level import is still a dependency). Left out: imports under
``if TYPE_CHECKING:`` (for mypy only, never run) and under ``if __name__ == "__main__":`` (a
``python -m`` entry point runs as ``__main__``, a module of its own, so nothing imports it).
"""

from __future__ import annotations

import ast
import re
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
        # A module imports its parent packages implicitly; those edges are not design choices.
        graph[name] = {d for d in deps if d != name and not name.startswith(d + ".")}
    return graph


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


#: Action at a distance the composition root replaced: context variables, and subsystems
#: attached to (or probed on) the store at run time.
FORBIDDEN = re.compile(r"ContextVar|setattr\(store\b|getattr\(store\b|getattr\(self\.s\b|hasattr\(store\b")


def test_no_context_variable_nor_subsystem_probed_on_the_store() -> None:
    offenders = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
                 for folder in ("loop", "api") for p in sorted((ROOT / folder).rglob("*.py"))
                 for n, line in enumerate(p.read_text().splitlines(), 1) if FORBIDDEN.search(line)]
    assert offenders == []

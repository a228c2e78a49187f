"""The Redis client, pipelines and stores are typed in loop/, api/ and workers/ (issue 11).

``pipe: Any``, ``r: Any``, ``store: Any``, ``client: Any`` (and ``self.r: Any``) would let mypy
pass without checking a single Redis call. Parsed with :mod:`ast`; a remaining ``Any`` must say
why in a comment on its line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = {"pipe", "r", "store", "client"}


def _is_any(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Name) and node.id == "Any"


def untyped_redis(root: Path = ROOT) -> list[str]:
    """``path:line`` of every ``Any`` annotation of a Redis client, pipeline or store, without a comment."""
    found: list[str] = []
    for path in sorted(p for pkg in ("loop", "api", "workers") for p in (root / pkg).rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            named: list[tuple[str, ast.expr | None, int]] = []
            if isinstance(node, ast.arg):
                named.append((node.arg, node.annotation, node.lineno))
            elif isinstance(node, ast.AnnAssign):
                target = node.target
                name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
                named.append((name, node.annotation, node.lineno))
            for name, annotation, lineno in named:
                if name in NAMES and _is_any(annotation) and "#" not in lines[lineno - 1]:
                    found.append(f"{path.relative_to(root)}:{lineno}")
    return found


def test_no_redis_client_pipeline_or_store_is_annotated_any_without_a_reason() -> None:
    assert untyped_redis() == []


def test_the_check_finds_an_any_typed_pipe_and_accepts_one_with_a_reason(tmp_path: Path) -> None:
    for pkg in ("loop", "api", "workers"):
        (tmp_path / pkg).mkdir()
    (tmp_path / "loop" / "a.py").write_text("def f(pipe: Any) -> None: ...\nclass S:\n    def __init__(self) -> None:\n"
                                            "        self.r: Any = 1\n")
    (tmp_path / "workers" / "b.py").write_text("pipe: Any  # RQ's binary connection\n")
    assert untyped_redis(tmp_path) == ["loop/a.py:1", "loop/a.py:4"]

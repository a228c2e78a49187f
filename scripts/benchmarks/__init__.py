"""Benchmark scenarios for ``scripts/bench.py``.

Each module here except :mod:`harness` is a scenario: it has a docstring (first line = summary)
and ``run(bench: harness.Bench) -> None``. ``python scripts/bench.py --list`` shows them;
``--scenario NAME`` runs one (repeatable). Add a scenario by adding a module; nothing to register.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

NOT_SCENARIOS = frozenset({"harness"})


def names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__)
                  if m.name not in NOT_SCENARIOS and not m.name.startswith("_"))


def load(name: str) -> ModuleType:
    if name not in names():
        raise SystemExit(f"unknown scenario {name!r}; available: {', '.join(names())}")
    module = importlib.import_module(f"{__name__}.{name}")
    if not callable(getattr(module, "run", None)):
        raise SystemExit(f"scenario {name!r} has no run(bench) function")
    return module


def summary(module: ModuleType) -> str:
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""

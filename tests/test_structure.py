"""Issue 11 (part C): thin resources, tunables in one documented module, no dead or doubled code."""

from __future__ import annotations

import ast
import pathlib

from loop import tunables
from loop.clock import FrozenClock
from loop.store import RedisStore
from loop.store.dashboard import DashboardService

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: Numeric module constants allowed outside loop/tunables.py, each for a stated reason.
NOT_TUNABLES = {
    "loop/keys.py": {"ID_WIDTH"},  # the key layout's id width
    "loop/ids.py": {"_SPACE"},  # arithmetic of the id alphabet
    "loop/settings.py": {"DEFAULT_PORT", "DEFAULT_MAX_BODY_BYTES", "DAY", "MAX_RETENTION_SECONDS",
                         "DEFAULT_WEBHOOK_MAX_BODY_BYTES"},  # environment settings and their bounds
    "workers/recovery.py": {"SCHEDULER_TICK_SECONDS", "SCHEDULER_LOCK_SECONDS", "JOB_HEARTBEAT_SECONDS",
                            "RECONNECT_BASE_SECONDS"},  # read with LOOP_WORKER_* overrides at start
    "loop/devserver.py": {"GRACE_SECONDS", "MAX_SOCKET_PATH"},  # the dev launcher's, and the OS's
    # Wire-contract input limits and domain rules (documented with the contract, not tuned).
    "loop/runner.py": {"MAX_REASON", "MAX_SUMMARY"},
    "loop/schema.py": {"MAX_JSON_DEPTH", "MAX_OFFSET", "MAX_TIMESTAMP_MS"},
    "loop/store/signals.py": {"MAX_TITLE"},
    "loop/models.py": {"LEGACY_MAX_PIECES"},  # the layout older Loops wrote, read back as is
    "loop/prompts/payload.py": {"MAX_DEPTH", "MAX_BYTES", "MAX_STRING"},
    "loop/prompts/fields.py": {"DEFAULT_SPECIFICITY", "EWMA_ALPHA", "SCORE_THRESHOLD", "COUNT_THRESHOLD",
                               "MIN_SAMPLES"},
    "loop/dispatch/scoring.py": {"DAY_MS", "DEFAULT_PRIORITY_WEIGHT", "GOAL_BONUS"},
    "loop/client/resources.py": {"DEFAULT_PAGE_SIZE"},  # the SDK's, a separate distribution
    "loop/store/dashboard.py": {"DAY_MS"},  # the contract's "last 24 h"
}


def _numeric_constants(path: pathlib.Path) -> set[str]:
    """Module-level UPPER_CASE names bound to a number (or arithmetic of numbers and names)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            constants = [n for n in ast.walk(value) if isinstance(n, ast.Constant)]
            numeric = bool(constants) and all(isinstance(n, ast.Constant) and isinstance(n.value, int | float)
                          and not isinstance(n.value, bool)
                          for n in constants)
            shape = isinstance(value, ast.Constant | ast.BinOp | ast.UnaryOp)
            for t in targets:
                if isinstance(t, ast.Name) and t.id.lstrip("_").isupper() and numeric and shape:
                    found.add(t.id)
    return found


def test_every_numeric_tunable_is_defined_in_loop_tunables_only() -> None:
    strays = {}
    for pkg in ("loop", "api", "workers"):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "loop/tunables.py":
                continue
            extra = _numeric_constants(path) - NOT_TUNABLES.get(rel, set())
            if extra:
                strays[rel] = sorted(extra)
    assert strays == {}


def test_every_tunable_has_a_comment_saying_what_it_bounds() -> None:
    lines = (ROOT / "loop/tunables.py").read_text().splitlines()
    names = _numeric_constants(ROOT / "loop/tunables.py")
    undocumented = [name for name in names
                    if not any(line.startswith(f"{name} =") and i > 0 and lines[i - 1].startswith("#:")
                               for i, line in enumerate(lines))]
    assert names and undocumented == []


def test_the_old_module_names_of_moved_tunables_are_the_tunables() -> None:
    from loop.dispatch import claim, service
    from loop.prompts import context
    from workers import leases, retention

    assert (claim.CANDIDATES, claim.MAX_ATTEMPTS, service.CLAIM_SWEEP, context.FAMILY_LIMIT) == (
        tunables.CLAIM_CANDIDATES, tunables.CLAIM_MAX_ATTEMPTS, tunables.CLAIM_SWEEP, tunables.FAMILY_LIMIT)
    assert (leases.LEASE_SWEEP_SECONDS, retention.RETENTION_SWEEP_SECONDS) == (
        tunables.LEASE_SWEEP_SECONDS, tunables.RETENTION_SWEEP_SECONDS)


def test_the_dashboard_service_counts_from_a_bare_store_without_the_api(store: RedisStore) -> None:
    clock = store.clock
    assert isinstance(clock, FrozenClock)
    done = store.issues.create({"title": "done", "type": "task", "status": "done"})
    todo = store.issues.create({"title": "todo", "type": "plan", "status": "todo"})
    service = DashboardService(store)
    stats = service.stats()
    assert stats["issues"] == {"total": 2, "byStatus": {"done": 1, "todo": 1}, "byType": {"task": 1, "plan": 1}}
    assert stats["dispatch"]["completedLast24h"] == 1
    clock.advance(24 * 3600 + 1)  # the completion falls out of the last 24 h
    assert service.stats()["dispatch"]["completedLast24h"] == 0
    assert {chain["root"]["id"] for chain in service.activity(5)} == {done["id"], todo["id"]}


def test_production_code_reads_no_test_environment_variable() -> None:
    readers = [path.relative_to(ROOT).as_posix() for pkg in ("loop", "api", "workers")
               for path in (ROOT / pkg).rglob("*.py") if "LOOP_TEST_" in path.read_text()]
    assert readers == []


def test_dead_symbols_are_gone_and_secrets_are_digested_by_one_function() -> None:
    from api import http, middleware, openapi
    from loop import ids, keys
    from loop.dispatch import claim, goals, sessions
    from loop.store import apikeys, signals

    dead = [(module.__name__, name) for module, name in [
        (keys, "TMP_KEY_TTL_SECONDS"), (middleware, "json_error"), (http, "Handler"), (openapi, "EXTRA_ENTITIES"),
        (signals.Signals, "recorded"), (goals.GoalBonus, "bonus"), (claim, "new_session_id")]
        if hasattr(module, name)]
    assert dead == []
    assert sessions.token_digest is apikeys.digest is ids.token_digest

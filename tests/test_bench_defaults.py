"""``scripts/bench.py`` writes only where it is told to: a private redis-server unless ``--redis-url``."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"
PRIVATE = "redis://private.invalid:1/0"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("loop_bench_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    @contextlib.contextmanager
    def fake_private(binary: str | None = None, *config: str) -> Iterator[str]:
        yield PRIVATE

    monkeypatch.setattr(module, "private_redis", fake_private)
    monkeypatch.setattr(module, "redis_binaries", lambda: ["redis-server"])
    return module


def test_by_default_the_benchmark_uses_a_private_redis_even_when_redis_url_and_a_local_redis_answer(
        bench, redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)  # a live Redis, as on a developer's machine
    with bench.choose_redis(None, False) as url:
        assert url == PRIVATE


def test_an_explicit_redis_url_is_used_and_private_redis_wins_over_it(bench, redis_url):
    with bench.choose_redis(redis_url, False) as url:
        assert url == redis_url
    with bench.choose_redis(redis_url, True) as url:
        assert url == PRIVATE


def test_an_explicit_redis_url_that_does_not_answer_stops_the_run(bench):
    with pytest.raises(SystemExit, match="does not answer"), bench.choose_redis("redis://127.0.0.1:1/0", False):
        pass

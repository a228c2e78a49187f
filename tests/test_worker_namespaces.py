"""Issue 18: a worker pool serving several namespaces (LOOP_NAMESPACES=a,b,c) runs its periodic
jobs (lease sweeps, retention, the outbox relay) for each of them."""

from __future__ import annotations

import threading

import pytest

from loop.errors import ConfigError
from loop.settings import Settings
from workers import runner


def test_loop_namespaces_lists_the_served_namespaces_once_each() -> None:
    settings = Settings.from_env({"LOOP_API_KEY": "k", "LOOP_NAMESPACES": "a, b,a,c"})
    assert settings.served_namespaces == ("a", "b", "c")
    assert Settings.from_env({"LOOP_API_KEY": "k", "LOOP_NAMESPACE": "solo"}).served_namespaces == ("solo",)


def test_a_bad_namespace_in_loop_namespaces_stops_the_start_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="LOOP_NAMESPACES.*'b{x}'"):
        Settings.from_env({"LOOP_API_KEY": "k", "LOOP_NAMESPACES": "a,b{x}"})


def test_every_periodic_job_runs_for_every_namespace_and_one_failing_skips_no_other(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    done = threading.Event()

    def job(settings: Settings) -> None:
        seen.append(settings.namespace)
        if settings.namespace == "a":
            raise RuntimeError("namespace a is broken")
        if settings.namespace == "c":
            done.set()

    monkeypatch.setattr(runner, "PERIODIC", [(0.01, job)])
    stop = threading.Event()
    runner.start_periodic(Settings(namespace="a", namespaces=("a", "b", "c")), stop)
    assert done.wait(5)
    stop.set()
    assert seen[:3] == ["a", "b", "c"]

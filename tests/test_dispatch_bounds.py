"""Bounded claims (issue 10.15): a claim gives up by wall time, not after ~20 s of retries, and
sweeps only a handful of expired leases itself (bulk sweeping is the worker's)."""

from __future__ import annotations

from typing import Any

import pytest

from loop.dispatch import claim as claim_mod
from loop.dispatch import service as service_mod


class TickingClock:
    """Moves 100 ms every time it is read (a claim that loses every race, as seen by the clock)."""

    def __init__(self, start: int) -> None:
        self.ms = start

    def now_ms(self) -> int:
        self.ms += 100
        return self.ms


class Replaced:
    """``store.scripts`` with one script swapped for a fake."""

    def __init__(self, real: Any, name: str, fake: Any) -> None:
        self.real, self.name, self.fake = real, name, fake

    def __getitem__(self, name: str) -> Any:
        return self.fake if name == self.name else self.real[name]


@pytest.fixture
def render_prompts() -> bool:
    return False  # these tests claim without a prompt (dispatch renders none)


def _todo(client, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        r = client.post("/api/issues", json={"title": f"t{i}", "type": "task", "status": "todo"})
        assert r.status_code == 201, r.text
        out.append(r.json["data"])
    return out


def test_a_claim_that_keeps_losing_gives_up_with_a_409_once_its_time_budget_is_spent(
        client, store, monkeypatch) -> None:
    _todo(client, 2)
    monkeypatch.setattr(claim_mod, "BACKOFF_UNIT", 0.0)  # no real sleeping: the clock is what counts
    monkeypatch.setattr(store, "clock", TickingClock(store.now()))
    calls = []

    def always_beaten(keys: list[str], args: list[Any]) -> list[str]:
        calls.append(1)
        assert len(calls) < 60, "the claim kept retrying past its time budget"
        return ["retry", "nosuchissue000000000000|"]  # someone else's issue is always the new head

    monkeypatch.setattr(store, "scripts", Replaced(store.scripts, claim_mod.CLAIM_SCRIPT, always_beaten))
    r = client.get("/api/dispatch/next")
    assert r.status_code == 409, r.text
    assert "contended" in r.json["error"] and "2000 ms" in r.json["error"]
    # 2000 ms at 100-300 ms of clock per attempt: a handful of script calls, not 200
    assert 3 <= len(calls) <= 25


def test_the_claim_time_budget_is_a_setting_read_from_the_environment() -> None:
    from loop.errors import ConfigError
    from loop.settings import Settings

    env = {"LOOP_API_KEY": "k"}
    assert Settings.from_env(env).claim_timeout_ms == 2000
    assert Settings.from_env({**env, "LOOP_CLAIM_TIMEOUT_MS": "500"}).claim_timeout_ms == 500
    with pytest.raises(ConfigError, match="LOOP_CLAIM_TIMEOUT_MS"):
        Settings.from_env({**env, "LOOP_CLAIM_TIMEOUT_MS": "0"})


def test_a_claim_that_finds_expired_leases_sweeps_only_a_handful_and_leaves_the_rest_to_the_worker(
        client, store, clock) -> None:
    issues = _todo(client, 30)
    for _ in issues:
        assert client.get("/api/dispatch/next").status_code == 200
    clock.advance(store.settings.lease_seconds + 1)
    due = store.r.zcard(store.keys.dispatch_leases())
    assert due == 30
    r = client.get("/api/dispatch/next")
    assert r.status_code == 200, r.text
    left = store.r.zcount(store.keys.dispatch_leases(), "-inf", store.now())
    assert 1 <= 30 - left <= 10  # the claim swept a handful (then claimed one of them)
    assert 30 - left == service_mod.CLAIM_SWEEP
    assert store.dispatch.expire_due() == left  # the worker's sweep takes the rest


def test_a_claim_made_while_another_is_in_flight_starts_from_the_shared_head_without_reading_the_set(
        client, store, monkeypatch) -> None:
    _todo(client, 12)
    assert store.dispatch.claim("a") is not None  # remembers the head of the ready set
    real = store.scripts[claim_mod.CLAIM_SCRIPT]
    reads: list[Any] = []
    nested: list[Any] = []
    real_zrevrange = store.r.zrevrange

    def counting(*args: Any, **kw: Any) -> Any:
        reads.append(args)
        return real_zrevrange(*args, **kw)

    def in_flight(keys: list[str], args: list[Any]) -> Any:
        if not nested:  # another thread of the process claims while this claim is in flight
            nested.append(None)
            nested[0] = store.dispatch.claimer.claim("b", None)
        return real(keys=keys, args=args)

    monkeypatch.setattr(store.r, "zrevrange", counting)
    monkeypatch.setattr(store, "scripts", Replaced(store.scripts, claim_mod.CLAIM_SCRIPT, in_flight))
    outer = store.dispatch.claimer.claim("a", None)
    assert reads == []
    assert outer is not None and nested[0] is not None
    assert outer.issue["id"] != nested[0].issue["id"]

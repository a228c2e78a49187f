"""The composition root builds the whole graph, wires the hooks in order and says what it leaves out."""

from __future__ import annotations

import pytest
import redis

from loop.clock import FrozenClock
from loop.dispatch import DispatchIssueHook
from loop.runtime import Loop, build
from loop.settings import Settings
from loop.store.daystats import DayStatsHook
from loop.store.outcomes import OutcomeHook
from loop.store.signals import AlreadyRecorded
from loop.store.types import WriteIntent


def test_build_gives_every_subsystem_as_a_typed_attribute_and_the_guard_hook_runs_first(
        redis_client: redis.Redis, settings: Settings) -> None:
    graph = build(redis_client, settings, FrozenClock())
    assert isinstance(graph, Loop)
    assert graph.dispatch.prompts is graph.prompts and graph.prompts.dispatch is True
    assert graph.issue_hooks[0] is graph.signals.guard_hook  # its WATCH precedes every other read
    assert [type(h) for h in graph.issue_hooks[1:]] == [DispatchIssueHook, DayStatsHook, OutcomeHook]
    assert len(graph.audits) == 1  # dispatch's keys are audited by loop admin check/repair


def test_a_graph_built_without_prompts_claims_without_rendering_but_keeps_the_engine(
        store: Loop, redis_client: redis.Redis, settings: Settings) -> None:
    graph = build(redis_client, settings, FrozenClock(), prompts=False)
    assert graph.dispatch.prompts is None and graph.prompts is not None
    graph.issues.create({"title": "t", "status": "todo"})
    body = graph.dispatch.next("agent")
    assert body is not None and body["prompt"] is None and body["meta"] is None


def test_a_guard_handed_to_an_issue_create_as_intent_makes_it_at_most_once(store: Loop) -> None:
    guard = store.keys.signal_done("github", "d1")
    store.r.set(guard, "earlier-signal")
    before = store.issues.list({}, 10, 0)[1]
    with pytest.raises(AlreadyRecorded) as refused:  # an earlier run recorded the delivery
        store.issues.create({"title": "dup"}, intent=WriteIntent(guard=guard))
    assert refused.value.signal_id == "earlier-signal"
    assert store.issues.list({}, 10, 0)[1] == before
    store.issues.create({"title": "plain"})  # no intent: no guard, the hook stays out of the way
    assert store.issues.list({}, 10, 0)[1] == before + 1

"""Usage counting at dispatch: one use per rendered prompt, counted on the version that was
rendered, after rendering, in one command (``steps.lua``: what a MULTI would write) with dispatch's
record of the claim's version."""

from __future__ import annotations

from typing import Any

import pytest

from loop.dispatch.service import RenderFailed
from loop.dispatch.sessions import VERSION_COUNTERS
from loop.errors import PromptRenderError
from loop.scripts import STEPS_SCRIPT
from loop.store import RedisStore
from tests.redis_server import monitored

DEFAULT_TASK = "ver_default_task_execution_v1"


def usage(store: RedisStore, version_id: str) -> int:
    return int(store.prompts.versions.get(version_id)["usageCount"])


def render(store: RedisStore, issue_id: str) -> dict[str, Any] | None:
    _, meta = store.prompts.render_for_dispatch(store.issues.get(issue_id))
    return meta


def template(store: RedisStore, slug: str, conditions: dict[str, Any], content: str = "x") -> str:
    t = store.prompts.templates.create({"slug": slug, "name": slug, "conditions": conditions, "specificity": 50})
    return str(store.prompts.versions.create(t["id"], {"content": content, "authorType": "human",
                                                       "authorName": "h"})["id"])


def scripts_and_writes(store: RedisStore, lines: list[dict[str, Any]]) -> list[str]:
    """The scripts the client sent (by name), any MULTI/EXEC, and the writes ``steps.lua`` ran, in order."""
    names = {store.scripts[n].sha: n for n in ("prompt_context", "prompt_rows", STEPS_SCRIPT, "dispatch_claim")}
    out: list[str] = []
    for line in lines:
        words = line["command"].split()
        if line.get("client_type") != "lua":
            if words[0].upper() == "EVALSHA":
                out.append(names.get(words[1], "EVALSHA"))
            elif words[0].upper() in ("MULTI", "EXEC"):
                out.append(words[0].upper())
        elif out and out[-1] in (STEPS_SCRIPT, "HINCRBY", "HSET") and words[0].upper() in ("HINCRBY", "HSET"):
            out.append(words[0].upper())
    return out


def test_each_render_counts_one_use_in_one_command_after_the_context_is_read(private_store: RedisStore) -> None:
    store = private_store
    i = store.issues.create({"title": "t", "type": "task"})
    render(store, i["id"])  # warms the catalog
    lines = monitored(store.r, lambda: [render(store, i["id"]) for _ in range(3)])
    assert scripts_and_writes(store, lines) == ["prompt_context", "prompt_rows", STEPS_SCRIPT, "HINCRBY"] * 3
    assert usage(store, DEFAULT_TASK) == 4


def test_a_template_added_after_the_catalog_was_cached_gets_the_count(store: RedisStore) -> None:
    i = store.issues.create({"title": "t", "type": "task"})
    render(store, i["id"])
    newer = template(store, "newer", {"type": "task"})
    meta = render(store, i["id"])
    assert meta is not None and meta["versionId"] == newer
    assert (usage(store, newer), usage(store, DEFAULT_TASK)) == (1, 1)


def test_a_label_conditioned_template_is_counted_on_the_version_actually_rendered(store: RedisStore) -> None:
    labelled = template(store, "urgent-tasks", {"type": "task", "labels": ["urgent"]})
    label = store.labels.ensure("urgent", "#ff0000")
    plain = store.issues.create({"title": "plain", "type": "task"})
    hot = store.issues.create({"title": "hot", "type": "task", "labelIds": [label["id"]]})
    for _ in range(2):
        assert (render(store, hot["id"]) or {})["versionId"] == labelled
        assert (render(store, plain["id"]) or {})["versionId"] == DEFAULT_TASK
    assert (usage(store, labelled), usage(store, DEFAULT_TASK)) == (2, 2)


def test_a_retry_template_is_counted_once_the_sessions_show_a_failed_attempt(store: RedisStore) -> None:
    retry = template(store, "retry", {"type": "task", "hasFailedSessions": True})
    i = store.issues.create({"title": "t", "type": "task", "status": "todo"})
    claim = store.dispatch.claim("a")
    assert claim is not None
    assert (render(store, i["id"]) or {})["versionId"] == DEFAULT_TASK
    store.dispatch.release(claim.session_id, "a", None, "stuck")
    for _ in range(2):
        assert (render(store, i["id"]) or {})["versionId"] == retry
    assert (usage(store, retry), usage(store, DEFAULT_TASK)) == (2, 1)


def test_a_version_that_fails_to_render_is_not_counted(store: RedisStore) -> None:
    i = store.issues.create({"title": "t", "type": "task"})
    render(store, i["id"])
    broken = template(store, "broken", {"type": "task"})
    # Content written around the API's validation (an old or hand-edited row).
    store.r.hset(store.keys.row("prompt_version", broken), "content", "{{> no_such_partial}}")
    for _ in range(2):
        with pytest.raises(PromptRenderError):
            render(store, i["id"])
    assert (usage(store, broken), usage(store, DEFAULT_TASK)) == (0, 1)


def session_version(store: RedisStore, session_id: str) -> str | None:
    return store.r.hget(store.keys.session(session_id), "versionId")


def dispatched(store: RedisStore, version_id: str) -> int:
    return store.dispatch.version_stats(version_id)["dispatched"]


def test_a_claim_records_its_version_in_the_command_that_counts_the_use(private_store: RedisStore) -> None:
    store = private_store
    for n in range(3):
        store.issues.create({"title": f"t{n}", "type": "task", "status": "todo"})
    first = store.dispatch.next("a")  # cold catalog
    assert first is not None
    claims: list[Any] = []
    lines = monitored(store.r, lambda: claims.extend(store.dispatch.next("a") for _ in range(2)))
    # The claim and the context are scripts; then one command per claim: usage, the session's version, dispatched.
    assert scripts_and_writes(store, lines) == ["dispatch_claim", "prompt_context", "prompt_rows", STEPS_SCRIPT,
                                                "HINCRBY", "HSET", "HINCRBY"] * 2
    for body in (first, *claims):
        assert body is not None and body["meta"]["versionId"] == DEFAULT_TASK
        assert session_version(store, body["claim"]["sessionId"]) == DEFAULT_TASK
    assert dispatched(store, DEFAULT_TASK) == 3 and usage(store, DEFAULT_TASK) == 3


def test_a_label_conditioned_claim_records_the_version_actually_rendered(store: RedisStore) -> None:
    labelled = template(store, "urgent-tasks", {"type": "task", "labels": ["urgent"]})
    label = store.labels.ensure("urgent", "#ff0000")
    store.issues.create({"title": "plain", "type": "task", "status": "todo", "priority": 2})
    store.issues.create({"title": "hot", "type": "task", "status": "todo", "priority": 1, "labelIds": [label["id"]]})
    hot, plain = store.dispatch.next("a"), store.dispatch.next("a")
    assert hot is not None and plain is not None
    assert session_version(store, hot["claim"]["sessionId"]) == hot["meta"]["versionId"] == labelled
    assert session_version(store, plain["claim"]["sessionId"]) == plain["meta"]["versionId"] == DEFAULT_TASK
    assert (dispatched(store, labelled), dispatched(store, DEFAULT_TASK)) == (1, 1)


def test_a_claim_whose_prompt_fails_to_render_records_nothing(store: RedisStore) -> None:
    store.issues.create({"title": "warm", "type": "task", "status": "todo"})
    assert store.dispatch.next("a") is not None  # warms the catalog: the next claim counts in advance
    broken = template(store, "broken", {"type": "task"})
    store.r.hset(store.keys.row("prompt_version", broken), "content", "{{> no_such_partial}}")
    i = store.issues.create({"title": "t", "type": "task", "status": "todo"})
    for _ in range(2):  # the second time, the catalog with the broken version is the cached one
        with pytest.raises(RenderFailed):
            store.dispatch.next("a")
    sessions = store.dispatch.sessions_for_issue(i["id"])
    assert [s["status"] for s in sessions] == ["released", "released"]  # render failures are no strikes (issue 10.8)
    assert [s["versionId"] for s in sessions] == [None, None]
    assert store.dispatch.version_stats(broken) == dict.fromkeys(VERSION_COUNTERS, 0)
    assert usage(store, broken) == 0

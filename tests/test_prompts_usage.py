"""Usage counting at dispatch: one use per rendered prompt, counted on the version that was
rendered, even though the count normally rides on the context read (``prompt_context.lua``)."""

from __future__ import annotations

from typing import Any

import pytest

from loop.errors import PromptRenderError
from loop.store import RedisStore

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


def test_with_a_warm_catalog_the_use_is_counted_by_the_context_read_alone(
        store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    i = store.issues.create({"title": "t", "type": "task"})
    render(store, i["id"])  # warms the catalog
    extra: list[str] = []
    monkeypatch.setattr(store.prompts.versions, "add_usage", extra.append)
    for _ in range(3):
        render(store, i["id"])
    assert extra == [] and usage(store, DEFAULT_TASK) == 4


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

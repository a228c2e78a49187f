"""Template selection (contract 6.1-6.2), its fallbacks, and the preview endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from loop.prompts import selection
from loop.store import RedisStore
from tests.conftest import Client

CTX = {"type": "task", "signalSource": "sentry", "labels": ["backend", "urgent"], "projectId": "p1",
       "hypothesisConfidence": 0.7, "hasFailedSessions": False}


# ---------------------------------------------------------------------------- matching (pure)
@pytest.mark.parametrize(("conditions", "expected"), [
    ({}, True),
    ({"type": "task"}, True), ({"type": "plan"}, False),
    ({"signalSource": "sentry"}, True), ({"signalSource": "github"}, False),
    ({"labels": ["backend"]}, True), ({"labels": ["backend", "urgent"]}, True), ({"labels": ["backend", "ui"]}, False),
    ({"labels": []}, True),
    ({"projectId": "p1"}, True), ({"projectId": "p2"}, False),
    ({"hasFailedSessions": False}, True), ({"hasFailedSessions": True}, False),
    ({"hypothesisConfidence": 0.7}, True), ({"hypothesisConfidence": 0.5}, True), ({"hypothesisConfidence": 0.8}, False),
    ({"type": "task", "labels": ["backend"], "projectId": "p1"}, True),
    ({"type": "task", "labels": ["backend"], "projectId": "p2"}, False),
])
def test_conditions_match_when_every_present_key_holds(conditions: dict[str, Any], expected: bool) -> None:
    assert selection.matches(conditions, CTX) is expected


def test_null_issue_facts_never_match_a_condition_on_them() -> None:
    bare = {**CTX, "signalSource": None, "projectId": None, "hypothesisConfidence": None, "labels": []}
    for cond in ({"signalSource": "sentry"}, {"projectId": "p1"}, {"hypothesisConfidence": 0.0}, {"labels": ["x"]}):
        assert not selection.matches(cond, bare)


def test_match_context_reads_the_issue() -> None:
    issue = {"type": "hypothesis", "signalSource": None, "projectId": "p", "hypothesis": {"confidence": 0.4}}
    assert selection.match_context(issue, ["a"], True) == {
        "type": "hypothesis", "signalSource": None, "labels": ["a"], "projectId": "p",
        "hypothesisConfidence": 0.4, "hasFailedSessions": True}


def tpl(tid: str, conditions: dict[str, Any] | None = None, specificity: int = 10, project: str | None = None,
        active: bool = True) -> dict[str, Any]:
    return {"id": tid, "conditions": conditions or {}, "specificity": specificity, "projectId": project,
            "activeVersionId": f"v-{tid}" if active else None}


# ---------------------------------------------------------------------------- ranking (pure)
def test_higher_specificity_wins() -> None:
    assert selection.select([tpl("a", {"type": "task"}, 10), tpl("b", {"labels": ["backend"]}, 50)], CTX)["id"] == "b"


def test_a_template_scoped_to_the_issues_project_beats_any_specificity() -> None:
    ts = [tpl("a", {}, 100), tpl("b", {}, 0, project="p1")]
    assert selection.select(ts, CTX)["id"] == "b"


def test_the_project_column_boosts_but_does_not_restrict() -> None:
    ts = [tpl("other-project", {}, 50, project="p9"), tpl("plain", {}, 10)]
    assert selection.select(ts, CTX)["id"] == "other-project"
    assert selection.select(ts, {**CTX, "projectId": None})["id"] == "other-project"


def test_ties_keep_creation_order() -> None:
    ts = [tpl("first", {"type": "task"}), tpl("second", {"type": "task"}), tpl("third", {})]
    assert selection.select(ts, CTX)["id"] == "first"
    assert selection.select(list(reversed(ts)), CTX)["id"] == "third"


def test_templates_without_an_active_version_are_never_chosen() -> None:
    ts = [tpl("draft-only", {"type": "task"}, 99, active=False), tpl("live", {"type": "task"})]
    assert selection.select(ts, CTX)["id"] == "live"
    assert selection.select([tpl("draft-only", active=False)], CTX) is None


def test_the_fallback_takes_the_types_default_then_any_template_of_the_type() -> None:
    narrowed = tpl("narrowed", {"type": "task", "labels": ["ui"]}, 90)
    default = tpl("default", {"type": "task"}, 10)
    assert selection.fallback([narrowed, default], CTX)["id"] == "default"
    assert selection.select([narrowed, tpl("plan", {"type": "plan"})], CTX)["id"] == "narrowed"
    assert selection.select([tpl("plan", {"type": "plan"})], CTX) is None


def test_the_preview_fallback_is_the_first_template_of_the_type_in_creation_order() -> None:
    ts = [tpl("plan", {"type": "plan"}), tpl("low", {"type": "task", "labels": ["ui"]}, 1),
          tpl("high", {"type": "task", "labels": ["x"]}, 99)]
    assert selection.preview_fallback(ts, "task")["id"] == "low"
    assert selection.preview_fallback(ts, "monitor") is None


# ---------------------------------------------------------------------------- through the store
def issue(store: RedisStore, **data: Any) -> dict[str, Any]:
    return store.issues.create({"title": "An issue", "type": "task", **data})


def chosen(store: RedisStore, row: dict[str, Any]) -> str | None:
    _, meta = store.prompts.render_for_dispatch(store.issues.get(row["id"]))
    return meta["templateSlug"] if meta else None


def custom(store: RedisStore, slug: str, content: str = "custom {{issue.title}}", **data: Any) -> dict[str, Any]:
    t = store.prompts.templates.create({"slug": slug, "name": slug, **data})
    store.prompts.versions.create(t["id"], {"content": content, "authorType": "human", "authorName": "h"})
    return t


def test_each_issue_type_gets_its_seeded_default(store: RedisStore) -> None:
    expected = {"signal": "signal-triage", "hypothesis": "hypothesis-planning", "task": "task-execution",
                "plan": "plan-decomposition", "monitor": "monitor-check"}
    for issue_type, slug in expected.items():
        assert chosen(store, issue(store, type=issue_type)) == slug


def test_labels_source_and_confidence_select_specific_templates(store: RedisStore) -> None:
    label = store.labels.create({"name": "backend", "color": "#000"})
    custom(store, "backend-tasks", conditions={"type": "task", "labels": ["backend"]}, specificity=20)
    custom(store, "sentry-signals", conditions={"signalSource": "sentry"}, specificity=20)
    custom(store, "confident", conditions={"type": "hypothesis", "hypothesisConfidence": 0.8}, specificity=20)
    assert chosen(store, issue(store, labelIds=[label["id"]])) == "backend-tasks"
    assert chosen(store, issue(store)) == "task-execution"
    assert chosen(store, issue(store, type="signal", signalSource="sentry")) == "sentry-signals"
    assert chosen(store, issue(store, type="signal", signalSource="github")) == "signal-triage"
    hyp = {"statement": "s", "evidence": [], "validationCriteria": "v"}
    assert chosen(store, issue(store, type="hypothesis", hypothesis={**hyp, "confidence": 0.9})) == "confident"
    assert chosen(store, issue(store, type="hypothesis", hypothesis={**hyp, "confidence": 0.5})) == "hypothesis-planning"


def test_a_deleted_label_still_counts_for_matching(store: RedisStore) -> None:
    label = store.labels.create({"name": "legacy", "color": "#000"})
    custom(store, "legacy-tasks", conditions={"labels": ["legacy"]}, specificity=20)
    row = issue(store, labelIds=[label["id"]])
    store.labels.delete(label["id"], idempotent=True)
    assert chosen(store, row) == "legacy-tasks"


def test_selection_sees_template_changes_immediately(store: RedisStore) -> None:
    row = issue(store)
    assert chosen(store, row) == "task-execution"
    t = custom(store, "newer", specificity=50)
    assert chosen(store, row) == "newer"
    store.prompts.templates.update(t["id"], {"specificity": 1})
    assert chosen(store, row) == "task-execution"
    store.prompts.templates.update(t["id"], {"specificity": 60})
    store.prompts.templates.delete(t["id"])
    assert chosen(store, row) == "task-execution"


def test_a_narrowed_default_still_serves_issues_of_its_type(store: RedisStore) -> None:
    store.prompts.templates.update("tpl_default_task_execution", {"conditions": {"type": "task", "labels": ["x"]}})
    assert chosen(store, issue(store)) == "task-execution"


def test_dispatch_falls_back_to_the_seeded_default_even_when_it_was_deleted(store: RedisStore) -> None:
    store.prompts.templates.delete("tpl_default_task_execution")
    prompt, meta = store.prompts.render_for_dispatch(store.issues.get(issue(store)["id"]))
    assert meta is not None and meta["templateId"] == "tpl_default_task_execution"
    assert prompt is not None and prompt.startswith("# Task #")


def test_no_template_at_all_gives_no_prompt(store: RedisStore) -> None:
    store.prompts.ensure_seeded()
    store.r.hdel(store.keys.row("template", "tpl_default_task_execution"), "activeVersionId")
    store.r.incr(store.keys.prompts_generation())
    assert store.prompts.render_for_dispatch(store.issues.get(issue(store)["id"])) == (None, None)


def test_failed_sessions_select_a_retry_template(store: RedisStore) -> None:
    custom(store, "retry", "Earlier attempts failed: {{#each previousSessions}}{{status}} {{reason}}{{/each}}",
           conditions={"type": "task", "hasFailedSessions": True}, specificity=30)
    row = issue(store, status="todo")
    assert chosen(store, row) == "task-execution"
    claim = store.dispatch.claim("agent-1")
    assert claim is not None and claim.issue["id"] == row["id"]
    store.dispatch.release(claim.session_id, "agent-1", None, "needs credentials")
    prompt, meta = store.prompts.render_for_dispatch(store.issues.get(row["id"]))
    assert meta is not None and meta["templateSlug"] == "retry"
    assert prompt == "Earlier attempts failed: released needs credentials"


def test_a_completed_session_is_not_a_failed_one(store: RedisStore) -> None:
    custom(store, "retry", "retry", conditions={"type": "task", "hasFailedSessions": True}, specificity=30)
    row = issue(store, status="todo")
    claim = store.dispatch.claim("agent-1")
    assert claim is not None
    store.issues.update(row["id"], {"status": "done", "agentSummary": "did it"})
    store.issues.update(row["id"], {"status": "todo"})  # reopened: the earlier attempt succeeded
    assert chosen(store, row) == "task-execution"


def test_the_context_reads_the_same_sessions_dispatch_reports(store: RedisStore) -> None:
    row = issue(store, status="todo")
    for n in range(2):
        claim = store.dispatch.claim(f"agent-{n}")
        assert claim is not None
        store.dispatch.release(claim.session_id, f"agent-{n}", None, f"reason {n}")
    claim = store.dispatch.claim("agent-2")
    assert claim is not None
    from loop.prompts import context

    facts = store.prompts.facts(store.issues.get(row["id"]), {"sessionId": claim.session_id})
    expected = [context.session_view(s) for s in store.dispatch.sessions_for_issue(row["id"])
                if s["id"] != claim.session_id]
    assert facts.variables["previousSessions"] == expected and len(expected) == 2
    assert facts.variables["agentName"] == "agent-2"


# ---------------------------------------------------------------------------- preview
def test_preview_shows_the_selected_template_and_the_rendered_prompt(client: Client) -> None:
    iid = client.post("/api/issues", json={"title": "Fix <login> & 'logout'", "type": "task"}).json["data"]["id"]
    r = client.get(f"/api/templates/preview/{iid}")
    assert r.status_code == 200
    body = r.json
    assert body["issue"] == {"id": iid, "number": 1, "title": "Fix <login> & 'logout'", "type": "task"}
    assert body["template"] == {"id": "tpl_default_task_execution", "slug": "task-execution", "name": "Task Execution",
                                "conditions": {"type": "task"}, "specificity": 10}
    assert body["version"] == {"id": "ver_default_task_execution_v1", "version": 1}
    assert body["prompt"].startswith("# Task #1: Fix <login> & 'logout'\n")
    assert "message" not in body
    assert body["data"] == {k: v for k, v in body.items() if k != "data"}


def test_preview_neither_claims_nor_counts_usage(client: Client, store: RedisStore) -> None:
    iid = client.post("/api/issues", json={"title": "t", "type": "task", "status": "todo"}).json["data"]["id"]
    client.get(f"/api/templates/preview/{iid}")
    assert store.issues.get(iid)["status"] == "todo"
    assert client.get("/api/templates/tpl_default_task_execution").json["data"]["activeVersion"]["usageCount"] == 0


def test_preview_works_for_any_status_but_not_for_deleted_issues(client: Client) -> None:
    iid = client.post("/api/issues", json={"title": "t", "type": "plan", "status": "done"}).json["data"]["id"]
    assert client.get(f"/api/templates/preview/{iid}").json["template"]["slug"] == "plan-decomposition"
    client.delete(f"/api/issues/{iid}")
    assert client.get(f"/api/templates/preview/{iid}").json == {"error": "Issue not found"}
    assert client.get("/api/templates/preview/nope").status_code == 404


def test_preview_falls_back_to_the_first_template_of_the_type(client: Client) -> None:
    client.patch("/api/templates/tpl_default_monitor_check", json={"conditions": {"type": "monitor", "labels": ["x"]}})
    iid = client.post("/api/issues", json={"title": "t", "type": "monitor"}).json["data"]["id"]
    assert client.get(f"/api/templates/preview/{iid}").json["template"]["slug"] == "monitor-check"


def test_preview_says_when_no_template_matches(client: Client) -> None:
    client.delete("/api/templates/tpl_default_monitor_check")
    iid = client.post("/api/issues", json={"title": "t", "type": "monitor"}).json["data"]["id"]
    body = client.get(f"/api/templates/preview/{iid}").json
    assert (body["template"], body["version"], body["prompt"], body["message"]) == (
        None, None, None, "No matching template found")


def test_preview_says_when_the_active_version_is_missing(client: Client, store: RedisStore) -> None:
    client.get("/api/templates")
    store.r.hset(store.keys.row("template", "tpl_default_plan_decomposition"), "activeVersionId", "gone")
    store.r.incr(store.keys.prompts_generation())
    iid = client.post("/api/issues", json={"title": "t", "type": "plan"}).json["data"]["id"]
    body = client.get(f"/api/templates/preview/{iid}").json
    assert body["template"]["slug"] == "plan-decomposition"
    assert (body["version"], body["prompt"], body["message"]) == (None, None, "Active version not found")

"""The hydration context (contract 6.3) and the dispatch wiring: what an agent's prompt is
built from, and what ``GET /api/dispatch/next`` hands out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import loop
from loop import models
from loop.clock import FrozenClock, iso
from loop.models import ISSUE_FIELDS
from loop.prompts import context as ctxmod
from loop.store import RedisStore
from tests.conftest import API_KEY, Client


def variables(store: RedisStore, issue_id: str, claim: dict[str, Any] | None = None) -> dict[str, Any]:
    return store.prompts.facts(store.issues.get(issue_id), claim).variables


def family(store: RedisStore) -> dict[str, Any]:
    project = store.projects.create({"name": "Checkout", "description": "Pay <fast>"})
    parent = store.issues.create({"title": "Parent", "type": "plan", "projectId": project["id"]})
    me = store.issues.create({"title": "Me & \"you\"", "type": "task", "parentId": parent["id"],
                              "projectId": project["id"], "priority": 2, "description": "<b>bold</b>"})
    sib = store.issues.create({"title": "Sibling", "type": "task", "parentId": parent["id"], "status": "todo"})
    gone = store.issues.create({"title": "Deleted sibling", "type": "task", "parentId": parent["id"]})
    store.issues.delete(gone["id"])
    return {"project": project, "parent": parent, "me": me, "sib": sib}


def test_the_issue_parent_and_siblings_are_wire_objects_with_iso_timestamps(store: RedisStore) -> None:
    f = family(store)
    v = variables(store, f["me"]["id"])
    assert v["issue"]["id"] == f["me"]["id"] and v["issue"]["title"] == 'Me & "you"'
    assert v["issue"]["createdAt"] == "2026-02-20T12:00:00.000Z" and v["issue"]["completedAt"] is None
    assert v["parent"]["id"] == f["parent"]["id"] and v["parent"]["createdAt"].endswith("Z")
    assert [s["title"] for s in v["siblings"]] == ["Sibling"]
    assert v["children"] == []
    assert v["followUpParentId"] == f["parent"]["id"]


def test_a_root_issue_sees_its_children_and_no_siblings(store: RedisStore) -> None:
    f = family(store)
    v = variables(store, f["parent"]["id"])
    assert v["parent"] is None and v["siblings"] == []
    assert [c["title"] for c in v["children"]] == ['Me & "you"', "Sibling"]
    assert v["followUpParentId"] == f["parent"]["id"]


def test_a_child_whose_parent_was_deleted_files_follow_ups_at_the_top_level(store: RedisStore) -> None:
    f = family(store)
    store.issues.delete(f["parent"]["id"])
    v = variables(store, f["me"]["id"])
    assert v["followUpParentId"] is None
    prompt, _ = store.prompts.render_for_dispatch(store.issues.get(f["me"]["id"]))
    assert prompt is not None and '"parentId"' not in prompt and "go at the top level" in prompt


def test_project_and_its_goal_by_the_projects_goal_id(store: RedisStore) -> None:
    goal = store.goals.create({"title": "Faster", "currentValue": 1.0, "targetValue": 2.0, "unit": "x"})
    project = store.projects.create({"name": "P", "goalId": goal["id"]})
    i = store.issues.create({"title": "t", "type": "task", "projectId": project["id"]})
    v = variables(store, i["id"])
    assert v["project"]["name"] == "P" and v["goal"]["id"] == goal["id"]


def test_a_goal_naming_the_project_is_found_preferring_an_active_one(store: RedisStore) -> None:
    project = store.projects.create({"name": "P"})
    store.goals.create({"title": "Old", "status": "achieved", "projectId": project["id"]})
    active = store.goals.create({"title": "Now", "projectId": project["id"]})
    store.goals.create({"title": "Elsewhere", "projectId": "other"})
    i = store.issues.create({"title": "t", "type": "task", "projectId": project["id"]})
    assert variables(store, i["id"])["goal"]["id"] == active["id"]
    j = store.issues.create({"title": "t", "type": "task"})
    assert variables(store, j["id"])["project"] is None and variables(store, j["id"])["goal"] is None


def test_labels_and_both_relation_directions(store: RedisStore) -> None:
    bug = store.labels.create({"name": "bug", "color": "#f00"})
    i = store.issues.create({"title": "t", "type": "task", "labelIds": [bug["id"]]})
    blocker = store.issues.create({"title": "Blocker", "type": "task"})
    waiter = store.issues.create({"title": "Waiter", "type": "task"})
    store.relations.create(i["id"], "blocked_by", blocker["id"])
    store.relations.create(i["id"], "blocks", waiter["id"])
    store.relations.create(i["id"], "related", waiter["id"])
    v = variables(store, i["id"])
    assert v["labels"] == [{"name": "bug", "color": "#f00"}]
    assert v["blockedBy"] == [{"id": blocker["id"], "number": blocker["number"], "title": "Blocker", "status": "triage"}]
    assert [b["title"] for b in v["blocking"]] == ["Waiter"]


def test_relations_recorded_on_the_other_issue_count_in_both_directions(store: RedisStore) -> None:
    i = store.issues.create({"title": "t", "type": "task"})
    blocker = store.issues.create({"title": "Blocks me", "type": "task"})
    waiter = store.issues.create({"title": "Waits for me", "type": "task"})
    store.relations.create(blocker["id"], "blocks", i["id"])  # recorded on the blocker
    store.relations.create(waiter["id"], "blocked_by", i["id"])  # recorded on the waiting issue
    v = variables(store, i["id"])
    assert [b["title"] for b in v["blockedBy"]] == ["Blocks me"]
    assert [b["title"] for b in v["blocking"]] == ["Waits for me"]


def test_loop_url_and_the_token_placeholder_never_the_server_key(store: RedisStore) -> None:
    i = store.issues.create({"title": "t", "type": "task"})
    v = variables(store, i["id"])
    assert v["loopUrl"] == store.settings.loop_url and v["loopToken"] == "$LOOP_API_KEY"
    prompt, _ = store.prompts.render_for_dispatch(store.issues.get(i["id"]))
    assert prompt is not None and API_KEY not in prompt and "Bearer $LOOP_API_KEY" in prompt


def test_meta_and_claim_reach_the_template(store: RedisStore) -> None:
    t = store.prompts.templates.create({"slug": "probe", "name": "Probe", "specificity": 99})
    store.prompts.versions.create(t["id"], {
        "content": "{{meta.templateSlug}}|{{meta.versionNumber}}|{{meta.templateId}}|{{claim.sessionId}}|"
                   "{{claim.expiresAt}}|{{issue.updatedAt}}", "authorType": "human", "authorName": "h"})
    i = store.issues.create({"title": "t", "type": "task"})
    prompt, meta = store.prompts.render_for_dispatch(store.issues.get(i["id"]),
                                                     {"sessionId": "ses1", "expiresAt": 1_771_589_700_000})
    assert prompt == f"probe|1|{t['id']}|ses1|2026-02-20T12:15:00.000Z|2026-02-20T12:00:00.000Z"
    assert meta is not None and meta["reviewUrl"] == "POST /api/prompt-reviews" and meta["versionNumber"] == 1


def test_rendering_counts_usage_of_the_version(store: RedisStore) -> None:
    i = store.issues.create({"title": "t", "type": "task"})
    for _ in range(3):
        store.prompts.render_for_dispatch(store.issues.get(i["id"]))
    assert store.prompts.versions.get("ver_default_task_execution_v1")["usageCount"] == 3


def test_compiled_versions_are_cached_per_version_id(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    i = store.issues.create({"title": "t", "type": "task"})
    store.prompts.render_for_dispatch(store.issues.get(i["id"]))
    reads: list[str] = []
    original = store.prompts.versions.get
    monkeypatch.setattr(store.prompts.versions, "get", lambda vid: reads.append(vid) or original(vid))
    store.prompts.render_for_dispatch(store.issues.get(i["id"]))
    assert reads == []


# ---------------------------------------------------------------------------- dispatch wiring
def test_dispatch_next_returns_the_rendered_prompt_and_meta(client: Client, store: RedisStore) -> None:
    iid = client.post("/api/issues", json={"title": "Ship <it>", "type": "task", "status": "todo"}).json["data"]["id"]
    r = client.get("/api/dispatch/next")
    assert r.status_code == 200
    body = r.json
    assert body["issue"]["id"] == iid and body["prompt"].startswith("# Task #1: Ship <it>")
    assert body["meta"] == {"templateSlug": "task-execution", "templateId": "tpl_default_task_execution",
                            "versionId": "ver_default_task_execution_v1", "versionNumber": 1,
                            "reviewUrl": "POST /api/prompt-reviews"}
    session = body["claim"]["sessionId"]
    assert f"/api/dispatch/claims/{session}/heartbeat" in body["prompt"]
    assert f"/api/dispatch/claims/{session}/release" in body["prompt"]
    assert body["data"]["prompt"] == body["prompt"]
    version = client.get("/api/templates/tpl_default_task_execution").json["data"]["activeVersion"]
    assert version["usageCount"] == 1


def test_a_prompt_that_cannot_render_puts_the_issue_back(client: Client, store: RedisStore) -> None:
    t = store.prompts.templates.create({"slug": "broken", "name": "Broken", "specificity": 99})
    v = store.prompts.versions.create(t["id"], {"content": "fine", "authorType": "human", "authorName": "h"})
    # Content written around the API's validation (an old or hand-edited row).
    store.r.hset(store.keys.row("prompt_version", v["id"]), "content", "{{> no_such_partial}}")
    iid = client.post("/api/issues", json={"title": "t", "type": "task", "status": "todo"}).json["data"]["id"]
    r = client.get("/api/dispatch/next")
    assert r.status_code >= 500 and "broken" in r.json["error"] and "returned to the queue" in r.json["error"]
    assert store.issues.get(iid)["status"] == "todo"


def test_released_sessions_make_the_next_prompt_warn_about_the_failed_attempt(
        client: Client, store: RedisStore) -> None:
    iid = client.post("/api/issues", json={"title": "Hard", "type": "task", "status": "todo"}).json["data"]["id"]
    first = client.get("/api/dispatch/next").json
    assert "Earlier attempts did not finish" not in first["prompt"]
    r = client.post(f"/api/dispatch/claims/{first['claim']['sessionId']}/release",
                    json={"reason": "Needs DB credentials"})
    assert r.status_code == 200
    second = client.get("/api/dispatch/next").json
    assert second["issue"]["id"] == iid
    assert "Earlier attempts did not finish" in second["prompt"]
    assert "released (bootstrap)" in second["prompt"] and "Reason: Needs DB credentials" in second["prompt"]
    v = variables(store, iid, {"sessionId": second["claim"]["sessionId"]})
    assert v["hasFailedSessions"] is True
    assert [s["status"] for s in v["previousSessions"]] == ["released"]
    assert v["agentName"] == "bootstrap"


def test_completion_rate_and_duration_are_measured_from_sessions(
        client: Client, store: RedisStore, clock: FrozenClock) -> None:
    for n in range(2):
        client.post("/api/issues", json={"title": f"t{n}", "type": "task", "status": "todo"})
    done = client.get("/api/dispatch/next").json
    clock.advance(90)
    assert client.patch(f"/api/issues/{done['issue']['id']}", json={"status": "done", "agentSummary": "ok"}
                        ).status_code == 200
    released = client.get("/api/dispatch/next").json
    client.post(f"/api/dispatch/claims/{released['claim']['sessionId']}/release", json={})
    v = client.get("/api/templates/tpl_default_task_execution").json["data"]["activeVersion"]
    assert v["completionRate"] == 0.5 and v["avgDurationMs"] == 90_000.0


@given(values=st.lists(st.one_of(st.just(False), st.integers(0, 4_102_444_800_000).map(str)),
                       min_size=len(ctxmod.SUMMARY_FIELDS), max_size=len(ctxmod.SUMMARY_FIELDS)),
       title=st.one_of(st.just(False), st.text()))
def test_a_summary_row_reads_like_the_generic_decode_and_wire(values: list[Any], title: Any) -> None:
    names = list(ctxmod.SUMMARY_FIELDS)
    values[names.index("title")] = title  # (the other string fields hold digits: still strings)
    raw = {n: v for n, v in zip(names, values, strict=True) if v is not False}
    expected = models.wire(ctxmod.SUMMARY_FIELDS, models.decode(ctxmod.SUMMARY_FIELDS, raw)) if raw else None
    assert models.wire_values(ctxmod.SUMMARY_FIELDS, values) == expected
    assert models.wire_values(ctxmod.SUMMARY_FIELDS, [None if v is False else v for v in values]) == expected


@given(ms=st.integers(0, 4_102_444_800_000))
def test_the_clock_s_cached_iso_timestamps_equal_javascript_s_to_iso_string(ms: int) -> None:
    expected = datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert iso(ms) == iso(ms) == expected  # twice: the second from the cache


def test_no_module_but_the_template_compiler_generates_code_with_exec() -> None:
    root = Path(loop.__file__).parent
    users = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if "exec(" in p.read_text())
    assert users == ["prompts/engine.py"]


#: A raw hash value of each field kind (``unknownField`` is not in the layout).
RAW_VALUES = {"s": st.text(), "i": st.integers(-5, 10**6).map(str), "t": st.integers(0, 4 * 10**12).map(str),
              "j": st.sampled_from(['{"a": [1, "x"]}', "[]", "null", '"text"'])}


@given(raw=st.fixed_dictionaries({}, optional={
    **{name: RAW_VALUES[kind] for name, kind in ISSUE_FIELDS.items()}, "unknownField": st.text(),
    # pieces of a long description written by an older Loop (models.LEGACY_PIECE_SEP), with a possible gap
    "description~1": st.text(), "description~2": st.text(), "description~4": st.text()}))
def test_a_whole_hash_reads_like_the_generic_decode_and_wire(raw: dict[str, str]) -> None:
    flat = [x for pair in raw.items() for x in pair]
    expected = models.wire(ISSUE_FIELDS, models.decode(ISSUE_FIELDS, raw)) if raw else None
    assert ctxmod._hash(ISSUE_FIELDS, flat) == expected
    # cjson's empty array, a missing hash
    assert ctxmod._hash(ISSUE_FIELDS, {}) is None and ctxmod._hash(ISSUE_FIELDS, False) is None


@given(raw=st.fixed_dictionaries({}, optional={name: RAW_VALUES[kind] for name, kind in ISSUE_FIELDS.items()}),
       missing=st.sampled_from([False, None]))
def test_an_hmget_reply_of_every_field_reads_like_the_generic_decode_and_wire(raw: dict[str, str], missing: Any) -> None:
    values = [raw.get(name, missing) for name in ISSUE_FIELDS]
    expected = models.wire(ISSUE_FIELDS, models.decode(ISSUE_FIELDS, raw)) if raw else None
    assert models.wire_values(ISSUE_FIELDS, values) == expected

"""Issue 10.13: ``""`` is no reference (null) for every optional id field, on create and update;
a required id must not be empty; ``GET /api/goals`` filters by ``status`` through a status index."""

from __future__ import annotations

from typing import Any

import pytest

from loop.store.reindex import rebuild_goal_status
from tests.conftest import keys_of


def create(client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(path, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json["data"])


def stored(store: Any, kind: str, row_id: str, field: str) -> Any:
    return store.r.hget(store.keys.row(kind, row_id), field)


# ----------------------------------------------------------------------------- empty ids
def test_an_issue_created_with_empty_parent_and_project_ids_is_a_top_level_issue_without_project(client, store):
    issue = create(client, "/api/issues", {"title": "t", "type": "task", "parentId": "", "projectId": ""})
    assert (issue["parentId"], issue["projectId"]) == (None, None)
    assert stored(store, "issue", issue["id"], "parentId") is None
    assert client.get("/api/issues", params={"parentId": ""}).json["total"] == 1


def test_patching_an_issue_with_empty_parent_and_project_ids_clears_them(client, store):
    parent = create(client, "/api/issues", {"title": "p", "type": "task"})
    project = create(client, "/api/projects", {"name": "P"})
    child = create(client, "/api/issues", {"title": "c", "type": "task", "parentId": parent["id"],
                                           "projectId": project["id"]})
    r = client.patch(f"/api/issues/{child['id']}", json={"parentId": "", "projectId": ""})
    assert r.status_code == 200 and (r.json["data"]["parentId"], r.json["data"]["projectId"]) == (None, None)
    assert client.get(f"/api/issues/{parent['id']}").json["data"]["children"] == []
    assert client.get(f"/api/projects/{project['id']}").json["data"]["issueCounts"] == {}


def test_a_project_created_or_patched_with_an_empty_goal_id_stores_no_dangling_goal(client, store):
    goal = create(client, "/api/goals", {"title": "G"})
    project = create(client, "/api/projects", {"name": "P", "goalId": ""})
    assert project["goalId"] is None and stored(store, "project", project["id"], "goalId") is None
    assert client.patch(f"/api/projects/{project['id']}", json={"goalId": goal["id"]}).status_code == 200
    r = client.patch(f"/api/projects/{project['id']}", json={"goalId": ""})
    assert r.status_code == 200 and r.json["data"]["goalId"] is None
    assert stored(store, "project", project["id"], "goalId") is None


def test_a_goal_created_or_patched_with_an_empty_project_id_stores_no_dangling_project(client, store):
    project = create(client, "/api/projects", {"name": "P"})
    goal = create(client, "/api/goals", {"title": "G", "projectId": ""})
    assert goal["projectId"] is None and stored(store, "goal", goal["id"], "projectId") is None
    client.patch(f"/api/goals/{goal['id']}", json={"projectId": project["id"]})
    r = client.patch(f"/api/goals/{goal['id']}", json={"projectId": ""})
    assert r.status_code == 200 and r.json["data"]["projectId"] is None
    assert stored(store, "goal", goal["id"], "projectId") is None


def test_a_comment_with_an_empty_parent_id_is_a_top_level_comment(client):
    issue = create(client, "/api/issues", {"title": "t", "type": "task"})
    r = client.post(f"/api/issues/{issue['id']}/comments",
                    json={"body": "hi", "authorName": "Ann", "authorType": "human", "parentId": ""})
    assert r.status_code == 201 and r.json["data"]["parentId"] is None
    assert len(client.get(f"/api/issues/{issue['id']}/comments").json["data"]) == 1


def test_a_signal_and_a_template_with_an_empty_project_id_have_no_project(client):
    r = client.post("/api/signals", json={"source": "s", "type": "t", "severity": "low", "payload": {},
                                          "projectId": ""})
    assert r.status_code == 201 and r.json["data"]["signal"]["projectId"] is None
    template = create(client, "/api/templates", {"slug": "custom", "name": "C", "projectId": ""})
    assert template["projectId"] is None


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/issues/{id}/relations", {"type": "blocks", "relatedIssueId": ""}, "relatedIssueId"),
    ("/api/issues/{id}/labels", {"labelId": ""}, "labelId"),
])
def test_a_required_id_must_not_be_empty_and_writes_nothing(client, store, path, body, field):
    issue = create(client, "/api/issues", {"title": "t", "type": "task"})
    before = keys_of(store)
    r = client.post(path.format(id=issue["id"]), json=body)
    assert (r.status_code, r.json["details"]) == (400, {field: ["must not be empty"]})
    assert keys_of(store) == before


def test_the_openapi_document_says_an_empty_optional_id_means_none(client):
    spec = client.get("/api/openapi.json").json
    body = spec["paths"]["/api/projects"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert '"" means none' in body["properties"]["goalId"]["description"]


# ----------------------------------------------------------------------------- goals ?status=
def _goals(client: Any, **params: Any) -> tuple[list[str], int]:
    r = client.get("/api/goals", params=params)
    assert r.status_code == 200, r.text
    return [g["title"] for g in r.json["data"]], r.json["total"]


def test_goals_are_filtered_by_one_or_several_statuses_in_creation_order(client):
    for title, status in [("a", "active"), ("b", "achieved"), ("c", "active"), ("d", "abandoned"), ("e", "achieved")]:
        create(client, "/api/goals", {"title": title, "status": status})
    assert _goals(client, status="active") == (["a", "c"], 2)
    assert _goals(client, status="achieved,abandoned") == (["b", "d", "e"], 3)
    assert _goals(client, status="active,achieved", limit=2, offset=1) == (["b", "c"], 4)
    assert _goals(client) == (["a", "b", "c", "d", "e"], 5)


def test_a_goal_leaves_its_status_filter_when_patched_or_deleted(client):
    goal = create(client, "/api/goals", {"title": "g"})
    create(client, "/api/goals", {"title": "h"})
    client.patch(f"/api/goals/{goal['id']}", json={"status": "achieved"})
    assert _goals(client, status="active") == (["h"], 1)
    assert _goals(client, status="achieved") == (["g"], 1)
    assert _goals(client, status="active,achieved") == (["g", "h"], 2)
    client.delete(f"/api/goals/{goal['id']}")
    assert _goals(client, status="achieved") == ([], 0)


def test_an_unknown_goal_status_filter_is_a_400(client):
    r = client.get("/api/goals", params={"status": "done"})
    assert r.status_code == 400 and list(r.json["details"]) == ["status"]


def test_the_goal_status_indexes_are_rebuilt_for_goals_written_before_them(client, store):
    create(client, "/api/goals", {"title": "a"})
    b = create(client, "/api/goals", {"title": "b", "status": "achieved"})
    client.delete(f"/api/goals/{b['id']}")
    create(client, "/api/goals", {"title": "c", "status": "achieved"})
    expected = _goals(client, status="active"), _goals(client, status="achieved")
    for status in ("active", "achieved", "abandoned"):
        store.r.delete(store.keys.status_index("goals", status))
    assert rebuild_goal_status(store) == 2
    assert (_goals(client, status="active"), _goals(client, status="achieved")) == expected

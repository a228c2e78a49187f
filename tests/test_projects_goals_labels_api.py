"""Contract 1.5 (projects), 1.6 (goals), 1.7 (labels) and 3.5 (soft delete) over the API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import keys_of

PROJECT_KEYS = {"id", "name", "description", "status", "health", "goalId", "createdAt", "updatedAt", "deletedAt"}
GOAL_KEYS = {"id", "title", "description", "metric", "targetValue", "currentValue", "unit", "status", "projectId",
             "createdAt", "updatedAt", "deletedAt", "direction", "lastReadingAt", "trend"}
LABEL_KEYS = {"id", "name", "color", "createdAt", "deletedAt"}


def create(client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(path, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json["data"])


def snapshot(store: Any) -> dict[str, Any]:
    return {k: store.r.dump(k) for k in keys_of(store)}


# ----------------------------------------------------------------------------- projects
def test_a_project_is_created_with_defaults_and_the_wire_fields(client):
    r = client.post("/api/projects", json={"name": "Onboarding", "bogus": True})
    assert r.status_code == 201 and set(r.json) == {"data"}
    p = r.json["data"]
    assert set(p) == PROJECT_KEYS
    assert (p["name"], p["status"], p["health"], p["description"], p["goalId"], p["deletedAt"]) == \
        ("Onboarding", "backlog", "on_track", None, None, None)
    assert p["createdAt"] == p["updatedAt"] == "2026-02-20T12:00:00.000Z"


def test_a_project_may_reference_a_live_goal_only(client, store):
    goal = create(client, "/api/goals", {"title": "Grow"})
    p = create(client, "/api/projects", {"name": "P", "goalId": goal["id"], "status": "active", "health": "at_risk"})
    assert (p["goalId"], p["status"], p["health"]) == (goal["id"], "active", "at_risk")
    client.delete(f"/api/goals/{goal['id']}")
    before = keys_of(store)
    for goal_id in ("nosuch", goal["id"]):
        r = client.post("/api/projects", json={"name": "P", "goalId": goal_id})
        assert (r.status_code, r.json) == (422, {"error": "Goal not found"})
    assert keys_of(store) == before


@pytest.mark.parametrize(("body", "field", "message"), [
    ({}, "name", "is required"),
    ({"name": ""}, "name", "must not be empty"),
    ({"name": "x" * 501}, "name", "must be at most 500 characters"),
    ({"name": "n", "status": "done"}, "status", "must be one of"),
    ({"name": "n", "health": "good"}, "health", "must be one of: on_track, at_risk, off_track"),
    ({"name": "n", "description": 1}, "description", "must be a string"),
])
def test_an_invalid_project_body_is_a_400_and_writes_nothing(client, store, body, field, message):
    before = keys_of(store)
    r = client.post("/api/projects", json=body)
    assert r.status_code == 400
    assert any(message in m for m in r.json["details"][field])
    assert keys_of(store) == before


def test_projects_are_listed_in_creation_order_with_pagination(client, clock):
    made = []
    for i in range(4):
        made.append(create(client, "/api/projects", {"name": f"p{i}"})["id"])
        clock.advance(1)
    client.delete(f"/api/projects/{made[1]}")
    r = client.get("/api/projects")
    assert [p["id"] for p in r.json["data"]] == [made[0], made[2], made[3]] and r.json["total"] == 3
    r = client.get("/api/projects?limit=1&offset=1")
    assert [p["id"] for p in r.json["data"]] == [made[2]] and r.json["total"] == 3
    for q in ("limit=0", "limit=201", "offset=-1", "limit=x", "offset=9223372036854775807"):
        assert client.get(f"/api/projects?{q}").status_code == 400, q


def test_the_project_detail_has_its_goal_and_counts_of_live_issues_by_status(client):
    goal = create(client, "/api/goals", {"title": "Grow"})
    p = create(client, "/api/projects", {"name": "P", "goalId": goal["id"]})
    d = client.get(f"/api/projects/{p['id']}").json["data"]
    assert set(d) == PROJECT_KEYS | {"goal", "issueCounts"}
    assert d["goal"] == goal and d["issueCounts"] == {}
    made = [create(client, "/api/issues", {"title": "t", "type": "task", "projectId": p["id"], "status": s})["id"]
            for s in ("todo", "todo", "done", "backlog")]
    create(client, "/api/issues", {"title": "elsewhere", "type": "task", "status": "todo"})
    assert client.get(f"/api/projects/{p['id']}").json["data"]["issueCounts"] == {"todo": 2, "done": 1, "backlog": 1}
    client.patch(f"/api/issues/{made[3]}", json={"status": "in_progress"})
    client.delete(f"/api/issues/{made[0]}")
    client.patch(f"/api/issues/{made[2]}", json={"projectId": None})
    assert client.get(f"/api/projects/{p['id']}").json["data"]["issueCounts"] == {"todo": 1, "in_progress": 1}
    client.delete(f"/api/goals/{goal['id']}")
    assert client.get(f"/api/projects/{p['id']}").json["data"]["goal"] is None


def test_patching_a_project_checks_404_before_the_goal(client, store):
    p = create(client, "/api/projects", {"name": "P"})
    before = snapshot(store)
    r = client.patch("/api/projects/nosuch", json={"goalId": "nosuch"})
    assert (r.status_code, r.json) == (404, {"error": "Project not found"})
    r = client.patch(f"/api/projects/{p['id']}", json={"goalId": "nosuch"})
    assert (r.status_code, r.json) == (422, {"error": "Goal not found"})
    r = client.patch(f"/api/projects/{p['id']}", json={"description": None})
    assert r.status_code == 400 and r.json["details"] == {"description": ["must not be null"]}
    r = client.patch(f"/api/projects/{p['id']}", json={})
    assert r.status_code == 400 and r.json["details"] == {"body": ["must contain at least one updatable field"]}
    assert snapshot(store) == before


def test_patching_a_project_updates_fields_and_can_clear_the_goal(client, clock):
    goal = create(client, "/api/goals", {"title": "Grow"})
    p = create(client, "/api/projects", {"name": "P"})
    clock.advance(30)
    r = client.patch(f"/api/projects/{p['id']}", json={"name": "Q", "description": "d", "status": "paused",
                                                       "health": "off_track", "goalId": goal["id"]})
    got = r.json["data"]
    assert r.status_code == 200 and set(got) == PROJECT_KEYS
    assert (got["name"], got["description"], got["status"], got["health"], got["goalId"]) == \
        ("Q", "d", "paused", "off_track", goal["id"])
    assert got["updatedAt"] == "2026-02-20T12:00:30.000Z"
    assert client.patch(f"/api/projects/{p['id']}", json={"goalId": None}).json["data"]["goalId"] is None


def test_deleting_a_project_is_soft_once_and_does_not_cascade(client):
    p = create(client, "/api/projects", {"name": "P"})
    issue = create(client, "/api/issues", {"title": "t", "type": "task", "projectId": p["id"]})
    r = client.delete(f"/api/projects/{p['id']}")
    assert r.status_code == 204 and r.content == b""
    for method in ("GET", "DELETE"):
        r = client.request(method, f"/api/projects/{p['id']}")
        assert (r.status_code, r.json) == (404, {"error": "Project not found"}), method
    assert client.patch(f"/api/projects/{p['id']}", json={"name": "x"}).status_code == 404
    assert client.get(f"/api/issues/{issue['id']}").json["data"]["projectId"] == p["id"]


# ----------------------------------------------------------------------------- goals
def test_a_goal_is_created_with_defaults_and_the_wire_fields(client):
    g = create(client, "/api/goals", {"title": "Grow", "targetValue": 100, "currentValue": 12.5, "unit": "%",
                                      "metric": "signups", "description": "d", "projectId": "any"})
    assert set(g) == GOAL_KEYS
    assert (g["status"], g["targetValue"], g["currentValue"], g["unit"], g["metric"], g["projectId"]) == \
        ("active", 100, 12.5, "%", "signups", "any")
    assert client.get(f"/api/goals/{g['id']}").json == {"data": g}


@pytest.mark.parametrize(("body", "field", "message"), [
    ({}, "title", "is required"),
    ({"title": ""}, "title", "must not be empty"),
    ({"title": "x" * 501}, "title", "must be at most 500 characters"),
    ({"title": "t", "targetValue": "100"}, "targetValue", "must be a number"),
    ({"title": "t", "status": "done"}, "status", "must be one of: active, achieved, abandoned"),
])
def test_an_invalid_goal_body_is_exactly_400_and_writes_nothing(client, store, body, field, message):
    before = keys_of(store)
    r = client.post("/api/goals", json=body)
    assert r.status_code == 400
    assert r.json["details"][field] == [message]
    assert keys_of(store) == before


def test_patching_a_goal_with_null_clears_the_optional_fields(client, clock):
    g = create(client, "/api/goals", {"title": "Grow", "targetValue": 100, "currentValue": 1, "unit": "%",
                                      "metric": "m", "description": "d", "projectId": "p"})
    clock.advance(1)
    cleared = {f: None for f in ("description", "metric", "targetValue", "currentValue", "unit", "projectId")}
    r = client.patch(f"/api/goals/{g['id']}", json={**cleared, "status": "achieved"})
    assert r.status_code == 200
    got = r.json["data"]
    assert all(got[f] is None for f in cleared) and got["status"] == "achieved"
    assert got["updatedAt"] == "2026-02-20T12:00:01.000Z"
    assert client.get(f"/api/goals/{g['id']}").json["data"] == got


def test_goal_patch_errors_change_nothing(client, store):
    g = create(client, "/api/goals", {"title": "Grow"})
    before = snapshot(store)
    assert client.patch("/api/goals/nosuch", json={"title": "x"}).json == {"error": "Goal not found"}
    for body, field in (({"title": None}, "title"), ({"title": ""}, "title"), ({"status": None}, "status"),
                        ({}, "body")):
        r = client.patch(f"/api/goals/{g['id']}", json=body)
        assert r.status_code == 400 and field in r.json["details"], body
    assert snapshot(store) == before


def test_goals_list_and_soft_delete(client):
    a = create(client, "/api/goals", {"title": "a"})
    b = create(client, "/api/goals", {"title": "b"})
    r = client.get("/api/goals")
    assert [g["id"] for g in r.json["data"]] == [a["id"], b["id"]] and r.json["total"] == 2
    assert client.delete(f"/api/goals/{a['id']}").status_code == 204
    assert client.get("/api/goals").json == {"data": [b], "total": 1}
    for method in ("GET", "DELETE"):
        r = client.request(method, f"/api/goals/{a['id']}")
        assert (r.status_code, r.json) == (404, {"error": "Goal not found"})
    assert client.get("/api/goals?limit=500").status_code == 400


# ----------------------------------------------------------------------------- labels
def test_a_label_is_created_with_201_and_the_wire_fields(client):
    r = client.post("/api/labels", json={"name": "bug", "color": "not-a-colour"})
    assert r.status_code == 201 and set(r.json) == {"data"}
    lb = r.json["data"]
    assert set(lb) == LABEL_KEYS and lb["deletedAt"] is None and lb["color"] == "not-a-colour"


@pytest.mark.parametrize(("body", "details"), [
    ({"color": "red"}, {"name": ["is required"]}),
    ({"name": "bug"}, {"color": ["is required"]}),
    ({}, {"name": ["is required"], "color": ["is required"]}),
    ({"name": "", "color": "red"}, {"name": ["must not be empty"]}),
    ({"name": "x" * 101, "color": "red"}, {"name": ["must be at most 100 characters"]}),
    ({"name": "x", "color": "c" * 51}, {"color": ["must be at most 50 characters"]}),
    ({"name": 1, "color": "red"}, {"name": ["must be a string"]}),
])
def test_an_invalid_label_body_is_the_uniform_400_and_writes_nothing(client, store, body, details):
    before = keys_of(store)
    r = client.post("/api/labels", json=body)
    assert r.status_code == 400
    assert r.json["details"] == details and r.json["error"].startswith("Invalid request: ")
    assert keys_of(store) == before


def test_a_label_body_that_is_not_an_object_is_the_uniform_400(client, store):
    before = keys_of(store)
    r = client.post("/api/labels", json=["bug"])
    assert (r.status_code, r.json) == (400, {"error": "Request body must be a JSON object.",
                                             "details": {"body": ["must be a JSON object"]}})
    assert keys_of(store) == before


def test_malformed_json_on_labels_is_the_uniform_400(client, store):
    before = keys_of(store)
    r = client.post("/api/labels", body=b"{", headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json["error"]) == (400, "Malformed JSON in request body")
    assert keys_of(store) == before


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "offset=-1", "limit=abc", "offset=99999999999999999999"])
def test_bad_label_pagination_is_the_uniform_400(client, query):
    r = client.get(f"/api/labels?{query}")
    assert r.status_code == 400
    assert list(r.json["details"]) == [query.split("=")[0]]


def test_label_names_are_unique_across_deleted_labels_too(client, store):
    lb = create(client, "/api/labels", {"name": "bug", "color": "red"})
    before = keys_of(store)
    r = client.post("/api/labels", json={"name": "bug", "color": "blue"})
    assert (r.status_code, r.json) == (409, {"error": "Label name already exists"})
    assert keys_of(store) == before
    client.delete(f"/api/labels/{lb['id']}")
    before = keys_of(store)
    r = client.post("/api/labels", json={"name": "bug", "color": "blue"})
    assert (r.status_code, r.json) == (409, {"error": "Label name already exists"})
    assert keys_of(store) == before
    assert client.post("/api/labels", json={"name": "Bug", "color": "blue"}).status_code == 201


def test_deleting_a_label_is_idempotent_and_restamps_deleted_at(client, store, clock):
    lb = create(client, "/api/labels", {"name": "bug", "color": "red"})
    r = client.delete(f"/api/labels/{lb['id']}")
    assert r.status_code == 204 and r.content == b""
    first = store.labels.get(lb["id"])["deletedAt"]
    clock.advance(5)
    assert client.delete(f"/api/labels/{lb['id']}").status_code == 204
    assert store.labels.get(lb["id"])["deletedAt"] == first + 5000
    r = client.delete("/api/labels/nosuch")
    assert (r.status_code, r.json) == (404, {"error": "Label not found"})


def test_labels_are_listed_in_insertion_order_without_deleted_ones(client):
    made = [create(client, "/api/labels", {"name": n, "color": "c"}) for n in ("a", "b", "c")]
    client.delete(f"/api/labels/{made[0]['id']}")
    r = client.get("/api/labels")
    assert r.json == {"data": made[1:], "total": 2}
    assert client.get("/api/labels?limit=1&offset=1").json == {"data": [made[2]], "total": 2}


def test_labels_cannot_be_patched(client):
    lb = create(client, "/api/labels", {"name": "bug", "color": "red"})
    r = client.patch(f"/api/labels/{lb['id']}", json={"name": "x"})
    assert r.status_code == 405 and "error" in r.json


def test_a_label_can_be_fetched_by_id_until_deleted(client):
    lb = create(client, "/api/labels", {"name": "bug", "color": "red"})
    assert client.get(f"/api/labels/{lb['id']}").json == {"data": lb}
    client.delete(f"/api/labels/{lb['id']}")
    r = client.get(f"/api/labels/{lb['id']}")
    assert (r.status_code, r.json) == (404, {"error": "Label not found"})


def test_an_empty_goal_id_is_not_checked_and_links_no_goal(client):
    p = create(client, "/api/projects", {"name": "P", "goalId": ""})
    assert client.get(f"/api/projects/{p['id']}").json["data"]["goal"] is None
    assert client.patch(f"/api/projects/{p['id']}", json={"goalId": ""}).status_code == 200
